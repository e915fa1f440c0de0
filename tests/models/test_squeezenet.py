"""SqueezeNet: Table 1's counts, torchvision parity for 1.0/1.1, and Sec. 6's bypasses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.models.squeezenet import Fire
from compactnets.registry import matches_printed


@pytest.mark.parametrize(
    ("name", "reference"),
    [("squeezenet_10", torchvision.models.squeezenet1_0), ("squeezenet_11", torchvision.models.squeezenet1_1)],
)
def test_squeezenet_matches_torchvision(name: str, reference: type, torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model(name), reference(), size=96)


def test_table_1_parameters_and_the_227_crop() -> None:
    with torch.device("meta"):
        model = cn.create_model("squeezenet_10")
    fires = [m for m in model.features if isinstance(m, Fire)]
    # Table 1, "#parameter before pruning" of fire2 .. fire9 and conv10 (weights and biases)
    per_layer = [sum(p.numel() for p in f.parameters()) for f in fires]
    assert per_layer == [11_920, 12_432, 45_344, 49_440, 104_880, 111_024, 188_992, 197_184]
    assert sum(p.numel() for p in model.head.parameters()) == 513_000
    assert matches_printed(cn.profile(model, 227).macs, "833M")  # the MFLOPs ShuffleNet Table 6 quotes
    assert cn.profile(model, 224).macs == 818_924_576


def test_bypasses_follow_figure_2() -> None:
    simple = cn.create_model("squeezenet_10_simple_bypass")
    complex_ = cn.create_model("squeezenet_10_complex_bypass")
    assert [f.bypass for f in simple.features if isinstance(f, Fire)] == ["none", "simple"] * 4
    assert [f.bypass for f in complex_.features if isinstance(f, Fire)] == ["complex", "simple"] * 4
    fire = Fire(128, 16, 64, 64, bypass="simple").eval()
    x = torch.randn(1, 128, 8, 8)
    plain = Fire(128, 16, 64, 64)
    plain.load_state_dict(fire.state_dict())
    torch.testing.assert_close(fire(x), plain(x) + x)
    with pytest.raises(ValueError, match="complex"):
        Fire(96, 16, 64, 64, bypass="simple")
    assert cn.profile(simple, 224).ops["residual"] > 0


def test_width_multiplier_and_head() -> None:
    narrow = cn.create_model("squeezenet_11", width=0.5)
    assert narrow.features[0].conv.out_channels == 32
    assert narrow.num_features == 256
    x = torch.randn(1, 3, 64, 64)
    assert narrow.eval().forward_head(narrow.forward_features(x), pre_logits=True).shape == (1, 256)
    narrow.reset_classifier(0)
    assert narrow(x).shape == (1, 256)
