"""The model contract on representative models: channels_last, torch.export, ONNX, torch.compile."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import compactnets as cn

REPRESENTATIVE = ["mobilenetv2_cifar", "antnet_g2_cifar", "antnet_e_cifar", "pydmobilenet_concat_29_025_cifar"]


def _model_and_input(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    return cn.create_model(name).eval(), torch.randn(2, 3, 32, 32)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_channels_last_gives_the_same_logits(name: str) -> None:
    model, x = _model_and_input(name)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_torch_export(name: str) -> None:
    model, x = _model_and_input(name)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export needs the 'onnx' extra (pip install 'compactnets[onnx]')",
)
@pytest.mark.parametrize("name", ["antnet_g2_cifar", "antnet_e_cifar", "pydmobilenet_add_29_025_cifar"])
def test_onnx_export_runs_in_onnxruntime(name: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    model, x = _model_and_input(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-3, atol=1e-4)


def test_torch_compile() -> None:
    model, x = _model_and_input("antnet_g2_cifar")
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
