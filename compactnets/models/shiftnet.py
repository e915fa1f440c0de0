"""ShiftNet (Wu et al. 2018, "Shift: A Zero FLOP, Zero Parameter Alternative to Spatial Convolutions").

The CSC module (Sec. 3): 1x1 conv -> shift -> 1x1 conv, the shift (``layers.Shift``) doing the spatial
mixing with no parameters and no multiply-adds; the expansion ``epsilon`` sets the width between the two
1x1 convs. ShiftResNet replaces each basic block of a CIFAR ResNet with one residual CSC module (the
authors' shiftresnet-cifar code: 1x1 -> BN -> ReLU -> shift -> 1x1 (strided) -> BN, + shortcut, ReLU).
ShiftNet-A stacks CSC modules in four stages for ImageNet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..layers import ClassifierHead, ConvNormAct, Shift, drop_branch
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "ShiftNet (Wu et al. 2018)"

ShortcutMode = Literal["projection", "concat"]


class CSCBlock(nn.Module):
    """Residual CSC module: 1x1 conv (``expansion`` x branch width) -> BN -> ReLU -> shift (k x k) ->
    1x1 conv (stride s) -> BN, plus a shortcut, then ReLU.

    ``shortcut="projection"``: the identity, or a strided 1x1 conv -> BN where the shape changes (ResNet
    option B, the authors' CIFAR code). ``shortcut="concat"``: where the block changes shape, the branch
    makes ``out_chs - in_chs`` channels and a 3x3/2 average pool of the input fills the rest (ShiftNet-A).
    """

    stochastic_depth = True  # set_drop_path may give it a drop_path on the residual branch

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        expansion: float = 1,
        kernel_size: int = 3,
        shortcut: ShortcutMode = "projection",
    ) -> None:
        super().__init__()
        resize = stride != 1 or in_chs != out_chs
        self.concat = shortcut == "concat" and resize
        if self.concat and out_chs <= in_chs:
            raise ValueError(f"a concat shortcut needs out_chs > in_chs, got {in_chs} -> {out_chs}")
        branch_chs = out_chs - in_chs if self.concat else out_chs
        mid_chs = int(branch_chs * expansion)
        self.branch = nn.Sequential(
            OrderedDict(
                expand=ConvNormAct(in_chs, mid_chs, 1),
                shift=Shift(kernel_size),
                project=ConvNormAct(mid_chs, branch_chs, 1, stride, act=None),
            )
        )
        if self.concat:
            self.shortcut: nn.Module = nn.AvgPool2d(3, stride, 1)
        elif resize:
            self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride, act=None)
        else:
            self.shortcut = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.in_chs, self.mid_chs, self.out_chs, self.stride = in_chs, mid_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        out = torch.cat([out, self.shortcut(x)], dim=1) if self.concat else drop_branch(self, out) + self.shortcut(x)
        return self.act(out)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add; a concatenation costs nothing (profiler protocol)."""
        return {"residual": 0 if self.concat else output.numel()}


@dataclass(frozen=True)
class ShiftStage:
    """A row of CSC modules: output channels, number of modules, stride of the first, shift kernel, and the
    expansion of the first and of the other modules."""

    out_chs: int
    repeats: int
    stride: int
    kernel_size: int
    first_expansion: float
    expansion: float


class ShiftNet(CompactNet):
    """Stem conv -> BN -> ReLU, rows of :class:`CSCBlock`, global pool, FC (ShiftResNet and ShiftNet-A)."""

    def __init__(
        self,
        stages: Sequence[ShiftStage],
        stem_chs: int,
        stem_kernel: int = 3,
        stem_stride: int = 1,
        shortcut: ShortcutMode = "projection",
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        layers: list[nn.Module] = [ConvNormAct(in_chans, stem_chs, stem_kernel, stem_stride)]
        chs = stem_chs
        for stage in stages:
            for i in range(stage.repeats):
                layers.append(
                    CSCBlock(
                        chs, stage.out_chs, stage.stride if i == 0 else 1,
                        stage.first_expansion if i == 0 else stage.expansion, stage.kernel_size, shortcut,
                    )
                )  # fmt: skip
                chs = stage.out_chs
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)


# ---------------------------------------------------------------------------- ShiftResNet (CIFAR)
# CIFAR ResNet-20/56/110 (He et al. 2016, Sec. 4.2) as ShiftResNet: a 3x3 conv with 16 channels, then three
# stages of n CSC modules with 16, 32, 64 channels (n = 3, 9, 18), the 2nd and 3rd starting with stride 2;
# expansion epsilon in every module, 3x3 shift kernel.
SHIFTRESNET_CIFAR_CHANNELS = (16, 32, 64)
SHIFTRESNET_CIFAR_DEPTHS = {20: 3, 56: 9, 110: 18}


def shiftresnet_cifar(depth: int = 20, expansion: float = 6, **kwargs: Any) -> ShiftNet:
    """ShiftResNet-``depth`` for 32x32 inputs with expansion ``epsilon``."""
    if depth not in SHIFTRESNET_CIFAR_DEPTHS:
        raise ValueError(f"no ShiftResNet-{depth}; choose depth from {sorted(SHIFTRESNET_CIFAR_DEPTHS)}")
    n = SHIFTRESNET_CIFAR_DEPTHS[depth]
    stages = [
        ShiftStage(chs, n, 1 if i == 0 else 2, 3, expansion, expansion)
        for i, chs in enumerate(SHIFTRESNET_CIFAR_CHANNELS)
    ]
    return ShiftNet(stages, stem_chs=16, stem_kernel=3, stem_stride=1, shortcut="projection", **kwargs)


_CIFAR_NOTE = (
    "epsilon=6 (pass expansion=1, 3 or 9 for the other columns). The printed params are the authors' "
    "CIFAR-10 counts (10-way FC); with 100 classes they grow by 5,850 and still print the same. The paper's "
    "CIFAR table gives no FLOPs we could check; ref_macs is our count (conv + FC MACs). top-1 is the authors' "
    "current README table (alvinwan/shiftresnet-cifar at d2715d8, 'SRN Acc': 69.73 / 72.33 / 73.17 for "
    "ShiftResNet-20/56/110); older README versions (e.g. 0410734) print 68.64 / 72.13 / 72.56. The Shift paper "
    "(arXiv 1711.08141, CVPR 2018) is not among the sources here, so which README version its own CIFAR-100 "
    "table matches is not checked: top-1 holds the README's, and the table field says so."
)
_CIFAR = dict(
    paper=PAPER,
    input_size=(3, 32, 32),
    num_classes=100,
    recipe="shiftnet_cifar",
    reproduces=("params",),
    source="reference build of the authors' shiftresnet-cifar ShiftResNet20/56/110 (expansion=6)",
    note=_CIFAR_NOTE,
)


@register_model(
    ModelCard(
        **_CIFAR,
        table="CIFAR-100, epsilon=6 (the authors' shiftresnet-cifar README table, at d2715d8)",
        ref_params=192_596,
        ref_macs=32.17e6,
        params_exact=True,
        paper_params="0.19M",
        paper_metrics={"top1": 69.73},
    )
)
def shiftresnet20_cifar(**kwargs: Any) -> ShiftNet:
    return shiftresnet_cifar(20, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR,
        table="CIFAR-100, epsilon=6 (the authors' shiftresnet-cifar README table, at d2715d8)",
        ref_params=589_076,
        ref_macs=88.79e6,
        params_exact=True,
        paper_params="0.58M",
        paper_metrics={"top1": 72.33},
    )
)
def shiftresnet56_cifar(**kwargs: Any) -> ShiftNet:
    return shiftresnet_cifar(56, **kwargs)


