"""PydMobileNet specifics: the one-conv pyramid equals the paper's three convs, and the block structure
resolved from the released code (ARCHITECTURES.md 3.1-3.2). Counts of all 22 names: tests/models/test_zoo.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import compactnets as cn
from compactnets.layers import PyramidDepthwise, PyramidMode, fuse_pyramid_depthwise
from compactnets.layers.pyramid import grouped_to_literal
from compactnets.models.pydmobilenet import TABLE_3, PydNet, PydResidualBlock


def _literal_convs(layer: PyramidDepthwise) -> nn.ModuleList:
    """The paper's definition: one depthwise nn.Conv2d per kernel size, sharing the layer's weights."""
    convs = nn.ModuleList(
        nn.Conv2d(layer.channels, layer.channels, k, layer.stride, k // 2, groups=layer.channels, bias=False)
        for k in layer.kernel_sizes
    )
    with torch.no_grad():
        for conv, weight in zip(convs, layer.weights, strict=True):
            conv.weight.copy_(weight)
    return convs


def _literal_forward(layer: PyramidDepthwise, convs: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    outs = [conv(x) for conv in convs]
    return torch.stack(outs).sum(0) if layer.mode == "add" else torch.cat(outs, 1)


def _assert_matches_literal(layer: PyramidDepthwise, layout: torch.memory_format) -> None:
    """Forward, input gradient and each kernel's gradient equal those of the literal M convs."""
    convs = _literal_convs(layer)
    x = torch.randn(2, layer.channels, 11, 11).to(memory_format=layout).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)

    out = layer(x)
    expected = _literal_forward(layer, convs, x_ref)
    assert out.shape == expected.shape and expected.shape[1] == layer.out_chs
    assert out.is_contiguous(memory_format=layout)  # no silent layout change for the BN and 1x1 that follow
    torch.testing.assert_close(out, expected)  # concat: torch.cat order on both paths

    grad = torch.randn_like(expected)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad)
    for weight, conv in zip(layer.weights, convs, strict=True):  # each kernel trains as its own conv would
        torch.testing.assert_close(weight.grad, conv.weight.grad)


@pytest.mark.parametrize("single_conv", [True, False])
@pytest.mark.parametrize("mode", ["add", "concat"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pyramid_equals_the_literal_three_convs(
    single_conv: bool, mode: PyramidMode, stride: int, layout: torch.memory_format
) -> None:
    layer = PyramidDepthwise(6, (3, 5, 7), stride, mode=mode, single_conv=single_conv)
    _assert_matches_literal(layer, layout)


@pytest.mark.parametrize("mode", ["add", "concat"])
def test_any_odd_kernel_list(mode: PyramidMode) -> None:
    _assert_matches_literal(PyramidDepthwise(4, (1, 5), 1, mode, single_conv=True), torch.contiguous_format)
    _assert_matches_literal(PyramidDepthwise(4, (3, 5, 7, 9), 2, mode, single_conv=False), torch.channels_last)


def test_concat_block_is_the_papers_block() -> None:
    """Fig. 1d as released: BN-ReLU-1x1 -> three dw convs concatenated -> BN(3 mid)-ReLU-1x1-BN, plus the
    1x1 stride-2 projection shortcut; the merged-conv path gives the same block."""
    block = PydResidualBlock(8, 16, stride=2, width_mult=0.5, block="concat").train()
    merged = PydResidualBlock(8, 16, stride=2, width_mult=0.5, block="concat", single_conv=True).train()
    merged.load_state_dict(block.state_dict())
    branch = block.branch
    convs = _literal_convs(branch.spatial)
    x = torch.randn(4, 8, 12, 12)
    mid = branch.pw_in(torch.relu(branch.norm_in(x)))
    spatial = torch.relu(branch.norm_spatial(torch.cat([conv(mid) for conv in convs], 1)))
    expected = block.shortcut(x) + branch.pw_out(spatial)
    torch.testing.assert_close(block(x), expected)
    torch.testing.assert_close(merged(x), expected)


def test_grouped_to_literal() -> None:
    """The merged concat conv's output (channel c M + m) reorders to torch.cat order (m C + c), in both layouts."""
    c, m = 4, 3
    grouped = torch.randn(2, c * m, 5, 5)
    literal = torch.cat([grouped[:, k::m] for k in range(m)], 1)
    torch.testing.assert_close(grouped_to_literal(grouped, c), literal)
    out = grouped_to_literal(grouped.to(memory_format=torch.channels_last), c)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, literal)


@pytest.mark.parametrize("mode", ["add", "concat"])
def test_fuse_for_inference_is_exact(mode: PyramidMode) -> None:
    layer = PyramidDepthwise(5, stride=2, mode=mode)
    fused = layer.fuse_for_inference()
    conv = fused if mode == "add" else fused[0]
    assert type(conv) is nn.Conv2d and conv.kernel_size == (7, 7) and conv.groups == 5
    assert conv.out_channels == layer.out_chs
    x = torch.randn(2, 5, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), layer(x))


