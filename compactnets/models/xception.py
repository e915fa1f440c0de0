"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions").

Fig. 5: an entry flow (two plain convs, three strided modules), a middle flow of eight identical modules
and an exit flow, every module a stack of ReLU -> separable conv -> BN units with a residual shortcut.
The separable convs have no BN or ReLU between the depthwise and the pointwise conv (Sec. 3, 4.7).
Layout and counts follow timm's ``legacy_xception`` (22,855,952 parameters at 1000 classes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import ClassifierHead, ConvNormAct, DepthwiseSeparable, drop_branch
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "Xception (Chollet 2017)"

# Xception Fig. 5, entry flow / middle flow (x8) / exit flow: output channels of each ReLU-SepConv-BN
# unit of a module, the module's stride (a 3x3 max pool at the end) and whether it starts with a ReLU.
XCEPTION_TABLE: list[tuple[tuple[int, ...], int, bool]] = [
    ((128, 128), 2, False),  # entry flow; the stem's ReLU comes just before
    ((256, 256), 2, True),
    ((728, 728), 2, True),
    *[((728, 728, 728), 1, True)] * 8,  # middle flow, repeated eight times
    ((728, 1024), 2, True),  # exit flow
]
# Xception Fig. 5, entry flow stem (3x3 convs without padding) and exit flow separable convs (with ReLU after).
XCEPTION_STEM = (32, 64)
XCEPTION_EXIT = (1536, 2048)


def sep_conv_bn(in_chs: int, out_chs: int, pre_act: bool = True) -> DepthwiseSeparable:
    """ReLU -> 3x3 depthwise -> 1x1 pointwise -> BN, the unit of Fig. 5."""
    return DepthwiseSeparable(in_chs, out_chs, act=None, dw_norm_act=False, pre_act="relu" if pre_act else None)


class XceptionBlock(nn.Module):
    """An Xception module (Fig. 5): ReLU-SepConv-BN units, a 3x3 max pool when strided, plus a shortcut.

    The shortcut is the identity, or a strided 1x1 conv -> BN where the shape changes.
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(self, in_chs: int, out_chs: Sequence[int], stride: int = 1, start_with_relu: bool = True) -> None:
        super().__init__()
        units: list[nn.Module] = []
        chs = in_chs
        for i, unit_chs in enumerate(out_chs):
            units.append(sep_conv_bn(chs, unit_chs, pre_act=start_with_relu or i > 0))
            chs = unit_chs
        if stride != 1:
            units.append(nn.MaxPool2d(3, stride, padding=1))
        self.branch = nn.Sequential(*units)
        self.shortcut = ConvNormAct(in_chs, chs, 1, stride, act=None) if stride != 1 or in_chs != chs else nn.Identity()
        self.in_chs, self.out_chs, self.stride = in_chs, chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_branch(self, self.branch(x)) + self.shortcut(x)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add (profiler protocol)."""
        return {"residual": output.numel()}


class Xception(CompactNet):
    """Xception: stem, the 12 modules of :data:`XCEPTION_TABLE`, two separable convs, pool, dropout, FC.

    The paper trains with dropout 0.5 before the classifier on ImageNet (Sec. 4.3).
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.in_chans = in_chans
        stem1, stem2 = XCEPTION_STEM
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv1=ConvNormAct(in_chans, stem1, 3, 2, padding=0),
            conv2=ConvNormAct(stem1, stem2, 3, 1, padding=0),
        )
        chs = stem2
        for i, (unit_chs, stride, start_with_relu) in enumerate(XCEPTION_TABLE, start=1):
            layers[f"block{i}"] = XceptionBlock(chs, unit_chs, stride, start_with_relu)
            chs = unit_chs[-1]
        for i, exit_chs in enumerate(XCEPTION_EXIT, start=3):
            layers[f"conv{i}"] = DepthwiseSeparable(chs, exit_chs, act="relu", dw_norm_act=False)
            chs = exit_chs
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 1 (ImageNet), Table 3 (params), Fig. 5 (architecture)",
        input_size=(3, 299, 299),
        num_classes=1000,
        ref_params=22_855_952,
        ref_macs=8.36e9,
        params_exact=True,
        paper_params="22.9M",
        paper_metrics={"top1": 79.0, "top5": 94.5},
        reproduces=("params",),
        recipe="xception_imagenet",
        source="timm legacy_xception",
        note="Fig. 5 with timm legacy_xception's layout: unpadded stem convs (299 -> 149 -> 147), separable "
        "convs without BN/ReLU between depthwise and pointwise. Table 3 prints 22,855,952 parameters; the paper "
        "prints no MAdds.",
    )
)
def xception(**kwargs: Any) -> Xception:
    return Xception(**kwargs)
