"""Run directories: one training at a time, nothing overwritten that a run did not write, stale temporaries
cleaned; ``eval`` refuses a folder whose class names are not the checkpoint's."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compactnets.cli import main
from compactnets.errors import UsageError
from compactnets.recipes import TrainConfig, resolve_config
from compactnets.rundir import LOCK, RunLock
from compactnets.train import train

MODEL = "pydmobilenet_add_29_025_cifar"


def _config(out: Path) -> TrainConfig:
    overrides = {"out": str(out), "epochs": 1, "train_subset": 32, "batch_size": 16, "log_every": 1000}
    return resolve_config(MODEL, "fast", overrides=overrides)


def test_a_second_training_into_a_locked_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(  # another process holds the run directory, as a running training does
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from compactnets.rundir import RunLock; "
         f"lock = RunLock(Path({str(out)!r})).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match=rf"in use by another training \(pid {holder.pid}\)"):
            train(_config(out))
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    result = train(_config(out))  # the kernel released the dead holder's lock
    assert (result.out / "last.pt").is_file()
    RunLock(out).acquire().release()  # and the finished run released its own


def test_a_folder_that_is_not_a_run_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": "own file"}')
    with pytest.raises(UsageError, match=r"is not empty \(holds config.json\) and is not a run to resume"):
        train(_config(out))
    assert (out / "config.json").read_text() == '{"my": "own file"}'
    assert not (out / "metrics.csv").exists()


def test_stale_temporary_files_are_removed_and_a_file_is_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".last.pt.abc123.tmp").write_bytes(b"torn")  # what a kill during save_atomic leaves
    train(_config(out))
    assert not list(out.glob("*.tmp")) and (out / "last.pt").is_file()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["train", MODEL, "--epochs", "1", "--train-subset", "32", "--out", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert "is a file; give a directory" in err and "Traceback" not in err


def test_eval_refuses_other_class_names_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train(_config(tmp_path / "run")).out
    folder = tmp_path / "folder"
    for split in ("train", "test"):
        for i, name in enumerate(["zero", "one", *(f"c{k}" for k in range(2, 10))]):
            (folder / split / name).mkdir(parents=True)
            _write_image(folder / split / name / "0.png", i)
    assert main(["eval", str(run), "--data", str(folder)]) == 2
    assert "was trained on the classes 0, 1, 2, 3, ... but" in capsys.readouterr().err
    assert main(["eval", str(run), "--data", str(folder), "--ignore-class-names", "--json"]) == 0


def _write_image(path: Path, value: int) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), (value * 20, value * 20, value * 20)).save(path)


def _cli_train(out: Path, *extra: str) -> list[str]:
    return ["train", MODEL, "--out", str(out), "--resume", "auto", "--epochs", "2", "--train-subset", "32",
            "--batch-size", "16", "--log-every", "1000", *extra]  # fmt: skip


def test_resume_auto_starts_continues_and_refuses_another_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(_cli_train(out, "--time-limit", "0.0001")) == 0  # fresh start, stopped after its first step
    assert "stopped at epoch 1 step 1" in capsys.readouterr().out and (out / "last.pt").is_file()
    assert main(_cli_train(out)) == 0  # the same command again (a requeued job): it continues
    assert "done:" in capsys.readouterr().out
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2  # header + 2 epochs, none twice
    assert main(_cli_train(out, "--lr", "0.05")) == 2
    err = capsys.readouterr().err
    assert "--resume auto:" in err and "holds another run (lr 0.1 there, 0.05 here)" in err
    assert main(["train", MODEL, "--resume", "auto"]) == 2
    assert "needs the model and --out DIR" in capsys.readouterr().err


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    first = train(_config(tmp_path / "first")).out
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "env.json"):  # what a run writes before its first checkpoint
        (out / name).write_text((first / name).read_text())
    assert (train(_config(out)).out / "last.pt").is_file()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_a_kill_right_after_last_pt_loses_no_metrics_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compactnets import train as train_module

    calls = []
    original = train_module._append_metrics

    def append_or_die(path: Path, row: dict[str, float]) -> None:
        calls.append(row["epoch"])
        if row["epoch"] == 2 and path.name == "metrics.csv":
            raise _Killed  # last.pt of epoch 2 is in place, its metrics row is not
        original(path, row)

    monkeypatch.setattr(train_module, "_append_metrics", append_or_die)
    cfg = dataclasses.replace(_config(tmp_path / "run"), epochs=2)
    with pytest.raises(_Killed):
        train(cfg)
    cfg_out = Path(cfg.out)
    assert len((cfg_out / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1
    monkeypatch.setattr(train_module, "_append_metrics", original)
    train(cfg, resume=True)  # the run had finished: the resume only repairs its records
    rows = (cfg_out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
