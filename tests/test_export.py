"""compactnets export: ONNX (checked in onnxruntime), torch.export .pt2, int8 quantization."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

import pytest
import torch

import compactnets as cn
from compactnets.cli import main
from compactnets.deploy import deploy
from compactnets.errors import UsageError
from compactnets.export import (
    check_export,
    export_coreml,
    export_onnx,
    export_pt2,
    file_size,
    quantize_onnx,
    resolve_model,
)

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="ONNX export needs the 'onnx' extra (pip install 'compactnets[onnx]')",
)
# MobileNetV2, ANTNet, a Seesaw model, a ChannelNet, a PydMobileNet
REPRESENTATIVE = [
    "mobilenetv2_cifar",
    "antnet_e_cifar",
    "seesaw_shuffle_05d_cifar",
    "channelnet_v3",
    "pydmobilenet_concat_29_025_cifar",
]


def _registered(name: str) -> str:
    if name not in cn.list_models():
        pytest.skip(f"{name} is not registered")
    return name


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``compactnets export mobilenetv2_cifar --check --dynamic-batch``: the file and what it printed."""
    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")):
        pytest.skip("needs the 'onnx' extra")
    path = tmp_path_factory.mktemp("onnx") / "mobilenetv2_cifar.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["export", "mobilenetv2_cifar", "--out", str(path), "--check", "--dynamic-batch"])
    assert status == 0, printed.getvalue()
    return path, printed.getvalue()


@needs_onnx
def test_onnx_export_cli_checks_the_file(exported: tuple[Path, str]) -> None:
    import onnx
    import onnxruntime as ort

    path, printed = exported
    assert "check   ok" in printed and "at batch 1,2" in printed and "deployed" in printed
    assert path.is_file() and not path.with_name(path.name + ".data").exists()
    assert 2_351_972 * 4 < file_size(path) < 2_351_972 * 4 * 1.05  # one fp32 file: weights and a small graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": torch.randn(3, 3, 32, 32).numpy()})  # any batch size
    assert out.shape == (3, 100)
    assert not any(node.op_type == "BatchNormalization" for node in onnx.load(str(path)).graph.node)


def test_resolve_model_by_name() -> None:
    name, model, size = resolve_model("antnet_g2_cifar")
    assert (name, size, model.training) == ("antnet_g2_cifar", (3, 32, 32), False)


@needs_onnx
def test_int8_static_quantization_shrinks_the_file(exported: tuple[Path, str], tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    path, _ = exported
    int8 = quantize_onnx(path, tmp_path / "int8.onnx", "static", input_size=(3, 32, 32), calibration_batches=2)
    ratio = file_size(int8) / file_size(path)
    assert 0.2 < ratio < 0.35  # int8 weights: a quarter, plus per-channel scales and the graph
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(int8)).graph.node)
    (out,) = session.run(None, {session.get_inputs()[0].name: torch.randn(1, 3, 32, 32).numpy()})
    assert out.shape == (1, 100)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_pt2_export_matches_pytorch(name: str, tmp_path: Path) -> None:
    model = cn.create_model(_registered(name)).eval()
    size = tuple(model.card.input_size)
    if not name.endswith("_cifar"):
        size = (3, 64, 64)
    path = export_pt2(deploy(model), tmp_path / f"{name}.pt2", size)
    result = check_export(path, model, size, batch_sizes=(1,))
    assert result.passed, str(result)
    assert result.max_abs < 1e-3


@pytest.mark.slow
@needs_onnx
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_onnx_export_matches_pytorch(name: str, tmp_path: Path) -> None:
    model = cn.create_model(_registered(name)).eval()
    size = tuple(model.card.input_size)
    path = export_onnx(deploy(model), tmp_path / f"{name}.onnx", size, dynamic_batch=True)
    result = check_export(path, model, size, batch_sizes=(1, 2))
    assert result.passed, str(result)


