"""bf16 training on the CPU: fp32, bf16 autocast, and bf16 with every or only the strided depthwise conv in fp32.

One interleaved run: every round times one training step (forward, loss, backward, SGD step) of every
(model, mode) pair, the starting pair rotating; medians over the rounds. Batch 128, channels_last, synthetic
CIFAR-size data, the threads torch uses. Writes ``benchmarks/results/train_bf16.{json,md}``.

    python benchmarks/train_bf16.py [--models resnet20_cifar,...] [--rounds 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compactnets as cn  # noqa: E402
from compactnets.amp import cpu_has_native_bf16, keep_depthwise_fp32, strided_depthwise_only  # noqa: E402
from compactnets.benchmark import environment, time_interleaved  # noqa: E402

MODELS = "resnet20_cifar,mobilenetv2_cifar,pydmobilenet_add_29_050_cifar,igcv3_05d_cifar,antnet_g2_cifar"
MODES = ("fp32", "bf16", "bf16, depthwise fp32", "bf16, strided depthwise fp32")


def make_step(name: str, mode: str, batch: int) -> Callable[[], None]:
    torch.manual_seed(0)
    model = cn.create_model(name, num_classes=10).to(memory_format=torch.channels_last).train()
    if "depthwise fp32" in mode:
        keep_depthwise_fp32(model, strided_only=mode.startswith("bf16, strided"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    cn.tune_malloc()
    cases = {(m, mode): make_step(m, mode, args.batch_size) for m in args.models.split(",") for mode in MODES}
    times = time_interleaved(cases, args.rounds)  # the warm-up lets oneDNN pick and cache its kernels
    rows = []
    for name in args.models.split(","):
        fp32 = statistics.median(times[(name, "fp32")])
        for mode in MODES:
            ms = statistics.median(times[(name, mode)])
            rows.append({"model": name, "mode": mode, "images_per_s": round(args.batch_size / ms * 1e3, 1),
                         "vs_fp32": round(fp32 / ms, 3)})  # fmt: skip
    env = environment("cpu") | {"native_bf16": cpu_has_native_bf16(), "batch_size": args.batch_size,
                                "rounds": args.rounds}  # fmt: skip
    out = ROOT / "benchmarks" / "results"
    (out / "train_bf16.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1) + "\n")
    lines = ["# bf16 training throughput on the CPU", "",
             f"`python benchmarks/train_bf16.py` on {env['device']} ({env['threads']} threads, native bf16: "
             f"{env['native_bf16']}), batch {args.batch_size}, channels_last, synthetic 32x32 data, medians of "
             f"{args.rounds} interleaved rounds, {env['date']}.", "",
             f"`--amp auto` here keeps {'only the strided' if strided_depthwise_only() else 'all'} depthwise convs "
             "in fp32 (`compactnets.amp.strided_depthwise_only`).", "",
             "| model | fp32 img/s | bf16 | bf16, depthwise fp32 | bf16, strided depthwise fp32 |",
             "|---|--:|--:|--:|--:|"]  # fmt: skip
    for name in args.models.split(","):
        r = {row["mode"]: row for row in rows if row["model"] == name}
        cells = [f"{r[mode]['images_per_s']} ({r[mode]['vs_fp32']:.2f}x)" for mode in MODES[1:]]
        lines.append(f"| `{name}` | {r['fp32']['images_per_s']} | " + " | ".join(cells) + " |")
    (out / "train_bf16.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
