"""The CPU allocator's effect on training and inference speed: glibc as it comes, glibc tuned by
``compactnets.tune_malloc`` (what the ``compactnets`` command does), and jemalloc preloaded with and without
its page decay, each in its own process, rounds alternating so machine noise hits all of them alike.

    python benchmarks/bench_allocator.py [--rounds 2] [--threads 2]

Measures, per setting: training img/s (fwd + bwd + SGD, batch 128, channels_last, 32x32) of CIFAR ResNet-20
and MobileNetV2, and eager inference of the deployed ImageNet MobileNetV2 at batch 32 (channels_last, ms).
Writes benchmarks/results/allocator.{md,json}. jemalloc settings are skipped when libjemalloc is not installed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
NO_DECAY = "dirty_decay_ms:-1,muzzy_decay_ms:-1"

_WORKER = """
import json, sys, time, torch
import compactnets as cn
from compactnets.allocator import allocator
if sys.argv[1] == "tune":
    cn.tune_malloc()
torch.set_num_threads(int(sys.argv[2]))
out = {"allocator": allocator()}
for name, steps in (("resnet20_cifar", 8), ("mobilenetv2_cifar", 4)):
    model = cn.create_model(name, num_classes=10).train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    out[f"train {name} (img/s)"] = 128 * steps / (time.perf_counter() - start)
model = cn.deploy(cn.create_model("mobilenetv2_100").eval(), channels_last=True)
x = torch.randn(32, 3, 224, 224).contiguous(memory_format=torch.channels_last)
times = []
with torch.inference_mode():
    for i in range(6):
        start = time.perf_counter()
        model(x)
        if i >= 2:
            times.append((time.perf_counter() - start) * 1e3)
out["infer mobilenetv2_100 b32 (ms)"] = sorted(times)[len(times) // 2]
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    jemalloc = next(iter(sorted(glob.glob("/usr/lib/*/libjemalloc.so.2"))), None)
    settings: dict[str, tuple[str, dict[str, str]]] = {
        "glibc": ("plain", {"COMPACTNETS_MALLOC_TUNING": "0"}),
        "glibc + tune_malloc": ("tune", {}),
    }
    if jemalloc:
        settings["jemalloc"] = ("plain", {"LD_PRELOAD": jemalloc})
        settings[f"jemalloc, MALLOC_CONF={NO_DECAY}"] = ("plain", {"LD_PRELOAD": jemalloc, "MALLOC_CONF": NO_DECAY})
    samples: dict[str, list[dict]] = {name: [] for name in settings}
    for round_ in range(args.rounds):
        for name, (mode, extra) in settings.items():
            env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")} | extra
            done = subprocess.run([sys.executable, "-c", _WORKER, mode, str(args.threads)], env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1}: {name}: {samples[name][-1]}", flush=True)
    metrics = [k for k in samples["glibc"][0] if k != "allocator"]
    table = {name: {m: statistics.median(s[m] for s in runs) for m in metrics} for name, runs in samples.items()}
    base = table["glibc"]
    lines = [
        "# Allocator: training and inference speed",
        "",
        f"Command: `python benchmarks/bench_allocator.py --rounds {args.rounds} --threads {args.threads}` "
        f"({time.strftime('%Y-%m-%d %H:%M')}, {args.threads} threads, median of {args.rounds} alternating rounds, "
        "one process per setting and round). Ratios: speed-up over plain glibc.",
        "",
        "| allocator | " + " | ".join(metrics) + " |",
        "|---|" + "--:|" * len(metrics),
    ]
    for name, row in table.items():
        cells = []
        for m in metrics:
            speedup = row[m] / base[m] if "img/s" in m else base[m] / row[m]
            cells.append(f"{row[m]:.1f} ({speedup:.2f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "allocator.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "allocator.json").write_text(json.dumps({"samples": samples, "median": table}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
