"""MobileNetV3 (Howard et al. 2019): searched inverted residuals with SE and h-swish.

Each bneck row is an :class:`~compactnets.layers.InvertedResidual` with the expanded width given
directly (the "exp size" column), kernel 3 or 5, ReLU or h-swish, and squeeze-and-excite after the
depthwise conv whose hidden width is exp/4 rounded to 8 with a hard-sigmoid gate (Sec. 5.3). The
backbone is :class:`InvertedResidualNet`; the classifier adds the 1x1 "NBN" layer after pooling.
"""

from __future__ import annotations

import math
from itertools import groupby
from typing import Any

from torch import nn

from ..layers import SqueezeExcite, make_divisible
from ..registry import ModelCard, register_model
from .mobilenetv2 import InvertedResidualNet, StageSpec

PAPER = "MobileNetV3 (Howard et al. 2019)"

# MobileNetV3 Table 1 (Large), bneck rows after the 16-channel 3x3 stem (s2, h-swish):
# kernel k, exp size, output channels c, SE, nonlinearity NL, stride s.
MOBILENETV3_LARGE_TABLE: list[tuple[int, int, int, bool, str, int]] = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
# Table 1: conv2d 1x1 960 (BN, h-swish), pool, conv2d 1x1 NBN 1280 (h-swish), conv2d 1x1 NBN k.
LARGE_HEAD_CHS, LARGE_HIDDEN_CHS = 960, 1280

# MobileNetV3 Table 2 (Small), same columns.
MOBILENETV3_SMALL_TABLE: list[tuple[int, int, int, bool, str, int]] = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]
# Table 2: conv2d 1x1 576 (BN, h-swish), pool, conv2d 1x1 NBN 1024 (h-swish), conv2d 1x1 NBN k.
SMALL_HEAD_CHS, SMALL_HIDDEN_CHS = 576, 1024

STEM_CHS = 16
# The reference (TF-slim) batch norm: epsilon 1e-3, decay 0.99 (PyTorch momentum 0.01).
BN_EPS, BN_MOMENTUM = 1e-3, 0.01


def se_layer(channels: int) -> SqueezeExcite:
    """SE of MobileNetV3 (Sec. 5.3): hidden width exp/4 rounded to a multiple of 8, ReLU, hard sigmoid."""
    return SqueezeExcite(channels, hidden_chs=make_divisible(channels // 4), act="relu", gate="hsigmoid")


def scale_rows(
    table: list[tuple[int, int, int, bool, str, int]], depth_mult: float
) -> list[tuple[int, int, int, bool, str, int]]:
    """Depth scaling for a table of single blocks: rows with the same output channels form a stage of
    n blocks, which becomes ``ceil(n * depth_mult)``: extra blocks repeat the stage's last row (stride 1),
    fewer keep its first rows."""
    if depth_mult == 1.0:
        return list(table)
    rows: list[tuple[int, int, int, bool, str, int]] = []
    for _, group in groupby(table, key=lambda row: row[2]):
        stage = list(group)
        n = max(1, math.ceil(len(stage) * depth_mult))
        k, exp, c, se, act, _ = stage[-1]
        rows += stage[:n] + [(k, exp, c, se, act, 1)] * (n - len(stage))
    return rows


def bneck_stages(table: list[tuple[int, int, int, bool, str, int]], width_mult: float = 1.0) -> list[StageSpec]:
    """One single-block stage per bneck row; the expansion ratio is informative, ``mid_chs`` sets the width."""
    stages, in_chs = [], STEM_CHS
    for k, exp, c, se, act, s in table:
        options = {"kernel_size": k, "act": act, "mid_chs": make_divisible(exp * width_mult)}
        stages.append(StageSpec(exp / in_chs, c, 1, s, block_kwargs=options | {"attention": se_layer if se else None}))
        in_chs = c
    return stages


def mobilenetv3(
    table: list[tuple[int, int, int, bool, str, int]],
    head_chs: int,
    hidden_chs: int,
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    drop_rate: float = 0.2,
    **kwargs: Any,
) -> InvertedResidualNet:
    """MobileNetV3 from a bneck table; every width, the exp sizes and the head's too, scales by ``width_mult``."""
    model = InvertedResidualNet(
        bneck_stages(scale_rows(table, depth_mult), width_mult),
        width_mult=width_mult,
        stem_chs=STEM_CHS,
        head_chs=head_chs,
        head_width_mult=width_mult,
        head_hidden_chs=make_divisible(hidden_chs * width_mult),
        drop_rate=drop_rate,
        act="hswish",
        **kwargs,
    )
    model.depth_mult = depth_mult
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps, module.momentum = BN_EPS, BN_MOMENTUM
    return model


_IMAGENET = dict(
    paper=PAPER,
    table="Table 3 (arXiv v5)",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe="mobilenetv3_imagenet",
    params_exact=True,
    source="torchvision mobilenet_v3",
)


@register_model(
    ModelCard(
        **_IMAGENET,
        ref_params=5_483_032,
        ref_macs=216.59e6,
        paper_params="5.4M",
        paper_madds="219M",
        paper_metrics={"top1": 75.2},
        reproduces=("params",),
        note="216.6M conv+FC MACs vs the printed 219M; adding SE rescales, pooling or h-swish elements does not "
        "land on 219M either (the TF counter is not public).",
    )
)
def mobilenetv3_large_100(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv3(MOBILENETV3_LARGE_TABLE, LARGE_HEAD_CHS, LARGE_HIDDEN_CHS, **kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        ref_params=2_542_856,
        ref_macs=56.51e6,
        paper_params="2.5M",
        paper_madds="56M",
        paper_metrics={"top1": 67.4},
        reproduces=("params", "madds"),
        note="56M and 2.5M as arXiv v5 (1905.02244v5) prints them; the ICCV 2019 version's Table 3 gives "
        "MobileNetV3-Small 66M MAdds and 2.9M params at the same 67.4 (as issue 20's audit reads it; the "
        "ICCV text is not among the sources here).",
    )
)
def mobilenetv3_small_100(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv3(MOBILENETV3_SMALL_TABLE, SMALL_HEAD_CHS, SMALL_HIDDEN_CHS, **kwargs)
