"""Channel shuffle (ShuffleNet, Zhang et al. 2018, Sec. 3.1; IGCV3's permutation)."""

from __future__ import annotations

import torch
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: (N, g, C/g, H, W) -> transpose -> (N, C, H, W).

    Written as unflatten/transpose/flatten (views and one copy), which every exporter and ``torch.fx`` handles.
    """
    if not is_fx_symbolic_tracing() and x.shape[1] % groups:  # FX traces shapes symbolically: no Python branch on them
        raise ValueError(f"channel_shuffle: {x.shape[1]} channels do not split into {groups} groups")
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
