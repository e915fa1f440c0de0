"""SqueezeNet (Iandola et al. 2016): Fire modules, late downsampling, a convolutional classifier.

Fire (Sec. 3.2): a 1x1 "squeeze" layer feeding a mix of 1x1 and 3x3 "expand" filters. No FC layer:
conv10 gives one map per class, averaged (Sec. 3.3). Sec. 6 adds ResNet-style bypasses (Fig. 2).
SqueezeNet 1.1 (the authors' README) moves the pooling earlier and shrinks conv1, for 2.4x fewer MACs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import torch
from torch import nn

from ..layers import ConvNormAct, drop_branch, make_divisible
from ..registry import ModelCard, register_model
from .base import CompactNet

PAPER = "SqueezeNet (Iandola et al. 2016)"

Bypass = Literal["none", "simple", "complex"]

# SqueezeNet Table 1 (v1.0): Fire modules as (s1x1, e1x1, e3x3); "pool" is a 3x3/2 max pool.
# conv1 is 7x7/2 with 96 filters; a max pool follows it.
SQUEEZENET_10_TABLE: list[tuple[int, int, int] | str] = [
    (16, 64, 64),  # fire2
    (16, 64, 64),  # fire3
    (32, 128, 128),  # fire4
    "pool",  # maxpool4
    (32, 128, 128),  # fire5
    (48, 192, 192),  # fire6
    (48, 192, 192),  # fire7
    (64, 256, 256),  # fire8
    "pool",  # maxpool8
    (64, 256, 256),  # fire9
]
# SqueezeNet v1.1 (README of DeepScale/SqueezeNet): conv1 3x3/2 with 64 filters, pools after
# conv1, fire3 and fire5; the same Fire modules.
SQUEEZENET_11_TABLE: list[tuple[int, int, int] | str] = [
    (16, 64, 64),
    (16, 64, 64),
    "pool",
    (32, 128, 128),
    (32, 128, 128),
    "pool",
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
]
CONV1: dict[str, tuple[int, int]] = {"1.0": (96, 7), "1.1": (64, 3)}  # (filters, kernel), stride 2, no padding
DROP_RATE = 0.5  # dropout after fire9 (Sec. 3.3)


class Fire(nn.Module):
    """Fire module (Sec. 3.2, Fig. 1): squeeze 1x1 (s1x1) -> ReLU -> expand 1x1 (e1x1) and 3x3 (e3x3),
    each -> ReLU, concatenated.

    ``bypass`` (Sec. 6, Fig. 2): ``"simple"`` adds the input to the output (channels must match),
    ``"complex"`` adds a 1x1 conv of the input with as many filters as the output has channels.
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(
        self,
        in_chs: int,
        squeeze_chs: int,
        expand1x1_chs: int,
        expand3x3_chs: int,
        bypass: Bypass = "none",
    ) -> None:
        super().__init__()
        out_chs = expand1x1_chs + expand3x3_chs
        if bypass == "simple" and in_chs != out_chs:
            raise ValueError(
                f"a simple bypass adds the input: Fire({in_chs} -> {out_chs}) needs bypass='complex' (a 1x1 conv)"
            )
        self.squeeze = ConvNormAct(in_chs, squeeze_chs, 1, norm=False)
        self.expand1x1 = ConvNormAct(squeeze_chs, expand1x1_chs, 1, norm=False)
        self.expand3x3 = ConvNormAct(squeeze_chs, expand3x3_chs, 3, norm=False)
        if bypass == "complex":
            self.bypass_conv = nn.Conv2d(in_chs, out_chs, 1)
        self.bypass = bypass
        self.use_residual = bypass != "none"  # with a bypass, the Fire output is a residual branch
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.squeeze(x)
        out = torch.cat([self.expand1x1(squeezed), self.expand3x3(squeezed)], dim=1)
        if self.bypass == "simple":
            return drop_branch(self, out) + x
        if self.bypass == "complex":
            return drop_branch(self, out) + self.bypass_conv(x)
        return out

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The bypass add (profiler protocol)."""
        return {"residual": output.numel() if self.bypass != "none" else 0}


class SqueezeNetHead(nn.Module):
    """Dropout -> conv10 (1x1, one map per class) -> ReLU -> global average pool (Sec. 3.3, after NiN).

    ``pre_logits`` and ``num_classes=0`` give the globally pooled features of the last Fire module.
    """

    def __init__(self, in_chs: int, num_classes: int, drop_rate: float = DROP_RATE) -> None:
        super().__init__()
        self.in_chs, self.drop_rate = in_chs, drop_rate
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv: nn.Module = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        """Replace conv10 with a freshly initialised one for ``num_classes`` outputs."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        if num_classes:
            self.conv = nn.Conv2d(self.in_chs, num_classes, 1)
            nn.init.normal_(self.conv.weight, 0, 0.01)  # small, as the reference Caffe model's conv10
            nn.init.zeros_(self.conv.bias)
        else:
            self.conv = nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(x)
        if pre_logits or not self.num_classes:
            return self.flatten(self.pool(x))
        return self.flatten(self.pool(self.act(self.conv(x))))


