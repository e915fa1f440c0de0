"""DenseNet (Huang et al. 2017): DenseNet-BC for CIFAR and DenseNet-121 for ImageNet.

Every layer of a dense block reads the concatenation of all earlier feature maps and adds ``k`` (the
growth rate) new ones (Sec. 3, Eq. 2). DenseNet-B layers are BN-ReLU-1x1 conv (4k) -> BN-ReLU-3x3 conv
(k); DenseNet-C transitions are BN-ReLU-1x1 conv (compression theta = 0.5) -> 2x2 average pooling.

:class:`DenseNet` and :class:`DenseLayer` also carry CondenseNet (``condensenet.py``): a learned group
1x1 conv, a channel shuffle and a 3x3 group conv in the layer, transitions that only pool, and a growth
rate per block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..layers import ChannelShuffle, ClassifierHead, ConvNormAct, conv2d
from ..layers.learned_group_conv import CondensedGroupConv, LearnedGroupConv
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "DenseNet (Huang et al. 2017)"

StemType = Literal["conv3", "conv7_pool"]
"""``conv3``: one 3x3 conv without BN (DenseNet CIFAR, CondenseNet); ``conv7_pool``: 7x7 stride-2 conv
-> BN -> ReLU -> 3x3 stride-2 max pool (DenseNet ImageNet, Table 1)."""


class DenseLayer(nn.Module):
    """``x -> cat([x, H(x)])`` with H = BN-ReLU-1x1 conv (``bottleneck * k``) -> BN-ReLU-3x3 conv (k).

    DenseNet-B (Sec. 3, "Bottleneck layers") by default. CondenseNet (Huang et al. 2018, Sec. 4) sets
    ``condense_factor``: the 1x1 conv becomes a learned group conv with ``groups`` groups (a
    :class:`CondensedGroupConv` when ``condensed``), its output is channel-shuffled, and the 3x3 conv
    has ``groups`` groups.
    """

    def __init__(
        self,
        in_chs: int,
        growth_rate: int,
        bottleneck: int = 4,
        groups: int = 1,
        condense_factor: int | None = None,
        condensed: bool = True,
    ) -> None:
        super().__init__()
        mid_chs = bottleneck * growth_rate
        self.conv1: nn.Module
        if condense_factor is None:
            self.conv1 = ConvNormAct(in_chs, mid_chs, 1, preact=True)
        elif condensed:
            self.conv1 = CondensedGroupConv(in_chs, mid_chs, groups, in_chs // condense_factor)
        else:
            self.conv1 = LearnedGroupConv(in_chs, mid_chs, groups, condense_factor)
        # the shuffle lets each 3x3 group read every learned group ("Permute", CondenseNet Sec. 4.1, Fig. 1)
        self.shuffle = ChannelShuffle(groups) if condense_factor is not None and groups > 1 else nn.Identity()
        self.conv2 = ConvNormAct(mid_chs, growth_rate, 3, groups=groups, preact=True)
        self.in_chs, self.out_chs = in_chs, in_chs + growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv2(self.shuffle(self.conv1(x)))], 1)


class DenseNet(CompactNet):
    """Stem -> dense blocks separated by transitions -> BN-ReLU -> global pool -> FC (Sec. 3, Table 1).

    ``block_config`` gives the layers per dense block and ``growth_rates`` the growth rate of each
    (one int for all). ``compression`` is theta of the transitions' 1x1 conv; ``None`` makes the
    transitions plain 2x2 average pooling (CondenseNet). ``groups``, ``condense_factor`` and
    ``condensed`` go to every :class:`DenseLayer`.
    """

    def __init__(
        self,
        block_config: Sequence[int],
        growth_rates: int | Sequence[int],
        stem_chs: int,
        stem: StemType = "conv3",
        stem_stride: int = 1,
        compression: float | None = 0.5,
        bottleneck: int = 4,
        groups: int = 1,
        condense_factor: int | None = None,
        condensed: bool = True,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        rates = [growth_rates] * len(block_config) if isinstance(growth_rates, int) else list(growth_rates)
        if len(rates) != len(block_config):
            raise ValueError(f"{len(rates)} growth rates given for {len(block_config)} dense blocks")
        self.in_chans = in_chans
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if stem == "conv7_pool":
            layers["stem"] = ConvNormAct(in_chans, stem_chs, 7, stem_stride)
            layers["pool"] = nn.MaxPool2d(3, 2, 1)
        elif stem == "conv3":
            layers["stem"] = conv2d(in_chans, stem_chs, 3, stem_stride)
        else:
            raise ValueError(f"unknown stem {stem!r}; use 'conv3' or 'conv7_pool'")
        chs = stem_chs
        for i, (repeats, rate) in enumerate(zip(block_config, rates, strict=True), start=1):
            block = []
            for _ in range(repeats):
                block.append(DenseLayer(chs, rate, bottleneck, groups, condense_factor, condensed))
                chs += rate
            layers[f"block{i}"] = nn.Sequential(*block)
            if i < len(block_config):
                transition: OrderedDict[str, nn.Module] = OrderedDict()
                if compression is not None:  # DenseNet-C: theta * m output feature maps
                    transition["conv"] = ConvNormAct(chs, int(chs * compression), 1, preact=True)
                    chs = int(chs * compression)
                transition["pool"] = nn.AvgPool2d(2, 2)
                layers[f"transition{i}"] = nn.Sequential(transition)
        layers["norm"] = nn.BatchNorm2d(chs)
        layers["act"] = nn.ReLU(inplace=True)
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


# DenseNet Table 1 (ImageNet): layers per dense block and growth rate k; the stem has 2k channels.
DENSENET_IMAGENET_TABLE: dict[int, tuple[tuple[int, int, int, int], int]] = {
    121: ((6, 12, 24, 16), 32),
    169: ((6, 12, 32, 32), 32),
    201: ((6, 12, 48, 32), 32),
    161: ((6, 12, 36, 24), 48),
}


def densenet(depth: int = 121, **kwargs: Any) -> DenseNet:
    """DenseNet-BC for ImageNet (Table 1): 7x7 stem, four dense blocks, theta = 0.5."""
    if depth not in DENSENET_IMAGENET_TABLE:
        raise ValueError(f"DenseNet Table 1 has depths {sorted(DENSENET_IMAGENET_TABLE)}, not {depth}")
    block_config, growth_rate = DENSENET_IMAGENET_TABLE[depth]
    return DenseNet(block_config, growth_rate, 2 * growth_rate, stem="conv7_pool", stem_stride=2, **kwargs)


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, **kwargs: Any) -> DenseNet:
    """DenseNet-BC for CIFAR (Sec. 4, "Implementation Details"): a 3x3 stem conv with 2k channels, three
    dense blocks of ``(depth - 4) / 6`` bottleneck layers each, theta = 0.5."""
    if (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC depth must be 6 n + 4 (100, 190, 250 in Table 2), got {depth}")
    repeats = (depth - 4) // 6
    return DenseNet((repeats,) * 3, growth_rate, 2 * growth_rate, **kwargs)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 2",
        input_size=(3, 32, 32),
        num_classes=10,
        ref_params=769_162,
        ref_macs=288e6,
        params_exact=True,
        paper_params="0.8M",
        paper_metrics={"cifar10_error": 4.51, "cifar100_error": 22.27},
        reproduces=("params",),
        recipe="densenet_cifar",
        source="reference build, ARCHITECTURES.md 6 (CIFAR-100 head: 800,032)",
        note="Errors are C10+/C100+ (standard augmentation). The paper gives no FLOPs for this row.",
    )
)
def densenet_bc_100_k12_cifar(**kwargs: Any) -> DenseNet:
    return densenet_bc_cifar(100, 12, **kwargs)


_LARGE_CIFAR_NOTE = (
    "Table 2's row as PydMobileNet Table 4 quotes it (the DenseNet paper is not among the sources here); errors "
    "are C10+/C100+. Params are the CIFAR-10-head count (CIFAR-100: {c100:,})."
)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 2",
        input_size=(3, 32, 32),
        num_classes=10,
        ref_params=15_324_406,
        ref_macs=5418.79e6,
        params_exact=True,
        paper_params="15.3M",
        paper_metrics={"cifar10_error": 3.62, "cifar100_error": 17.60},
        reproduces=("params",),
        recipe="densenet_cifar",
        source="this build of Sec. 4's DenseNet-BC (L=250, k=24); no reference build",
        note=_LARGE_CIFAR_NOTE.format(c100=15_480_556) + " No FLOPs are printed for this row.",
    )
)
def densenet_bc_250_k24_cifar(**kwargs: Any) -> DenseNet:
    return densenet_bc_cifar(250, 24, **kwargs)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 2 (params, errors); MAdds: CondenseNet Table 4 as PydMobileNet Table 4 quotes it",
        input_size=(3, 32, 32),
        num_classes=10,
        ref_params=25_624_430,
        ref_macs=9301.95e6,
        params_exact=True,
        paper_params="25.6M",
        paper_madds="9388M",
        paper_metrics={"cifar10_error": 3.46, "cifar100_error": 17.18},
        reproduces=("params",),
        recipe="densenet_cifar",
        source="this build of Sec. 4's DenseNet-BC (L=190, k=40); no reference build",
        note=_LARGE_CIFAR_NOTE.format(c100=25_821_620) + " 9,388M (PydMobileNet: 'FLOPs information is "
        "obtained from [19]', CondenseNet) is not reproduced: conv + FC MACs are 9,301.9M, CondenseNet's "
        "counter (macs+act+pool) 9,346.3M.",
    )
)
def densenet_bc_190_k40_cifar(**kwargs: Any) -> DenseNet:
    return densenet_bc_cifar(190, 40, **kwargs)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 3",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=7_978_856,
        ref_macs=2.83e9,
        params_exact=True,
        paper_metrics={"top1": 74.98},
        recipe="densenet_imagenet",
        source="torchvision densenet121 (same state_dict, same logits)",
        note="top-1 is 100 - Table 3's 25.02% single-crop top-1 error; the official README (liuzhuang13/DenseNet) "
        "rounds it to 25.0. torchvision's weights score 74.434: that is their entry's (densenet121.tv_in1k).",
    )
)
def densenet121(**kwargs: Any) -> DenseNet:
    return densenet(121, **kwargs)
