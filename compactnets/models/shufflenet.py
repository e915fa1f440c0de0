"""ShuffleNet (Zhang et al. 2018) and ShuffleNet V2 (Ma et al. 2018).

V1: pointwise group convolutions with a channel shuffle between them (Sec. 3.1-3.2); V2: a channel split,
one half kept and one half through a balanced 1x1 -> 3x3 depthwise -> 1x1 branch, then a 2-group shuffle
(Sec. 4). Both nets: 3x3 stem, max pool, three stages of units, global pool, FC.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layers import ChannelShuffle, ClassifierHead, ConvNormAct, channel_shuffle, drop_branch, make_divisible
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER_V1 = "ShuffleNet (Zhang et al. 2018)"
PAPER_V2 = "ShuffleNet V2 (Ma et al. 2018)"

# ShuffleNet Table 1: output channels of Stage2, Stage3, Stage4 of ShuffleNet 1x for g groups.
SHUFFLENET_CHANNELS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# ShuffleNet Table 1, "Repeat": units per stage, the first with stride 2 (1 + 3, 1 + 7, 1 + 3).
SHUFFLENET_REPEATS: tuple[int, int, int] = (4, 8, 4)
SHUFFLENET_STEM_CHS = 24  # Table 1, Conv1

# ShuffleNet V2 Table 5: output channels of Stage2, Stage3, Stage4 and Conv5 for each width
# (Conv1 and MaxPool have 24 channels at every width; repeats 4, 8, 4 as in V1).
SHUFFLENETV2_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
SHUFFLENETV2_REPEATS: tuple[int, int, int] = (4, 8, 4)
SHUFFLENETV2_STEM_CHS = 24


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (Sec. 3.2, Fig. 2b-c): 1x1 GConv -> BN -> ReLU -> channel shuffle -> 3x3 DWConv
    (stride) -> BN -> 1x1 GConv -> BN, then ReLU after adding the input (stride 1) or after concatenating
    the 3x3 average-pooled input (stride 2, where the branch supplies ``out_chs - in_chs`` channels).

    The bottleneck is ``out_chs // 4`` (Sec. 3.3); ``first_group_conv=False`` leaves the first 1x1
    ungrouped, as the paper does for the first unit of Stage 2 (its input has only 24 channels).
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int, first_group_conv: bool = True) -> None:
        super().__init__()
        mid_chs = out_chs // 4
        branch_chs = out_chs - in_chs if stride == 2 else out_chs
        if mid_chs % groups or branch_chs % groups or branch_chs <= 0:
            raise ValueError(
                f"ShuffleUnit({in_chs} -> {out_chs}, g={groups}): the bottleneck ({mid_chs}) and branch "
                f"({branch_chs}) channels must be positive multiples of g; use output channels divisible by 4g"
            )
        if stride == 1 and in_chs != out_chs:
            raise ValueError(f"a stride-1 ShuffleUnit adds its input: in_chs ({in_chs}) must equal out_chs ({out_chs})")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["gconv1"] = ConvNormAct(in_chs, mid_chs, 1, groups=groups if first_group_conv else 1, act="relu")
        if groups > 1:
            layers["shuffle"] = ChannelShuffle(groups)
        layers["dwconv"] = ConvNormAct(mid_chs, mid_chs, 3, stride, groups=mid_chs, act=None)  # no ReLU (Sec. 3.2)
        layers["gconv2"] = ConvNormAct(mid_chs, branch_chs, 1, groups=groups, act=None)
        self.branch = nn.Sequential(layers)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.in_chs, self.out_chs, self.stride, self.groups = in_chs, out_chs, stride, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            return self.act(torch.cat([self.shortcut(x), self.branch(x)], dim=1))
        return self.act(x + drop_branch(self, self.branch(x)))

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add of stride-1 units (profiler protocol)."""
        return {"residual": output.numel() if self.stride == 1 else 0}


