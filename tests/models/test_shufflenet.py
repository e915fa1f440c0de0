"""ShuffleNet V1/V2: the units against the papers, Table 1 complexities, identical logits with torchvision's V2."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.layers import ChannelShuffle
from compactnets.models.shufflenet import (
    SHUFFLENETV2_CHANNELS,
    ShuffleNet,
    ShuffleUnit,
    ShuffleV2Unit,
    shufflenetv2_channels,
)
from compactnets.registry import matches_printed


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("shufflenetv2_050", torchvision.models.shufflenet_v2_x0_5),
        ("shufflenetv2_100", torchvision.models.shufflenet_v2_x1_0),
        pytest.param("shufflenetv2_150", torchvision.models.shufflenet_v2_x1_5, marks=pytest.mark.slow),
        pytest.param("shufflenetv2_200", torchvision.models.shufflenet_v2_x2_0, marks=pytest.mark.slow),
    ],
)
def test_shufflenetv2_matches_torchvision(name: str, reference: type, torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model(name), reference())


def test_shufflenet_unit_follows_section_3_2() -> None:
    model = cn.create_model("shufflenet_g3_150")
    assert model.features[0].out_chs == 24  # the stem stays 24 channels at 1.5x (Megvii's code)
    first, second = model.features[2], model.features[3]
    assert isinstance(first, ShuffleUnit) and first.stride == 2
    assert first.branch.gconv1.conv.groups == 1  # Stage 2's first 1x1 is not grouped
    assert second.branch.gconv1.conv.groups == 3 and second.branch.gconv2.conv.groups == 3
    assert second.branch.gconv1.out_chs == 360 // 4  # bottleneck = 1/4 of the output
    assert first.branch.gconv2.out_chs == 360 - 24  # stride 2: concatenated with the pooled input
    assert isinstance(second.branch.shuffle, ChannelShuffle) and second.branch.shuffle.groups == 3
    assert not hasattr(second.branch.dwconv, "act")  # no ReLU after the depthwise conv
    x = torch.randn(2, 24, 16, 16)
    assert first(x).shape == (2, 360, 8, 8)
    assert (first(x) >= 0).all()  # ReLU after the concatenation


def test_shufflenet_table_1_complexities() -> None:
    """ShuffleNet 1x at g = 1, 2, 3 prints as Table 1's 143, 140 and 137 MFLOPs (= MACs)."""
    for groups, printed in [(1, "143M"), (2, "140M"), (3, "137M")]:
        with torch.device("meta"):
            model = ShuffleNet(groups=groups)
        assert matches_printed(cn.profile(model, 224).macs, printed), groups


def test_shufflenet_stem_and_rounding_rules() -> None:
    assert ShuffleNet(groups=3, width_mult=0.5).features[0].out_chs == 12  # Megvii 0.5x g=3
    assert ShuffleNet(groups=8, width_mult=0.5).features[0].out_chs == 16  # Megvii 0.5x g=8
    assert cn.create_model("shufflenet_g3_200").features[0].out_chs == 48
    odd = ShuffleNet(groups=4, width_mult=0.5)  # 136 channels do not give a bottleneck divisible by 4
    assert odd.features[2].out_chs % 16 == 0
    with pytest.raises(ValueError, match="groups"):
        ShuffleNet(groups=5)
    with pytest.raises(ValueError, match="divisible by 4g"):
        ShuffleUnit(24, 250, 2, groups=3)


def test_shufflenetv2_unit_splits_and_shuffles() -> None:
    unit = ShuffleV2Unit(48, 48, 1).eval()
    x = torch.randn(1, 48, 8, 8)
    out = unit(x)
    # the kept half lands on the even channels after the 2-group shuffle
    torch.testing.assert_close(out[:, 0::2], x[:, :24])
    assert ShuffleV2Unit(24, 48, 2)(torch.randn(1, 24, 8, 8)).shape == (1, 48, 4, 4)
    with pytest.raises(ValueError, match="equal"):
        ShuffleV2Unit(24, 48, 1)


def test_shufflenetv2_width_interpolates_table_5() -> None:
    for width, row in SHUFFLENETV2_CHANNELS.items():
        assert shufflenetv2_channels(width) == row
    assert shufflenetv2_channels(0.75) == (84, 164, 328, 1024)  # halfway between 0.5x and 1x, rounded to 4
    widths = [0.3 + 0.05 * i for i in range(40)]
    rows = [shufflenetv2_channels(w) for w in widths]
    assert all(a <= b for r0, r1 in itertools.pairwise(rows) for a, b in zip(r0, r1, strict=True))
    assert all(c % 4 == 0 for row in rows for c in row[:3])


def test_depth_multiplier_scales_units() -> None:
    def units(model: torch.nn.Module) -> int:
        return sum(isinstance(m, ShuffleUnit | ShuffleV2Unit) for m in model.modules())

    assert units(cn.create_model("shufflenet_g3_150")) == 16
    assert units(cn.create_model("shufflenet_g3_150", depth=1.5)) == 6 + 12 + 6
    assert units(cn.create_model("shufflenetv2_100", depth=0.5)) == 2 + 4 + 2
