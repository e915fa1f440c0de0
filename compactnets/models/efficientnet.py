"""EfficientNet (Tan & Le 2019): the B0 baseline and its compound scaling.

MBConv (Sec. 4) is an :class:`~compactnets.layers.InvertedResidual` with swish, kernel 3 or 5, and
squeeze-and-excite after the depthwise conv whose hidden width is a quarter of the block input, on
the :class:`InvertedResidualNet` backbone with stochastic depth. B1-B3 scale depth, width and resolution
together (Sec. 3.3); :mod:`compactnets.scaling` applies the same rule to any family.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..layers import SqueezeExcite
from ..registry import ModelCard, register_model
from .mobilenetv2 import InvertedResidualNet, StageSpec

PAPER = "EfficientNet (Tan & Le 2019)"

# EfficientNet Table 1 (B0), stages 2-8 after the 3x3 stem with 32 channels (stage 1) and before the
# 1x1 conv to 1280 + pooling + FC (stage 9): expansion t (MBConv1 / MBConv6), kernel k, output
# channels c, layers n, stride s of the first layer.
EFFICIENTNET_B0_TABLE: list[tuple[int, int, int, int, int]] = [
    (1, 3, 16, 1, 1),
    (6, 3, 24, 2, 2),
    (6, 5, 40, 2, 2),
    (6, 3, 80, 3, 2),
    (6, 5, 112, 3, 1),
    (6, 5, 192, 4, 2),
    (6, 3, 320, 1, 1),
]
STEM_CHS, HEAD_CHS = 32, 1280
SE_RATIO = 0.25  # SE hidden width = 0.25 x the block's input channels (reference code's se_ratio)

# Compound scaling (Sec. 3.3, Eq. 3): depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi,
# with alpha * beta^2 * gamma^2 ~ 2; the grid search on B0 gave these.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15

# The released B1-B3 (Table 2) round those powers: (width, depth, resolution, dropout) per model,
# from the reference code's parameter table.
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
}
DROP_PATH_RATE = 0.2  # stochastic depth ("drop connect") survival 0.8 at the last block


def compound_multipliers(phi: float) -> tuple[float, float, float]:
    """(depth, width, resolution) multipliers alpha^phi, beta^phi, gamma^phi (Eq. 3)."""
    return ALPHA**phi, BETA**phi, GAMMA**phi


def mbconv_stages(table: list[tuple[int, int, int, int, int]]) -> list[StageSpec]:
    """MBConv rows: swish everywhere, SE (swish, sigmoid) with ``0.25 x C_in`` hidden channels.

    The SE acts on the ``t x C_in`` expanded channels, so its reduction is ``4t``.
    """
    return [
        StageSpec(
            t,
            c,
            n,
            s,
            block_kwargs={
                "kernel_size": k,
                "act": "swish",
                "attention": partial(SqueezeExcite, reduction=t / SE_RATIO, act="swish", gate="sigmoid"),
            },
        )
        for t, k, c, n, s in table
    ]


def efficientnet(
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    drop_rate: float = 0.2,
    drop_path_rate: float = DROP_PATH_RATE,
    **kwargs: Any,
) -> InvertedResidualNet:
    """EfficientNet-B0 scaled by ``width_mult`` (channels, rounded to 8; the 1280 head too, both ways) and
    ``depth_mult`` (layers per stage, rounded up). Resolution is the input size you feed it."""
    if width_mult <= 0 or depth_mult <= 0:
        raise ValueError(f"width_mult and depth_mult must be positive, got {width_mult} and {depth_mult}")
    return InvertedResidualNet(
        mbconv_stages(EFFICIENTNET_B0_TABLE),
        width_mult=width_mult,
        depth_mult=depth_mult,
        stem_chs=STEM_CHS,
        head_chs=HEAD_CHS,
        head_width_mult=width_mult,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        act="swish",
        **kwargs,
    )


def efficientnet_variant(variant: str, **kwargs: Any) -> InvertedResidualNet:
    """EfficientNet-B0..B3 from :data:`EFFICIENTNET_PARAMS`; ``width_mult``/``depth_mult`` override the table."""
    width, depth, _, dropout = EFFICIENTNET_PARAMS[variant]
    kwargs.setdefault("width_mult", width)
    kwargs.setdefault("depth_mult", depth)
    kwargs.setdefault("drop_rate", dropout)
    return efficientnet(**kwargs)


def _card(variant: str, icml_top1: float, note: str = "", **kwargs: Any) -> ModelCard:
    resolution = EFFICIENTNET_PARAMS[variant][2]
    version = (
        f"Accuracy as arXiv v5 (1905.11946v5) prints it; the ICML 2019 version's Table 2 gives top-1 {icml_top1} "
        "(same params and FLOPs)."
    )
    return ModelCard(
        paper=PAPER,
        table="Table 2 (arXiv v5)",
        input_size=(3, resolution, resolution),
        num_classes=1000,
        params_exact=True,
        recipe="efficientnet_imagenet",
        source=f"torchvision efficientnet_{variant}",
        note=f"{note} {version}".strip(),
        **kwargs,
    )


# The paper prints FLOPs (= MACs) in billions, "0.39B"; the cards write B as G.
@register_model(
    _card(
        "b0",
        icml_top1=76.3,
        ref_params=5_288_548,
        ref_macs=385.81e6,
        paper_params="5.3M",
        paper_madds="0.39G",
        paper_metrics={"top1": 77.1, "top5": 93.3},
        reproduces=("params", "madds"),
    )
)
def efficientnet_b0(**kwargs: Any) -> InvertedResidualNet:
    return efficientnet_variant("b0", **kwargs)


@register_model(
    _card(
        "b1",
        icml_top1=78.8,
        ref_params=7_794_184,
        ref_macs=686.80e6,
        paper_params="7.8M",
        paper_madds="0.70G",
        paper_metrics={"top1": 79.1, "top5": 94.4},
        reproduces=("params",),
        note="686.8M MACs at 240x240 print as 0.69B, not the paper's 0.70B.",
    )
)
def efficientnet_b1(**kwargs: Any) -> InvertedResidualNet:
    return efficientnet_variant("b1", **kwargs)


@register_model(
    _card(
        "b2",
        icml_top1=79.8,
        ref_params=9_109_994,
        ref_macs=993.56e6,
        paper_params="9.2M",
        paper_madds="1.0G",
        paper_metrics={"top1": 80.1, "top5": 94.9},
        reproduces=("madds",),
        note="9,109,994 params (torchvision's count too) print as 9.1M, not the paper's 9.2M. MACs at the "
        "paper's 260x260; torchvision evaluates its weights at 288 (1.09G).",
    )
)
def efficientnet_b2(**kwargs: Any) -> InvertedResidualNet:
    return efficientnet_variant("b2", **kwargs)


@register_model(
    _card(
        "b3",
        icml_top1=81.1,
        ref_params=12_233_232,
        ref_macs=1827.14e6,
        paper_params="12M",
        paper_madds="1.8G",
        paper_metrics={"top1": 81.6, "top5": 95.7},
        reproduces=("params", "madds"),
    )
)
def efficientnet_b3(**kwargs: Any) -> InvertedResidualNet:
    return efficientnet_variant("b3", **kwargs)
