"""ResNets: CIFAR ResNet-20/56/110 (GluonCV v1), ResNeXt (Xie et al. 2017), SE-ResNet / SE-ResNeXt (Hu et al. 2018).

One residual block, :class:`ResidualBlock`, with the options these papers vary:

| option | CIFAR ResNet | ResNet-50 | ResNeXt | SE-ResNet-50 | SE-ResNeXt-50 |
|---|---|---|---|---|---|
| ``width`` (bottleneck) | None (basic: two 3x3) | out / 4 | C x d x 2^stage | out / 4 | C x d x 2^stage |
| ``cardinality`` (3x3 groups) | 1 | 1 | C | 1 | 32 |
| ``stride_in_1x1`` | - | no (v1.5) | no | yes (original Caffe model) | no |
| ``attention`` | - | - | - | SqueezeExcite(r=16) | SqueezeExcite(r=16) |

The shortcut is the identity, or a 1x1 conv (with the block's stride) + BN where the shape changes
(projection shortcuts, option B of He et al. 2016).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from ..layers import AttentionLayer, ClassifierHead, ConvNormAct, SqueezeExcite, create_act, drop_branch
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

RESNET = "ResNet (He et al. 2016)"
RESNEXT = "ResNeXt (Xie et al. 2017)"
SENET = "SENet (Hu et al. 2018)"
PYDMOBILENET = "PydMobileNet (Hoang & Jo 2018)"


class ResidualBlock(nn.Module):
    """``act(shortcut(x) + F(x))`` (He et al. 2016, Eq. 1).

    F is basic (3x3 -> BN-ReLU -> 3x3 -> BN) when ``width`` is None, else a bottleneck 1x1 (``width``)
    -> 3x3 (``width``, ``cardinality`` groups: ResNeXt's aggregated transform, Fig. 3c) -> 1x1 (out).
    The stride sits in the 3x3 conv, or in the first 1x1 with ``stride_in_1x1`` (the original Caffe
    ResNet, SENet's models). ``attention`` (SENet Fig. 3) rescales F before the add. Children of
    ``self.branch``: ``conv1``, ``conv2``, (``conv3``), (``attn``).
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        width: int | None = None,
        cardinality: int = 1,
        stride_in_1x1: bool = False,
        attention: AttentionLayer | None = None,
        act: str = "relu",
    ) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if width is None:
            if cardinality != 1:
                raise ValueError("a basic block has no grouped conv; give a bottleneck width to use cardinality")
            layers["conv1"] = ConvNormAct(in_chs, out_chs, 3, stride, act=act)
            layers["conv2"] = ConvNormAct(out_chs, out_chs, 3, act=None)
        else:
            if width % cardinality:
                raise ValueError(f"bottleneck width {width} does not split into cardinality {cardinality} groups")
            stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
            layers["conv1"] = ConvNormAct(in_chs, width, 1, stride_1x1, act=act)
            layers["conv2"] = ConvNormAct(width, width, 3, stride_3x3, groups=cardinality, act=act)
            layers["conv3"] = ConvNormAct(width, out_chs, 1, act=None)
        if attention is not None:
            layers["attn"] = attention(out_chs)
        self.branch = nn.Sequential(layers)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride, act=None)
        self.act = create_act(act)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + drop_branch(self, self.branch(x)))

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add (profiler protocol)."""
        return {"residual": output.numel()}


StageRow = tuple[int, int, int]
"""One row of a ResNet table: output channels, number of blocks, stride of the first block."""


class ResNet(CompactNet):
    """Stem -> stages of :class:`ResidualBlock` -> global pool -> FC.

    ``stem="imagenet"`` is a 7x7 stride-2 conv (64) -> BN-ReLU -> 3x3 stride-2 max pool; ``"cifar"`` a
    3x3 conv (``stem_chs``) -> BN-ReLU. ``bottleneck`` blocks have width ``cardinality x base_width x
    2^stage`` (ResNeXt's template, Table 1; ResNet-50 is 1 x 64d); other keyword options go to every
    block.
    """

    def __init__(
        self,
        stages: Sequence[StageRow],
        stem: Literal["imagenet", "cifar"] = "imagenet",
        stem_chs: int = 64,
        bottleneck: bool = True,
        cardinality: int = 1,
        base_width: int = 64,
        stride_in_1x1: bool = False,
        se_reduction: int | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if stem == "imagenet":
            layers["stem"] = ConvNormAct(in_chans, stem_chs, 7, 2)
            layers["pool"] = nn.MaxPool2d(3, 2, 1)
        elif stem == "cifar":
            layers["stem"] = ConvNormAct(in_chans, stem_chs, 3)
        else:
            raise ValueError(f"unknown stem {stem!r}; use 'imagenet' or 'cifar'")
        attention = partial(SqueezeExcite, reduction=se_reduction) if se_reduction else None
        chs = stem_chs
        for i, (out_chs, repeats, stride) in enumerate(stages):
            width = cardinality * base_width * 2**i if bottleneck else None
            blocks = []
            for j in range(repeats):
                blocks.append(
                    ResidualBlock(chs, out_chs, stride if j == 0 else 1, width, cardinality, stride_in_1x1, attention)
                )
                chs = out_chs
            layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


# ResNeXt Table 1 and SENet Table 1, the 50-layer ImageNet networks: output channels, blocks, stride.
RESNET50_TABLE: list[StageRow] = [(256, 3, 1), (512, 4, 2), (1024, 6, 2), (2048, 3, 2)]
# ResNeXt Sec. 5.3 (CIFAR): ResNeXt-29, 3 stages of 3 bottleneck blocks, 64-channel 3x3 stem.
RESNEXT29_CIFAR_TABLE: list[StageRow] = [(256, 3, 1), (512, 3, 2), (1024, 3, 2)]
# He et al. 2016 Sec. 4.2 (CIFAR): 6n + 2 layers, 16-channel 3x3 stem, n basic blocks per stage.
RESNET_CIFAR_WIDTHS: list[tuple[int, int]] = [(16, 1), (32, 2), (64, 2)]
SE_REDUCTION = 16  # SENet Sec. 6.1 / Table 1: fc [C/16, C]


def resnet_cifar(depth: int = 20, **kwargs: Any) -> ResNet:
    """CIFAR ResNet-(6n+2) with basic blocks and projection shortcuts (GluonCV ``cifar_resnet*_v1``)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6 n + 2 (20, 56, 110), got {depth}")
    n = (depth - 2) // 6
    stages = [(chs, n, stride) for chs, stride in RESNET_CIFAR_WIDTHS]
    return ResNet(stages, stem="cifar", stem_chs=16, bottleneck=False, **kwargs)


def resnext29_cifar(cardinality: int = 8, base_width: int = 64, **kwargs: Any) -> ResNet:
    """ResNeXt-29 (C x d) for CIFAR, e.g. 16 x 64d."""
    return ResNet(RESNEXT29_CIFAR_TABLE, stem="cifar", cardinality=cardinality, base_width=base_width, **kwargs)


def resnet50(cardinality: int = 1, base_width: int = 64, se: bool = False, **kwargs: Any) -> ResNet:
    """The 50-layer ImageNet network: ResNet-50 (1 x 64d), ResNeXt-50 (32 x 4d), with SE blocks when ``se``."""
    return ResNet(
        RESNET50_TABLE, cardinality=cardinality, base_width=base_width,
        se_reduction=SE_REDUCTION if se else None, **kwargs,
    )  # fmt: skip


# ---------------------------------------------------------------------------- CIFAR ResNets (GluonCV v1)
_RESNET_CIFAR_NOTE = (
    "GluonCV cifar_resnet_v1 layout: 1x1 conv + BN projection shortcuts. PydMobileNet's params are the "
    "CIFAR-100-head counts truncated ({c100:,}; this card has the CIFAR-10 head), and its FLOPs are "
    "about 2.1-2.2 x our MACs, a convention not reproduced (ARCHITECTURES.md 7.2). He et al. Table 6 "
    "prints {he} (zero-padding shortcuts)."
)
_CIFAR = dict(paper=PYDMOBILENET, input_size=(3, 32, 32), num_classes=10, recipe="resnet_cifar")


@register_model(
    ModelCard(
        **_CIFAR,
        table="Table 3",
        ref_params=272_474,
        ref_macs=40.8e6,
        params_exact=True,
        paper_params="0.278M",
        paper_madds="87M",
        paper_metrics={"cifar10_error": 7.3},
        source="GluonCV cifar_resnet20_v1, ARCHITECTURES.md 6",
        note=_RESNET_CIFAR_NOTE.format(c100=278_324, he="0.27M"),
    )
)
def resnet20_cifar(**kwargs: Any) -> ResNet:
    return resnet_cifar(20, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR,
        table="Table 3",
        ref_params=855_770,
        ref_macs=125.7e6,
        params_exact=True,
        paper_params="0.861M",
        paper_madds="277M",
        paper_metrics={"cifar10_error": 5.4},
        source="GluonCV cifar_resnet56_v1, ARCHITECTURES.md 6",
        note=_RESNET_CIFAR_NOTE.format(c100=861_620, he="0.85M"),
    )
)
def resnet56_cifar(**kwargs: Any) -> ResNet:
    return resnet_cifar(56, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR,
        table="Table 4",
        ref_params=1_730_714,
        ref_macs=253.1e6,
        params_exact=True,
        paper_params="1.736M",
        paper_madds="562M",
        paper_metrics={"cifar10_error": 4.50, "cifar100_error": 18.00},
        source="GluonCV cifar_resnet110_v1, ARCHITECTURES.md 6",
        note=_RESNET_CIFAR_NOTE.format(c100=1_736_564, he="1.7M"),
    )
)
def resnet110_cifar(**kwargs: Any) -> ResNet:
    return resnet_cifar(110, **kwargs)