@pytest.mark.slow
@needs_onnx
@pytest.mark.parametrize("name", cn.list_models())
def test_every_model_exports_to_onnx(name: str, tmp_path: Path) -> None:
    model = cn.create_model(name).eval()
    size = (3, 32, 32) if name.endswith("_cifar") else tuple(model.card.input_size)
    path = export_onnx(deploy(model), tmp_path / f"{name}.onnx", size)
    result = check_export(path, model, size)
    assert result.passed, str(result)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "mobilenetv2_cifar", "--out", "m.onnx", "--format", "tflite"], "--format"),
        (["export", "mobilenetv2_cifar", "--out", "m.pt2"], "must end in .onnx"),
        (["export", "mobilenetv2_cifar", "--out", "m.pt2", "--format", "pt2", "--int8", "static"], "--int8"),
        (["export", "mobilenetv2_cifarr", "--out", "m.onnx"], "did you mean"),
        (["export", "mobilenetv2_cifar", "--out", "m.onnx", "--format", "coreml"], "must end in .mlpackage"),
        (["export", "mobilenetv2_cifar", "--out", "m.mlpackage", "--format", "coreml", "--dynamic-batch"], "fixed"),
    ],
)
def test_export_bad_input_exits_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_export_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = pytest.importorskip("compactnets.checkpoint")
    trained = cn.create_model("mobilenetv1_025", num_classes=10)
    run = tmp_path / "run"
    checkpoint.save_atomic(
        {"model": "mobilenetv1_025", "model_kwargs": {"num_classes": 10}, "state_dict": trained.state_dict()},
        run / "best.pt",
    )
    name, model, size = resolve_model(str(run))
    assert (name, size) == ("mobilenetv1_025", (3, 224, 224))
    loaded, saved = model.state_dict(), trained.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    out = tmp_path / "m.pt2"
    assert main(["export", str(run), "--format", "pt2", "--input-size", "64", "--out", str(out), "--check"]) == 0
    assert "check   ok" in capsys.readouterr().out
    program = torch.export.load(str(out)).module()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(program(x), trained.eval()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@needs_onnx
def test_int8_with_a_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")  # the offline digits data set
    out = tmp_path / "m.onnx"
    argv = ["export", "mobilenetv1_025", "--input-size", "32", "--out", str(out), "--int8", "static",
            "--data", "digits", "--calibration-batches", "4", "--eval-limit", "64"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "x the fp32 file (static quantization)" in printed and "on digits" in printed
    assert file_size(out.with_name("m.int8.onnx")) < 0.35 * file_size(out)


@needs_onnx
def test_int8_calibration_fits_a_fixed_batch(tmp_path: Path) -> None:
    model = deploy(cn.create_model("mobilenetv1_025"))
    path = export_onnx(model, tmp_path / "b4.onnx", (3, 32, 32), batch_size=4)  # batch fixed at 4
    given = [torch.randn(1, 3, 32, 32) for _ in range(9)]  # regrouped into 2 batches of 4 (one image left out)
    for calibration in (None, given):
        int8 = quantize_onnx(path, tmp_path / "b4.int8.onnx", "static", calibration, (3, 32, 32), 2)
        assert file_size(int8) < 0.4 * file_size(path)
    with pytest.raises(UsageError, match="at least 4 images"):
        quantize_onnx(path, tmp_path / "x.onnx", "static", given[:3], (3, 32, 32))


needs_coreml = pytest.mark.skipif(
    importlib.util.find_spec("coremltools") is None,
    reason="Core ML export needs the 'coreml' extra (pip install 'compactnets[coreml]')",
)


@needs_coreml
@pytest.mark.parametrize("name", ["mobilenetv2_cifar", "antnet_g2_cifar", "channelnet_v3"])
def test_coreml_package_holds_the_deployed_network(name: str, tmp_path: Path) -> None:
    """Core ML packages run only on macOS, so on Linux the test reads the package instead: its interface, one
    MIL conv per conv module of the deployed model, and fp32 weights that add up to the model's parameters."""
    import coremltools as ct

    model = deploy(cn.create_model(_registered(name)).eval())
    size = (3, 32, 32) if name.endswith("_cifar") else (3, 64, 64)
    path = export_coreml(model, tmp_path / f"{name}.mlpackage", size, batch_size=2)
    spec = ct.utils.load_spec(str(path))
    (image,), (logits,) = spec.description.input, spec.description.output
    assert (image.name, list(image.type.multiArrayType.shape), logits.name) == ("image", [2, *size], "logits")
    main_fn = spec.mlProgram.functions["main"]
    ops = [op.type for op in main_fn.block_specializations[main_fn.opset].operations]
    convs = sum(isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d) for m in model.modules())
    assert ops.count("conv") == convs
    weight_bytes = file_size(path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin")
    param_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert abs(weight_bytes - param_bytes) < 0.02 * param_bytes
    assert file_size(path) > weight_bytes  # a package is a directory: all its files count


def test_coreml_check_needs_macos(capsys: pytest.CaptureFixture[str]) -> None:
    import platform

    if platform.system() == "Darwin":
        pytest.skip("Core ML packages run on macOS: --check is available here")
    assert main(["export", "mobilenetv2_cifar", "--format", "coreml", "--out", "m.mlpackage", "--check"]) == 2
    assert "macOS" in capsys.readouterr().err
