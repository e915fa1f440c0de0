"""DenseNet: torchvision parity for DenseNet-121 and the DenseNet-BC (L=100, k=12) structure."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision

import compactnets as cn
from compactnets.models.densenet import DenseLayer


def test_densenet121_matches_torchvision(torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model("densenet121"), torchvision.models.densenet121())  # no weights to download


def test_densenet_bc_100_k12_structure() -> None:
    model = cn.create_model("densenet_bc_100_k12_cifar")
    blocks = [getattr(model.features, f"block{i}") for i in (1, 2, 3)]
    assert [len(b) for b in blocks] == [16, 16, 16]  # (100 - 4) / 6 bottleneck layers per block
    assert all(isinstance(layer, DenseLayer) for b in blocks for layer in b)
    # stem 2k = 24; each block adds 16 k = 192; transitions halve (theta = 0.5)
    assert [b[0].in_chs for b in blocks] == [24, 108, 150]
    assert model.num_features == 342
    assert blocks[0][0].conv1.conv.out_channels == 48  # bottleneck width 4 k
    assert cn.profile(model).params == 769_162
    assert cn.profile(cn.create_model("densenet_bc_100_k12_cifar", num_classes=100)).params == 800_032
    features = model.forward_features(torch.randn(1, 3, 32, 32))
    assert features.shape == (1, 342, 8, 8)