# ---------------------------------------------------------------------------- ResNeXt
@register_model(
    ModelCard(
        paper=RESNEXT,
        table="Table 7",
        input_size=(3, 32, 32),
        num_classes=10,
        ref_params=34_426_698,
        ref_macs=5.387e9,
        params_exact=True,
        paper_params="34.4M",
        paper_metrics={"cifar10_error": 3.65, "cifar100_error": 17.77},
        reproduces=("params",),
        recipe="resnext_cifar",
        source="reference build, ARCHITECTURES.md 6",
    )
)
def resnext29_8x64d_cifar(**kwargs: Any) -> ResNet:
    return resnext29_cifar(8, 64, **kwargs)


@register_model(
    ModelCard(
        paper=RESNEXT,
        table="Table 7 (params, errors); MAdds: CondenseNet Table 4 as PydMobileNet Table 4 quotes it",
        input_size=(3, 32, 32),
        num_classes=10,
        ref_params=68_155_210,
        ref_macs=10.69e9,
        params_exact=True,
        paper_params="68.1M",
        paper_madds="10704M",
        paper_metrics={"cifar10_error": 3.58, "cifar100_error": 17.31},
        reproduces=("params",),
        recipe="resnext_cifar",
        source="reference build, ARCHITECTURES.md 6",
        note="ResNeXt Table 7 prints params and errors only. 10,704M is CondenseNet's Table 4 figure as "
        "PydMobileNet Table 4 prints it ('FLOPs information is obtained from [19]'). Conv + FC MACs are "
        "10,688.9M (not reproduced); CondenseNet's counter (macs+act+pool) gives 10,703.8M, but the same "
        "table's DenseNet-BC-190 9,388M is not reproduced by it (9,346M), so the card keeps plain MACs.",
    )
)
def resnext29_16x64d_cifar(**kwargs: Any) -> ResNet:
    return resnext29_cifar(16, 64, **kwargs)


