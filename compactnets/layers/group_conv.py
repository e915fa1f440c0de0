"""Uneven group convolution (SeesawNet, Zhang 2019, Sec. 4.1): a grouped conv whose groups differ in size.

The input channels are split in a ratio (SeesawNet's 1:3, the share variants' 1:2 or a mirrored 3:1), each
part goes through its own convolution into the same share of the output channels, and the outputs are
concatenated. With equal ratios this is an ordinary grouped convolution; with one ratio it is a dense one.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate, pairwise

import torch
from torch import nn

Groups = int | tuple[int, ...]
"""Where the vocabulary takes a 1x1 conv's groups: an int (even groups, ``nn.Conv2d(groups=g)``) or a tuple
of split ratios such as ``(1, 3)`` (an :class:`UnevenGroupConv`)."""


def split_channels(channels: int, ratios: Sequence[int]) -> tuple[int, ...]:
    """Split ``channels`` in the ratio ``ratios``; part k ends at ``floor(channels * (r_1 + ... + r_k) / sum(r))``.

    This is the released SeesawNet code's rule: a 1:3 split is ``(C // 4, C - C // 4)`` and the mirrored
    3:1 split of the share block is ``(3 * C // 4, C - 3 * C // 4)``.
    """
    if not ratios or any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in ratios):
        raise ValueError(f"split ratios must be positive integers such as (1, 3), got {tuple(ratios)!r}")
    total, cumulative, bounds = sum(ratios), 0, [0]
    for ratio in ratios:
        cumulative += ratio
        bounds.append(channels * cumulative // total)
    parts = tuple(b - a for a, b in pairwise(bounds))
    if min(parts) < 1:
        raise ValueError(
            f"{channels} channels cannot be split in the ratio {':'.join(map(str, ratios))} "
            f"(parts {parts}); use more channels or fewer groups"
        )
    return parts


class UnevenGroupConv(nn.Module):
    """Grouped convolution with groups of uneven size: ``cat([conv_k(x_k) for each part k])``.

    The input and the output are both split in the ratio ``splits`` (:func:`split_channels`); part k of the
    input is convolved into part k of the output by ``convs[k]``, an ``nn.Conv2d``, so the profiler counts it
    exactly (``sum_k C_out,k C_in,k k^2 H W`` MACs). SeesawNet Sec. 4.1, the author's code: a 1:3 split,
    ``x[:, :C // 4] -> C' // 4`` and ``x[:, C // 4:] -> C' - C' // 4``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        splits: Sequence[int] = (1, 3),
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.splits = tuple(splits)
        self.in_splits = split_channels(in_chs, self.splits)
        self.out_splits = split_channels(out_chs, self.splits)
        padding = (kernel_size - 1) // 2 * dilation
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation=dilation, bias=bias)
            for cin, cout in zip(self.in_splits, self.out_splits, strict=True)
        )
        self.in_channels, self.out_channels = in_chs, out_chs
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Slices, not torch.split: XNNPACK delegates slice_copy but leaves split_with_sizes to portable kernels.
        parts = [x[:, start:end] for start, end in pairwise(accumulate(self.in_splits, initial=0))]
        return torch.cat([conv(parts[i]) for i, conv in enumerate(self.convs)], dim=1)

    def block_diagonal_weight(self) -> torch.Tensor:
        """The equivalent dense weight (C_out, C_in, k, k): the groups' kernels on the diagonal, zeros elsewhere."""
        first = self.convs[0].weight
        weight = first.new_zeros(self.out_channels, self.in_channels, *first.shape[2:])
        row = col = 0
        for conv in self.convs:
            cout, cin = conv.weight.shape[:2]
            weight[row : row + cout, col : col + cin] = conv.weight
            row, col = row + cout, col + cin
        return weight

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, splits={':'.join(map(str, self.splits))}"
