"""EfficientNet: MBConv as an InvertedResidual, B0-B3 against torchvision, stochastic depth, compound rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.layers import DropPath, InvertedResidual
from compactnets.models.efficientnet import EFFICIENTNET_PARAMS, compound_multipliers

SLOW = pytest.mark.slow  # B2 and B3 are also checked by count (exact torchvision parameters) in test_zoo


@pytest.mark.parametrize("variant", ["b0", "b1", pytest.param("b2", marks=SLOW), pytest.param("b3", marks=SLOW)])
def test_efficientnet_matches_torchvision(variant: str, torchvision_parity: Callable[..., None]) -> None:
    ours = cn.create_model(f"efficientnet_{variant}")
    assert ours.card.input_size[1] == EFFICIENTNET_PARAMS[variant][2]
    torchvision_parity(ours, getattr(torchvision.models, f"efficientnet_{variant}")())


def test_mbconv_options() -> None:
    model = cn.create_model("efficientnet_b0")
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    assert len(blocks) == 16
    mb1, mb6 = blocks[0], blocks[1]
    assert "expand" not in dict(mb1.branch.named_children())
    assert mb1.branch.attn.hidden_chs == 32 // 4  # SE width is a quarter of the block input
    assert mb6.branch.attn.hidden_chs == 16 // 4 and mb6.mid_chs == 96
    assert isinstance(mb6.branch.dw.act, torch.nn.SiLU) and isinstance(mb6.branch.attn.gate, torch.nn.Sigmoid)
    assert blocks[3].branch.dw.conv.kernel_size == (5, 5)


def test_stochastic_depth_rises_linearly_and_only_trains() -> None:
    model = cn.create_model("efficientnet_b0")
    blocks = [m for m in model.features if isinstance(m, InvertedResidual)]
    rates = [b.drop_path.rate for b in blocks if isinstance(b.drop_path, DropPath)]
    residual = [i for i, b in enumerate(blocks) if b.use_residual]
    assert rates == pytest.approx([0.2 * i / 16 for i in residual])
    drop = DropPath(0.5)
    x = torch.ones(1000, 4)
    out = drop(x)  # training: whole samples are zeroed, the rest scaled by 1 / keep
    assert set(out[:, 0].unique().tolist()) == {0.0, 2.0} and (out == out[:, :1]).all()
    assert 400 < int((out[:, 0] == 0).sum()) < 600
    assert drop.eval()(x) is x


def test_compound_scaling_rule() -> None:
    depth, width, resolution = compound_multipliers(1.0)
    assert depth * width**2 * resolution**2 == pytest.approx(2.0, rel=0.1)  # alpha beta^2 gamma^2 ~ 2 (Eq. 3)
    b3 = cn.create_model("efficientnet_b3")
    assert (b3.width_mult, b3.depth_mult) == (1.2, 1.4)
    assert sum(isinstance(m, InvertedResidual) for m in b3.modules()) == 26  # ceil(n * 1.4) per stage
    assert cn.create_model("efficientnet_b0", width=1.2, depth=1.4).state_dict().keys() == b3.state_dict().keys()
