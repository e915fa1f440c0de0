"""bf16 against fp32 training on the CPU: the same recipe, seed and epochs on real CIFAR-10, final-epoch test top-1.

Each pair is two finished ``compactnets train`` runs that differ only in ``--amp`` (``off`` and ``bf16``, the
precision ``--amp auto`` picks on a CPU with native bf16). Copies each run's config.json, env.json and
metrics.csv to ``benchmarks/results/bf16_accuracy/RUN/`` and renders ``benchmarks/results/bf16_accuracy.md``.

    python benchmarks/bf16_accuracy.py --pair resnet20_cifar runs/amp/resnet20_cifar_fp32 runs/amp/resnet20_cifar_bf16
    python benchmarks/bf16_accuracy.py --render-only
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "bf16_accuracy"
RECORDS = ("config.json", "env.json", "metrics.csv")
SAME = ("model", "recipe", "epochs", "batch_size", "lr", "seed", "weight_decay", "label_smoothing", "schedule")


def _summary(run: Path) -> dict[str, Any]:
    config = json.loads((run / "config.json").read_text())
    env = json.loads((run / "env.json").read_text())
    with (run / "metrics.csv").open() as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    if len(rows) != config["epochs"]:
        raise SystemExit(f"{run}: {len(rows)} of {config['epochs']} epochs: only finished runs are compared")
    return {"config": config, "env": env, "final_top1": rows[-1]["val_top1"],
            "best_top1": max(r["val_top1"] for r in rows), "images_per_s":
            statistics.median(r["train_images_per_s"] for r in rows)}  # fmt: skip


def collect(model: str, fp32: Path, bf16: Path) -> None:
    """Check the two runs differ only in precision and copy their records under OUT/MODEL_{fp32,bf16}."""
    a, b = _summary(fp32), _summary(bf16)
    differ = [k for k in SAME if a["config"][k] != b["config"][k]]
    if differ or a["config"]["model"] != model or a["env"]["amp"] != "None" or "bfloat16" not in b["env"]["amp"]:
        raise SystemExit(f"not a precision pair for {model}: differ in {differ or 'amp'}")
    for run, label in ((fp32, "fp32"), (bf16, "bf16")):
        target = OUT / f"{model}_{label}"
        target.mkdir(parents=True, exist_ok=True)
        for name in RECORDS:
            shutil.copy(run / name, target / name)


def _fp32_depthwise(env: dict[str, Any]) -> str:
    """'N (all|strided)': runs from before ``amp_fp32_depthwise`` was recorded kept every depthwise conv in fp32."""
    layers = env["amp_fp32_depthwise_layers"]
    return f"{layers} ({env.get('amp_fp32_depthwise', 'all')})" if layers else "0 (none)"


def render() -> str:
    lines = [
        "# bf16 against fp32 training on the CPU (real CIFAR-10)",
        "",
        "Each row: two `compactnets train MODEL --data CIFAR10_DIR --recipe R --epochs N --amp off|bf16` runs, "
        "identical but for the precision (bf16 is what `--amp auto` trains in on a CPU with native bf16; "
        "'fp32 depthwise' is how many depthwise layers it kept in fp32: all of them, or the strided ones only on a "
        "CPU without AMX, see `compactnets.amp`), test top-1 on the 10,000 test images at the **final epoch** "
        "(best epoch in brackets). Records: `bf16_accuracy/MODEL_{fp32,bf16}/`. Rendered by "
        "`python benchmarks/bf16_accuracy.py`.",
        "",
        "| model | recipe | epochs | fp32 top-1 | bf16 top-1 | bf16 - fp32 | fp32 depthwise | fp32 img/s | bf16 img/s "
        "| machine |",
        "|---|---|--:|--:|--:|--:|---|--:|--:|---|",
    ]
    for fp32_dir in sorted(OUT.glob("*_fp32")):
        model = fp32_dir.name.removesuffix("_fp32")
        a, b = _summary(fp32_dir), _summary(OUT / f"{model}_bf16")
        machines = sorted({r["env"].get("cpu") or "not recorded" for r in (a, b)})
        threads = sorted({a["env"].get("threads"), b["env"].get("threads")})
        lines.append(
            f"| `{model}` | {a['config']['recipe']} | {a['config']['epochs']} | {a['final_top1']:.2f} "
            f"({a['best_top1']:.2f}) | {b['final_top1']:.2f} ({b['best_top1']:.2f}) | "
            f"{b['final_top1'] - a['final_top1']:+.2f} | {_fp32_depthwise(b['env'])} | {a['images_per_s']:.0f} | "
            f"{b['images_per_s']:.0f} | "
            f"{' / '.join(machines)}, {'/'.join(map(str, threads))} thread(s) |"
        )
    lines += ["", "img/s are medians over the epochs of each run, measured while other work shared the 2 cores: "
              "compare speeds with `benchmarks/results/train_speed.md`, not here. 'not recorded': an env.json "
              "written before runs recorded the CPU model (its start time and commit tell the session)."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    (OUT.parent / "bf16_accuracy.md").write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=3, action="append", default=[], metavar=("MODEL", "FP32_RUN", "BF16_RUN"))
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if not args.render_only:
        for model, fp32, bf16 in args.pair:
            collect(model, Path(fp32), Path(bf16))
    print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
