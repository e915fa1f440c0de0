"""Channel attention: squeeze-and-excitation and the ANTBlock attention module."""

from __future__ import annotations

import torch
from torch import nn

from .activations import ActLayer, create_act


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 conv (C -> hidden) -> act -> 1x1 conv (hidden -> C) -> gate -> rescale.

    SENet (Hu et al. 2018, Sec. 3) and the ANTBlock channel attention (ANTNets Eq. 5-6; FCs written as
    1x1 convs with bias). ``hidden_chs`` defaults to ``channels // reduction``. The rescale is an
    element-wise multiply: the profiler reports it under ``gating``.
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 16,
        hidden_chs: int | None = None,
        act: str | ActLayer = "relu",
        gate: str | ActLayer = "sigmoid",
    ) -> None:
        super().__init__()
        hidden_chs = hidden_chs if hidden_chs is not None else max(1, int(channels // reduction))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden_chs, 1, bias=True)
        self.act = create_act(act)
        self.fc2 = nn.Conv2d(hidden_chs, channels, 1, bias=True)
        self.gate = create_act(gate)
        self.channels, self.hidden_chs = channels, hidden_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * scale

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The channel-wise rescale: one multiply per output element (profiler protocol)."""
        return {"gating": output.numel()}
