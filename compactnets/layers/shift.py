"""The shift operation (Wu et al. 2018, "Shift: A Zero FLOP, Zero Parameter Alternative to Spatial Convolutions").

Sec. 3: a k x k "kernel" per channel that is one-hot, so each output channel is its input channel
translated by one offset. Offsets are assigned by groups: the C channels split into k^2 groups of
floor(C / k^2) channels, one offset each (row-major over the k x k window, the centre offset is the
identity); the C mod k^2 leftover channels are not moved. The authors' CUDA kernel interleaves instead
(channel c takes offset c mod k^2); between two 1x1 convs any channel order is equivalent (Sec. 3).
Written as one zero pad, k^2 slices and a concat: no parameters, no multiply-adds, and every exporter
handles it.
"""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn


def shift_offsets(kernel_size: int = 3, dilation: int = 1) -> list[tuple[int, int]]:
    """The k^2 offsets (dy, dx) of the shift groups, row-major over the k x k window, scaled by ``dilation``."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"shift kernel_size must be odd and positive, got {kernel_size}")
    radius = kernel_size // 2
    return [(dy * dilation, dx * dilation) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def shift2d(x: torch.Tensor, kernel_size: int = 3, dilation: int = 1) -> torch.Tensor:
    """Grouped shift of an (N, C, H, W) tensor: group g reads ``out[y, x] = in[y + dy_g, x + dx_g]``.

    Positions read from outside the image are zero. Group g holds channels ``[g * s, (g + 1) * s)`` with
    ``s = C // kernel_size**2``; the last ``C % kernel_size**2`` channels stay where they are.
    """
    offsets = shift_offsets(kernel_size, dilation)
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    size = channels // len(offsets)
    if size == 0:
        raise ValueError(
            f"shift with a {kernel_size}x{kernel_size} kernel needs at least {len(offsets)} channels, got "
            f"{channels}: widen the layer or use a smaller kernel_size"
        )
    pad = (kernel_size // 2) * dilation
    shifted = F.pad(x[:, : size * len(offsets)], (pad, pad, pad, pad))
    pieces = [
        shifted[:, g * size : (g + 1) * size, pad + dy : pad + dy + height, pad + dx : pad + dx + width]
        for g, (dy, dx) in enumerate(offsets)
    ]
    if channels > size * len(offsets):
        pieces.append(x[:, size * len(offsets) :])
    return torch.cat(pieces, dim=1)


torch.fx.wrap("shift2d")  # one node in a traced graph: its groups depend on the channel count, which FX cannot read


class Shift(nn.Module):
    """Module form of :func:`shift2d`: zero parameters, zero multiply-adds (the profiler counts nothing)."""

    def __init__(self, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__()
        self.offsets = shift_offsets(kernel_size, dilation)  # validates kernel_size
        self.kernel_size, self.dilation = kernel_size, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shift2d(x, self.kernel_size, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}" + (f", dilation={self.dilation}" if self.dilation != 1 else "")