def test_fused_model_gives_the_same_logits_and_counts_the_executed_conv() -> None:
    model = cn.create_model("pydmobilenet_add_29_025_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    architecture = cn.profile(model).macs  # the paper's three convs: 9 + 25 + 49 per position and channel
    flop_counter = FlopCounterMode(display=False)
    with flop_counter, torch.no_grad():
        model(x[:1])
    fused = fuse_pyramid_depthwise(model)
    assert not any(isinstance(m, PyramidDepthwise) for m in fused.modules())
    with torch.no_grad():
        torch.testing.assert_close(fused(x), expected)
    executed = cn.profile(fused).macs  # one 7x7 conv: 49 per position and channel
    assert executed == flop_counter.get_total_flops() // 2  # what actually runs, as PyTorch counts it
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (7, 7) for m in fused.modules()) == 9
    # the pyramids' outputs, mid x h x w per block: 8 x 32 x 32 (stage 1), 16 x 16 x 16, 32 x 8 x 8
    positions = 3 * 8 * 32 * 32 + 3 * 16 * 16 * 16 + 3 * 32 * 8 * 8
    assert architecture - executed == positions * ((9 + 25 + 49) - 49)


def test_pyramid_counts_the_papers_three_convs() -> None:
    layer = PyramidDepthwise(4, mode="concat")
    result = cn.profile(nn.Sequential(layer), (4, 10, 10))
    assert result.macs == 100 * 4 * (9 + 25 + 49)  # h w d_i sum k_m^2 (Sec. 3.1)
    (row,) = result.layers  # the kernels are the layer's own parameters, so the per-layer table has them
    assert row.params == result.params == 4 * (9 + 25 + 49)
    assert list(dict(layer.named_parameters())) == ["weight_3x3", "weight_5x5", "weight_7x7"]


def test_default_execution_paths() -> None:
    """Add runs one merged conv; Concat runs its three convs (a channel-multiplier-3 conv is slow on CPU)."""
    assert PyramidDepthwise(4, mode="add").single_conv and not PyramidDepthwise(4, mode="concat").single_conv
    model = fuse_pyramid_depthwise(cn.create_model("pydmobilenet_concat_29_025_cifar"))
    assert sum(isinstance(m, PyramidDepthwise) for m in model.modules()) == 9  # left as they run best
    separate = cn.create_model("pydmobilenet_concat_29_025_cifar").eval()
    merged = cn.create_model("pydmobilenet_concat_29_025_cifar", single_conv=True).eval()
    merged.load_state_dict(separate.state_dict())  # same parameters, other execution path
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = separate(x)
        torch.testing.assert_close(merged(x), expected)
        fused = fuse_pyramid_depthwise(merged)
        assert not any(isinstance(m, PyramidDepthwise) for m in fused.modules())
        torch.testing.assert_close(fused(x), expected)


def test_pyramid_rejects_even_kernels_and_unknown_modes() -> None:
    with pytest.raises(ValueError, match="odd"):
        PyramidDepthwise(4, (3, 4))
    with pytest.raises(ValueError, match="distinct"):
        PyramidDepthwise(4, (3, 3))
    with pytest.raises(ValueError, match="'add' or 'concat'"):
        PyramidDepthwise(4, mode="max")  # type: ignore[arg-type]


