"""MobileNetV1/V2 structure: exact torchvision counts and identical logits with torchvision's weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.convert import load_torchvision_weights, remap_state_dict


@pytest.mark.parametrize(("name", "width"), [("mobilenetv2_100", 1.0), ("mobilenetv2_140", 1.4)])
def test_mobilenetv2_matches_torchvision(name: str, width: float) -> None:
    reference = torchvision.models.mobilenet_v2(width_mult=width).eval()
    for module in reference.modules():  # non-trivial BN statistics, so BN placement matters too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours = cn.create_model(name).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    load_torchvision_weights(ours, reference)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)


def test_remap_rejects_a_different_structure() -> None:
    with pytest.raises(ValueError, match=r"tensors|shape mismatch"):
        remap_state_dict(torchvision.models.mobilenet_v2().state_dict(), cn.create_model("antnet_g1"))


def test_mobilenetv1_width_multiplier_channels() -> None:
    model = cn.create_model("mobilenetv1_050")
    assert model.num_features == 512
    assert cn.profile(model).params == 1_331_592
