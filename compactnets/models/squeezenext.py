"""SqueezeNext (Gholami et al. 2018, "SqueezeNext: Hardware-Aware Neural Network Design").

The block (Fig. 1, right): a two-stage 1x1 squeeze (C/2, then C/4), a 3x3 conv factored into 3x1
and 1x3 (C/2 each), a 1x1 expansion back to C, every conv with BN and ReLU, plus a residual. The network
(Fig. 3): a strided conv and max pool, four stages of blocks, a 1x1 conv to 128 channels, pool, FC. Details
that the figures leave open are those of the authors' Caffe definitions (github.com/amirgholami/SqueezeNext):
227x227 input, unpadded stem conv (7x7 in SqNxt-23, 5x5 in the v5 variants), a 1x1 projection (with BN
and ReLU) on the first block of every stage, convs without bias, FC without bias.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..layers import ClassifierHead, ConvNormAct, drop_branch
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "SqueezeNext (Gholami et al. 2018)"

# SqueezeNext Fig. 3 (SqNxt-23) and Fig. 9 (the v5 redistribution): blocks per stage after the first conv and pool.
SQUEEZENEXT_DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "23": (6, 6, 8, 1),
    "23v5": (2, 4, 14, 1),
}
# Fig. 3: stage output channels at width 1.0 (the "1.0-" prefix scales them; stem and head stay).
SQUEEZENEXT_CHANNELS = (32, 64, 128, 256)
STEM_CHS, HEAD_CHS = 64, 128


class SqueezeNextBlock(nn.Module):
    """The SqueezeNext block (Fig. 1, right): 1x1 (C/2) -> 1x1 (C/4) -> 3x1 (C/2) -> 1x3 (C/2) ->
    1x1 (C), C = ``out_chs``, each conv -> BN -> ReLU; the sum with the shortcut is followed by a ReLU.

    ``project`` gives the shortcut a strided 1x1 conv -> BN -> ReLU (first block of each stage).
    ``branch_from_shortcut`` feeds the branch with that projection instead of the block input (the
    authors' v5 definitions do; SqNxt-23's do not). ``width_first`` puts the 1x3 before the 3x1: the
    Caffe definitions alternate the order from block to block.
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        project: bool = False,
        branch_from_shortcut: bool = False,
        width_first: bool = False,
    ) -> None:
        super().__init__()
        if not project and (stride != 1 or in_chs != out_chs):
            raise ValueError(f"a {in_chs}->{out_chs} stride-{stride} SqueezeNext block needs project=True")
        self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride) if project else nn.Identity()
        self.branch_from_shortcut = project and branch_from_shortcut
        branch_in, branch_stride = (out_chs, 1) if self.branch_from_shortcut else (in_chs, stride)
        half, quarter = out_chs // 2, out_chs // 4
        separable = [((3, 1), quarter, half), ((1, 3), half, half)]
        if width_first:
            separable = [((1, 3), quarter, half), ((3, 1), half, half)]
        self.branch = nn.Sequential(
            OrderedDict(
                squeeze1=ConvNormAct(branch_in, half, 1, branch_stride),
                squeeze2=ConvNormAct(half, quarter, 1),
                sep1=ConvNormAct(separable[0][1], separable[0][2], separable[0][0]),
                sep2=ConvNormAct(separable[1][1], separable[1][2], separable[1][0]),
                expand=ConvNormAct(half, out_chs, 1),
            )
        )
        self.act = nn.ReLU(inplace=True)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        out = self.branch(shortcut if self.branch_from_shortcut else x)
        return self.act(drop_branch(self, out) + shortcut)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add (profiler protocol)."""
        return {"residual": output.numel()}


@dataclass(frozen=True)
class SqueezeNextConfig:
    """``width``-SqNxt-``depth``: e.g. 2.0-SqNxt-23v5 = ``SqueezeNextConfig("23v5", 2.0)``."""

    depth: str = "23"
    width: float = 1.0

    @property
    def v5(self) -> bool:
        return self.depth.endswith("v5")


class SqueezeNext(CompactNet):
    """Stem conv -> BN -> ReLU, 3x3/2 max pool (ceil mode, as Caffe), four stages, 1x1 conv to 128,
    global pool, FC. Stages 2-4 halve the resolution in their first block's 1x1 convs."""

    def __init__(
        self,
        config: SqueezeNextConfig = SqueezeNextConfig(),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if config.depth not in SQUEEZENEXT_DEPTHS:
            raise ValueError(f"unknown SqueezeNext depth {config.depth!r}; choose {', '.join(SQUEEZENEXT_DEPTHS)}")
        self.in_chans, self.config = in_chans, config
        stem_kernel = 5 if config.v5 else 7
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=ConvNormAct(in_chans, STEM_CHS, stem_kernel, 2, padding=0),
            pool=nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        chs = STEM_CHS
        rows = zip(SQUEEZENEXT_DEPTHS[config.depth], SQUEEZENEXT_CHANNELS, strict=True)
        for stage, (repeats, stage_chs) in enumerate(rows):
            out_chs = int(stage_chs * config.width)
            for i in range(repeats):
                layers[f"stage{stage + 1}_{i + 1}"] = SqueezeNextBlock(
                    chs, out_chs, 2 if stage > 0 and i == 0 else 1,
                    project=i == 0, branch_from_shortcut=config.v5, width_first=i % 2 == 1,
                )  # fmt: skip
                chs = out_chs
        layers["head_conv"] = ConvNormAct(chs, HEAD_CHS, 1)
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(HEAD_CHS, num_classes, drop_rate)
        init_weights(self)


_CARD = dict(
    paper=PAPER,
    input_size=(3, 227, 227),
    num_classes=1000,
    recipe="squeezenext_imagenet",
    source="reference build of the authors' Caffe train_val.prototxt",
    convention="macs+bn",
)
_NOTE = (
    "The paper's MACs are conv/FC MACs plus one per BN element (Caffe's Scale layer multiplies and adds): "
    "278.0M + 4.0M = 282.0M for 1.0-SqNxt-23, 702.6M + 5.4M = 708.0M for 2.0-SqNxt-23v5. Params include "
    "an FC bias (+1,000) the Caffe FC lacks."
)


@register_model(
    ModelCard(
        **_CARD,
        table="ImageNet results table (1.0-SqNxt-23)",
        ref_params=718_280,
        ref_macs=278.00e6,
        params_exact=True,
        paper_params="0.72M",
        paper_madds="282M",
        paper_metrics={"top1": 59.05, "top5": 82.60},
        reproduces=("params", "madds"),
        note=_NOTE,
    )
)
def squeezenext_23_100(**kwargs: Any) -> SqueezeNext:
    return SqueezeNext(SqueezeNextConfig("23", 1.0), **kwargs)


@register_model(
    ModelCard(
        **_CARD,
        table="ImageNet results table (2.0-SqNxt-23v5), as quoted by ANTNets Table 7",
        ref_params=3_223_912,
        ref_macs=702.59e6,
        params_exact=True,
        paper_params="3.2M",
        paper_madds="708M",
        paper_metrics={"top1": 67.5, "top5": 88.2},
        reproduces=("params", "madds"),
        note=_NOTE,
    )
)
def squeezenext_23v5_200(**kwargs: Any) -> SqueezeNext:
    return SqueezeNext(SqueezeNextConfig("23v5", 2.0), **kwargs)
