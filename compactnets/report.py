"""Comparison reports: ``compactnets report RUNS_OR_MODELS... --out DIR``.

Writes ``report.md`` and ``report.csv`` (params, MACs, memory traffic, latency, top-1 measured beside the
paper's) and plots as PNG and SVG: accuracy against MACs with the Pareto front, accuracy against params,
and latency against MACs and against memory traffic. Paper numbers (from the model cards) are hollow
grey markers with dashed fronts; measured numbers (from run directories) are filled and coloured.

A run directory is what ``compactnets train`` writes: ``config.json`` (``model``, ``data``),
``metrics.csv`` (per epoch: ``val_top1`` in percent, ``val_top5``, ``val_loss``) and optionally
``eval.json`` (``{"top1": ..., "top5": ...}``), which wins over the metrics when present. Latency comes
from ``compactnets bench --csv`` files (``--bench``) or is measured now (``--measure-latency``).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._table import human
from .complexity import profile
from .deploy import deploy
from .errors import UsageError
from .registry import ModelCard, create_model, list_models, model_card
from .spec import is_run_dir

PLOTS_EXTRA = "pip install 'compactnets[plots]'"
DATASETS = {10: "cifar10", 100: "cifar100", 1000: "imagenet"}
"""The data set a card's paper numbers refer to, by its number of classes."""
_DATA_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet"}


@dataclass
class Entry:
    """One line of the report: a model (and the run that trained it, if any) with its numbers."""

    name: str
    card: ModelCard
    data: str
    run: str | None = None
    num_classes: int | None = None
    params: int = 0
    macs: int = 0
    memory_bytes: int = 0
    deployed_macs: int = 0
    deployed_memory_bytes: int = 0
    latency_ms: float | None = None
    top1: float | None = None
    top5: float | None = None
    epochs: int | None = None
    paper_top1: float | None = None
    paper_source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        return self.card.paper.split(" (")[0]


# ---------------------------------------------------------------------------------------- paper numbers
def paper_top1(card: ModelCard, data: str | None = None) -> tuple[float | None, str]:
    """The paper's top-1 (%) on ``data`` (default: the card's data set) and where it comes from.

    Cards hold ``top1`` for the data set their classes imply, ``<data>_top1`` for others and CIFAR
    errors as ``<data>_error`` (top-1 = 100 - error).
    """
    metrics = dict(card.paper_metrics)
    native = DATASETS.get(card.num_classes)
    data = data or native
    where = f"{card.paper.split(' (')[0]} {card.table}"
    if data is not None and f"{data}_top1" in metrics:
        return float(metrics[f"{data}_top1"]), where
    if data is not None and f"{data}_error" in metrics:
        return 100.0 - float(metrics[f"{data}_error"]), f"{where}, 100 - error"
    if "top1" in metrics and (data == native or data is None):
        return float(metrics["top1"]), where
    return None, ""


# ------------------------------------------------------------------------------------------ run folders
def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_run(path: str | Path) -> dict[str, Any]:
    """Model, data set and accuracy of a run directory, read defensively.

    ``eval.json`` wins (its ``data``, where given, names the data set a folder path stands for); otherwise the
    final epoch's ``val_top1`` in ``metrics.csv`` (the headline a run earns; the best epoch is kept as
    ``best_top1``). Missing or malformed files give ``None`` values and a note, not an error.
    """
    path = Path(path)
    notes: list[str] = []
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: cannot read config.json ({err}); is it a compactnets run directory?") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise UsageError(f"{path}/config.json has no 'model' name; is it a compactnets run directory?")
    record: dict[str, Any] = {"model": config["model"], "data": config.get("data"), "top1": None, "top5": None,
                              "epochs": None, "num_classes": config.get("num_classes"), "notes": notes}  # fmt: skip
    rows: list[dict[str, str]] = []
    metrics_path = path / "metrics.csv"
    if metrics_path.is_file():
        try:
            with metrics_path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, csv.Error) as err:
            notes.append(f"metrics.csv unreadable ({err})")
    epochs = [e for e in (_float(r.get("epoch")) for r in rows) if e is not None]
    record["epochs"] = int(max(epochs)) if epochs else None  # the column counts from 1
    scored = [(t, r) for r in rows if (t := _float(r.get("val_top1"))) is not None]
    if scored:
        final, final_row = scored[-1]
        record["top1"], record["top5"] = final, _float(final_row.get("val_top5"))
        record["best_top1"] = max(t for t, _ in scored)
    eval_path = path / "eval.json"
    if eval_path.is_file():
        try:
            evaluation = json.loads(eval_path.read_text())
            if _float(evaluation.get("top1")) is not None:
                record["top1"], record["top5"] = _float(evaluation.get("top1")), _float(evaluation.get("top5"))
            if isinstance(evaluation.get("data"), str) and _normalise_data(evaluation["data"]) in _DATA_LABELS:
                record["data"] = evaluation["data"]
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            notes.append(f"eval.json unreadable ({err})")
    if record["top1"] is None:
        notes.append("no accuracy yet (no eval.json, no val_top1 in metrics.csv)")
    return record


