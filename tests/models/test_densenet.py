"""DenseNet: torchvision parity for DenseNet-121 and the DenseNet-BC (L=100, k=12) structure."""

from __future__ import annotations

import torch
import torchvision

import compactnets as cn
from compactnets.convert import load_torchvision_weights
from compactnets.models.densenet import DenseLayer


def test_densenet121_matches_torchvision() -> None:
    reference = torchvision.models.densenet121().eval()  # no weights: nothing to download
    for module in reference.modules():  # non-trivial BN statistics, so BN placement matters too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours = cn.create_model("densenet121").eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    load_torchvision_weights(ours, reference)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)


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
