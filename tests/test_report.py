"""compactnets report: tables and plots from run directories, model names and bench CSVs."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

import compactnets as cn
from compactnets import report as rp
from compactnets.benchmark import CSV_COLUMNS as BENCH_COLUMNS
from compactnets.cli import main
from compactnets.errors import UsageError


def _run_dir(
    root: Path, name: str, model: str, data: str, val_top1: list[float], eval_top1: float | None = None
) -> Path:
    """A run directory as the training work writes it: config.json, metrics.csv, optional eval.json."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": model, "data": data, "epochs": len(val_top1)}))
    with (run / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "lr", "train_loss", "val_loss", "val_top1", "val_top5"])
        for epoch, top1 in enumerate(val_top1, start=1):  # the trainer counts epochs from 1
            writer.writerow([epoch, 0.1, 2.0, 1.5, top1, min(100.0, top1 + 20)])
    if eval_top1 is not None:
        (run / "eval.json").write_text(json.dumps({"top1": eval_top1, "top5": 99.0}))
    return run


def _bench_csv(path: Path, latencies: dict[str, float]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=BENCH_COLUMNS)
        writer.writeheader()
        for model, ms in latencies.items():
            writer.writerow({"model": model, "infer_batch_size": 1, "infer_step_time": ms, "runtime": "eager"})
            writer.writerow({"model": model, "infer_batch_size": 1, "infer_step_time": ms * 2, "runtime": "eager"})
            writer.writerow({"model": model, "infer_batch_size": 8, "infer_step_time": ms / 10, "runtime": "eager"})
    return path


def test_read_run_takes_the_final_epoch_and_prefers_eval_json(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a", "antnet_g2_cifar", "cifar100", [10.0, 42.5, 40.0])
    record = rp.read_run(run)
    assert (record["model"], record["data"], record["top1"], record["top5"], record["epochs"]) == (
        "antnet_g2_cifar", "cifar100", 40.0, 60.0, 3
    )  # fmt: skip
    assert record["best_top1"] == 42.5  # kept, labelled as the best epoch's
    run = _run_dir(tmp_path, "b", "antnet_g2_cifar", "/data/c100-folder", [10.0], eval_top1=55.25)
    (run / "eval.json").write_text(json.dumps({"top1": 55.25, "top5": 99.0, "data": "cifar100"}))
    record = rp.read_run(run)
    assert (record["top1"], record["data"]) == (55.25, "cifar100")  # eval.json names what a folder path holds


def test_read_run_is_defensive(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "mobilenetv2_cifar", "data": "cifar10"}))
    (run / "metrics.csv").write_text("epoch,val_top1\n0,\n1,nan\n")  # an epoch not yet evaluated
    record = rp.read_run(run)
    assert record["top1"] is None and "no accuracy yet" in record["notes"][0]
    (run / "config.json").write_text(json.dumps({"data": "cifar10"}))
    with pytest.raises(UsageError, match="no 'model'"):
        rp.read_run(run)


def test_paper_top1_from_cards() -> None:
    assert rp.paper_top1(cn.model_card("antnet_g2_cifar")) == (75.7, "ANTNets Table 3")
    assert rp.paper_top1(cn.model_card("antnet_g2_cifar"), "cifar10") == (None, "")
    if "pydmobilenet_concat_56_075_cifar" in cn.list_models():
        value, source = rp.paper_top1(cn.model_card("pydmobilenet_concat_56_075_cifar"), "cifar100")
        assert value == pytest.approx(100 - 14.60) and "100 - error" in source


def test_pareto_front_and_rank_correlation() -> None:
    points = [(70.0, 75.7), (88.0, 74.2), (88.4, 75.9), (150.0, 76.7), (150.0, 70.0), (60.0, 60.0)]
    assert rp.pareto_front(points) == [(60.0, 60.0), (70.0, 75.7), (88.4, 75.9), (150.0, 76.7)]
    assert rp.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rp.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rp.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)


def test_report_writes_tables_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    run = _run_dir(tmp_path / "runs", "g2", "antnet_g2_cifar", "cifar100", [30.0, 60.0, 61.5])  # final epoch: 61.5
    bench = _bench_csv(tmp_path / "bench.csv", {"antnet_g2_cifar": 8.0, "mobilenetv2_cifar": 6.0,
                                                "antnet_g1_cifar": 9.0})  # fmt: skip
    out = tmp_path / "report"
    argv = ["report", str(run), "mobilenetv2_cifar", "antnet_g1_cifar", "--out", str(out), "--bench", str(bench)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for stem in ("accuracy_vs_macs", "accuracy_vs_params", "latency_vs_cost"):
        for ext, magic in (("png", b"\x89PNG"), ("svg", b"<?xml")):
            assert (out / f"{stem}.{ext}").read_bytes().startswith(magic), f"{stem}.{ext}"
    md = (out / "report.md").read_text()
    assert "**61.50**" in md and "*75.70* (ANTNets Table 3)" in md and "-14.20" in md
    assert "![accuracy vs macs](accuracy_vs_macs.png)" in md
    assert "predicts latency better" in md and "predicts latency better" in printed
    with (out / "report.csv").open() as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert rows["antnet_g2_cifar"]["top1_measured"] == "61.5" and rows["antnet_g2_cifar"]["latency_ms"] == "8.0"
    assert rows["mobilenetv2_cifar"]["top1_measured"] == "" and rows["mobilenetv2_cifar"]["top1_paper"] == "74.2"
    assert int(rows["antnet_g2_cifar"]["macs"]) == cn.profile(cn.create_model("antnet_g2_cifar")).macs


def test_report_expands_patterns_and_works_without_plots(tmp_path: Path) -> None:
    result = rp.make_report(["antnet_g*_cifar"], tmp_path, plots=False)
    names = [e.name for e in result["entries"]]
    assert names == cn.list_models("antnet_g*_cifar")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv", "report.md"]


def test_report_names_the_plots_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(UsageError, match=r"compactnets\[plots\]"):
        rp.make_report(["antnet_g2_cifar"], tmp_path)


def test_report_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["report", "zzz*", "--out", str(tmp_path / "r")]) == 2
    assert "no model matches" in capsys.readouterr().err
