"""Channel shuffle (ShuffleNet, Zhang et al. 2018, Sec. 3.1; IGCV3's permutation)."""

from __future__ import annotations

import torch
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: (N, g, C/g, H, W) -> transpose -> (N, C, H, W).

    One copy, in the input's memory format: a channels_last input is shuffled as NHWC, so the output (and, in
    backward, the gradient) stays channels_last. Mixing layouts sends BatchNorm's backward to a slow path
    (IGCV3-0.5D trained 3x slower). Written as views and one copy, which every exporter and ``torch.fx`` handles.
    """
    if is_fx_symbolic_tracing():  # FX traces shapes and layouts symbolically: no Python branch on them
        return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)
    if x.shape[1] % groups:
        raise ValueError(f"channel_shuffle: {x.shape[1]} channels do not split into {groups} groups")
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        nhwc = x.permute(0, 2, 3, 1).unflatten(3, (groups, -1)).transpose(3, 4).flatten(3, 4)
        return nhwc.permute(0, 3, 1, 2)
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ChannelShuffle(nn.Module):
    """Module form of :func:`channel_shuffle`."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