class ShuffleV2Unit(nn.Module):
    """ShuffleNet V2 unit (Sec. 4, Fig. 3c-d).

    Stride 1: split the channels in two halves; one passes unchanged (guideline G3), the other goes
    through 1x1 conv -> BN -> ReLU -> 3x3 DWConv -> BN -> 1x1 conv -> BN -> ReLU with equal widths
    (G1) and no group convs (G2). Stride 2: no split; the whole input feeds that branch and a
    3x3 DWConv (s2) -> BN -> 1x1 conv -> BN -> ReLU branch. Concatenate, then shuffle with 2 groups.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs % 2 or (stride == 1 and in_chs != out_chs):
            raise ValueError(
                f"ShuffleV2Unit({in_chs} -> {out_chs}, stride {stride}): out_chs must be even, and equal "
                "in_chs at stride 1 (half the channels pass unchanged)"
            )
        branch_chs = out_chs // 2
        if stride == 2:
            self.branch1 = nn.Sequential(
                OrderedDict(
                    dwconv=ConvNormAct(in_chs, in_chs, 3, 2, groups=in_chs, act=None),
                    conv=ConvNormAct(in_chs, branch_chs, 1, act="relu"),
                )
            )
        self.branch2 = nn.Sequential(
            OrderedDict(
                conv1=ConvNormAct(in_chs if stride == 2 else branch_chs, branch_chs, 1, act="relu"),
                dwconv=ConvNormAct(branch_chs, branch_chs, 3, stride, groups=branch_chs, act=None),
                conv2=ConvNormAct(branch_chs, branch_chs, 1, act="relu"),
            )
        )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = x.shape[1] // 2  # channel split, as slices: XNNPACK delegates them, not split_with_sizes
            kept, x = x[:, :half], x[:, half:]
            out = torch.cat([kept, self.branch2(x)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return channel_shuffle(out, 2)


class ShuffleNet(CompactNet):
    """ShuffleNet (Table 1): Conv1 (3x3, s2) -> MaxPool -> Stage2-4 of :class:`ShuffleUnit` -> pool -> FC.

    ``width_mult`` is the paper's scale factor s ("ShuffleNet s x", Sec. 4.1.1): stage channels are
    ``s`` times Table 1's, rounded to multiples of 4g so the bottleneck splits into g groups; the stem
    defaults to ``24 s`` rounded to a multiple of g (``stem_chs`` overrides it). ``depth_mult`` scales the
    units per stage to ``ceil(n * depth_mult)``.
    """

    def __init__(
        self,
        groups: int = 3,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_chs: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if groups not in SHUFFLENET_CHANNELS:
            raise ValueError(f"ShuffleNet has groups {sorted(SHUFFLENET_CHANNELS)} (Table 1), got {groups}")
        self.in_chans, self.width_mult, self.depth_mult = in_chans, width_mult, depth_mult
        chs = stem_chs if stem_chs is not None else make_divisible(SHUFFLENET_STEM_CHS * width_mult, groups)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, 2, act="relu"), nn.MaxPool2d(3, 2, 1)]
        for stage, (base_chs, repeats) in enumerate(zip(SHUFFLENET_CHANNELS[groups], SHUFFLENET_REPEATS, strict=True)):
            out_chs = make_divisible(base_chs * width_mult, 4 * groups)
            for i in range(math.ceil(repeats * depth_mult)):
                first = i == 0
                layers.append(ShuffleUnit(chs, out_chs, 2 if first else 1, groups, not (first and stage == 0)))
                chs = out_chs
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


def shufflenetv2_channels(width_mult: float) -> tuple[int, int, int, int]:
    """Stage2-4 and Conv5 channels for ``width_mult``: Table 5's row at the paper's widths (0.5, 1, 1.5, 2),
    linear interpolation between them otherwise (extrapolated from the nearest segment outside
    [0.5, 2]), stages rounded to multiples of 4 (even halves) and Conv5 to multiples of 8."""
    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive, got {width_mult}")
    if width_mult in SHUFFLENETV2_CHANNELS:
        return SHUFFLENETV2_CHANNELS[width_mult]
    widths = sorted(SHUFFLENETV2_CHANNELS)
    right = min(max(bisect.bisect(widths, width_mult), 1), len(widths) - 1)
    w0, w1 = widths[right - 1], widths[right]
    frac = (width_mult - w0) / (w1 - w0)
    row = [a + frac * (b - a) for a, b in zip(SHUFFLENETV2_CHANNELS[w0], SHUFFLENETV2_CHANNELS[w1], strict=True)]
    stages = (make_divisible(c, 4, min_value=4) for c in row[:3])
    return (*stages, make_divisible(row[3], 8))  # type: ignore[return-value]


class ShuffleNetV2(CompactNet):
    """ShuffleNet V2 (Table 5): Conv1 (3x3, s2) -> MaxPool -> Stage2-4 of :class:`ShuffleV2Unit` ->
    Conv5 (1x1) -> pool -> FC. ``depth_mult`` scales the units per stage to ``ceil(n * depth_mult)``."""

    def __init__(
        self,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        repeats: Sequence[int] = SHUFFLENETV2_REPEATS,
    ) -> None:
        super().__init__()
        self.in_chans, self.width_mult, self.depth_mult = in_chans, width_mult, depth_mult
        *stage_chs, conv5_chs = shufflenetv2_channels(width_mult)
        chs = SHUFFLENETV2_STEM_CHS
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, 2, act="relu"), nn.MaxPool2d(3, 2, 1)]
        for out_chs, n in zip(stage_chs, repeats, strict=True):
            for i in range(math.ceil(n * depth_mult)):
                layers.append(ShuffleV2Unit(chs, out_chs, 2 if i == 0 else 1))
                chs = out_chs
        layers.append(ConvNormAct(chs, conv5_chs, 1, act="relu"))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(conv5_chs, num_classes, drop_rate)
        init_weights(self)


# ---------------------------------------------------------------------------- ShuffleNet (V1)
_V1 = dict(
    paper=PAPER_V1,
    table="Table 5",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe="shufflenet_imagenet",
)
_V1_PARAMS_NOTE = (
    "The ShuffleNet paper prints no parameter counts; {params} is ANTNets Table 7's quote, which we reproduce."
)


@register_model(
    ModelCard(
        **_V1,
        ref_params=3_442_168,
        ref_macs=292.44e6,
        params_exact=True,
        paper_params="3.4M",
        paper_madds="292M",
        paper_metrics={"top1": 71.5},
        reproduces=("params", "madds"),
        source="reference build, ARCHITECTURES.md 6 (Megvii ShuffleNet-Series)",
        note="Stem kept at 24 channels as in Megvii's code (a stem scaled to 36 gives 299.6M, not 292M). "
        "FLOPs in the ShuffleNet paper are MACs. " + _V1_PARAMS_NOTE.format(params="3.4M"),
    )
)
def shufflenet_g3_150(**kwargs: Any) -> ShuffleNet:
    """ShuffleNet 1.5x (g=3)."""
    kwargs.setdefault("width_mult", 1.5)
    kwargs.setdefault("stem_chs", SHUFFLENET_STEM_CHS)
    return ShuffleNet(groups=3, **kwargs)


@register_model(
    ModelCard(
        **_V1,
        ref_params=5_450_776,
        ref_macs=524.05e6,
        params_exact=True,
        paper_params="5.4M",
        paper_madds="524M",
        paper_metrics={"top1": 73.7},
        reproduces=("params", "madds"),
        source="reference build, ARCHITECTURES.md 6 (Megvii ShuffleNet-Series)",
        note="Stem 48 (24 x 2). " + _V1_PARAMS_NOTE.format(params="5.4M") + " ChannelNets Table 1 quotes "
        "'ShuffleNet 2x' at 5.3M params, 524M FLOPs and 70.9% top-1 (0.709): neither 5.3M (we count 5.45M) nor "
        "70.9 (29.1% error; ShuffleNet's Tables 5 and 6 print 26.3%) matches the card.",
    )
)
def shufflenet_g3_200(**kwargs: Any) -> ShuffleNet:
    """ShuffleNet 2x (g=3)."""
    kwargs.setdefault("width_mult", 2.0)
    return ShuffleNet(groups=3, **kwargs)


@register_model(
    ModelCard(
        **_V1,
        ref_params=2.435e6,
        ref_macs=138.37e6,
        paper_madds="140M",
        paper_metrics={"top1": 67.6},
        source="reference build, ARCHITECTURES.md 6",
        note="138.4M MACs against Table 5's 140M; Table 1 lists the same network at 137M. Table 1's g=1/2/3 "
        "complexities (143/140/137M) reproduce as 143.1/140.8/137.5M, g=4 and g=8 do not (134.3/138.4M vs "
        "133/137M).",
    )
)
def shufflenet_g8_100(**kwargs: Any) -> ShuffleNet:
    """ShuffleNet 1x (g=8)."""
    kwargs.setdefault("width_mult", 1.0)
    return ShuffleNet(groups=8, **kwargs)


# ---------------------------------------------------------------------------- ShuffleNet V2
_V2 = dict(
    paper=PAPER_V2,
    table="Table 5 (FLOPs, weights), Table 8 (error)",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe="shufflenet_imagenet",
    params_exact=True,
    reproduces=("params",),
    source="torchvision shufflenet_v2",
)
_V2_NOTE = (
    "The paper's FLOPs exceed conv+FC MACs by 0.5/1.1/3.2/7.7M (0.5x/1x/1.5x/2x); no single counting "
    "convention closes the gap (+BN elements fits 1x and 1.5x only). Torchvision and Megvii's code have "
    "the same structure and counts."
)


def _v2_card(ref_params: int, ref_macs: float, params: str, madds: str, top1: float) -> ModelCard:
    return ModelCard(
        **_V2,
        ref_params=ref_params,
        ref_macs=ref_macs,
        paper_params=params,
        paper_madds=madds,
        paper_metrics={"top1": top1},
        note=f"{ref_macs / 1e6:.1f}M MACs vs the printed {madds}. " + _V2_NOTE,
    )


@register_model(_v2_card(1_366_792, 40.48e6, "1.4M", "41M", 60.3))
def shufflenetv2_050(**kwargs: Any) -> ShuffleNetV2:
    kwargs.setdefault("width_mult", 0.5)
    return ShuffleNetV2(**kwargs)


@register_model(_v2_card(2_278_604, 144.91e6, "2.3M", "146M", 69.4))
def shufflenetv2_100(**kwargs: Any) -> ShuffleNetV2:
    kwargs.setdefault("width_mult", 1.0)
    return ShuffleNetV2(**kwargs)


@register_model(_v2_card(3_503_624, 295.76e6, "3.5M", "299M", 72.6))
def shufflenetv2_150(**kwargs: Any) -> ShuffleNetV2:
    kwargs.setdefault("width_mult", 1.5)
    return ShuffleNetV2(**kwargs)


@register_model(_v2_card(7_393_996, 583.25e6, "7.4M", "591M", 74.9))
def shufflenetv2_200(**kwargs: Any) -> ShuffleNetV2:
    kwargs.setdefault("width_mult", 2.0)
    return ShuffleNetV2(**kwargs)
