"""CondenseNet (Huang, Liu, van der Maaten, Weinberger 2018): DenseNet with learned group convolutions.

A :class:`~compactnets.models.densenet.DenseNet` with three changes (Sec. 4): every layer's 1x1 conv is a
learned group convolution (``G`` groups, condensation factor ``C``) followed by a channel shuffle and a
3x3 group conv; transitions only average-pool, so every layer reads every earlier layer's (pooled)
features ("fully dense connectivity"); the growth rate doubles from block to block. The classifier
keeps the 50% of its input features with the largest weights.

The registered names build the **condensed** inference model (index-select -> 1x1 group conv), whose
counts are the papers'. ``condensed=False`` builds the training-time model with masked dense 1x1 convs;
train it with :func:`~compactnets.layers.learned_group_conv.update_condensation` and
:func:`~compactnets.layers.learned_group_conv.group_lasso_loss`, then convert it with
:func:`condense` (exact). CondenseNet MAdds (the official ``measure_model``) are conv MACs + ReLU
elements + pooling ops (kernel^2 x output elements) + FC: our ``macs+act+pool`` convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..layers import ClassifierHead
from ..layers.learned_group_conv import CondensedLinear, LearnedLinear, condense_model
from ..registry import ModelCard, register_model
from .densenet import DenseNet

PAPER = "CondenseNet (Huang et al. 2018)"

# CondenseNet configurations: layers per dense block and growth rate of each block (Sec. 5 and the
# official README; CondenseNet-74 is Table 1, the ImageNet architecture). The stem has 2 x k_0 channels.
CONDENSENET_TABLE: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    86: ((14, 14, 14), (8, 16, 32)),  # CIFAR
    182: ((30, 30, 30), (12, 24, 48)),  # CIFAR
    74: ((4, 6, 8, 10, 8), (8, 16, 32, 64, 128)),  # ImageNet, Table 1
}
BOTTLENECK = 4  # 1x1 conv width = 4 x growth rate, as in DenseNet-B
CLASSIFIER_KEEP = 0.5  # the condensed classifier reads half of the pooled features (official code)


class CondenseNetHead(ClassifierHead):
    """Global pool -> FC over the kept ``keep`` fraction of the features: a :class:`CondensedLinear`, or a
    :class:`LearnedLinear` that chooses them during training (``condensed=False``)."""

    def __init__(
        self, in_chs: int, num_classes: int, condensed: bool, keep: float = CLASSIFIER_KEEP, drop_rate: float = 0.0
    ) -> None:
        self.condensed, self.keep = condensed, keep  # reset() below reads them
        super().__init__(in_chs, num_classes, drop_rate)

    def reset(self, num_classes: int) -> None:
        super().reset(num_classes)
        if num_classes:
            fc: CondensedLinear | LearnedLinear
            if self.condensed:
                fc = CondensedLinear(self.in_chs, num_classes, int(self.in_chs * self.keep))
            else:
                fc = LearnedLinear(self.in_chs, num_classes, self.keep)
            nn.init.normal_(fc.linear.weight, 0, 0.01)
            nn.init.zeros_(fc.linear.bias)
            self.fc = fc


def condensenet(
    block_config: Sequence[int],
    growth_rates: Sequence[int],
    groups: int = 4,
    condense_factor: int | None = None,
    condensed: bool = True,
    cifar: bool = True,
    num_classes: int = 10,
    **kwargs: Any,
) -> DenseNet:
    """A CondenseNet with ``G = groups`` and ``C = condense_factor`` (default ``G``), condensed or not.

    ``block_config`` and ``growth_rates`` give the layers and growth rate of each dense block (a row of
    ``CONDENSENET_TABLE``); the stem has ``2 x growth_rates[0]`` channels, with stride 1 when ``cifar``
    (32x32 inputs) and 2 otherwise.
    """
    model = DenseNet(
        block_config, growth_rates, 2 * growth_rates[0], stem="conv3", stem_stride=1 if cifar else 2,
        compression=None, bottleneck=BOTTLENECK, groups=groups,
        condense_factor=condense_factor or groups, condensed=condensed, num_classes=num_classes, **kwargs,
    )  # fmt: skip
    model.head = CondenseNetHead(model.head.in_chs, num_classes, condensed, drop_rate=model.head.drop_rate)
    return model


def condense(model: DenseNet) -> DenseNet:
    """Convert a training-time CondenseNet (``condensed=False``) into the inference model, in place.

    Exact: the converted model gives the outputs of the masked one (eval mode). Call it after training,
    when every learned group conv has reached its final stage, to get the registered counts.
    """
    condense_model(model)
    if isinstance(model.head, CondenseNetHead):  # a later reset_classifier() builds a condensed FC too
        model.head.condensed = True
    return model


_NOTE = (
    "Registered as the condensed inference model. MAdds are the CondenseNet counter's: conv MACs + ReLU "
    "elements + pooling ops (kernel^2 x outputs) + FC, our macs+act+pool (its FC bias adds are not "
    "counted, < 0.001M)."
)
_CIFAR = dict(
    paper=PAPER,
    table="Table 4",
    input_size=(3, 32, 32),
    num_classes=10,
    convention="macs+act+pool",
    source="reference build of the official code (ShichenLiu/CondenseNet), ARCHITECTURES.md 6",
)
_IMAGENET = dict(
    paper=PAPER,
    table="Table 5",
    input_size=(3, 224, 224),
    num_classes=1000,
    convention="macs+act+pool",
    recipe="condensenet_imagenet",
    source="reference build of the official code (ShichenLiu/CondenseNet), ARCHITECTURES.md 6",
)


@register_model(
    ModelCard(
        **_CIFAR,
        ref_params=516_202,
        ref_macs=62.38e6,
        params_exact=True,
        paper_params="0.52M",
        paper_madds="65M",
        paper_metrics={"cifar10_error": 5.00, "cifar100_error": 23.64},
        reproduces=("params", "madds"),
        recipe="condensenet_cifar",
        note=_NOTE + " 65M and 5.00%: the paper's Table 4 as PydMobileNet Table 4 and SeesawNet Table 6 both "
        "quote it (the CondenseNet paper is not among the sources here); we count 65.81M (65M truncated). The "
        "official README (ShichenLiu/CondenseNet at 011b71d) prints 65.8M and 5.06% CIFAR-10 error instead. "
        "CIFAR-100 head: 552,292.",
    )
)
def condensenet_86_cifar(condensed: bool = True, **kwargs: Any) -> DenseNet:
    return condensenet(*CONDENSENET_TABLE[86], groups=4, condensed=condensed, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR,
        ref_params=4_209_226,
        ref_macs=493.92e6,
        params_exact=True,
        paper_params="4.2M",
        paper_madds="513M",
        paper_metrics={"cifar10_error": 3.76, "cifar100_error": 18.47},
        reproduces=("params", "madds"),
        recipe="condensenet_cifar_600",
        note=_NOTE + " Trained 600 epochs in the paper (its '*').",
    )
)
def condensenet_182_cifar(condensed: bool = True, **kwargs: Any) -> DenseNet:
    return condensenet(*CONDENSENET_TABLE[182], groups=4, condensed=condensed, **kwargs)


def _condensenet_74(groups: int, condensed: bool, kwargs: dict[str, Any]) -> DenseNet:
    kwargs.setdefault("num_classes", 1000)
    return condensenet(*CONDENSENET_TABLE[74], groups=groups, condensed=condensed, cifar=False, **kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        ref_params=4_773_944,
        ref_macs=516.64e6,
        params_exact=True,
        paper_params="4.8M",
        paper_madds="529M",
        paper_metrics={"top1": 73.8, "top5": 91.7},
        reproduces=("params", "madds"),
        note=_NOTE + " ANTNets Table 7 swaps the G=C=4 and G=C=8 labels (ARCHITECTURES.md 7.3).",
    )
)
def condensenet_74_g4c4(condensed: bool = True, **kwargs: Any) -> DenseNet:
    return _condensenet_74(4, condensed, kwargs)


@register_model(
    ModelCard(
        **_IMAGENET,
        ref_params=2_935_416,
        ref_macs=261.55e6,
        params_exact=True,
        paper_params="2.9M",
        paper_madds="274M",
        paper_metrics={"top1": 71.0, "top5": 90.0},
        reproduces=("params", "madds"),
        note=_NOTE + " ANTNets Table 7 swaps the G=C=4 and G=C=8 labels (ARCHITECTURES.md 7.3).",
    )
)
def condensenet_74_g8c8(condensed: bool = True, **kwargs: Any) -> DenseNet:
    return _condensenet_74(8, condensed, kwargs)
