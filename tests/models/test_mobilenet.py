"""MobileNetV1/V2 structure: exact torchvision counts and identical logits with torchvision's weights."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torchvision

import compactnets as cn
from compactnets.convert import remap_state_dict


@pytest.mark.parametrize(("name", "width"), [("mobilenetv2_100", 1.0), ("mobilenetv2_140", 1.4)])
def test_mobilenetv2_matches_torchvision(name: str, width: float, torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model(name), torchvision.models.mobilenet_v2(width_mult=width), size=128)


def test_remap_rejects_a_different_structure() -> None:
    with pytest.raises(ValueError, match=r"tensors|shape mismatch"):
        remap_state_dict(torchvision.models.mobilenet_v2().state_dict(), cn.create_model("antnet_g1"))


def test_mobilenetv1_width_multiplier_channels() -> None:
    model = cn.create_model("mobilenetv1_050")
    assert model.num_features == 512
    assert cn.profile(model).params == 1_331_592
