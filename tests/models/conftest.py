"""Fixtures shared by the model-family tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from compactnets.convert import load_torchvision_weights


def _assert_torchvision_parity(ours: nn.Module, reference: nn.Module, size: int = 64) -> None:
    """Same parameter count, different logits before and identical logits after loading torchvision's weights.

    BN running statistics are randomised first, so a BN in the wrong place cannot hide behind identity statistics.
    """
    ours.eval()
    reference.eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert not torch.allclose(ours(x), reference(x))  # fresh weights differ: the check below can fail
        load_torchvision_weights(ours, reference)
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.fixture
def torchvision_parity() -> Callable[..., None]:
    """``torchvision_parity(ours, reference, size=64)``: see :func:`_assert_torchvision_parity`."""
    return _assert_torchvision_parity