class SqueezeNet(CompactNet):
    """SqueezeNet 1.0 (Table 1) or 1.1: conv1 -> max pool -> Fire modules with max pools -> conv10 head.

    Max pools are 3x3/2 with ceil rounding (Caffe's). ``bypass`` adds Sec. 6's bypasses: ``"simple"``
    around the Fire modules whose input and output channels match (fire3, 5, 7, 9), ``"complex"``
    also a 1x1 conv bypass around the others (fire2, 4, 6, 8). ``width_mult`` scales every filter
    count (rounded to multiples of 8).
    """

    def __init__(
        self,
        version: Literal["1.0", "1.1"] = "1.0",
        bypass: Bypass = "none",
        width_mult: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = DROP_RATE,
    ) -> None:
        super().__init__()
        if version not in CONV1:
            raise ValueError(f"SqueezeNet version must be '1.0' or '1.1', got {version!r}")
        table = SQUEEZENET_10_TABLE if version == "1.0" else SQUEEZENET_11_TABLE
        self.in_chans, self.width_mult, self.version = in_chans, width_mult, version
        conv1_chs, kernel = CONV1[version]
        chs = make_divisible(conv1_chs * width_mult)
        conv1 = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_chans, chs, kernel, 2), act=nn.ReLU(inplace=True)))
        layers: list[nn.Module] = [conv1, nn.MaxPool2d(3, 2, ceil_mode=True)]
        for row in table:
            if row == "pool":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
                continue
            s1x1, e1x1, e3x3 = (make_divisible(c * width_mult) for c in row)
            mode: Bypass = "none"
            if bypass != "none":
                mode = "simple" if chs == e1x1 + e3x3 else "complex" if bypass == "complex" else "none"
            layers.append(Fire(chs, s1x1, e1x1, e3x3, mode))
            chs = e1x1 + e3x3
        self.features = nn.Sequential(*layers)
        self.head = SqueezeNetHead(chs, num_classes, drop_rate)
        for module in self.features.modules():  # He init for the ReLU convs (bias 0)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)


_CARD = dict(paper=PAPER, input_size=(3, 224, 224), num_classes=1000, recipe="squeezenet_imagenet")
_227 = (
    "The 833M quoted for SqueezeNet (ShuffleNet Table 6) counts the Caffe crop of 227x227: we count 832.7M "
    "there and 818.9M at 224x224."
)


@register_model(
    ModelCard(
        **_CARD,
        table="Table 1, Table 2; MAdds: ShuffleNet Table 6 (833 MFLOPs)",
        ref_params=1_248_424,
        ref_macs=818.92e6,
        params_exact=True,
        paper_params="1248424",
        paper_madds="833M",
        paper_metrics={"top1": 57.5, "top5": 80.3},
        reproduces=("params",),
        source="torchvision squeezenet1_0",
        note="Table 1 prints 1,248,424 parameters (4.8MB in 32 bits, Table 2). The SqueezeNet paper prints no "
        "MAdds: 833M is ShuffleNet's. ChannelNets Table 1 quotes SqueezeNet as 1.3M params, 833M FLOPs and "
        "57.5% (0.575); 1,248,424 is 1.2M. " + _227,
    )
)
def squeezenet_10(**kwargs: Any) -> SqueezeNet:
    return SqueezeNet("1.0", **kwargs)


@register_model(
    ModelCard(
        **_CARD,
        table="README (v1.1)",
        ref_params=1_235_496,
        ref_macs=349.15e6,
        params_exact=True,
        source="torchvision squeezenet1_1",
        note="v1.1 is not in the paper: the README gives it 2.4x less computation than 1.0 at the same accuracy.",
    )
)
def squeezenet_11(**kwargs: Any) -> SqueezeNet:
    return SqueezeNet("1.1", **kwargs)


@register_model(
    ModelCard(
        **_CARD,
        table="Table 3",
        ref_params=1_248_424,
        ref_macs=818.92e6,
        params_exact=True,
        paper_metrics={"top1": 60.4, "top5": 82.5},
        note="Identity bypasses around fire3, 5, 7 and 9 (Fig. 2, middle): no parameters added. Table 3 prints "
        "only the model size, 4.8MB, the same as vanilla SqueezeNet's (1,248,424 parameters, Table 1), which "
        "we count.",
    )
)
def squeezenet_10_simple_bypass(**kwargs: Any) -> SqueezeNet:
    return SqueezeNet("1.0", bypass="simple", **kwargs)


@register_model(
    ModelCard(
        **_CARD,
        table="Table 3",
        ref_params=1_589_672,
        ref_macs=1165.30e6,
        params_exact=True,
        paper_metrics={"top1": 58.8, "top5": 82.0},
        note="Table 3 prints only the model size, 7.7MB (1.9-2.0M parameters at 32 bits; not reproduced): 1x1 "
        "conv bypasses around fire2, 4, 6 and 8 (Fig. 2, right; identity bypasses around the others) add "
        "341,248 to 1,248,424 = 1,589,672 (6.1MB in the MiB that make 1,248,424 params 4.8MB). The paper "
        "describes the bypass convs no further. They add 346M MACs (1165.3M in all).",
    )
)
def squeezenet_10_complex_bypass(**kwargs: Any) -> SqueezeNet:
    return SqueezeNet("1.0", bypass="complex", **kwargs)
