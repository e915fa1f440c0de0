"""Training: data sources, recipes and config, exact resume, atomic and safe checkpoints, clear errors."""

from __future__ import annotations

import csv
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import compactnets as cn
from compactnets import checkpoint as ckpt
from compactnets.cli import main
from compactnets.data import build_data, load_cifar, load_digits_images
from compactnets.errors import UsageError
from compactnets.recipes import RECIPES, TrainConfig, resolve_config
from compactnets.train import DistInfo, TrainingError, recalibrate_batchnorm, train, warmup_steps

TINY = {
    "width": 0.25,
    "train_subset": 64,
    "batch_size": 16,
    "epochs": 2,
    "lr": 0.05,
    "log_every": 1000,
    "warmup_epochs": 0.0,
}


def tiny_config(out: Path, **overrides: object) -> TrainConfig:
    return resolve_config("antnet_g2_cifar", "fast", overrides={**TINY, "out": str(out), **overrides})


# ---------------------------------------------------------------------------------------------- data
def test_digits_is_offline_fixed_and_rgb() -> None:
    train_x, _, classes = load_digits_images(True)
    val_x, val_y, _ = load_digits_images(False)
    assert train_x.shape[1:] == (3, 32, 32) and train_x.dtype == torch.uint8
    assert len(train_x) + len(val_x) == 1797 and len(val_x) == 359 and classes == [str(d) for d in range(10)]
    assert torch.equal(load_digits_images(False)[1], val_y)  # the split is fixed
    data = build_data("digits")
    image, label = data.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and 0 <= label < 10


def _write_fake_cifar(root: Path, hundred: bool = False) -> None:
    """A tiny data set in the official python-pickle format (same files, keys and layout)."""
    rng = np.random.default_rng(0)
    if hundred:
        base, files, key = root / "cifar-100-python", ["train", "test"], "fine_labels"
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    else:
        base, files, key = (
            root / "cifar-10-batches-py",
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            "labels",
        )
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    base.mkdir(parents=True)
    for name in files:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), key: [0, 1, 2, 3]}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / meta[0]).write_bytes(pickle.dumps(meta[1]))


@pytest.mark.parametrize(("name", "hundred", "n_train"), [("cifar10", False, 20), ("cifar100", True, 4)])
def test_cifar_reader_on_the_real_format(tmp_path: Path, name: str, hundred: bool, n_train: int) -> None:
    _write_fake_cifar(tmp_path, hundred)
    images, labels, classes = load_cifar(name, tmp_path, train=True)
    assert images.shape == (n_train, 3, 32, 32) and labels.tolist()[:4] == [0, 1, 2, 3]
    assert len(classes) == (100 if hundred else 10)
    raw = pickle.loads(
        (tmp_path / ("cifar-100-python/train" if hundred else "cifar-10-batches-py/data_batch_1")).read_bytes()
    )
    assert torch.equal(images[0].flatten(), torch.as_tensor(raw["data"][0]))  # channel-major rows, as released
    data = build_data(name, tmp_path)
    assert data.num_classes == len(classes) and len(data.val) == 4


def test_missing_cifar_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--download.*--data-dir"):
        build_data("cifar10", tmp_path)


def _write_folder(root: Path, splits: dict[str, list[str]], size: int = 32) -> None:
    for split, classes in splits.items():
        for i, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for j in range(3):
                Image.new("RGB", (size, size), (40 * i, 20 * j, 100)).save(root / split / name / f"{j}.png")


def test_image_folder_layout_and_errors(tmp_path: Path) -> None:
    _write_folder(tmp_path / "ok", {"train": ["a", "b"], "test": ["a", "b"]})
    data = build_data(str(tmp_path / "ok"))
    assert data.classes == ["a", "b"] and data.input_size == (3, 32, 32) and data.train[0][0].shape == (3, 32, 32)
    _write_folder(tmp_path / "noval", {"train": ["a"]})
    with pytest.raises(UsageError, match="train/<class>/<image>"):
        build_data(str(tmp_path / "noval"))
    _write_folder(tmp_path / "mismatch", {"train": ["a", "b"], "val": ["a", "c"]})
    with pytest.raises(UsageError, match="different class folders"):
        build_data(str(tmp_path / "mismatch"))
    with pytest.raises(UsageError, match="unknown data set"):
        build_data(str(tmp_path / "nowhere"))


