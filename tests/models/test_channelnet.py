"""ChannelNets specifics: the channel-wise operators against their definitions (Sec. 3), the two readings
of the network (ARCHITECTURES.md 5.2-5.3), the convolutional classification layer's contract, and export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import compactnets as cn
from compactnets.layers import (
    ChannelwiseConv,
    ConvClassifierHead,
    DepthwiseSeparableChannelwise,
    GroupChannelwiseConv,
    same_padding,
)
from compactnets.models.channelnet import GroupModule, MergeUnit

EXACT = ["channelnet_v1", "channelnet_v1_minus", "channelnet_v2", "channelnet_v3", "channelnet_v1_code"]


def _params(name: str) -> int:
    with torch.device("meta"):
        return cn.profile(cn.create_model(name)).params


def _calibrated(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Eval mode with BN statistics of ``x``: a fresh model's eval logits are ~1e-11 and would compare
    equal to anything; with real statistics they are O(0.1)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def _loop_channelwise(x: torch.Tensor, weight: torch.Tensor, stride: int, pad: tuple[int, int]) -> torch.Tensor:
    """The definition (Sec. 3.1), one multiply-add at a time: output channel ``k * L + j`` at each pixel is
    ``sum_t weight[k, t] * x_padded[j * stride + t]`` over that pixel's channels."""
    n, c, h, w = x.shape
    kernels, size = weight.shape
    padded = torch.cat([x.new_zeros(n, pad[0], h, w), x, x.new_zeros(n, pad[1], h, w)], dim=1)
    length = (c + pad[0] + pad[1] - size) // stride + 1
    out = x.new_zeros(n, kernels * length, h, w)
    for k in range(kernels):
        for j in range(length):
            for t in range(size):
                out[:, k * length + j] += weight[k, t] * padded[:, j * stride + t]
    return out