@register_model(
    ModelCard(
        paper=RESNEXT,
        table="Table 3",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=25_028_904,
        ref_macs=4.23e9,
        params_exact=True,
        paper_params="25.0M",
        paper_madds="4.2G",
        paper_metrics={"top1": 77.8},
        reproduces=("params", "madds"),
        recipe="resnet_imagenet",
        source="torchvision resnext50_32x4d (same state_dict, same logits)",
        note="Params and FLOPs (MACs) as in Table 1; top-1 error 22.2 in Table 3.",
    )
)
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    return resnet50(cardinality=32, base_width=4, **kwargs)


# ---------------------------------------------------------------------------- SENet
_SE_NOTE = (
    "SE MAdds not reproduced: conv + FC MACs are 3.860G (SE-ResNet-50) and 4.233G (SE-ResNeXt-50) against "
    "3.87G and 4.25G. The paper's SE overhead (+0.26% over ResNet-50's 3.86G) also counts pooling or "
    "scaling, but no single convention fits both rows (macs+gating: 3.866G but 4.239G). 4.25G (SE-ResNeXt-50) "
    "is kept unconfirmed: the SENet paper is not among the sources available here (seeds, stored pages and "
    "code), and issue 20's audit did not find it in its copy of Table 2. Table 2 prints no parameter counts: "
    "28.1M and 27.6M are this build's (timm's legacy models'). "
    "top-1 is 100 - Table 2's single-crop error (23.29% and 21.10%), trained with the recipe of Sec. 6. The "
    "released Caffe models score 22.37% and 20.97% error (SENet repository README): they were retrained with "
    "another recipe (the authors, hujie-frank/SENet issue 62: 270 epochs, batch 256, lr 0.1 /10 at 125, 200 "
    "and 250)."
)


@register_model(
    ModelCard(
        paper=SENET,
        table="Table 2",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=28_088_024,
        ref_macs=3.86e9,
        params_exact=True,
        paper_madds="3.87G",
        paper_metrics={"top1": 76.71},
        recipe="senet_imagenet",
        source="timm legacy_seresnet50, ARCHITECTURES.md 6",
        note="Stride in the first 1x1 conv, as in the original Caffe model (stride in the 3x3: 4.09G). " + _SE_NOTE,
    )
)
def se_resnet50(**kwargs: Any) -> ResNet:
    return resnet50(se=True, stride_in_1x1=True, **kwargs)


@register_model(
    ModelCard(
        paper=SENET,
        table="Table 2",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=27_559_896,
        ref_macs=4.233e9,
        params_exact=True,
        paper_madds="4.25G",
        paper_metrics={"top1": 78.90},
        recipe="senet_imagenet",
        source="timm legacy_seresnext50_32x4d",
        note="Stride in the 3x3 conv, as in ResNeXt. " + _SE_NOTE,
    )
)
def se_resnext50_32x4d(**kwargs: Any) -> ResNet:
    return resnet50(cardinality=32, base_width=4, se=True, **kwargs)