@register_model(
    ModelCard(
        **_CIFAR,
        table="CIFAR-100, epsilon=6 (the authors' shiftresnet-cifar README table, at d2715d8)",
        ref_params=1_183_796,
        ref_macs=173.73e6,
        params_exact=True,
        paper_params="1.18M",
        paper_metrics={"top1": 73.17},
    )
)
def shiftresnet110_cifar(**kwargs: Any) -> ShiftNet:
    return shiftresnet_cifar(110, **kwargs)


# ---------------------------------------------------------------------------- ShiftNet-A (ImageNet)
# ShiftNet-A (the paper's ShiftNet architecture table): a 7x7/2 conv with 32 channels, then four stages
# of CSC modules, each halving the resolution in its first module (224 -> 112 -> 56 -> 28 -> 14 -> 7):
# (output channels, modules, stride, shift kernel, expansion of the first module, of the others).
SHIFTNET_A_STEM = (32, 7)
SHIFTNET_A_TABLE: list[tuple[int, int, int, int, float, float]] = [
    (64, 5, 2, 5, 4, 4),
    (128, 6, 2, 5, 4, 3),
    (256, 7, 2, 3, 3, 2),
    (512, 3, 2, 3, 2, 1),
]


@register_model(
    ModelCard(
        paper=PAPER,
        table="ImageNet table (ShiftNet-A)",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=4_187_720,
        ref_macs=1424.31e6,
        params_exact=True,
        paper_params="4.1M",
        paper_madds="1.4G",
        paper_metrics={"top1": 70.1},
        reproduces=("params", "madds"),
        recipe="shiftnet_imagenet",
        source="reference build of the stage table above",
        note="The stage table (channels 64/128/256/512, 5/6/7/3 modules, shift kernels 5/5/3/3, expansions) "
        "and the downsampling (branch of C_out - C_in channels concatenated with a 3x3/2 average pool of "
        "the input) follow a public ShiftNet-A reimplementation. 4,187,720 params print as 4.1M only "
        "truncated (4.2M rounded); 1.424G MACs print as 1.4G (the paper's FLOPs are MACs). Block order as "
        "in the authors' CIFAR code (post-activation).",
    )
)
def shiftnet_a(**kwargs: Any) -> ShiftNet:
    stem_chs, stem_kernel = SHIFTNET_A_STEM
    stages = [ShiftStage(*row) for row in SHIFTNET_A_TABLE]
    return ShiftNet(stages, stem_chs, stem_kernel, stem_stride=2, shortcut="concat", **kwargs)