# ---------------------------------------------------------------------------- operators
@pytest.mark.parametrize(
    ("channels", "kernel_size", "stride", "num_kernels"),
    [(8, 4, 2, 2), (10, 5, 1, 1), (9, 4, 3, 3), (6, 2, 1, 2)],
)
def test_channelwise_conv_matches_the_loop_definition(
    channels: int, kernel_size: int, stride: int, num_kernels: int
) -> None:
    layer = ChannelwiseConv(channels, kernel_size, stride, num_kernels)
    x = torch.randn(2, channels, 3, 2)
    weight = layer.conv.weight.detach().reshape(num_kernels, kernel_size)
    expected = _loop_channelwise(x, weight, stride, layer.padding)
    assert layer.out_chs == num_kernels * -(-channels // stride)  # 'same': ceil(C / stride) per kernel
    torch.testing.assert_close(layer(x), expected)
    channels_last = layer(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, expected)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert layer(x).is_contiguous()


def test_same_padding_is_tensorflows() -> None:
    assert same_padding(1024, 64, 1) == (31, 32)  # DWSCW, dc = 64: asymmetric
    assert same_padding(512, 8, 2) == (3, 3)  # GCW, g = 2, dc = 8: the code's padding (3, 0, 0)
    assert same_padding(7, 3, 2) == (1, 1) and same_padding(8, 3, 2) == (0, 1)


def test_group_channelwise_conv_is_the_official_conv3d() -> None:
    """Conv3d(1, g, (dc, 1, 1), stride (g, 1, 1), padding (3, 0, 0)) on x.unsqueeze(1), unstacked group-major."""
    layer = GroupChannelwiseConv(512, groups=2, kernel_size=8)
    assert sum(p.numel() for p in layer.parameters()) == 16 and layer.out_chs == 512
    x = torch.randn(1, 512, 4, 4)
    kernel = layer.conv.weight.detach()[..., None, None]  # (2, 1, 8) -> (2, 1, 8, 1, 1)
    expected = F.conv3d(x.unsqueeze(1), kernel, stride=(2, 1, 1), padding=(3, 0, 0)).flatten(1, 2)
    torch.testing.assert_close(layer(x), expected)
    assert cn.profile(layer, (512, 4, 4)).macs == 512 * 16 * 8  # dc MACs per output element


def _input_channels_reaching(module: nn.Module, channels: int, out_slice: slice) -> torch.Tensor:
    """Which input channels the outputs ``out_slice`` depend on (nonzero gradient anywhere)."""
    x = torch.randn(2, channels, 3, 3, requires_grad=True)
    module(x)[:, out_slice].sum().backward()
    assert x.grad is not None
    return x.grad.abs().sum(dim=(0, 2, 3)) > 0


@pytest.mark.parametrize(("channels", "groups", "kernel_size"), [(16, 2, 8), (24, 3, 3), (64, 4, 4)])
def test_every_output_group_sees_every_input_channel(channels: int, groups: int, kernel_size: int) -> None:
    layer = GroupChannelwiseConv(channels, groups, kernel_size)
    nn.init.ones_(layer.conv.weight)  # no cancellation: any path gives a nonzero gradient
    size = channels // groups
    for k in range(groups):
        assert _input_channels_reaching(layer, channels, slice(k * size, (k + 1) * size)).all(), k


def test_gcwm_fuses_groups_a_gm_does_not() -> None:
    """The point of Sec. 3.2: after a GM's 1x1 group convs, output group 0 never sees input group 1."""
    channels = 16
    gm = GroupModule(channels, groups=2, channel_kernel=8, fusion=None, residual=False).eval()
    gcwm = GroupModule(channels, groups=2, channel_kernel=8, fusion="pw", residual=False).eval()
    nn.init.ones_(gcwm.layers.dws2.pw.fuse.conv.weight)
    first_group = slice(0, channels // 2)
    assert not _input_channels_reaching(gm, channels, first_group)[channels // 2 :].any()
    assert _input_channels_reaching(gcwm, channels, first_group).all()


def test_group_channelwise_conv_rejects_a_kernel_smaller_than_the_groups() -> None:
    with pytest.raises(ValueError, match="kernel_size >= groups"):
        GroupChannelwiseConv(16, groups=4, kernel_size=3)
    with pytest.raises(ValueError, match="do not split into 3 groups"):
        GroupChannelwiseConv(16, groups=3, kernel_size=4)


def test_depthwise_separable_channelwise_conv() -> None:
    layer = DepthwiseSeparableChannelwise(1024, channel_kernel=64)
    assert sum(p.numel() for p in layer.parameters()) == 9 * 1024 + 64  # Sec. 3.3: dk^2 m + dc
    assert layer.cw.padding == (31, 32)
    result = cn.profile(layer, (1024, 7, 7))
    assert result.macs == 9 * 1024 * 49 + 64 * 1024 * 49  # dk^2 m df^2 + dc n df^2
    x = torch.randn(1, 1024, 7, 7)
    weight = layer.cw.conv.weight.detach().reshape(1, 64)
    expected = _loop_channelwise(layer.dw(x).detach(), weight, 1, (31, 32))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- classification layer
def test_conv_classifier_head_is_one_3d_conv() -> None:
    head = ConvClassifierHead(1024, 1000, feature_size=7)
    assert sum(p.numel() for p in head.parameters()) == 7 * 7 * 25  # df x df x (m - n + 1) = 1,225
    assert cn.profile(head, (1024, 7, 7)).macs == 1000 * 1225
    x = torch.randn(2, 1024, 7, 7)
    kernel = head.conv.weight.detach()[0].reshape(7, 7, 25).permute(2, 0, 1)  # (m - n + 1, df, df)
    expected = F.conv3d(x.unsqueeze(1), kernel[None, None]).flatten(1)  # no padding, no bias
    torch.testing.assert_close(head(x), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(head(x.contiguous(memory_format=torch.channels_last)), expected, rtol=1e-4, atol=1e-5)


def test_each_logit_reads_m_minus_n_plus_1_channels() -> None:
    head = ConvClassifierHead(12, 8, feature_size=2)  # kernel depth 5
    nn.init.ones_(head.conv.weight)
    for j in (0, 3, 7):
        x = torch.randn(1, 12, 2, 2, requires_grad=True)
        head(x)[0, j].backward()
        assert x.grad is not None
        reached = (x.grad.abs().sum(dim=(0, 2, 3)) > 0).nonzero().flatten().tolist()
        assert reached == list(range(j, j + 5))


def test_conv_classifier_head_contract() -> None:
    model = cn.create_model("channelnet_v3").eval()
    assert isinstance(model.head, ConvClassifierHead) and model.num_classes == 1000 and model.num_features == 1024
    x = torch.randn(1, 3, 224, 224)
    features = model.forward_features(x)
    assert features.shape == (1, 1024, 7, 7)
    pooled = model.forward_head(features, pre_logits=True)  # pooling: the CCL's fixed first factor
    torch.testing.assert_close(pooled, features.mean(dim=(2, 3)))
    model.reset_classifier(10)
    assert model.num_classes == 10 and model.head.conv.weight.shape == (1, 49, 1024 - 10 + 1)
    assert model(x).shape == (1, 10)
    model.reset_classifier(0)
    assert model(x).shape == (1, 1024)
    with pytest.raises(ValueError, match="at most 1024 classes"):
        model.reset_classifier(1025)
    with pytest.raises(ValueError, match="at most 1024 classes"):
        cn.create_model("channelnet_v3", num_classes=2000)
    # another input size: the feature map is pooled to the kernel's 7x7 first
    assert cn.create_model("channelnet_v3", num_classes=5)(torch.randn(2, 3, 96, 96)).shape == (2, 5)


# ---------------------------------------------------------------------------- networks
def test_v1_minus_is_exactly_32_params_smaller() -> None:
    assert _params("channelnet_v1") - _params("channelnet_v1_minus") == 32  # two 2 x 8 GCW kernels
    for name in EXACT:  # the zoo test then checks these counts exactly
        assert cn.model_card(name).params_exact, name


def test_paper_reading_structure() -> None:
    """MobileNet with 512 x 5 replaced by GCWM, GCWM, GM (Sec. 3.5); v2 and v3 change only the end."""
    v1 = cn.create_model("channelnet_v1")
    modules = [m for m in v1.features if isinstance(m, GroupModule)]
    assert [m.fusion for m in modules] == ["pw", "pw", None] and all(m.use_residual for m in modules)
    assert modules[0].layers.dws1.pw.conv.groups == 2 and "bn" not in dict(modules[0].layers.dws1.dw.named_children())
    assert [type(m) for m in cn.create_model("channelnet_v1_minus").features if isinstance(m, GroupModule)] == [
        GroupModule
    ] * 3
    v2 = cn.create_model("channelnet_v2")
    assert isinstance(v2.features[-1], DepthwiseSeparableChannelwise)
    assert isinstance(cn.create_model("channelnet_v3").head, ConvClassifierHead)


def test_official_code_structure() -> None:
    """DenseNet-style concats (96, 256, 512 channels), then GM + residual, GCWM, GCWM + residual."""
    model = cn.create_model("channelnet_v1_code").eval()
    units = list(model.features)
    assert all(isinstance(u, MergeUnit) for u in units)
    assert [u.merge for u in units] == ["cat", "cat", "cat", "add", "add", "seq"]
    x = torch.randn(1, 3, 64, 64)
    widths = []
    for unit in units:
        x = unit(x)
        widths.append(x.shape[1])
    assert widths == [96, 256, 512, 512, 512, 1024]
    gm, gcwm_a, gcwm_b = units[3].second, units[4].first, units[4].second
    assert gm.fusion is None and gcwm_a.fusion == gcwm_b.fusion == "input"
    assert not (gm.use_residual or gcwm_a.use_residual or gcwm_b.use_residual)  # the units add them
    assert "act" not in dict(units[0].first.named_children())  # conv_s: BN, no activation


def test_width_multipliers_reproduce_table_2() -> None:
    for name, printed in [("channelnet_v1_075", "2.3M"), ("channelnet_v1_050", "1.2M")]:
        card = cn.model_card(name)
        assert card.paper_params == printed and "params" in card.reproduces


def test_macs_agree_with_torch_flop_counter() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    for name in ("channelnet_v3", "channelnet_v1_code"):
        model = cn.create_model(name).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.zeros(1, 3, 224, 224))
        assert cn.profile(model).macs == counter.get_total_flops() // 2, name


# ---------------------------------------------------------------------------- deployment
@pytest.mark.parametrize(("name", "size"), [("channelnet_v3", 224), ("channelnet_v1_code", 96)])
def test_channels_last_gives_the_same_logits(name: str, size: int) -> None:
    x = torch.randn(2, 3, size, size)
    model = _calibrated(cn.create_model(name), x)
    with torch.no_grad():
        expected = model(x)
        got = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export needs the 'onnx' extra (pip install 'compactnets[onnx]')",
)
def test_onnx_export_of_v3_runs_in_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    x = torch.randn(1, 3, 224, 224)
    model = _calibrated(cn.create_model("channelnet_v3"), x)
    path = tmp_path / "channelnet_v3.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True)  # through torch.export
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-3, atol=1e-4)
