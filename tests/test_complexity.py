from __future__ import annotations

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.complexity import OPS, executed_macs, parse_convention
from compactnets.layers import PyramidDepthwise


@pytest.mark.parametrize(
    "name", ["mobilenetv1_025", "mobilenetv2_cifar", "antnet_g2_cifar", "antnet_e_cifar", "c_antnet_cifar"]
)
def test_macs_agree_with_torch_flop_counter(name: str) -> None:
    """Two independent counts: our module hooks, and the ATen ops PyTorch's FlopCounterMode sees executed."""
    model = cn.create_model(name)
    size = (3, 32, 32) if name.endswith("_cifar") else (3, 96, 96)
    assert cn.profile(model, size).macs == executed_macs(model, size)


@pytest.mark.parametrize(("mode", "single_conv", "executed_per_pixel"), [("add", True, 49), ("concat", False, 83)])
def test_executed_macs_count_the_merged_pyramid(mode: str, single_conv: bool, executed_per_pixel: int) -> None:
    """PydMobileNet counts 3x3 + 5x5 + 7x7 = 83 MACs per output element; the merged Add pyramid runs one 7x7."""
    layer = PyramidDepthwise(4, (3, 5, 7), mode=mode, single_conv=single_conv)
    elements = 4 * 6 * 6  # channels x output pixels, one kernel each
    assert cn.profile(layer, (4, 6, 6)).macs == elements * 83
    assert executed_macs(layer, (4, 6, 6)) == elements * executed_per_pixel


def test_executed_macs_of_pydmobilenet_add_differ_by_its_pyramids_only() -> None:
    with torch.device("meta"):
        model = cn.create_model("pydmobilenet_add_29_050_cifar")
    saved = [0]  # MACs per image the merged pyramids skip: (9 + 25 + 49) - 49 per output element
    hooks = [m.register_forward_hook(lambda m, i, out: saved.__setitem__(0, saved[0] + out[0].numel() * 34))
             for m in model.modules() if isinstance(m, PyramidDepthwise)]  # fmt: skip
    paper_layers = cn.profile(model).macs
    for hook in hooks:
        hook.remove()
    assert len(hooks) == 9 and saved[0] > 0  # one pyramid in each of the 9 bottlenecks (Net-29)
    assert executed_macs(model) == paper_layers - saved[0]


def test_grouped_and_depthwise_convs_are_exact() -> None:
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4), nn.Conv2d(16, 16, 5, padding=2, groups=16))
    result = cn.profile(model, (8, 10, 10))
    assert result.macs == 16 * 100 * (8 // 4) * 9 + 16 * 100 * 1 * 25
    assert result.params == sum(p.numel() for p in model.parameters())


def test_conventions_count_each_extra() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU6(), nn.AvgPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))  # fmt: skip
    result = cn.profile(model, (3, 8, 8), convention="macs+bn+act+pool")
    assert result.ops["macs"] == 4 * 64 * 3 + 4 * 2
    assert result.ops["bn"] == result.ops["act"] == 4 * 64
    assert result.ops["pool"] == 4 * 16 * 4 + 4 * 16
    assert result.madds == sum(result.ops[k] for k in ("macs", "bn", "act", "pool"))
    assert cn.profile(model, (3, 8, 8)).madds == result.macs


def test_gating_and_residual_are_counted_through_count_ops() -> None:
    model = cn.create_model("antnet_g2_cifar")
    result = cn.profile(model, convention="all")
    assert result.ops["gating"] > 0 and result.ops["residual"] > 0
    # ant1 (16 output channels at 32x32) has no residual (32 -> 16 channels); its gate acts on 32x32x32
    first = next(la for la in result.layers if la.name == "features.1.branch.attn")
    assert first.ops["gating"] == 32 * 32 * 32
    assert result.madds == sum(result.ops.values())


def test_parse_convention() -> None:
    assert parse_convention("macs") == ("macs",)
    assert parse_convention("+bn,+act") == ("macs", "bn", "act")
    assert parse_convention("macs+act+bn") == ("macs", "bn", "act")
    assert parse_convention("all") == OPS
    model = cn.create_model("mobilenetv2_cifar")
    assert parse_convention("paper", model) == ("macs", "bn", "act")
    with pytest.raises(ValueError, match="unknown counting term"):
        parse_convention("+flops")
    with pytest.raises(ValueError, match="create_model"):
        parse_convention("paper", nn.Linear(2, 2))


def test_profile_leaves_the_model_untouched() -> None:
    model = cn.create_model("antnet_g2_cifar")
    model.train()
    model.features[3].eval()  # a mixed train/eval state must survive too
    keys = list(model.state_dict())
    stats = model.features[0].bn.running_mean.clone()
    cn.profile(model, convention="all")
    assert list(model.state_dict()) == keys
    assert model.training and not model.features[3].training
    assert torch.equal(model.features[0].bn.running_mean, stats)
    assert all(not m._forward_hooks for m in model.modules())


def test_profile_on_meta_device_matches_cpu() -> None:
    with torch.device("meta"):
        meta_model = cn.create_model("antnet_g1_cifar")
    cpu = cn.profile(cn.create_model("antnet_g1_cifar"), convention="all")
    meta = cn.profile(meta_model, convention="all")
    assert (meta.params, meta.ops) == (cpu.params, cpu.ops)


def test_profile_input_errors() -> None:
    model = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="input_size is required"):
        cn.profile(model)
    with pytest.raises(ValueError, match="input_size must be"):
        cn.profile(model, (1, 2, 3, 4))
    with pytest.raises(ValueError, match="cannot profile"):
        cn.profile(model, (3, 1, 1))  # smaller than the kernel
