"""Plot a run directory's metrics.csv (loss and top-1 per epoch) to PNG.

python benchmarks/plot_run_curve.py RUN_DIR OUT.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    epochs = [int(r["epoch"]) for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], "o-", label="train")
    loss_ax.plot(epochs, [float(r["val_loss"]) for r in rows], "s-", label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    acc_ax.plot(epochs, [float(r["train_top1"]) for r in rows], "o-", label="train (augmented)")
    acc_ax.plot(epochs, [float(r["val_top1"]) for r in rows], "s-", label="test")
    acc_ax.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_xticks(epochs)
    fig.suptitle(f"{run.name} (short CPU run)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