def test_structure_follows_the_released_code() -> None:
    model = cn.create_model("pydmobilenet_add_29_025_cifar")
    features = model.features
    stem_norm = features.stem_norm
    assert [p.numel() for p in stem_norm.parameters()] == [3, 3]  # the 6 fixed params the paper counts
    assert not any(p.requires_grad for p in stem_norm.parameters())
    assert torch.equal(stem_norm.weight, torch.ones(3)) and torch.equal(stem_norm.bias, torch.zeros(3))
    assert type(features.stem) is nn.Conv2d and features.stem.out_channels == 32  # no BN-ReLU after the stem
    stages = [features.stage1, features.stage2, features.stage3]
    assert [len(s) for s in stages] == [3, 3, 3]
    first = features.stage2[0]
    # mid = alpha * C_out = 0.25 * 64 = 16 (Table 2's alpha * d_i would give 8)
    assert first.mid_chs == 16 and first.branch.pw_in.conv.out_channels == 16
    assert first.branch.spatial.stride == 2 and first.branch.spatial.kernel_sizes == (3, 5, 7)
    assert first.shortcut.conv.stride == (2, 2) and first.shortcut.conv.kernel_size == (1, 1)
    assert isinstance(features.stage1[0].shortcut, nn.Identity)  # 32 -> 32 at stride 1
    assert all(isinstance(s[i].shortcut, nn.Identity) for s in stages for i in (1, 2))
    names = list(dict(first.branch.named_children()))
    assert names == ["norm_in", "act_in", "pw_in", "spatial", "norm_spatial", "act_spatial", "pw_out"]
    assert list(dict(first.branch.pw_out.named_children())) == ["conv", "bn"]  # BN last; no ReLU after the add
    # pooling acts on the last residual sum: the features end with a block, not with BN-ReLU
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.forward_features(x)
        before_last = features.stage3[:-1](features[:-1](x))
        assert torch.equal(out, features.stage3[-1](before_last))
        assert out.shape == (2, 128, 8, 8) and (out < 0).any()


@pytest.mark.parametrize(
    ("name", "spatial_type", "groups", "pw_out_in"),
    [
        ("pyd_resnet_56_050_cifar", nn.Conv2d, 1, 64),
        ("pyd_mobilenet_29_150_cifar", nn.Conv2d, 192, 192),
        ("pydmobilenet_concat_56_075_cifar", PyramidDepthwise, None, 3 * 96),
    ],
)
def test_block_types(name: str, spatial_type: type, groups: int | None, pw_out_in: int) -> None:
    model = cn.create_model(name)
    block = model.features.stage3[-1]
    assert len(model.features.stage3) == int(name.split("_")[-3]) // 9  # 29 -> 3 blocks, 56 -> 6
    assert type(block.branch.spatial) is spatial_type
    if groups is not None:
        assert block.branch.spatial.groups == groups and block.branch.spatial.kernel_size == (3, 3)
    assert block.branch.norm_spatial.num_features == pw_out_in
    assert block.branch.pw_out.conv.in_channels == pw_out_in


def test_cifar100_head_and_width_override() -> None:
    ten = cn.profile(cn.create_model("pydmobilenet_concat_56_075_cifar")).params
    hundred = cn.profile(cn.create_model("pydmobilenet_concat_56_075_cifar", num_classes=100)).params
    assert hundred - ten == 90 * 129  # ARCHITECTURES.md 3.5
    assert cn.create_model("pydmobilenet_add_29_025_cifar", width=0.5).width_mult == 0.5
    assert cn.profile(cn.create_model("pydmobilenet_add_29_025_cifar", width=0.5)).params == 103_904
    with pytest.raises(ValueError, match="depth must be 2 \\+ 9 n"):
        PydNet(depth=30)


def test_xavier_init() -> None:
    model = cn.create_model("pydmobilenet_add_29_100_cifar")
    block = model.features.stage3[0]
    kernel = block.branch.spatial.weights[2]  # (128, 1, 7, 7): fan_in 49, fan_out 128 * 49
    assert kernel.abs().max() <= (6 / (49 + 128 * 49)) ** 0.5
    assert kernel.std() > 0.5 * (2 / (49 + 128 * 49)) ** 0.5
    fc = model.head.fc
    assert fc.weight.abs().max() <= (6 / (128 + 10)) ** 0.5 and fc.weight.std() > 0.05
    assert torch.equal(fc.bias, torch.zeros(10))


def test_cards_carry_table_3() -> None:
    assert len(TABLE_3) == 22 and len(cn.list_models("pyd*")) == 22
    card = cn.model_card("pydmobilenet_concat_56_075_cifar")
    assert (card.ref_params, card.paper_params, card.paper_madds) == (489_088, "0.489M", "79M")
    assert card.paper_metrics == {"cifar10_error": 4.72, "cifar100_error": 14.60}
    assert card.params_exact and card.reproduces == ("params",) and card.recipe == "pydmobilenet"
    assert "mixup" in card.note and "No counting convention" in card.note