def _normalise_data(data: Any) -> str | None:
    if not isinstance(data, str):
        return None
    key = data.lower().replace("-", "")
    return key if key in _DATA_LABELS else data


# --------------------------------------------------------------------------------------------- entries
def collect(specs: Sequence[str]) -> list[Entry]:
    """Entries for run directories, registered names and wildcard patterns (``'antnet*_cifar'``)."""
    entries: list[Entry] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if is_run_dir(path):
            run = read_run(path)
            card = model_card(run["model"])
            data = _normalise_data(run["data"]) or DATASETS.get(card.num_classes, "?")
            classes = run["num_classes"] if isinstance(run["num_classes"], int) else None
            entry = Entry(run["model"], card, data, run=str(path), num_classes=classes, top1=run["top1"],
                          top5=run["top5"], epochs=run["epochs"], notes=list(run["notes"]))  # fmt: skip
            entries.append(entry)
            continue
        if path.is_dir():
            raise UsageError(f"{spec}: a directory without config.json is not a run directory")
        names = list_models(spec) if any(c in spec for c in "*?[") else [spec]
        if not names:
            raise UsageError(f"no model matches {spec!r} (`compactnets list` shows all)")
        for name in names:
            card = model_card(name)  # raises with close matches
            entries.append(Entry(name, card, DATASETS.get(card.num_classes, "?")))
    for entry in entries:
        with torch.device("meta"):
            model = create_model(entry.name, num_classes=entry.num_classes)
        counts, executed = profile(model, entry.card.input_size), profile(deploy(model), entry.card.input_size)
        entry.params, entry.macs, entry.memory_bytes = counts.params, counts.macs, counts.memory
        entry.deployed_macs, entry.deployed_memory_bytes = executed.macs, executed.memory
        entry.paper_top1, entry.paper_source = paper_top1(entry.card, entry.data)
    return entries


def read_bench_csv(paths: Iterable[str | Path], runtime: str = "eager", batch_size: int = 1) -> dict[str, float]:
    """Per model, the fastest ``infer_step_time`` (ms) among rows of ``runtime`` at ``batch_size``."""
    best: dict[str, float] = {}
    for path in paths:
        try:
            with Path(path).open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as err:
            raise UsageError(f"--bench {path}: {err.strerror}") from None
        for row in rows:
            ms = _float(row.get("infer_step_time"))
            if ms is None or row.get("runtime", "eager") != runtime:
                continue
            if _float(row.get("infer_batch_size")) != batch_size:
                continue
            name = row.get("model", "")
            best[name] = min(ms, best.get(name, math.inf))
    return best


# ----------------------------------------------------------------------------------------- predictions
def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on average ranks)."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else math.nan


