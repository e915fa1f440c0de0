"""ChannelNets (Gao, Wang, Ji, NeurIPS 2018): MobileNets compressed with channel-wise convolutions.

ChannelNet-v1 replaces MobileNet's 512-channel layers with group modules (GM: two depthwise separable
layers with 1x1 group convs and a residual) and group channel-wise modules (GCWM: a GM whose groups are
fused by a group channel-wise conv). v2 also replaces the last depthwise separable layer with a
depth-wise separable channel-wise conv; v3 also replaces pooling + FC with the convolutional
classification layer. The operators are in :mod:`compactnets.layers.channelwise`.

Two readings of the network are built (ARCHITECTURES.md 5.2-5.3):

- the paper text (Sec. 3.5), MobileNets Table 1 with modules in place of the 512-channel layers:
  ``channelnet_v1``, ``_v1_minus``, ``_v2``, ``_v3``, ``_v1_075``, ``_v1_050``. It reproduces the printed
  parameters (3.7M, 2.7M; v3 is 1.63M against a printed 1.7M).
- the official code (``model.py``, ported by pytorchcv): DenseNet-style concatenations and the modules in
  the order GM, GCWM, GCWM with the fusion at each GCWM's input: ``channelnet_v1_code`` (3,875,112 params).

Neither reading gives the paper's 407M FLOPs (468.5M and 535.0M conv MACs).

Training recipe ``"channelnet"`` (Sec. 4.2; ARCHITECTURES.md 5.4): SGD with momentum 0.9 (Nesterov in the
code), 80 epochs, batch 512, learning rate 0.1 multiplied by 0.1 at epochs 45, 60, 65, 70 and 75; dropout
1e-4 after the 1x1 convs (built into the models, ``pw_drop_rate``); the code adds label smoothing 0.1 and
weight decay 4e-5 on conv and FC weights only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import torch
from torch import nn

from ..layers import (
    ClassifierHead,
    ConvClassifierHead,
    ConvNormAct,
    DepthwiseSeparable,
    DepthwiseSeparableChannelwise,
    GroupChannelwiseConv,
    drop_branch,
    make_divisible,
)
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "ChannelNets (Gao et al. 2018)"

LayerKind = Literal["conv", "dws", "gm", "gcwm", "dwscw"]
"""A table row's layer: stem conv, depthwise separable layer, GM, GCWM, depth-wise separable
channel-wise conv."""

FusionSite = Literal["pw", "input"]
"""Where a GCWM fuses its groups: after its second 1x1 group conv (paper, Sec. 3.5) or at its input (code)."""

# ChannelNets Sec. 3.5 on MobileNets Table 1 (the paper-text reading, ARCHITECTURES.md 5.2): after the
# stem conv (3x3, 32, stride 2), (layer, output channels, stride). "Six consecutive depth-wise separable
# layers with 512 input and output channels are replaced by two GCWMs followed by one GM": MobileNet has
# five such layers; the three modules hold six.
CHANNELNET_V1_TABLE: list[tuple[LayerKind, int, int]] = [
    ("dws", 64, 1),
    ("dws", 128, 2), ("dws", 128, 1),
    ("dws", 256, 2), ("dws", 256, 1),
    ("dws", 512, 2),
    ("gcwm", 512, 1), ("gcwm", 512, 1), ("gm", 512, 1),
    ("dws", 1024, 2), ("dws", 1024, 1),
]  # fmt: skip

# Table 3's ChannelNet-v1(-): "we replace the two GCWMs with GMs".
CHANNELNET_V1_MINUS_TABLE = [("gm" if kind == "gcwm" else kind, c, s) for kind, c, s in CHANNELNET_V1_TABLE]

# ChannelNet-v2 (Sec. 3.5): the last depthwise separable layer becomes a depth-wise separable
# channel-wise conv. The text calls it 512 -> 1024, but a DWSCW keeps its width (Sec. 3.3) and "1 million
# parameters saved" is 1024 x 1024: it is the last 1024 -> 1024 layer, as in the official code.
CHANNELNET_V2_TABLE = [*CHANNELNET_V1_TABLE[:-1], ("dwscw", 1024, 1)]

# The official code (model.py, ARCHITECTURES.md 5.2): units of two layers whose outputs are merged by
# "cat" (concatenate both outputs), "add" (residual around the second) or "seq" (the second only).
# Rows: ((layer, output channels, stride) x 2, merge); the code's layer names in the comments.
CHANNELNET_CODE_TABLE: list[tuple[tuple[LayerKind, int, int], tuple[LayerKind, int, int], str]] = [
    (("conv", 32, 2), ("dws", 64, 1), "cat"),  # conv_s, conv_1_0
    (("dws", 128, 2), ("dws", 128, 1), "cat"),  # conv_1_1, conv_1_2
    (("dws", 256, 2), ("dws", 256, 1), "cat"),  # conv_1_3, conv_1_4
    (("dws", 512, 2), ("gm", 512, 1), "add"),  # conv_1_5, conv_2_1
    (("gcwm", 512, 1), ("gcwm", 512, 1), "add"),  # conv_2_2, conv_2_3
    (("dws", 1024, 2), ("dws", 1024, 1), "seq"),  # conv_3_0, conv_3_1
]

GROUPS = 2  # "In these modules, we set the number of groups to 2" (Sec. 3.5)
GCW_KERNEL = 8  # "the kernel size of group channel-wise convolutions is set to 8" (Sec. 4.2)
DWSCW_KERNEL = 64  # "In depth-wise separable channel-wise convolutions, we set the kernel size to 64"
PW_DROP_RATE = 1e-4  # "Dropout with a rate of 0.0001 is applied after 1x1 convolutions"


class GroupModule(nn.Module):
    """Group module (GM, Fig. 3a) and group channel-wise module (GCWM, Fig. 3b).

    Two depthwise separable layers whose 1x1 convs have ``groups`` groups (3x3 depthwise -> 1x1 group
    conv -> BN -> ReLU6, nothing between the depthwise and the 1x1 conv) and a residual around both.
    ``fusion`` adds a group channel-wise conv with kernel ``channel_kernel``: ``"pw"`` right after the
    second 1x1 group conv, before its BN (the paper); ``"input"`` at the module input (the official code,
    which also has no residual of its own: its units add it). ``None`` gives a GM.
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(
        self,
        channels: int,
        groups: int = GROUPS,
        channel_kernel: int = GCW_KERNEL,
        fusion: FusionSite | None = None,
        residual: bool = True,
        act: str = "relu6",
        drop_rate: float = PW_DROP_RATE,
    ) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if fusion == "input":
            layers["fuse"] = GroupChannelwiseConv(channels, groups, channel_kernel)
            if drop_rate > 0:  # the code puts its dropout after every conv, this one included
                layers["drop"] = nn.Dropout(drop_rate)
        elif fusion not in (None, "pw"):
            raise ValueError(f"fusion must be None, 'pw' or 'input', got {fusion!r}")
        for i in (1, 2):
            fuse = GroupChannelwiseConv(channels, groups, channel_kernel) if fusion == "pw" and i == 2 else None
            layers[f"dws{i}"] = DepthwiseSeparable(
                channels, channels, act=act, pw_groups=groups, dw_norm_act=False, pw_drop_rate=drop_rate, pw_fuse=fuse
            )
        self.layers = nn.Sequential(layers)
        self.fusion, self.use_residual = fusion, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + drop_branch(self, out) if self.use_residual else out

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add (profiler protocol)."""
        return {"residual": output.numel()} if self.use_residual else {}


class MergeUnit(nn.Module):
    """Two layers in sequence whose outputs the official code merges: ``"cat"`` concatenates both
    outputs (DenseNet style), ``"add"`` adds the first to the second (a residual around the second),
    ``"seq"`` keeps the second."""

    def __init__(self, first: nn.Module, second: nn.Module, merge: str) -> None:
        super().__init__()
        if merge not in ("cat", "add", "seq"):
            raise ValueError(f"merge must be 'cat', 'add' or 'seq', got {merge!r}")
        self.first, self.second, self.merge = first, second, merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        out = self.second(x)
        if self.merge == "cat":
            return torch.cat((x, out), dim=1)
        return x + out if self.merge == "add" else out

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add of an ``"add"`` unit (profiler protocol)."""
        return {"residual": output.numel()} if self.merge == "add" else {}


