"""Published weights: every shipped entry's logits and recorded accuracy, the loader's paths and its errors."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import compactnets as cn
from compactnets import weights as w
from compactnets.checkpoint import load_model
from compactnets.cli import main
from compactnets.data import IMAGENET_MEAN, build_data
from compactnets.errors import UsageError, WeightsError
from compactnets.recipes import resolve_config
from compactnets.train import evaluate, train

ALL = cn.list_models(pretrained=True)
SHIPPED = [n for n in ALL if not w.get_weights(*w.split_tag(n)).url]  # files in the package
TORCHVISION = [n for n in ALL if w.get_weights(*w.split_tag(n)).converter == "torchvision"]
MODEL = "pydmobilenet_add_29_025_cifar"


def test_the_registry_covers_the_zoo() -> None:
    assert len(ALL) >= 20 and len({w.split_tag(n)[0] for n in ALL}) >= 12
    assert set(ALL) == set(SHIPPED) | set(TORCHVISION)  # every entry is proved by one of the tests below


# ------------------------------------------------------------------------------------------ shipped entries
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_entry_matches_its_file_and_reference_logits(name: str) -> None:
    entry = w.get_weights(*w.split_tag(name))
    assert w.sha256_of(w.weights_file(entry, verify=False)) == entry.sha256
    assert entry.metrics["top1"] > 0 and entry.training["epochs"] > 0 and entry.license
    model = cn.create_model(name).eval()
    assert model.pretrained_cfg["num_classes"] == entry.num_classes == model.num_classes
    with torch.no_grad():
        logits = model(w.reference_input(entry))
    expected = torch.tensor(entry.reference_logits)
    # recorded on the publishing machine; another CPU's kernels may sum in another order
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="session")
def cifar10_test_folder(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CIFAR-10 test split (10,000 JPEGs) unpacked; train/ holds one image per class (layout only)."""
    root = tmp_path_factory.mktemp("cifar10")
    with tarfile.open(shared_dir / "data" / "cifar10-jpeg.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.lstrip("./").startswith("test/")]
        tar.extractall(root, members=members, filter="data")
    for folder in (root / "test").iterdir():
        (root / "train" / folder.name).mkdir(parents=True)
        shutil.copy(next(folder.iterdir()), root / "train" / folder.name)
    return root


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.endswith(".cn_c10")])
def test_shipped_cifar10_weights_give_their_recorded_accuracy(
    name: str, cifar10_test_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = w.get_weights(*w.split_tag(name))
    assert main(["eval", name, "--data", str(cifar10_test_folder), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["images"] == 10_000 and record["weights_sha256"] == entry.sha256
    assert record["top1"] == entry.metrics["top1"] and record["top5"] == entry.metrics["top5"]


# ------------------------------------------------------------------------------------------ publish and load
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    overrides = {"out": str(out), "epochs": 1, "train_subset": 64, "batch_size": 16, "log_every": 1000}
    train(resolve_config(MODEL, "fast", overrides=overrides))
    return out


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder in place of the package's."""
    folder = tmp_path / "pretrained"
    monkeypatch.setattr(w, "PACKAGE_DIR", folder)
    monkeypatch.delenv(w.ENV_DIR, raising=False)
    w._entries.cache_clear()
    yield folder
    w._entries.cache_clear()


def test_published_run_loads_by_tag_with_its_preprocessing(
    finished_run: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = w.publish_run(finished_run, "test", registry, metrics={"top1": 1.0})
    assert cn.list_models(pretrained=True) == [f"{MODEL}.test"] and cn.list_models("pyd*", pretrained=True)
    model = cn.create_model(MODEL, pretrained=True).eval()
    trained = load_model(finished_run, prefer="last")
    x = w.reference_input(entry)
    with torch.no_grad():  # same weights; the checkpoint's may be laid out channels_last
        torch.testing.assert_close(model(x), trained(x), rtol=1e-5, atol=1e-5)
    assert model.pretrained_cfg | {} == {
        "input_size": [3, 32, 32], "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.5] * 3,
        "std": [0.25] * 3, "num_classes": 10, "tag": "test", "hf_hub_id": None,
    }  # fmt: skip
    three = cn.create_model(f"{MODEL}.test", num_classes=3)
    assert three.num_classes == 3 and three(x).shape == (2, 3)  # a new head, the backbone's weights kept
    first = next(iter(model.state_dict()))
    assert torch.equal(three.state_dict()[first], model.state_dict()[first])
    own = cn.create_model(MODEL, checkpoint_path=str(registry / entry.file)).eval()
    with torch.no_grad():
        torch.testing.assert_close(own(x), trained(x), rtol=1e-5, atol=1e-5)
    # `compactnets eval NAME.TAG` evaluates with the weights' own normalisation
    assert main(["eval", f"{MODEL}.test", "--data", "digits", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = evaluate(trained, build_data("digits", augment="none").val, 256)
    assert record["top1"] == pytest.approx(expected.top1, abs=0.3) and record["target"] == f"{MODEL}.test"


def test_corrupt_missing_and_foreign_files_give_one_line_errors(
    finished_run: Path,
    registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entry = w.publish_run(finished_run, "test", registry)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = bytearray((registry / entry.file).read_bytes())
    data[-1] ^= 0xFF
    (mirror / entry.file).write_bytes(bytes(data))
    monkeypatch.setenv(w.ENV_DIR, str(mirror))  # the user's folder comes first, and is checked too
    with pytest.raises(UsageError, match="corrupt or not the published file"):
        cn.create_model(entry.name)
    assert main(["weights", "verify"]) == 1 and "FAILED" in capsys.readouterr().out
    monkeypatch.delenv(w.ENV_DIR)
    assert main(["weights", "verify"]) == 0
    assert main(["weights", "path", entry.name]) == 0 and capsys.readouterr().out.strip().endswith(entry.file)
    (registry / entry.file).unlink()
    with pytest.raises(UsageError, match="not found"):
        cn.create_model(MODEL, pretrained=True)
    with pytest.raises(UsageError, match="no weights tagged 'nope'; its tags: test"):
        cn.create_model(f"{MODEL}.nope")
    with pytest.raises(UsageError, match="no pretrained weights are published for 'resnet20_cifar'"):
        cn.create_model("resnet20_cifar", pretrained=True)
    with pytest.raises(UsageError, match=r"weights file .* not found"):
        cn.create_model(MODEL, checkpoint_path=str(tmp_path / "missing.safetensors"))
    (tmp_path / "foreign.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UsageError, match="not a readable safetensors file"):
        cn.create_model(MODEL, checkpoint_path=str(tmp_path / "foreign.safetensors"))
    other = cn.create_model("resnet20_cifar").state_dict()
    torch.save(other, tmp_path / "resnet.pt")
    with pytest.raises(UsageError, match=r"do not fit pydmobilenet_add_29_025_cifar: .* missing"):
        cn.create_model(MODEL, checkpoint_path=str(tmp_path / "resnet.pt"))


def test_fine_tuning_starts_from_the_published_weights(finished_run: Path, registry: Path, tmp_path: Path) -> None:
    entry = w.publish_run(finished_run, "test", registry)
    overrides = {"out": str(tmp_path / "ft"), "epochs": 1, "train_subset": 32, "batch_size": 16, "lr": 0.0,
                 "weight_decay": 0.0, "log_every": 1000, "pretrained": "test"}  # fmt: skip
    result = train(resolve_config(MODEL, "fast", overrides=overrides))
    published = w.read_state_dict(registry / entry.file)
    for name, tensor in result.model.named_parameters():  # lr 0: the parameters are still the published ones
        assert torch.equal(tensor, published[name]), name
    with pytest.raises(UsageError, match="overwrite the --pretrained weights"):
        train(resolve_config(MODEL, "fast", overrides=overrides | {"out": str(tmp_path / "x"), "init": "xavier"}))


def test_export_safetensors_and_onnx_carry_the_preprocessing(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(finished_run), "--format", "safetensors", "--out", str(tmp_path / "hub")]) == 0
    assert {p.name for p in (tmp_path / "hub").iterdir()} == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert config["architecture"] == MODEL and config["pretrained_cfg"]["mean"] == [0.5] * 3
    model = cn.create_model(MODEL, checkpoint_path=str(tmp_path / "hub")).eval()
    trained = load_model(finished_run)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained(x), rtol=1e-5, atol=1e-5)
    pytest.importorskip("onnxscript")
    import onnx

    assert main(["export", str(finished_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    props = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert props == {"mean": [0.5] * 3, "std": [0.25] * 3, "input_size": [3, 32, 32]}


def test_an_unfinished_run_is_not_published(tmp_path: Path, registry: Path) -> None:
    out = tmp_path / "run"
    overrides = {"out": str(out), "epochs": 2, "train_subset": 64, "batch_size": 16, "log_every": 1000}
    train(resolve_config(MODEL, "fast", overrides=overrides), on_step=lambda epoch, step: epoch == 1)
    with pytest.raises(UsageError, match="has not finished"):
        w.publish_run(out, "test", registry)


# ------------------------------------------------------------------------------------------ torchvision's
def _torchvision_file(entry: w.WeightsEntry, folder: Path) -> nn.Module:
    """torchvision's architecture with random weights (BN statistics too), saved as torchvision's file is."""
    reference = getattr(torchvision.models, entry.training["torchvision_builder"])().eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = reference.state_dict()
    if entry.model.startswith("densenet"):  # the published file predates torchvision's key names
        state = type(state)(
            (re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k), v) for k, v in state.items()
        )
    torch.save(state, folder / entry.file)
    return reference


def _register(monkeypatch: pytest.MonkeyPatch, entry: w.WeightsEntry, **changes: object) -> w.WeightsEntry:
    patched = dataclasses.replace(entry, **changes)
    monkeypatch.setitem(w._entries(), entry.name, patched)
    return patched


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_entry_gives_torchvision_logits(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = w.get_weights(*w.split_tag(name))
    reference = _torchvision_file(entry, tmp_path)
    monkeypatch.setenv(w.ENV_DIR, str(tmp_path))
    # the published file's sha256 starts with entry.sha256; this stand-in's with its own
    _register(monkeypatch, entry, sha256=w.sha256_of(tmp_path / entry.file)[:10])
    model = cn.create_model(name).eval()
    assert sum(p.numel() for p in model.parameters()) == entry.training["num_params"]
    assert model.pretrained_cfg["mean"] == list(IMAGENET_MEAN) and model.num_classes == 1000 == entry.num_classes
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_checkpoint_path_takes_a_torchvision_state_dict(tmp_path: Path) -> None:
    entry = w.get_weights("mobilenetv2_100", "tv_in1k")
    reference = _torchvision_file(entry, tmp_path)  # torchvision's keys, as torch.save(model.state_dict()) writes
    model = cn.create_model("mobilenetv2_100", checkpoint_path=str(tmp_path / entry.file)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_download_cache_offline_and_tampering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.hub's real downloader and hash check, on a file:// URL."""
    entry = w.get_weights("squeezenet_11", "tv_in1k")
    server, hub = tmp_path / "server", tmp_path / "hub"
    server.mkdir()
    _torchvision_file(entry, server)
    digest = w.sha256_of(server / entry.file)
    _register(monkeypatch, entry, sha256=digest, url=(server / entry.file).as_uri())
    for var in (w.ENV_DIR, "COMPACTNETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    cn.create_model(entry.name)  # downloaded into torch.hub's cache
    cached = hub / "checkpoints" / entry.file
    assert w.sha256_of(cached) == digest
    monkeypatch.setenv("COMPACTNETS_OFFLINE", "1")
    (server / entry.file).unlink()
    cn.create_model(entry.name)  # offline, from the cache
    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or not the published file"):
        cn.create_model(entry.name)
    cached.unlink()
    with pytest.raises(WeightsError, match=r"not found and offline .* put it in"):
        cn.create_model(entry.name)
    monkeypatch.delenv("COMPACTNETS_OFFLINE")
    (server / entry.file).write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="did not match its published sha256"):
        cn.create_model(entry.name)


def test_num_classes_with_imagenet_weights_replaces_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = w.get_weights("mobilenetv3_small_100", "tv_in1k")
    reference = _torchvision_file(entry, tmp_path)
    monkeypatch.setenv(w.ENV_DIR, str(tmp_path))
    _register(monkeypatch, entry, sha256=w.sha256_of(tmp_path / entry.file))
    model = cn.create_model("mobilenetv3_small_100", pretrained="tv_in1k", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), reference.features(x))
    assert model(x).shape == (2, 10) and model.pretrained_cfg["num_classes"] == 10


@pytest.mark.network
def test_real_download_matches_the_published_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Needs the internet (not run in CI): fetch torchvision's SqueezeNet 1.1 file and check it."""
    for var in (w.ENV_DIR, "COMPACTNETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    model = cn.create_model("squeezenet_11.tv_in1k")
    assert model.pretrained_cfg["tag"] == "tv_in1k"
