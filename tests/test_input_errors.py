"""Inputs a model cannot take, and arguments a model does not have, give one-line errors (issue #21)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import compactnets as cn
from compactnets.cli import main
from compactnets.errors import InputShapeError, ModelArgumentError


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_images_are_refused(dtype: torch.dtype) -> None:
    model = cn.create_model("resnet20_cifar").eval()
    with pytest.raises(InputShapeError, match=rf"^resnet20_cifar takes floating-point images .* got {dtype}"):
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))


def test_a_precision_other_than_the_weights_is_refused_outside_autocast() -> None:
    model = cn.create_model("resnet20_cifar").eval()
    half = torch.zeros(1, 3, 32, 32, dtype=torch.float16)
    with pytest.raises(InputShapeError, match=r"weights are torch\.float32 but the input is torch\.float16"):
        model(half)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(half.bfloat16()).shape == (1, 10)
    assert model.double()(half.double()).dtype == torch.float64


def test_width_on_a_model_without_a_multiplier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelArgumentError, match=r"^resnet20_cifar has no width multiplier: leave --width out$"):
        cn.create_model("resnet20_cifar", width=0.5)
    with pytest.raises(ModelArgumentError, match="no depth multiplier"):
        cn.create_model("resnet20_cifar", depth=2.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        cn.create_model("resnet20_cifar", bogus=1)
    out = tmp_path / "run"
    assert main(["train", "resnet20_cifar", "--width", "0.5", "--epochs", "1", "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "compactnets train: error: resnet20_cifar has no width multiplier: leave --width out"
    )
    assert not out.exists()  # a run that failed before writing leaves no directory behind


def test_export_refuses_a_batch_of_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "resnet20_cifar", "--batch-size", "0", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--batch-size must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("command", [["eval", "{p}", "--data", "digits"], ["export", "{p}", "--out", "{o}"]])
def test_a_missing_checkpoint_is_named_not_taken_for_a_model(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pt"
    args = [a.format(p=missing, o=tmp_path / "m.onnx") for a in command]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"compactnets {command[0]}: error: checkpoint {missing} not found"
    ]
    assert main(["eval", "resnet20_cifarr", "--data", "digits"]) == 2
    assert "unknown model 'resnet20_cifarr'" in capsys.readouterr().err