def channelnet_layer(
    kind: LayerKind,
    in_chs: int,
    out_chs: int,
    stride: int,
    fusion: FusionSite = "pw",
    residual: bool = True,
    dw_norm_act: bool = True,
    drop_rate: float = PW_DROP_RATE,
) -> nn.Module:
    """One table row as a module; GMs and GCWMs keep their width (``in_chs == out_chs``, stride 1)."""
    if kind == "conv":
        return ConvNormAct(in_chs, out_chs, 3, stride, act="relu6")
    if kind == "dws":
        return DepthwiseSeparable(in_chs, out_chs, stride, act="relu6", dw_norm_act=dw_norm_act, pw_drop_rate=drop_rate)
    if in_chs != out_chs or stride != 1:
        raise ValueError(f"a {kind} layer keeps its width and resolution; got {in_chs} -> {out_chs}, stride {stride}")
    if kind == "dwscw":
        return DepthwiseSeparableChannelwise(in_chs, channel_kernel=DWSCW_KERNEL)
    if kind in ("gm", "gcwm"):
        return GroupModule(in_chs, fusion=fusion if kind == "gcwm" else None, residual=residual, drop_rate=drop_rate)
    raise ValueError(f"unknown ChannelNet layer {kind!r}; use one of: conv, dws, gm, gcwm, dwscw")


