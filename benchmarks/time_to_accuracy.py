"""Time to accuracy of training runs: test top-1 against cumulative training time, and the time each run
needed to reach the accuracy that all of them reached.

    python benchmarks/time_to_accuracy.py RUN_DIR... --out docs/results/pipeline_time_to_accuracy

Reads each run directory's metrics.csv (``epoch_seconds`` is training plus evaluation of the epoch) and
env.json (the command, threads, allocator); writes OUT.md and OUT.png. Data decoding before the first
epoch is not in ``epoch_seconds``: time the whole command to include it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _load(run: Path) -> tuple[list[float], list[float], dict]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    seconds, total = [], 0.0
    for row in rows:
        total += float(row["epoch_seconds"])
        seconds.append(total)
    env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
    return seconds, [float(r["val_top1"]) for r in rows], env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix for the .md and .png")
    args = parser.parse_args()
    runs = {run.name: _load(run) for run in args.runs}
    target = min(max(top1) for _, top1, _ in runs.values())  # the accuracy every run reached
    fig, ax = plt.subplots(figsize=(6, 3.8))
    lines = [
        "# Time to accuracy",
        "",
        f"Command: `python benchmarks/time_to_accuracy.py {' '.join(map(str, args.runs))} --out {args.out}`. "
        "Seconds are cumulative `epoch_seconds` (training and test evaluation; data decoding excluded).",
        "",
        f"| run | epochs | final test top-1 | seconds to {target:.2f}% | x the fastest | threads | allocator |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    reached = {
        name: next(s for s, a in zip(sec, top1, strict=True) if a >= target) for name, (sec, top1, _) in runs.items()
    }
    fastest = min(reached.values())
    for name, (seconds, top1, env) in runs.items():
        ax.plot(seconds, top1, "o-", label=name)
        lines.append(
            f"| {name} | {len(top1)} | {top1[-1]:.2f}% | {reached[name]:.0f} | {reached[name] / fastest:.2f} | "
            f"{env.get('threads', '?')} | {env.get('allocator', '?')} |"
        )
    lines += ["", "Commands of the runs:", ""]
    lines += [f"- {name}: `{env.get('command', '?')}`" for name, (_, _, env) in runs.items()]
    ax.axhline(target, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="training + evaluation time (s)", ylabel="test top-1 (%)", title="time to accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out.with_suffix(".png"), dpi=110)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
