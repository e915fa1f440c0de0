"""Xception against Fig. 5 of Chollet (2017) and timm's legacy_xception layout."""

from __future__ import annotations

import torch
from torch import nn

import compactnets as cn
from compactnets.models.xception import XceptionBlock, sep_conv_bn


def _meta_xception() -> nn.Module:
    with torch.device("meta"):
        return cn.create_model("xception")


def test_flows_follow_figure_5() -> None:
    model = _meta_xception()
    blocks = [m for m in model.features if isinstance(m, XceptionBlock)]
    assert len(blocks) == 12
    entry, middle, exit_ = blocks[:3], blocks[3:11], blocks[11]
    assert [b.out_chs for b in entry] == [128, 256, 728] and all(b.stride == 2 for b in entry)
    assert all(len(b.branch) == 3 and b.out_chs == 728 and b.stride == 1 for b in middle)
    assert isinstance(middle[0].shortcut, nn.Identity)  # middle flow: identity shortcut
    assert exit_.out_chs == 1024 and exit_.branch[0].pw.conv.out_channels == 728  # 728 first, then 1024
    assert isinstance(exit_.branch[-1], nn.MaxPool2d) and exit_.shortcut.conv.stride == (2, 2)
    assert "pre_act" not in dict(entry[0].branch[0].named_children())  # the stem's ReLU precedes block 1
    assert model.num_features == 2048


def test_stem_is_unpadded_and_output_is_10x10_at_299() -> None:
    model = _meta_xception()
    x = torch.zeros(1, 3, 299, 299, device="meta")
    assert model.features.conv2(model.features.conv1(x)).shape == (1, 64, 147, 147)  # 299 -> 149 -> 147
    assert model.forward_features(x).shape == (1, 2048, 10, 10)


def test_separable_unit_is_relu_sepconv_bn_and_keeps_its_input() -> None:
    unit = sep_conv_bn(8, 16)
    assert [n for n, _ in unit.named_children()] == ["pre_act", "dw", "pw"]
    assert "bn" not in dict(unit.dw.named_children()) and isinstance(unit.pw.bn, nn.BatchNorm2d)
    block = XceptionBlock(8, (16, 16), stride=2)
    x = torch.randn(2, 8, 9, 9)
    before = x.clone()
    out = block(x)
    assert torch.equal(x, before)  # the first ReLU is not in place: the shortcut still sees x
    assert out.shape == (2, 16, 5, 5)
