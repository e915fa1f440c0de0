"""SqueezeNext: the block of Fig. 1 and the layouts of Fig. 3 and the authors' Caffe definitions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.models.squeezenext import SQUEEZENEXT_DEPTHS, SqueezeNextBlock


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return cn.create_model(name)


@pytest.mark.parametrize(
    ("name", "depth", "stem_kernel", "widths"),
    [
        ("squeezenext_23_100", "23", 7, (32, 64, 128, 256)),
        ("squeezenext_23v5_200", "23v5", 5, (64, 128, 256, 512)),
    ],
)
def test_layout(name: str, depth: str, stem_kernel: int, widths: tuple[int, ...]) -> None:
    model = _meta(name)
    blocks = [m for m in model.modules() if isinstance(m, SqueezeNextBlock)]
    repeats = SQUEEZENEXT_DEPTHS[depth]
    assert len(blocks) == sum(repeats) == 21  # 21 blocks x ~5 convs + first conv + last conv = "23" layers
    assert [b.out_chs for b in blocks] == [w for w, n in zip(widths, repeats, strict=True) for _ in range(n)]
    firsts = [sum(repeats[:i]) for i in range(4)]
    assert [i for i, b in enumerate(blocks) if not isinstance(b.shortcut, nn.Identity)] == firsts
    assert [blocks[i].stride for i in firsts] == [1, 2, 2, 2]
    # the Caffe definitions have Convolution1 ... Convolution111: stem, 4 x 6 + 17 x 5 block convs, head
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 111
    assert model.features.stem.conv.kernel_size == (stem_kernel, stem_kernel)
    assert model.features.stem.conv.padding == (0, 0) and model.num_features == 128
    assert model.forward_features(torch.zeros(1, 3, 227, 227, device="meta")).shape[-2:] == (7, 7)


def test_block_channels_follow_figure_1() -> None:
    block = SqueezeNextBlock(64, 128, stride=2, project=True)
    convs = [m.conv for m in block.branch]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(64, 64), (64, 32), (32, 64), (64, 64), (64, 128)]
    assert [c.kernel_size for c in convs] == [(1, 1), (1, 1), (3, 1), (1, 3), (1, 1)]
    assert convs[0].stride == (2, 2) and block.shortcut.conv.stride == (2, 2)
    swapped = SqueezeNextBlock(128, 128, width_first=True)
    assert [m.conv.kernel_size for m in swapped.branch][2:4] == [(1, 3), (3, 1)]
    with pytest.raises(ValueError, match="project=True"):
        SqueezeNextBlock(64, 128)


def test_v5_branch_reads_the_projection() -> None:
    block = SqueezeNextBlock(64, 128, stride=2, project=True, branch_from_shortcut=True)
    assert block.branch.squeeze1.conv.in_channels == 128 and block.branch.squeeze1.conv.stride == (1, 1)
    x = torch.randn(2, 64, 8, 8)
    block.eval()
    with torch.no_grad():
        shortcut = block.shortcut(x)
        torch.testing.assert_close(block(x), torch.relu(block.branch(shortcut) + shortcut))
