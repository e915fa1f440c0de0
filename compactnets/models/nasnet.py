"""NASNet-A (Zoph et al. 2018, "Learning Transferable Architectures for Scalable Image Recognition").

A searched normal cell (keeps the resolution) and reduction cell (halves it), stacked as in Fig. 2:
the ImageNet stem (a 3x3/2 conv and two reduction cells), then N normal cells, a reduction cell, N normal
cells, a reduction cell, N normal cells. Each cell reads the two previous cell outputs h_i and h_{i-1};
each of its five combinations sums two operations on earlier states (Sec. 3, Fig. 4). Operation details
(ReLU-SepConv-BN applied twice, pooling without padded elements, the factorized reduction of h_{i-1}) are
those of the authors' TF-slim release (``nasnet.py``, ``nasnet_utils.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers import ClassifierHead, ConvNormAct, DepthwiseSeparable, conv2d
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "NASNet (Zoph et al. 2018)"

Combination = tuple[int, str, int, str]
"""(left input, left operation, right input, right operation) of one cell combination; the two are summed.
Inputs: 0 = h_i (the previous cell), 1 = h_{i-1}, 2.. = the cell's earlier combinations."""

# NASNet-A normal cell, Fig. 4 (left); concatenated output: h_{i-1} and the five combinations.
NORMAL_CELL: list[Combination] = [
    (0, "sep5x5", 1, "sep3x3"),
    (1, "sep5x5", 1, "sep3x3"),
    (0, "avg3x3", 1, "identity"),
    (1, "avg3x3", 1, "avg3x3"),
    (0, "sep3x3", 0, "identity"),
]
NORMAL_CELL_OUTPUT = (1, 2, 3, 4, 5, 6)

# NASNet-A reduction cell, Fig. 4 (right); operations on h_i, h_{i-1} have stride 2; output: combinations 2-5.
REDUCTION_CELL: list[Combination] = [
    (0, "sep5x5", 1, "sep7x7"),
    (0, "max3x3", 1, "sep7x7"),
    (0, "avg3x3", 1, "sep5x5"),
    (3, "identity", 2, "avg3x3"),
    (2, "sep3x3", 0, "max3x3"),
]
REDUCTION_CELL_OUTPUT = (3, 4, 5, 6)


@dataclass(frozen=True)
class NASNetConfig:
    """``N @ penultimate filters`` of Table 3 and the ImageNet stem (Fig. 2).

    ``filters`` is the width of the first stage's cells; it doubles at each reduction, and the stem's two
    reduction cells use filters / 4 and filters / 2 (TF-slim ``_imagenet_stem``).
    """

    num_normal_cells: int = 4
    filters: int = 44
    stem_chs: int = 32

    @property
    def penultimate_filters(self) -> int:
        """Output channels of the last normal cell: 6 concatenated states x 4 x ``filters``."""
        return len(NORMAL_CELL_OUTPUT) * 4 * self.filters


# NASNet Table 3: NASNet-A (4 @ 1056), the mobile model (1056 = 6 x 4 x 44).
NASNET_A_MOBILE = NASNetConfig(num_normal_cells=4, filters=44, stem_chs=32)


def relu_conv_bn(in_chs: int, out_chs: int, stride: int = 1) -> nn.Sequential:
    """ReLU -> 1x1 conv -> BN: how a cell brings a state to its width (TF-slim ``_cell_base``)."""
    return nn.Sequential(nn.ReLU(), ConvNormAct(in_chs, out_chs, 1, stride, act=None))


