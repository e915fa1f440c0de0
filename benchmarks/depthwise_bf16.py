"""Depthwise convolutions in bf16 against fp32 on the CPU, timed inside the blocks of a model that hold them.

For every distinct block of ``--model`` that holds a depthwise conv (the conv's ancestor ``--depth`` levels below
the model, e.g. ``features.3`` of MobileNetV2: an inverted residual block), times a training step of that block
(forward + backward, input and weight gradients) on its real input shape at ``--batch-size``, channels_last, three
ways: fp32; bf16 autocast with its depthwise convs kept in fp32 (``keep_depthwise_fp32``); bf16 autocast with
everything in bf16. Timing the whole block counts what the choice costs around the conv too (dtype casts, the
BatchNorm after it running in fp32 or bf16). Interleaved rounds, medians. This is the measurement behind
``compactnets.amp.strided_depthwise_only``: which depthwise convs ``--amp auto`` keeps in fp32 on this processor.
Writes ``benchmarks/results/depthwise_bf16.{md,json}``.

    python benchmarks/depthwise_bf16.py [--model mobilenetv2_cifar --batch-size 128 --rounds 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compactnets as cn  # noqa: E402
from compactnets.amp import cpu_has_native_bf16, is_depthwise, keep_depthwise_fp32, strided_depthwise_only  # noqa: E402
from compactnets.benchmark import environment, time_interleaved  # noqa: E402

MODES = ("fp32", "bf16, depthwise fp32", "bf16")


def depthwise_blocks(name: str, depth: int) -> dict[str, tuple[nn.Module, torch.Size, nn.Conv2d]]:
    """The blocks of model ``name`` that hold a depthwise ``nn.Conv2d``, one per distinct (input shape, depthwise
    channels, stride), each with its input shape and its first depthwise conv, in network order."""
    model = cn.create_model(name).eval()
    convs: dict[str, nn.Conv2d] = {}
    for conv_name, conv in model.named_modules():
        if isinstance(conv, nn.Conv2d) and is_depthwise(conv):
            convs.setdefault(".".join(conv_name.split(".")[:depth]), conv)
    inputs: dict[str, torch.Size] = {}

    def record(key: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        return lambda _, args: inputs.__setitem__(key, args[0].shape)

    hooks = [model.get_submodule(key).register_forward_pre_hook(record(key)) for key in convs]
    with torch.no_grad():
        model(torch.randn(1, *cn.model_card(name).input_size))
    for hook in hooks:
        hook.remove()
    distinct: dict[tuple[Any, ...], str] = {}
    for key, conv in convs.items():
        distinct.setdefault((inputs[key][1:], conv.in_channels, conv.stride), key)
    return {key: (model.get_submodule(key), inputs[key], convs[key]) for key in distinct.values()}


def make_step(block: nn.Module, input_shape: torch.Size, mode: str, batch: int) -> Callable[[], None]:
    block = copy.deepcopy(block).train().to(memory_format=torch.channels_last)
    if mode == "bf16, depthwise fp32":
        keep_depthwise_fp32(block, strided_only=False)
    x = torch.randn(batch, *input_shape[1:]).contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
            out = block(x)
        out.float().sum().backward()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenetv2_cifar")
    parser.add_argument("--depth", type=int, default=2, help="levels below the model where its blocks sit")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if args.model not in cn.list_models():
        raise SystemExit(f"unknown model {args.model!r}: `compactnets list` names them")
    if min(args.depth, args.batch_size, args.rounds) < 1:
        raise SystemExit("--depth, --batch-size and --rounds must be at least 1")
    cn.tune_malloc()
    blocks = depthwise_blocks(args.model, args.depth)
    if not blocks:
        raise SystemExit(f"{args.model} has no plain depthwise nn.Conv2d (a PydMobileNet pyramid always runs fp32)")
    cases = {(name, mode): make_step(block, shape, mode, args.batch_size)
             for name, (block, shape, _) in blocks.items() for mode in MODES}  # fmt: skip
    times = time_interleaved(cases, args.rounds)  # the warm-up lets oneDNN pick and cache its kernels
    rows = []
    for name, (_, shape, conv) in blocks.items():
        ms = {mode: round(statistics.median(times[(name, mode)]), 2) for mode in MODES}
        rows.append({"block": name, "input": list(shape[1:]), "depthwise_channels": conv.in_channels,
                     "kernel": conv.kernel_size[0], "stride": conv.stride[0], "ms": ms,
                     "bf16_vs_depthwise_fp32": round(ms["bf16, depthwise fp32"] / ms["bf16"], 2)})  # fmt: skip
    env = environment("cpu") | {"native_bf16": cpu_has_native_bf16(), "model": args.model,
                                "batch_size": args.batch_size, "rounds": args.rounds}  # fmt: skip
    out = ROOT / "benchmarks" / "results"
    (out / "depthwise_bf16.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1) + "\n")
    lines = ["# Depthwise convs in bf16 against fp32 on the CPU, inside their blocks", "",
             f"`python benchmarks/depthwise_bf16.py --model {args.model} --batch-size {args.batch_size} --rounds "
             f"{args.rounds}` on {env['device']} ({env['threads']} threads, native bf16: {env['native_bf16']}), "
             f"{env['date']}: a training step (forward + backward) of each distinct block of `{args.model}` that "
             "holds a depthwise conv, on its real input shape, channels_last, medians of interleaved rounds. "
             "'speed-up' is bf16 with the depthwise conv in bf16 over bf16 with it kept in fp32: above 1, bf16 "
             f"pays for that conv. `--amp auto` here keeps {'only the strided' if strided_depthwise_only() else 'all'}"
             " depthwise convs in fp32.", "",
             "| block | input | depthwise | stride | fp32 ms | bf16, depthwise fp32 ms | bf16 ms | speed-up |",
             "|---|---|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
    for row in rows:
        c, h, w = row["input"]
        lines.append(f"| `{row['block']}` | {c}x{h}x{w} | {row['depthwise_channels']} ch {row['kernel']}x"
                     f"{row['kernel']} | {row['stride']} | " + " | ".join(str(row["ms"][m]) for m in MODES)
                     + f" | {row['bf16_vs_depthwise_fp32']:.2f}x |")  # fmt: skip
    (out / "depthwise_bf16.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
