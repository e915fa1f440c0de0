"""ResNet family: torchvision parity (ResNet-50, ResNeXt-50) and structure against the paper tables."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision

import compactnets as cn
from compactnets.layers import SqueezeExcite
from compactnets.models.resnet import ResidualBlock, resnet50


def test_resnext50_32x4d_matches_torchvision(torchvision_parity: Callable[..., None]) -> None:
    torchvision_parity(cn.create_model("resnext50_32x4d"), torchvision.models.resnext50_32x4d())


def test_shared_block_is_torchvision_resnet50(torchvision_parity: Callable[..., None]) -> None:
    # cardinality 1, 64d, stride in the 3x3: the same block as ResNeXt and SE-ResNet, with other options
    torchvision_parity(resnet50(), torchvision.models.resnet50())


def _blocks(model: torch.nn.Module) -> list[list[ResidualBlock]]:
    return [list(getattr(model.features, f"stage{i}")) for i in range(1, 5) if hasattr(model.features, f"stage{i}")]


def test_se_resnet50_follows_senet_table_1() -> None:
    model = cn.create_model("se_resnet50")
    stages = _blocks(model)
    assert [len(s) for s in stages] == [3, 4, 6, 3]
    # SENet Table 1: fc [C/16, C] after each block's last 1x1, C = 256, 512, 1024, 2048
    hidden = [[b.branch.attn.fc1.out_channels for b in s] for s in stages]
    assert hidden == [[16] * 3, [32] * 4, [64] * 6, [128] * 3]
    attention = [b.branch.attn for s in stages for b in s]
    assert all(isinstance(a, SqueezeExcite) and a.channels == a.fc2.out_channels for a in attention)
    # the original Caffe model strides in the first 1x1 conv
    first = [s[0] for s in stages[1:]]
    assert [b.branch.conv1.conv.stride for b in first] == [(2, 2)] * 3
    assert [b.branch.conv2.conv.stride for b in first] == [(1, 1)] * 3
    # the SE blocks add exactly their two FCs (with biases) to the Caffe-style ResNet-50
    se_params = sum(n * (2 * c * c // 16 + c // 16 + c) for c, n in [(256, 3), (512, 4), (1024, 6), (2048, 3)])
    plain = cn.profile(resnet50(stride_in_1x1=True), 224)
    assert cn.profile(model).params - plain.params == se_params == 2_530_992
    assert round(plain.macs / 1e9, 2) == 3.86  # SENet Table 2: ResNet-50, 3.86 GFLOPs


def test_se_resnext50_32x4d_follows_senet_table_1() -> None:
    stages = _blocks(cn.create_model("se_resnext50_32x4d"))
    widths = [s[0].branch.conv2.conv.out_channels for s in stages]
    assert widths == [128, 256, 512, 1024]  # C x d x 2^stage, 32 x 4d
    assert all(b.branch.conv2.conv.groups == 32 for s in stages for b in s)
    assert [s[0].branch.conv2.conv.stride for s in stages[1:]] == [(2, 2)] * 3  # stride in the 3x3


@pytest.mark.parametrize(("name", "cardinality"), [("resnext29_8x64d_cifar", 8), ("resnext29_16x64d_cifar", 16)])
def test_resnext29_cifar_template(name: str, cardinality: int) -> None:
    with torch.device("meta"):
        model = cn.create_model(name)
    stages = _blocks(model)
    assert [len(s) for s in stages] == [3, 3, 3]  # 29 = 1 stem + 9 blocks x 3 + 1 FC
    assert [s[0].out_chs for s in stages] == [256, 512, 1024]
    assert [s[0].branch.conv2.conv.out_channels for s in stages] == [cardinality * 64 * 2**i for i in range(3)]
    assert all(b.branch.conv2.conv.groups == cardinality for s in stages for b in s)
    assert model.features.stem.conv.out_channels == 64 and model.features.stem.conv.kernel_size == (3, 3)


@pytest.mark.parametrize(("name", "depth"), [("resnet20_cifar", 20), ("resnet56_cifar", 56), ("resnet110_cifar", 110)])
def test_cifar_resnet_depth_and_shortcuts(name: str, depth: int) -> None:
    with torch.device("meta"):
        model = cn.create_model(name)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    main_path = [c for c in convs if c.kernel_size == (3, 3)]
    assert len(main_path) + 1 == depth  # 6n + 1 3x3 convs and the FC
    shortcuts = [c for c in convs if c.kernel_size == (1, 1)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in shortcuts] == [(16, 32, (2, 2)), (32, 64, (2, 2))]
    assert model.num_features == 64


def test_residual_block_rejects_a_grouped_basic_block() -> None:
    with pytest.raises(ValueError, match="bottleneck width"):
        ResidualBlock(16, 16, cardinality=2)
    with pytest.raises(ValueError, match="cardinality 3"):
        ResidualBlock(64, 256, width=64, cardinality=3)
