"""ShiftNet: the shift layer's semantics and cost (Sec. 3), ShiftResNet against the authors' CIFAR
table, ShiftNet-A's stage table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.layers import Shift, shift2d, shift_offsets
from compactnets.models.shiftnet import SHIFTNET_A_TABLE, CSCBlock, shiftresnet_cifar
from compactnets.registry import matches_printed


def _shift_reference(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[y, x] = in[y + dy, x + dx], zero outside: written with explicit loops."""
    out = torch.zeros_like(x)
    height, width = x.shape[-2:]
    for y in range(height):
        for col in range(width):
            if 0 <= y + dy < height and 0 <= col + dx < width:
                out[..., y, col] = x[..., y + dy, col + dx]
    return out


@pytest.mark.parametrize(("kernel_size", "dilation", "channels"), [(3, 1, 20), (3, 2, 18), (5, 1, 27)])
def test_each_group_moves_by_its_offset(kernel_size: int, dilation: int, channels: int) -> None:
    x = torch.randn(2, channels, 6, 7)
    out = Shift(kernel_size, dilation)(x)
    offsets = shift_offsets(kernel_size, dilation)
    size = channels // len(offsets)
    for g, (dy, dx) in enumerate(offsets):
        group = slice(g * size, (g + 1) * size)
        torch.testing.assert_close(out[:, group], _shift_reference(x[:, group], dy, dx), rtol=0, atol=0)
    torch.testing.assert_close(out[:, size * len(offsets) :], x[:, size * len(offsets) :], rtol=0, atol=0)


def test_offsets_cover_the_window_row_major() -> None:
    assert shift_offsets(3) == [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 0), (0, 1), (1, -1), (1, 0), (1, 1)]
    assert shift_offsets(3, dilation=2)[0] == (-2, -2) and len(shift_offsets(5)) == 25
    x = torch.arange(9.0).view(1, 9, 1, 1).expand(1, 9, 3, 3).contiguous()
    # the centre pixel of each channel: group g reads pixel (1 + dy, 1 + dx) of its own channel
    torch.testing.assert_close(shift2d(x)[0, :, 1, 1], torch.arange(9.0))
    # the top-left pixel is read from outside the image for every group with dy or dx = -1
    assert shift2d(x)[0, :, 0, 0].tolist() == [0, 0, 0, 0, 4, 5, 0, 7, 8]


def test_shift_has_no_parameters_and_no_multiply_adds() -> None:
    shift = Shift(3)
    assert sum(p.numel() for p in shift.parameters()) == 0 and not list(shift.buffers())
    result = cn.profile(nn.Sequential(shift), (18, 8, 8), convention="all")
    assert result.params == 0 and all(v == 0 for v in result.ops.values())
    # a CSC module costs exactly its two 1x1 convs: 8 * 8 * (16 * 96 + 96 * 16)
    block = CSCBlock(16, 16, expansion=6)
    assert cn.profile(block, (16, 8, 8)).macs == 64 * (16 * 96 + 96 * 16)


def test_shift_gradient_is_the_opposite_shift() -> None:
    x = torch.randn(1, 9, 5, 5, requires_grad=True)
    grad = torch.randn(1, 9, 5, 5)
    shift2d(x).backward(grad)
    for g, (dy, dx) in enumerate(shift_offsets(3)):
        torch.testing.assert_close(x.grad[:, g], _shift_reference(grad[:, g], -dy, -dx), rtol=0, atol=0)


def test_shift_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 9 channels"):
        shift2d(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        Shift(4)


# The authors' shiftresnet-cifar table: parameters in millions (CIFAR-10, 10-way FC) for epsilon = 1, 3, 6, 9.
SHIFTRESNET_PARAMS = {
    20: ("0.03M", "0.10M", "0.19M", "0.28M"),
    56: ("0.10M", "0.29M", "0.58M", "0.87M"),
    110: ("0.20M", "0.59M", "1.18M", "1.76M"),
}


@pytest.mark.parametrize("depth", sorted(SHIFTRESNET_PARAMS))
def test_shiftresnet_params_match_the_authors_table(depth: int) -> None:
    for expansion, printed in zip((1, 3, 6, 9), SHIFTRESNET_PARAMS[depth], strict=True):
        with torch.device("meta"):
            model = shiftresnet_cifar(depth, expansion, num_classes=10)
        params = sum(p.numel() for p in model.parameters())
        assert matches_printed(params, printed), (depth, expansion, params, printed)


def test_shiftresnet_structure() -> None:
    model = cn.create_model("shiftresnet20_cifar")
    blocks = [m for m in model.modules() if isinstance(m, CSCBlock)]
    assert len(blocks) == 9  # 3 stages x 3 modules, one per basic block of ResNet-20
    assert [b.out_chs for b in blocks] == [16] * 3 + [32] * 3 + [64] * 3
    assert all(b.mid_chs == 6 * b.out_chs for b in blocks)  # epsilon = 6
    down = blocks[3]
    assert down.stride == 2 and down.branch.project.conv.stride == (2, 2)  # the shift runs at full resolution
    assert isinstance(down.shortcut, cn.layers.ConvNormAct) and isinstance(blocks[4].shortcut, nn.Identity)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_shiftnet_a_follows_its_stage_table() -> None:
    with torch.device("meta"):
        model = cn.create_model("shiftnet_a")
    blocks = [m for m in model.modules() if isinstance(m, CSCBlock)]
    assert len(blocks) == sum(row[1] for row in SHIFTNET_A_TABLE) == 21
    start = 0
    in_chs = 32
    for out_chs, repeats, _, kernel, first_expansion, expansion in SHIFTNET_A_TABLE:
        first, rest = blocks[start], blocks[start + 1 : start + repeats]
        # downsampling: the branch makes C_out - C_in channels, an average pool of the input the rest
        assert first.concat and first.branch.project.conv.out_channels == out_chs - in_chs
        assert first.mid_chs == (out_chs - in_chs) * first_expansion
        assert all(b.mid_chs == out_chs * expansion and not b.concat for b in rest)
        assert all(b.branch.shift.kernel_size == kernel for b in blocks[start : start + repeats])
        start, in_chs = start + repeats, out_chs
    features = model.forward_features(torch.zeros(1, 3, 224, 224, device="meta"))
    assert features.shape == (1, 512, 7, 7)  # 224 -> 112 (stem) -> 56 -> 28 -> 14 -> 7


def test_shift_is_layout_agnostic() -> None:
    x = torch.randn(2, 27, 7, 6)
    torch.testing.assert_close(shift2d(x.to(memory_format=torch.channels_last)), shift2d(x), rtol=0, atol=0)


def test_torch_export() -> None:
    model = cn.create_model("shiftresnet20_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


def _onnxruntime_output(model: nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("ONNX export needs the 'onnx' extra (pip install 'compactnets[onnx]')")
    import onnxruntime as ort

    torch.onnx.export(model, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(got)


def test_shift_runs_in_onnxruntime(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 27, 1), Shift(3), Shift(5, dilation=2)).eval()
    x = torch.randn(2, 3, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(_onnxruntime_output(model, x, tmp_path / "shift.onnx"), model(x))


@pytest.mark.slow
def test_shiftresnet_runs_in_onnxruntime(tmp_path: Path) -> None:
    model = cn.create_model("shiftresnet20_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    got = _onnxruntime_output(model, x, tmp_path / "shiftresnet20.onnx")
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
