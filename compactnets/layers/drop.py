"""Stochastic depth (Huang et al. 2016), per sample: EfficientNet's "drop connect" on residual branches."""

from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Zero a residual branch for a random ``rate`` of the samples and rescale the rest by ``1 / (1 - rate)``.

    The identity in eval mode or at ``rate == 0``, so inference and counting never see it.
    """
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    """Module form of :func:`drop_path`; goes on a residual branch, before the add."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def drop_branch(block: nn.Module, branch: torch.Tensor) -> torch.Tensor:
    """``branch`` through the block's ``drop_path`` module where :func:`set_drop_path` gave it one (else as is):
    what a residual block adds to its shortcut."""
    drop = block._modules.get("drop_path")
    return branch if drop is None else drop(branch)


def set_drop_path(model: nn.Module, rate: float) -> int:
    """Stochastic depth on every residual branch of ``model``, the rate rising linearly from 0 at the first
    block to ``rate`` at the last (Huang et al. 2016, Sec. 3; timm's schedule). Residual blocks are those whose
    class sets ``stochastic_depth = True`` and whose instance adds a residual (``use_residual``, default True).
    Returns how many blocks got one; a model without residual branches raises ``ValueError``."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
    blocks = [m for m in model.modules()
              if getattr(type(m), "stochastic_depth", False) and getattr(m, "use_residual", True)]  # fmt: skip
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no residual branches to drop (drop_path_rate applies to none)")
    for i, block in enumerate(blocks):
        block.drop_path = DropPath(rate * i / max(len(blocks) - 1, 1)) if rate else nn.Identity()
    return len(blocks)