class ChannelNet(CompactNet):
    """ChannelNet, the paper-text reading: MobileNets' stem and a table of layers (:data:`CHANNELNET_V1_TABLE`).

    ``head="conv"`` uses the convolutional classification layer (v3) with a ``feature_size`` x
    ``feature_size`` kernel (7 for 224x224 inputs); ``"fc"`` uses pooling + FC. ``width_mult`` scales every
    width as MobileNets does (Sec. 4.4). ``dw_norm_act=False`` also removes the BN and activation after
    the depthwise convs of the MobileNet layers, as Sec. 4.2 says for all of them (the modules never
    have them); the reference count keeps them (3,708,232 params for v1, 3,703,432 without).
    ``pw_drop_rate`` is the dropout after every 1x1 conv (1e-4, Sec. 4.2).
    """

    def __init__(
        self,
        table: list[tuple[LayerKind, int, int]] = CHANNELNET_V1_TABLE,
        head: Literal["fc", "conv"] = "fc",
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_chans: int = 3,
        feature_size: int = 7,
        dw_norm_act: bool = True,
        pw_drop_rate: float = PW_DROP_RATE,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        chs = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [channelnet_layer("conv", in_chans, chs, 2)]
        for kind, out_chs, stride in table:
            out_chs = make_divisible(out_chs * width_mult)
            layers.append(channelnet_layer(kind, chs, out_chs, stride, dw_norm_act=dw_norm_act, drop_rate=pw_drop_rate))
            chs = out_chs
        self.features = nn.Sequential(*layers)
        if head == "conv":
            self.head = ConvClassifierHead(chs, num_classes, feature_size, drop_rate)
        elif head == "fc":
            self.head = ClassifierHead(chs, num_classes, drop_rate)
        else:
            raise ValueError(f"head must be 'fc' (pooling + FC) or 'conv' (the classification conv), got {head!r}")
        init_weights(self)  # the channel-wise kernels (Conv1d) keep their own init


class ChannelNetCode(CompactNet):
    """ChannelNet-v1 as the official code builds it (:data:`CHANNELNET_CODE_TABLE`).

    Differences from the paper text (ARCHITECTURES.md 5.2): DenseNet-style concatenations in the first
    three units; the stem conv has BN but no activation; no BN or activation after any depthwise conv;
    modules in the order GM (+residual), GCWM, GCWM (+residual), each GCWM fusing at its input; dropout
    after the stem conv and the group channel-wise convs too.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        pw_drop_rate: float = PW_DROP_RATE,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        chs = in_chans
        units: list[nn.Module] = []
        for first, second, merge in CHANNELNET_CODE_TABLE:
            layers, widths = [], []
            for kind, out_chs, stride in (first, second):
                if kind == "conv":  # conv_s: 3x3 conv -> dropout -> BN, no activation
                    layers.append(ConvNormAct(chs, out_chs, 3, stride, act=None, drop_rate=pw_drop_rate))
                else:  # GCWMs fuse at their input; the units add the residuals
                    options = dict(fusion="input", residual=False, dw_norm_act=False, drop_rate=pw_drop_rate)
                    layers.append(channelnet_layer(kind, chs, out_chs, stride, **options))
                widths.append(out_chs)
                chs = out_chs
            units.append(MergeUnit(*layers, merge))
            chs = sum(widths) if merge == "cat" else widths[-1]
        self.features = nn.Sequential(*units)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)  # the channel-wise kernels (Conv1d) keep their own init


# ---------------------------------------------------------------------------- cards
_NOTE_407M = (
    "The paper's 407M FLOPs is not reproduced by either reading: the paper text gives 468.5M conv MACs, the "
    "official code 535.0M. Its '28.5% fewer FLOPs than MobileNet' is 407/569; replacing five 512-channel "
    "layers by six half-cost grouped ones saves about 100M of 569M (17.6% here). ARCHITECTURES.md 5.3, 7.8."
)
_NOTE_READING = (
    "Paper-text reading: MobileNets with the five 512->512 layers replaced by GCWM, GCWM, GM (g=2, dc=8; "
    "GCW after the second 1x1 group conv), no concat links; the MobileNet layers keep BN+ReLU6 after their "
    "depthwise conv, as the reference count does (dw_norm_act=False removes them as Sec. 4.2 says: 4,800 "
    "params fewer for v1)."
)
_IMAGENET = dict(
    paper=PAPER,
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe="channelnet",
    source="reference build, ARCHITECTURES.md 5.3",
)

_WIDTH = dict(
    _IMAGENET,
    table="Table 2",
    params_exact=True,
    reproduces=("params",),
    source="our build (ARCHITECTURES.md 5.3 lists these as not rebuilt); it reproduces the printed params",
)
_NOTE_WIDTH = (
    "MobileNets' rule (every width times the multiplier, rounded to a multiple of 8) reproduces the printed "
    "params; the paper gives no FLOPs for it. " + _NOTE_READING
)


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 1",
        ref_params=3_708_232,
        ref_macs=468.5e6,
        params_exact=True,
        paper_params="3.7M",
        paper_madds="407M",
        paper_metrics={"top1": 70.5},
        reproduces=("params",),
        note=f"{_NOTE_READING} {_NOTE_407M}",
    )
)
def channelnet_v1(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V1_TABLE, **kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 3",
        ref_params=3_708_200,
        ref_macs=466.9e6,
        params_exact=True,
        paper_params="3.7M",
        paper_metrics={"top1": 69.7},
        reproduces=("params",),
        note="ChannelNet-v1(-): both GCWMs become GMs, exactly 32 params fewer (two 2x8 group channel-wise "
        f"kernels: the paper's 'only 32 more parameters'). {_NOTE_READING}",
    )
)
def channelnet_v1_minus(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V1_MINUS_TABLE, **kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 2",
        ref_params=2_655_624,
        ref_macs=420.3e6,
        params_exact=True,
        paper_params="2.7M",
        paper_metrics={"top1": 69.5},
        reproduces=("params",),
        note="The last 1024->1024 layer becomes a depth-wise separable channel-wise conv (dc=64, 64 params). "
        "The text says the replaced layer is 512->1024, but the official code replaces 1024->1024 and only "
        "that saves the stated 1 million params (1024 x 1024). The paper gives no FLOPs for v2. " + _NOTE_READING,
    )
)
def channelnet_v2(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V2_TABLE, **kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        table="Table 2",
        ref_params=1_631_849,
        ref_macs=420.5e6,
        params_exact=True,
        paper_params="1.7M",
        paper_metrics={"top1": 66.7},
        note="v2 with the convolutional classification layer (one 7x7x25 3-D conv, 1,225 params) for pooling "
        "+ FC. We count 1.63M; the printed 1.7M is not reproduced by the paper reading (v2 minus the FC's "
        "1,025,000 plus 1,225), nor by the code's extra 3x3 depthwise conv before it (+9,216). " + _NOTE_READING,
    )
)
def channelnet_v3(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V2_TABLE, head="conv", **kwargs)


@register_model(
    ModelCard(
        **_WIDTH,
        ref_params=2_291_064,
        ref_macs=269.48e6,
        paper_params="2.3M",
        paper_metrics={"top1": 67.8},
        note="Width multiplier 0.75 on every layer of ChannelNet-v1. " + _NOTE_WIDTH,
    )
)
def channelnet_v1_075(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V1_TABLE, width_mult=0.75, **kwargs)


@register_model(
    ModelCard(
        **_WIDTH,
        ref_params=1_200_808,
        ref_macs=125.06e6,
        paper_params="1.2M",
        paper_metrics={"top1": 62.7},
        note="Width multiplier 0.5 on every layer of ChannelNet-v1. " + _NOTE_WIDTH,
    )
)
def channelnet_v1_050(**kwargs: Any) -> ChannelNet:
    return ChannelNet(CHANNELNET_V1_TABLE, width_mult=0.5, **kwargs)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 1",
        input_size=(3, 224, 224),
        num_classes=1000,
        recipe="channelnet",
        source="official code model.py; pytorchcv channelnet (3,875,112 params), ARCHITECTURES.md 5.2",
        ref_params=3_875_112,
        ref_macs=535.0e6,
        params_exact=True,
        paper_params="3.7M",
        paper_madds="407M",
        paper_metrics={"top1": 70.5},
        note="ChannelNet-v1 as the official code builds it: DenseNet-style concatenations the paper never "
        "mentions, modules in the order GM, GCWM, GCWM with the group channel-wise conv at each GCWM's input, "
        "no activation after the stem. 3.88M params do not print as the paper's 3.7M (the paper-text "
        f"reading, channelnet_v1, does). {_NOTE_407M}",
    )
)
def channelnet_v1_code(**kwargs: Any) -> ChannelNetCode:
    return ChannelNetCode(**kwargs)