@pytest.fixture(scope="session")
def cifar10_jpeg_subset(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few images per class of the real CIFAR-10 JPEG archive, unpacked once."""
    archive = shared_dir / "data" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    keep: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3:
                continue
            split, label = parts[-3], parts[-2]
            if keep.get((split, label), 0) < (8 if split == "train" else 4):
                keep[(split, label)] = keep.get((split, label), 0) + 1
                tar.extract(member, root, filter="data")
    return next(p.parent for p in root.rglob("train") if p.is_dir())


def test_real_cifar10_jpeg_folder(cifar10_jpeg_subset: Path) -> None:
    data = build_data(str(cifar10_jpeg_subset))
    assert data.num_classes == 10 and "airplane" in data.classes and data.input_size == (3, 32, 32)
    assert len(data.train) == 80 and len(data.val) == 40
    image, _ = data.val[0]
    assert image.shape == (3, 32, 32) and abs(float(image.mean())) < 3


# ---------------------------------------------------------------------------------------------- recipes
def test_config_precedence_and_checks(tmp_path: Path) -> None:
    cfg = resolve_config("antnet_g2_cifar", "paper")
    assert cfg.recipe == "antnet" and cfg.lr == 0.01 and cfg.milestones == [200, 300] and cfg.epochs == 400
    file = tmp_path / "c.toml"
    file.write_text("epochs = 7\nlr = 0.2\n")
    cfg = resolve_config("antnet_g2_cifar", "antnet", file, {"lr": "0.3", "milestones": "5,6"})
    assert (cfg.epochs, cfg.lr, cfg.milestones, cfg.weight_decay) == (7, 0.3, [5, 6], 4e-5)
    with pytest.raises(UsageError, match="unknown recipe 'adamw_magic'"):
        resolve_config("antnet_g2_cifar", "adamw_magic")
    with pytest.raises(UsageError, match="unknown config field 'lr_max'"):
        resolve_config("antnet_g2_cifar", overrides={"lr_max": 1})
    with pytest.raises(UsageError, match="expected float"):
        resolve_config("antnet_g2_cifar", overrides={"lr": "fast"})


@pytest.mark.parametrize(
    ("field", "value"), [("lr", "nan"), ("lr", "inf"), ("lr", "-0.1"), ("epochs", "0"), ("epochs", "-1"),
                         ("batch_size", "0"), ("label_smoothing", "1.5"), ("ema_decay", "1"), ("precise_bn", "-1")],
)  # fmt: skip
def test_values_that_would_train_wrongly_are_refused(field: str, value: str) -> None:
    with pytest.raises(UsageError, match=f"--{field.replace('_', '-')} must be a finite number"):
        resolve_config("resnet20_cifar", "fast", overrides={field: value})


def test_every_card_names_an_existing_recipe() -> None:
    missing = {n: cn.model_card(n).recipe for n in cn.list_models() if cn.model_card(n).recipe not in RECIPES}
    assert not missing, f"cards name recipes that do not exist: {missing}"


# ---------------------------------------------------------------------------------------------- training
def test_training_writes_a_complete_run(tmp_path: Path) -> None:
    result = train(tiny_config(tmp_path / "run", epochs=1))
    run = result.out
    assert {"config.json", "env.json", "metrics.csv", "last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 1 and 0 <= float(rows[0]["val_top1"]) <= 100 and float(rows[0]["train_loss"]) > 0
    assert json.loads((run / "config.json").read_text())["model"] == "antnet_g2_cifar"
    env = json.loads((run / "env.json").read_text())
    assert (
        env["torch"] == torch.__version__
        and env["threads"] >= 1
        and env["allocator"].split()[0] in ("default", "glibc", "jemalloc")
    )
    model = ckpt.load_model(run)
    assert model.num_classes == 10 and not model.training
    with pytest.raises(UsageError, match="--resume"):
        train(tiny_config(tmp_path / "run", epochs=1))  # never overwrites a run


def test_warmup_is_counted_in_steps_for_short_runs() -> None:
    fast = TrainConfig(epochs=10, warmup_epochs=1.0, warmup_steps=100)
    assert warmup_steps(fast, 11) == 27  # digits, batch 128: the floor, capped at a quarter of 110 steps
    assert warmup_steps(fast, 390) == 390  # CIFAR-10: one epoch is already longer than the floor
    assert warmup_steps(TrainConfig(epochs=10, warmup_epochs=1.0), 11) == 11
    assert warmup_steps(TrainConfig(epochs=1, warmup_epochs=5.0), 4) == 3  # never the whole run


def test_precise_batchnorm_is_the_average_over_the_batches() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    batches = [(torch.randn(8, 3, 10, 10) * (i + 1) + i, torch.zeros(8)) for i in range(3)]
    recalibrate_batchnorm(model, iter(batches), 2, DistInfo())  # the first two batches only
    with torch.no_grad():
        outputs = [model[0](x) for x, _ in batches[:2]]
    mean = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)
    var = torch.stack([o.var((0, 2, 3)) for o in outputs]).mean(0)  # unbiased, as BatchNorm's running_var
    torch.testing.assert_close(model[1].running_mean, mean)
    torch.testing.assert_close(model[1].running_var, var)
    assert not model.training and model[1].momentum == 0.1  # mode and momentum restored


@pytest.mark.slow
@pytest.mark.parametrize(
    "model", ["pydmobilenet_add_29_050_cifar", "antnet_g2_cifar", "resnet20_cifar", "igcv3_05d_cifar"]
)
def test_short_runs_on_small_data_learn(tmp_path: Path, model: str) -> None:
    """The quick start's promise for the zoo's CIFAR families: 10 epochs of digits with the fast recipe learn
    (antnet_g2_cifar ended at 13% before warm-up was counted in steps and BN statistics were recalibrated)."""
    result = train(resolve_config(model, "fast", overrides={"out": str(tmp_path / "run"), "log_every": 1000}))
    assert result.last["val_top1"] >= 90.0, result.last


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
def test_kill_and_resume_gives_identical_weights(tmp_path: Path, pipeline: str) -> None:
    """Two epochs straight through == stopped mid-epoch-1 (as a kill would) and resumed."""
    extra = {"mixup_alpha": 0.2, "ema_decay": 0.9, "pipeline": pipeline}
    train(tiny_config(tmp_path / "a", **extra))
    stopped = train(tiny_config(tmp_path / "b", **extra), on_step=lambda e, s: (e, s) == (0, 1))
    assert stopped.stopped_early and not (tmp_path / "b" / "metrics.csv").exists()
    resumed = train(tiny_config(tmp_path / "b", **extra), resume=True)
    assert not resumed.stopped_early
    a, b = ckpt.load_checkpoint(tmp_path / "a", "last"), ckpt.load_checkpoint(tmp_path / "b", "last")
    for key in ("state_dict", "ema_state_dict"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}: {name} differs after resume"
    rows_a = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert [r["val_top1"] for r in rows_a] == [r["val_top1"] for r in rows_b]


def test_resume_keeps_each_sessions_command_and_threads_in_env_json(tmp_path: Path) -> None:
    """A resume once overwrote env.json, losing the first command and its thread count (a 40-epoch row ran 36
    epochs at one thread and 4 at two, and its record said only the resume)."""
    stopped = train(tiny_config(tmp_path, seed=1), on_step=lambda e, s: (e, s) == (1, 0))
    assert stopped.stopped_early
    first = json.loads((tmp_path / "env.json").read_text())["sessions"]
    assert [s["first_epoch"] for s in first] == [1]
    train(tiny_config(tmp_path, seed=1), resume=True)
    sessions = json.loads((tmp_path / "env.json").read_text())["sessions"]
    assert [s["first_epoch"] for s in sessions] == [1, 2]
    assert sessions[0] == first[0] and sessions[1]["threads"] == torch.get_num_threads()
    assert {"command", "cpu", "started", "amp", "git_commit"} <= set(sessions[1])


def test_non_finite_loss_stops_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = torch.nn.CrossEntropyLoss.forward

    def poisoned(self: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = original(self, logits, target)
        return loss * float("nan") if calls["n"] > 5 else loss

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step 2.*last\.pt"):
        train(tiny_config(tmp_path / "run"))
    assert ckpt.load_checkpoint(tmp_path / "run", "last")["epoch"] == 1  # the last good state survives


def test_non_finite_loss_in_epoch_one_names_no_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = torch.nn.CrossEntropyLoss.forward
    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", lambda s, x, t: original(s, x, t) * float("inf"))
    with pytest.raises(TrainingError, match=r"loss became inf at epoch 1, step 1.*no checkpoint was written yet"):
        train(tiny_config(tmp_path / "run"))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_non_finite_weights_are_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import compactnets.train as train_module

    calls = {"n": 0}
    original = train_module.evaluate

    def poisoned(model: torch.nn.Module, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:  # weights that went non-finite in epoch 2 (with a finite training loss)
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return original(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", poisoned)
    with pytest.raises(TrainingError, match=r"weight tensors .* non-finite in epoch 2.*last\.pt still holds"):
        train(tiny_config(tmp_path / "run"))
    for name in ("last.pt", "best.pt"):
        saved = ckpt.load_checkpoint(tmp_path / "run" / name)
        assert saved["epoch"] == 1 and all(torch.isfinite(t).all() for t in saved["state_dict"].values())
    assert len(list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))) == 1


# ---------------------------------------------------------------------------------------------- checkpoints
def test_atomic_write_survives_a_crash_mid_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"epoch": 1, "state_dict": {"w": torch.ones(3)}}, path)

    def crash(obj: object, f: object) -> None:
        f.write(b"PK\x03\x04 half a zip")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_atomic({"epoch": 2}, path)
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UsageError, match="not a readable compactnets checkpoint"):
        ckpt.load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(UsageError, match="not a compactnets checkpoint"):
        ckpt.load_checkpoint(tmp_path / "foreign.pt")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("code ran",))

    torch.save({"format": ckpt.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UsageError, match="not a readable"):
        ckpt.load_checkpoint(tmp_path / "evil.pt")  # weights_only: no arbitrary unpickling
    with pytest.raises(UsageError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path)


# ---------------------------------------------------------------------------------------------- command line
def test_cli_train_eval_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "cli"
    argv = [
        "train",
        "antnet_g2_cifar",
        "--data",
        "digits",
        "--out",
        str(run),
        "--epochs",
        "1",
        "--width",
        "0.25",
        "--train-subset",
        "32",
        "--batch-size",
        "16",
        "--set",
        "log_every=1000",
    ]
    assert main(argv) == 0
    assert main(["eval", str(run), "--data", "digits", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.split("done:")[-1].split("\n", 1)[1])
    assert 0 <= record["top1"] <= 100 and record["images"] == 359
    assert json.loads((run / "eval.json").read_text())["top1"] == record["top1"]
    _write_folder(tmp_path / "three", {"train": ["a", "b", "c"], "val": ["a", "b", "c"]})
    bad = [
        (["train", "antnet_g2_cifar", "--recipe", "nope"], "unknown recipe"),
        (["train", "antnet_g2_cifar", "--data", str(tmp_path / "missing")], "unknown data set"),
        (["eval", str(run), "--data", str(tmp_path / "three")], "predicts 10 classes"),
        (["eval", str(tmp_path / "nothing.pt")], "not found"),
        (["train", "--resume", str(tmp_path)], "no config.json"),
    ]
    for args, message in bad:
        assert main(args) == 2, args
        assert message in capsys.readouterr().err
