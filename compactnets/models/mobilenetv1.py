"""MobileNetV1 (Howard et al. 2017, "MobileNets"): a stem conv and 13 depthwise separable layers."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..layers import ClassifierHead, ConvNormAct, DepthwiseSeparable, make_divisible
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "MobileNets (Howard et al. 2017)"

# MobileNets Table 1, after the stem conv (3x3, 32, stride 2): (output channels, stride) per
# depthwise separable layer.
MOBILENETV1_TABLE: list[tuple[int, int]] = [
    (64, 1),
    (128, 2), (128, 1),
    (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
]  # fmt: skip


class MobileNetV1(CompactNet):
    """MobileNetV1 with width multiplier ``width_mult`` (Sec. 3.3), ReLU after every BN."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_chans: int = 3,
        stem_stride: int = 2,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        chs = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_chans, chs, 3, stem_stride, act="relu")]
        for out_chs, stride in MOBILENETV1_TABLE:
            out_chs = make_divisible(out_chs * width_mult)
            layers.append(DepthwiseSeparable(chs, out_chs, stride, act="relu"))
            chs = out_chs
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


def _card(params: str, madds: str, top1: float, **kw: Any) -> ModelCard:
    return ModelCard(
        paper=PAPER,
        table="Table 6",
        input_size=(3, 224, 224),
        num_classes=1000,
        paper_params=params,
        paper_madds=madds,
        paper_metrics={"top1": top1},
        reproduces=("params", "madds"),
        recipe="mobilenet_imagenet",
        **kw,
    )


@register_model(
    _card(
        "4.2M",
        "569M",
        70.6,
        ref_params=4_231_976,
        ref_macs=568.7e6,
        params_exact=True,
        source="timm mobilenetv1_100",
        note="ANTNets Table 7 and SeesawNet Table 5 quote this network as 4.2M / 575M / 70.6 (ANTNets adds top-5 "
        "89.5, which MobileNets does not print); MobileNets prints 569M, which we reproduce (568.7M).",
    )
)
def mobilenetv1_100(**kwargs: Any) -> MobileNetV1:
    return MobileNetV1(width_mult=1.0, **kwargs)


@register_model(_card("2.6M", "325M", 68.4))
def mobilenetv1_075(**kwargs: Any) -> MobileNetV1:
    return MobileNetV1(width_mult=0.75, **kwargs)


@register_model(_card("1.3M", "149M", 63.7))
def mobilenetv1_050(**kwargs: Any) -> MobileNetV1:
    return MobileNetV1(width_mult=0.5, **kwargs)


@register_model(_card("0.5M", "41M", 50.6))
def mobilenetv1_025(**kwargs: Any) -> MobileNetV1:
    return MobileNetV1(width_mult=0.25, **kwargs)
