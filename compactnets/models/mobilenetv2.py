"""MobileNetV2 (Sandler et al. 2018) and the inverted-residual backbone its descendants share.

ANTNet, IGCV3 and SeesawNet keep MobileNetV2's skeleton (stem, rows of inverted residual blocks,
1x1 head conv, pooling, FC) and change the block; they build on :class:`InvertedResidualNet`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from torch import nn

from ..layers import ClassifierHead, ConvNormAct, InvertedResidual, SqueezeExcite, make_divisible
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "MobileNetV2 (Sandler et al. 2018)"
ANTNETS = "ANTNets (Xiong et al. 2019)"


@dataclass(frozen=True)
class StageSpec:
    """One row of an inverted-residual table: expansion t, output channels c, repeats n, stride s.

    ``block`` builds each of the n blocks as ``block(in_chs, out_chs, stride, expansion, **block_kwargs)``;
    the stride applies to the first block of the row only.
    """

    expansion: float
    out_chs: int
    repeats: int
    stride: int
    block: Callable[..., nn.Module] = InvertedResidual
    block_kwargs: Mapping[str, Any] = field(default_factory=dict)


def stages_from_table(
    table: Sequence[tuple[float, int, int, int]],
    strides: Sequence[int] | None = None,
    block: Callable[..., nn.Module] | Sequence[Callable[..., nn.Module]] = InvertedResidual,
    row_kwargs: Sequence[Mapping[str, Any]] | None = None,
    **block_kwargs: Any,
) -> list[StageSpec]:
    """Turn a paper's ``(t, c, n, s)`` rows into stages: the one path from table to network for every
    inverted-residual family. ``strides`` replaces the s column (CIFAR variants); ``block`` and ``row_kwargs``
    may be given per row (ANTNet's e-ANTBlock rows, its per-row r and g), ``block_kwargs`` apply to all."""
    blocks = [block] * len(table) if callable(block) else list(block)
    extra = list(row_kwargs) if row_kwargs is not None else [{}] * len(table)
    if strides is not None and len(strides) != len(table):
        raise ValueError(f"{len(strides)} strides given for {len(table)} rows")
    if len(blocks) != len(table) or len(extra) != len(table):
        raise ValueError(f"{len(table)} rows need as many blocks and row_kwargs")
    return [
        StageSpec(t, c, n, strides[i] if strides is not None else s, blocks[i], {**block_kwargs, **extra[i]})
        for i, (t, c, n, s) in enumerate(table)
    ]


class InvertedResidualNet(CompactNet):
    """Stem conv -> rows of blocks -> 1x1 head conv -> global pool -> dropout -> FC (MobileNetV2 Table 2).

    Channels scale by ``width_mult`` rounded to multiples of 8; the head conv only grows (for
    ``width_mult > 1``), as in the MobileNetV2 reference code, unless ``head_width_mult`` says otherwise.
    EfficientNet (Tan & Le 2019, Sec. 3.3) scales each row's repeats to ``ceil(n * depth_mult)`` and drops
    residual branches with a rate rising linearly to ``drop_path_rate`` over the blocks; MobileNetV3 adds
    a hidden layer of ``head_hidden_chs`` to the classifier.
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_chans: int = 3,
        stem_chs: int = 32,
        stem_stride: int = 2,
        head_chs: int = 1280,
        drop_rate: float = 0.2,
        act: str = "relu6",
        depth_mult: float = 1.0,
        head_width_mult: float | None = None,
        head_hidden_chs: int = 0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.width_mult, self.depth_mult = width_mult, depth_mult
        chs = make_divisible(stem_chs * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stem_stride, act=act)]
        repeats = [math.ceil(stage.repeats * depth_mult) for stage in stages]
        index, total = 0, sum(repeats)
        for stage, n in zip(stages, repeats, strict=True):
            out_chs = make_divisible(stage.out_chs * width_mult)
            for i in range(n):
                stride = stage.stride if i == 0 else 1
                kwargs = dict(stage.block_kwargs)
                if drop_path_rate > 0:
                    kwargs["drop_path_rate"] = drop_path_rate * index / total
                layers.append(stage.block(chs, out_chs, stride, stage.expansion, **kwargs))
                chs, index = out_chs, index + 1
        head_chs = make_divisible(head_chs * (max(1.0, width_mult) if head_width_mult is None else head_width_mult))
        layers.append(ConvNormAct(chs, head_chs, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(head_chs, num_classes, drop_rate, hidden_chs=head_hidden_chs, hidden_act=act)
        init_weights(self)


# MobileNetV2 Table 2: expansion t, output channels c, repeats n, stride s.
MOBILENETV2_TABLE: list[tuple[float, int, int, int]] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
# CIFAR (32x32): stem stride 1 and the 24-channel row at stride 1 (32->32->16->8->8->4->4), the
# pattern that reproduces ANTNets Tables 3-5 (ARCHITECTURES.md 2.3).
CIFAR_STEM_STRIDE = 1
CIFAR_STRIDES = [1, 1, 2, 2, 1, 2, 1]

# The SE-MobileNetV2 ablation of ANTNets Table 4 uses ANTNet's per-row reduction ratios.
ANTNET_REDUCTIONS = [8, 8, 12, 16, 24, 32, 64]


def mobilenetv2(cifar: bool = False, se: bool = False, **kwargs: Any) -> InvertedResidualNet:
    """MobileNetV2; ``cifar`` uses the 32x32 strides, ``se`` adds SE to each block's output."""
    stages = stages_from_table(MOBILENETV2_TABLE, CIFAR_STRIDES if cifar else None)
    if se:  # SENet-style: on the block output, before the residual add
        stages = [
            replace(stage, block_kwargs={"attention": partial(SqueezeExcite, reduction=r), "attention_site": "project"})
            for stage, r in zip(stages, ANTNET_REDUCTIONS, strict=True)
        ]
    if cifar:
        kwargs.setdefault("stem_stride", CIFAR_STEM_STRIDE)
    return InvertedResidualNet(stages, **kwargs)


_IMAGENET = dict(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, recipe="mobilenetv2_imagenet")


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 4",
        ref_params=3_504_872,
        ref_macs=300.77e6,
        params_exact=True,
        paper_params="3.4M",
        paper_madds="300M",
        paper_metrics={"top1": 72.0},
        reproduces=("madds",),
        source="torchvision mobilenet_v2",
        note="The paper's 3.4M counts conv and FC weights without BN (3,470,760, truncated). ANTNets Table 7 "
        "quotes 3.4M / 300M / 72.0 with a top-5 of 91.0 (not printed by MobileNetV2); SeesawNet Table 5 quotes "
        "3.5M / 314M / 72.0: the params with BN (3,504,872) and fvcore's count (314.2M; ARCHITECTURES.md 4.5, 7.7).",
    )
)
def mobilenetv2_100(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv2(**kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 4",
        ref_params=6_108_776,
        ref_macs=582.2e6,
        paper_params="6.9M",
        paper_madds="585M",
        paper_metrics={"top1": 74.7},
        source="timm mobilenetv2_140",
        note="6.9M is not reproducible: the 1.4 model has 6.06M weights, 6.11M with BN "
        "(ARCHITECTURES.md 7.7). Conv MACs 582.2M vs the printed 585M. ANTNets Table 7 quotes 6.9M / 585M / "
        "74.7 with a top-5 of 92.5 (not printed by MobileNetV2).",
    )
)
def mobilenetv2_140(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv2(width_mult=1.4, **kwargs)


_CIFAR100 = dict(paper=ANTNETS, input_size=(3, 32, 32), num_classes=100, recipe="antnet")


@register_model(
    ModelCard(
        **_CIFAR100,
        table="Table 3",
        ref_params=2_351_972,
        ref_macs=88.09e6,
        params_exact=True,
        paper_params="2.4M",
        paper_madds="91.1M",
        paper_metrics={"top1": 74.2, "top5": 93.3},
        convention="macs+bn+act",
        reproduces=("params", "madds"),
        paper_rtol=0.002,
        note="CIFAR strides: stem s1 and the 24-channel row s1 (the text's '14x14x96 block' gives 43.9M). "
        "Conv MACs are 88.09M; adding BN and ReLU6 elements gives 91.23M, within 0.2% of 91.1M. SeesawNet "
        "Table 7 reports this same network (t = 6, 4x4 final map, CIFAR-100) as 'MobileNetV2(1.0)': 2.4M / "
        "89M / 74.46 top-1, trained with SeesawNet's recipe; its 89M is within 1% of the conv MACs (88.09M).",
    )
)
def mobilenetv2_cifar(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv2(cifar=True, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR100,
        table="Table 4",
        ref_params=2.367e6,
        ref_macs=88.10e6,
        paper_metrics={"top1": 74.1, "top5": 92.8},
        note="SE on each block output before the residual add; r is not given, ANTNet's per-row r used.",
    )
)
def se_mobilenetv2_cifar(**kwargs: Any) -> InvertedResidualNet:
    return mobilenetv2(cifar=True, se=True, **kwargs)
