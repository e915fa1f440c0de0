"""MobileNetV3: Tables 1-2 as built, identical logits with torchvision's weights, width and depth options."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.layers import InvertedResidual, SqueezeExcite
from compactnets.models.mobilenetv3 import MOBILENETV3_LARGE_TABLE, scale_rows


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("mobilenetv3_large_100", torchvision.models.mobilenet_v3_large),
        ("mobilenetv3_small_100", torchvision.models.mobilenet_v3_small),
    ],
)
def test_mobilenetv3_matches_torchvision(name: str, reference: type, torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model(name), reference())


def test_width_multiplier_matches_torchvision() -> None:
    """Every width (exp sizes, head, classifier hidden layer) scales as in the reference code."""
    with torch.device("meta"):
        ours = cn.create_model("mobilenetv3_large_100", width=0.75)
        theirs = torchvision.models.mobilenet_v3_large(width_mult=0.75)
    assert [tuple(v.shape) for v in ours.state_dict().values() if v.ndim] == [
        tuple(v.shape) for v in theirs.state_dict().values() if v.ndim
    ]


def test_bneck_follows_table_1() -> None:
    model = cn.create_model("mobilenetv3_large_100")
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == len(MOBILENETV3_LARGE_TABLE) == 15
    assert "expand" not in dict(blocks[0].branch.named_children())  # exp size 16 = input 16
    se_block = blocks[3]  # 5x5, exp 72, SE, ReLU, s2
    assert se_block.branch.dw.conv.kernel_size == (5, 5) and se_block.stride == 2
    assert isinstance(se_block.branch.attn, SqueezeExcite) and se_block.branch.attn.hidden_chs == 24
    assert isinstance(se_block.branch.attn.gate, torch.nn.Hardsigmoid)
    assert isinstance(blocks[6].branch.dw.act, torch.nn.Hardswish) and "attn" not in dict(
        blocks[6].branch.named_children()
    )
    assert model.head.hidden_chs == 1280 and model.num_features == 960
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert model.forward_head(torch.randn(2, 960, 7, 7), pre_logits=True).shape == (2, 1280)
    model.reset_classifier(10)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_depth_scaling_repeats_the_last_row_of_a_stage() -> None:
    rows = scale_rows(MOBILENETV3_LARGE_TABLE, 1.5)
    assert len(rows) > len(MOBILENETV3_LARGE_TABLE)
    assert [r[2] for r in rows].count(80) == 6  # 4 rows of 80 channels -> ceil(4 * 1.5)
    assert scale_rows(MOBILENETV3_LARGE_TABLE, 1.0) == MOBILENETV3_LARGE_TABLE
    assert [r[2] for r in scale_rows(MOBILENETV3_LARGE_TABLE, 0.5)].count(80) == 2
    deeper = cn.create_model("mobilenetv3_large_100", depth=1.5)
    assert deeper.depth_mult == 1.5
    assert sum(isinstance(m, InvertedResidual) for m in deeper.modules()) == len(rows)