class FactorizedReduction(nn.Module):
    """ReLU, then two strided 1x1 convs, on the input and on the input shifted by one pixel, concatenated
    and batch-normalised: halves the resolution of h_{i-1} without dropping every other pixel."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.path1 = conv2d(in_chs, out_chs // 2, 1, stride=2)
        self.path2 = conv2d(in_chs, out_chs - out_chs // 2, 1, stride=2)
        self.bn = nn.BatchNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.path1(x), self.path2(shifted)], dim=1))


def nasnet_operation(name: str, in_chs: int, out_chs: int, stride: int) -> nn.Module:
    """One operation of Fig. 4, mapping ``in_chs`` to ``out_chs`` channels.

    ``sepKxK``: (ReLU -> KxK separable conv -> BN) twice, the first strided. ``avg3x3``/``max3x3``: 3x3 pooling
    (averages exclude padding, as TF's 'SAME'), then 1x1 conv -> BN if the width changes. ``identity``:
    ReLU -> 1x1 conv -> BN where stride or width change, else nothing.
    """
    if name.startswith("sep"):
        k = int(name[3])
        return nn.Sequential(
            DepthwiseSeparable(in_chs, out_chs, stride, k, act=None, dw_norm_act=False, pre_act="relu"),
            DepthwiseSeparable(out_chs, out_chs, 1, k, act=None, dw_norm_act=False, pre_act="relu"),
        )
    if name in ("avg3x3", "max3x3"):
        pool: nn.Module = (
            nn.AvgPool2d(3, stride, 1, count_include_pad=False) if name == "avg3x3" else nn.MaxPool2d(3, stride, 1)
        )
        return pool if in_chs == out_chs else nn.Sequential(pool, ConvNormAct(in_chs, out_chs, 1, act=None))
    if name == "identity":
        return nn.Identity() if stride == 1 and in_chs == out_chs else relu_conv_bn(in_chs, out_chs, stride)
    raise ValueError(f"unknown NASNet operation {name!r}; choose sep3x3, sep5x5, sep7x7, avg3x3, max3x3, identity")


class NASNetCell(nn.Module):
    """A normal or reduction cell (Sec. 3): ``forward(h_i, h_prev)`` -> concatenation of the output states.

    h_i passes ReLU -> 1x1 conv -> BN; h_prev is brought to the same shape (factorized reduction if it has
    twice the resolution, ReLU -> 1x1 conv -> BN if only the width differs). ``prev_is_input`` marks the
    first stem cell, whose h_prev is its raw input (TF-slim passes no previous layer there).
    """

    def __init__(
        self,
        combinations: Sequence[Combination],
        output_states: Sequence[int],
        in_chs: int,
        prev_chs: int,
        chs: int,
        reduction: bool,
        prev_reduced: bool = False,
        prev_is_input: bool = False,
    ) -> None:
        super().__init__()
        self.preprocess = relu_conv_bn(in_chs, chs)
        if prev_is_input:
            self.preprocess_prev: nn.Module = nn.Identity()
        elif prev_reduced:
            self.preprocess_prev = FactorizedReduction(prev_chs, chs)
        else:
            self.preprocess_prev = nn.Identity() if prev_chs == chs else relu_conv_bn(prev_chs, chs)
        state_chs = [chs, prev_chs if prev_is_input else chs] + [chs] * len(combinations)
        self.combinations = [(left, right) for left, _, right, _ in combinations]
        self.left = nn.ModuleList()
        self.right = nn.ModuleList()
        for left, left_op, right, right_op in combinations:
            for ops, index, op in ((self.left, left, left_op), (self.right, right, right_op)):
                stride = 2 if reduction and index < 2 else 1  # only operations on h_i, h_{i-1} reduce
                ops.append(nasnet_operation(op, state_chs[index], chs, stride))
        self.output_states = tuple(output_states)
        self.out_chs = chs * len(self.output_states)

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess(x), self.preprocess_prev(prev)]
        for (left, right), left_op, right_op in zip(self.combinations, self.left, self.right, strict=True):
            states.append(left_op(states[left]) + right_op(states[right]))
        return torch.cat([states[i] for i in self.output_states], dim=1)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The adds that combine each pair of operations (profiler protocol)."""
        return {"residual": len(self.combinations) * output.numel() // len(self.output_states)}


class CellStack(nn.Module):
    """Stem conv, then cells fed with (previous output, the one before it); ReLU at the end (TF-slim)."""

    def __init__(self, stem: nn.Module, cells: Sequence[NASNetCell]) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        prev = x  # the first stem cell's h_{i-1} is its own input
        for cell in self.cells:
            x, prev = cell(x, prev), x
        return self.act(x)


class NASNet(CompactNet):
    """NASNet for ImageNet (Fig. 2): stem conv, two reduction cells, then (N normal cells, reduction) x 2
    and N normal cells; global pool, dropout 0.5, FC. No auxiliary head (it only serves training)."""

    def __init__(
        self,
        config: NASNetConfig = NASNET_A_MOBILE,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.in_chans, self.config = in_chans, config
        stem = ConvNormAct(in_chans, config.stem_chs, 3, 2, act=None, padding=0)  # "conv0", VALID padding
        f, n = config.filters, config.num_normal_cells
        plan = [(True, f // 4), (True, f // 2)]  # (reduction?, filters): the two stem cells
        for stage in range(3):
            if stage:
                plan.append((True, f * 2**stage))
            plan += [(False, f * 2**stage)] * n
        cells: list[NASNetCell] = []
        chs, prev_chs, prev_reduced = config.stem_chs, config.stem_chs, False
        for i, (reduction, filters) in enumerate(plan):
            combinations, outputs = (
                (REDUCTION_CELL, REDUCTION_CELL_OUTPUT) if reduction else (NORMAL_CELL, NORMAL_CELL_OUTPUT)
            )
            cell = NASNetCell(
                combinations, outputs, chs, prev_chs, filters, reduction, prev_reduced, prev_is_input=i == 0
            )
            cells.append(cell)
            chs, prev_chs, prev_reduced = cell.out_chs, chs, reduction
        self.features = CellStack(stem, cells)
        self.head = ClassifierHead(chs, num_classes, drop_rate)
        init_weights(self)

    def checkpointed_features(self, x: torch.Tensor) -> torch.Tensor:
        """:class:`CellStack` with every cell (which takes two inputs) under ``torch.utils.checkpoint``."""
        stack = self.features
        x = stack.stem(x)
        prev = x
        for cell in stack.cells:
            x, prev = checkpoint(cell, x, prev, use_reentrant=False), x
        return stack.act(x)

    def feature_modules(self) -> list[tuple[str, nn.Module]]:
        """The stem and every cell (each takes two inputs, so ``features`` is no Sequential), then the ReLU."""
        cells = [(f"features.cells.{i}", cell) for i, cell in enumerate(self.features.cells)]
        return [("features.stem", self.features.stem), *cells, ("features.act", self.features.act)]


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 3 (NASNet-A 4 @ 1056)",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=5_289_978,
        ref_macs=563.64e6,
        params_exact=True,
        paper_params="5.3M",
        paper_madds="564M",
        paper_metrics={"top1": 74.0},
        reproduces=("params", "madds"),
        recipe="nasnet_imagenet",
        source="reference build of the TF-slim mobile config (num_cells=12, num_conv_filters=44); the "
        "params equal the trainable count of Keras NASNetMobile",
        note="No auxiliary head and no drop-path (the mobile config trains with drop_path_keep_prob=1.0). "
        "Symmetric padding in strided ops instead of TF 'SAME' (same shapes and counts). ANTNets Table 7 "
        "quotes 5.3M / 564M / 74.0 with a top-5 of 91.3 (the card holds top-1 only).",
    )
)
def nasnet_a_mobile(**kwargs: Any) -> NASNet:
    return NASNet(NASNET_A_MOBILE, **kwargs)