def latency_predictor(entries: Sequence[Entry]) -> str | None:
    """Which of MACs and memory traffic (of the deployed models, what runs) ranks the measured latencies
    better, by Spearman rank correlation, as a sentence; a difference under 0.02 is called a tie."""
    timed = [e for e in entries if e.latency_ms is not None]
    if len(timed) < 3:
        return None
    latency = [e.latency_ms for e in timed]
    by_macs = spearman([e.deployed_macs for e in timed], latency)  # type: ignore[arg-type]
    by_memory = spearman([e.deployed_memory_bytes for e in timed], latency)  # type: ignore[arg-type]
    numbers = (f"Spearman rank correlation with latency {by_memory:.2f} for memory traffic and {by_macs:.2f} "
               f"for MACs (of the deployed models), over {len(timed)} models.")  # fmt: skip
    if abs(by_memory - by_macs) < 0.02:
        return f"On this machine memory traffic and MACs predict latency equally well: {numbers}"
    better = "memory traffic predicts" if by_memory > by_macs else "MACs predict"
    return f"On this machine {better} latency better: {numbers}"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by another with lower-or-equal cost and higher-or-equal accuracy, by cost."""
    front: list[tuple[float, float]] = []
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((cost, acc))
    return front


# ----------------------------------------------------------------------------------------------- tables
CSV_COLUMNS = [
    "model", "run", "data", "epochs", "params", "macs", "memory_mb", "deployed_macs", "deployed_memory_mb",
    "latency_ms",
    "top1_measured", "top5_measured", "top1_paper", "paper_source", "paper_params", "paper_madds",
]  # fmt: skip


def write_csv(entries: Sequence[Entry], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for e in entries:
            writer.writerow({
                "model": e.name, "run": e.run or "", "data": e.data, "epochs": e.epochs or "",
                "params": e.params, "macs": e.macs, "memory_mb": round(e.memory_bytes / 1e6, 3),
                "deployed_macs": e.deployed_macs, "deployed_memory_mb": round(e.deployed_memory_bytes / 1e6, 3),
                "latency_ms": "" if e.latency_ms is None else round(e.latency_ms, 3),
                "top1_measured": "" if e.top1 is None else e.top1, "top5_measured": "" if e.top5 is None else e.top5,
                "top1_paper": "" if e.paper_top1 is None else round(e.paper_top1, 2), "paper_source": e.paper_source,
                "paper_params": e.card.paper_params or "", "paper_madds": e.card.paper_madds or "",
            })  # fmt: skip
    return path


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def markdown(entries: Sequence[Entry], plots: Sequence[str], latency_note: str, command: str) -> str:
    """The report as Markdown: the table, the plots, and what predicts latency."""
    lines = [
        "# compactnets report",
        "",
        f"Command: `{command}`",
        "",
        "Top-1 in percent. **measured** = our training runs (final epoch, or eval.json); *paper* = the number the "
        "paper prints for that data set (from the model card, CIFAR errors as 100 - error). Params and MACs "
        "(conv + linear multiply-accumulates) are counted by `compactnets profile`; memory is the ShuffleNet V2 "
        "guideline-1 traffic (activations read + written + weights, fp32, per image) of the model as defined "
        "and of its `compactnets.deploy` form (BN folded), which is what the latency measures.",
        "",
        "| model | data | run | params | MACs | memory | memory deployed | latency (ms) | top-1 **measured** "
        "| top-1 *paper* | measured - paper |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for e in entries:
        delta = "-" if e.top1 is None or e.paper_top1 is None else f"{e.top1 - e.paper_top1:+.2f}"
        paper = f"*{e.paper_top1:.2f}* ({e.paper_source})" if e.paper_top1 is not None else "-"
        measured = f"**{e.top1:.2f}**" if e.top1 is not None else "-"
        run = f"`{Path(e.run).name}` ({e.epochs} ep)" if e.run else "-"
        lines.append(
            f"| `{e.name}` | {_DATA_LABELS.get(e.data, e.data)} | {run} | {human(e.params)} | {human(e.macs)} | "
            f"{human(e.memory_bytes)}B | {human(e.deployed_memory_bytes)}B | {_cell(e.latency_ms)} | {measured} | "
            f"{paper} | {delta} |"
        )
    notes = [f"- `{e.name}` ({e.run}): {note}" for e in entries for note in e.notes]
    if notes:
        lines += ["", "Notes:", *notes]
    if latency_note:
        lines += ["", latency_note]
    if plots:
        lines += ["", *(f"![{Path(p).stem.replace('_', ' ')}]({Path(p).name})" for p in plots)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ plots
def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(f"plots need matplotlib: {PLOTS_EXTRA} (or pass --no-plots)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_MARKERS = "osD^vP*Xh<>p"


def _styles(plt: Any, families: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """A colour and a marker per family, distinct for up to 20 x 12 families."""
    cmap = plt.get_cmap("tab20")
    return {f: (cmap(i % 20), _MARKERS[i % len(_MARKERS)]) for i, f in enumerate(families)}


def _log_axes(ax: Any, x: bool = True, y: bool = False) -> None:
    """Log scales with plain tick labels (30, 100, 300 rather than 3 x 10^1)."""
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for enabled, axis, set_scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if enabled:
            set_scale("log")
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(plain if axis.get_view_interval()[1] / axis.get_view_interval()[0] < 30 else "")


def _save(fig: Any, out: Path, stem: str) -> list[str]:
    paths = []
    for ext in ("png", "svg"):
        path = out / f"{stem}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(str(path))
    return paths


def plot_accuracy(entries: Sequence[Entry], out: Path, cost: str) -> list[str]:
    """Accuracy against ``cost`` ("macs" or "params"), one panel per data set, Pareto fronts marked."""
    plt = _pyplot()
    datasets = sorted({e.data for e in entries if e.top1 is not None or e.paper_top1 is not None})
    if not datasets:
        return []
    families = sorted({e.family for e in entries})
    styles = _styles(plt, families)
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.4 * len(datasets), 4.8), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        group = [e for e in entries if e.data == data]
        for source, attr in (("paper", "paper_top1"), ("measured", "top1")):
            points = [(getattr(e, cost) / 1e6, getattr(e, attr), e) for e in group if getattr(e, attr) is not None]
            for x, y, e in points:
                if source == "paper":
                    ax.scatter(x, y, s=40, facecolors="none", edgecolors="0.45", linewidths=1.2, zorder=2)
                else:
                    colour, marker = styles[e.family]
                    ax.scatter(x, y, s=55, color=colour, marker=marker, edgecolors="black", zorder=3)
                ax.annotate(e.name, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points", color="0.3")
            front = pareto_front([(x, y) for x, y, _ in points])
            if len(front) > 1:
                xs, ys = zip(*front, strict=True)
                style = dict(color="0.45", linestyle="--") if source == "paper" else dict(color="black")
                ax.step(xs, ys, where="post", linewidth=1, zorder=1, **style)
        _log_axes(ax)
        ax.set_xlabel("MACs (M)" if cost == "macs" else "parameters (M)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(_DATA_LABELS.get(data, data))
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="0.45",
                          label="paper (model card)"),
               plt.Line2D([], [], color="0.45", linestyle="--", label="paper Pareto front"),
               plt.Line2D([], [], color="black", label="measured Pareto front")]  # fmt: skip
    handles += [plt.Line2D([], [], marker=styles[f][1], linestyle="", color=styles[f][0], markeredgecolor="black",
                           label=f"measured: {f}") for f in families if any(e.top1 is not None and e.family == f
                                                                          for e in entries)]  # fmt: skip
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    what = "MACs" if cost == "macs" else "parameters"
    fig.suptitle(f"Top-1 accuracy against {what}")
    paths = _save(fig, out, f"accuracy_vs_{cost}")
    plt.close(fig)
    return paths


def plot_latency(entries: Sequence[Entry], out: Path, latency_note: str) -> list[str]:
    """Latency against MACs and against memory traffic, side by side."""
    timed = [e for e in entries if e.latency_ms is not None]
    if not timed:
        return []
    plt = _pyplot()
    families = sorted({e.family for e in timed})
    styles = _styles(plt, families)
    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.8))
    panels = ((axes[0], "deployed_macs", "MACs (M, deployed)"),
              (axes[1], "deployed_memory_bytes", "memory traffic (MB, fp32, deployed)"))  # fmt: skip
    for ax, attr, label in panels:
        for e in timed:
            x = getattr(e, attr) / 1e6
            colour, marker = styles[e.family]
            ax.scatter(x, e.latency_ms, s=50, color=colour, marker=marker, edgecolors="black", zorder=3)
            ax.annotate(e.name, (x, e.latency_ms), fontsize=6, xytext=(3, 3), textcoords="offset points")
        _log_axes(ax, x=True, y=True)
        ax.set_xlabel(label)
        ax.set_ylabel("latency (ms, measured)")
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker=styles[f][1], linestyle="", color=styles[f][0], markeredgecolor="black",
                          label=f) for f in families]  # fmt: skip
    axes[1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Measured latency against MACs and against memory traffic")
    if latency_note:
        fig.text(0.5, -0.02, latency_note, ha="center", fontsize=8)
    paths = _save(fig, out, "latency_vs_cost")
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------------------------- driver
def make_report(
    specs: Sequence[str],
    out: str | Path,
    bench: Sequence[str] = (),
    runtime: str = "eager",
    batch_size: int = 1,
    measure_latency: bool = False,
    plots: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Write the report for ``specs`` into ``out``; returns the paths written and the latency sentence."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = collect(specs)
    latencies = read_bench_csv(bench, runtime, batch_size)
    if measure_latency:
        from .benchmark import BenchConfig, run_benchmark

        missing = sorted({e.name for e in entries} - set(latencies))
        if missing:
            config = BenchConfig(batch_sizes=(batch_size,), runtimes=(runtime,), channels_last=(True,),
                                 deploy=(True,), repeats=10)  # fmt: skip
            rows, _ = run_benchmark(missing, config, log=lambda line: print(line, file=sys.stderr))
            latencies.update({r.model: r.ms for r in rows})
    for e in entries:
        e.latency_ms = latencies.get(e.name)
    note = latency_predictor(entries) or ""
    paths = [str(write_csv(entries, out / "report.csv"))]
    figures: list[str] = []
    if plots:
        figures += plot_accuracy(entries, out, "macs") + plot_accuracy(entries, out, "params")
        figures += plot_latency(entries, out, note)
    md = out / "report.md"
    md.write_text(markdown(entries, [f for f in figures if f.endswith(".png")], note, command))
    return {"entries": entries, "files": [str(md), *paths, *figures], "latency_note": note}
