"""compactnets.deploy: exact inference rewrites keep outputs equal and leave the caller's model alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.deploy import DeployReport, OneDNNConv2d, deploy, fold_batchnorm, onednn_available
from compactnets.models.antnet import EnsembleANTBlock, FusedEnsembleANTBlock

# MobileNetV2, e-ANTNet (softmax weights), SeesawNet (uneven groups), PydMobileNet (pyramid kernels),
# ChannelNet (dropout between conv and BN)
REPRESENTATIVE = [
    "mobilenetv2_cifar",
    "antnet_e_cifar",
    "seesaw_shuffle_05d_cifar",
    "pydmobilenet_add_29_025_cifar",
    "channelnet_v3",
]


def _trained_like(name: str, size: int) -> nn.Module:
    """A model with non-trivial BN affine parameters, statistics and e-ANTNet branch weights, as after
    training: statistics are those of a random batch (cumulative average), so activations stay in range."""
    model = cn.create_model(name)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
            if module.affine:
                module.weight.data = torch.rand(module.num_features, generator=generator) + 0.5
                module.bias.data = torch.rand(module.num_features, generator=generator) * 0.4 - 0.2
        if isinstance(module, EnsembleANTBlock):
            module.branch_logits.data = torch.randn(module.branch_logits.shape, generator=generator)
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, size, size, generator=generator))
    return model.eval()


def _size(name: str) -> int:
    return 32 if name.endswith("_cifar") else 64


# fp32: what deploy is for; a folded conv rounds differently, and deep nets amplify it. float64 removes the
# rounding and leaves the rewrite itself: any error in it (a wrong scale, a missed channel) would be O(1).
TOLERANCE = {torch.float32: (1e-4, 1e-5), torch.float64: (1e-8, 1e-8)}  # rtol, atol as a fraction of max |y|


def _check_outputs_equal(name: str, dtype: torch.dtype = torch.float32, onednn: bool = False) -> DeployReport:
    if name not in cn.list_models():
        pytest.skip(f"{name} is not registered")
    size = _size(name)
    model = _trained_like(name, size).to(dtype)
    x = torch.randn(2, 3, size, size, dtype=dtype)
    report = DeployReport()
    deployed = deploy(model, report=report, onednn=onednn)
    with torch.no_grad():
        expected, got = model(x), deployed(x)
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol * float(expected.abs().max()))
    return report


# float64 for two models whose rewrites go beyond BN folding (uneven groups, pyramid kernels); the slow suite
# checks every model in float64 (e-ANTNet's weight folding is checked in float64 on one block below).
CASES = [(name, torch.float32) for name in REPRESENTATIVE] + [
    (name, torch.float64) for name in ("seesaw_shuffle_05d_cifar", "pydmobilenet_add_29_025_cifar")
]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_deploy_keeps_outputs_equal(name: str, dtype: torch.dtype) -> None:
    report = _check_outputs_equal(name, dtype)
    assert report.bn_folded > 0


needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN CPU kernels")


@needs_onednn
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_onednn_deploy_keeps_outputs_equal(name: str) -> None:
    report = _check_outputs_equal(name, torch.float32, onednn=True)
    assert report.fused["OneDNNConv2d+act"] > 0


@needs_onednn
@pytest.mark.parametrize("channels_last", [False, True])
def test_onednn_conv_fuses_the_activation_that_follows(channels_last: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Dropout(), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.Hardswish(),
        nn.Conv2d(8, 4, 1), nn.Flatten(),  # not an activation: the conv before stays unfused
        nn.Sequential(nn.Unflatten(1, (4, 4, 4)), nn.Conv2d(4, 4, 1, bias=False), nn.SiLU()),  # nested
    ).eval()  # fmt: skip
    report = DeployReport()
    deployed = deploy(model, channels_last=channels_last, report=report, onednn=True)
    attrs = [m.attr for m in deployed.modules() if isinstance(m, OneDNNConv2d)]
    assert attrs == ["hardtanh", "hardswish", "none", "swish"]
    assert report.fused == {"OneDNNConv2d+act": 3, "OneDNNConv2d": 1}
    assert isinstance(deployed[3], nn.Identity) and isinstance(deployed[5], nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="CPU float32"):
        deployed(x.double())
    copied = copy.deepcopy(deployed)  # after use: the packed weights are not copied but packed again
    with torch.no_grad():
        torch.testing.assert_close(copied(x), deployed(x))


def test_deploy_folds_every_bn_and_collapses_the_ensemble_weights() -> None:
    model = cn.create_model("antnet_e_cifar")
    report = DeployReport()
    deployed = deploy(model, report=report)
    assert report.fused["EnsembleANTBlock"] == 16  # ant2-ant7 hold 2+3+4+3+3+1 e-ANTBlocks
    assert report.bn_left == 0 and report.bn_folded == 100
    assert not any(isinstance(m, (nn.BatchNorm2d, EnsembleANTBlock)) for m in deployed.modules())
    assert sum(isinstance(m, FusedEnsembleANTBlock) for m in deployed.modules()) == 16
    # the weighting multiplies (Eq. 8) are gone; the attention gates remain
    before, after = cn.profile(model), cn.profile(deployed)
    weighting = sum(la.ops["gating"] for la in before.layers if la.type == "EnsembleANTBlock")
    assert weighting > 0
    assert before.ops["gating"] - after.ops["gating"] == weighting
    assert after.macs == before.macs


def test_deploy_does_not_touch_the_callers_model() -> None:
    model = cn.create_model("mobilenetv2_cifar").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    deployed = deploy(model, channels_last=True)
    assert model.training and not deployed.training
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert isinstance(model.features[0].bn, nn.BatchNorm2d) and isinstance(deployed.features[0].bn, nn.Identity)
    assert deployed.features[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert deployed.card is model.card


def test_memory_traffic_drops_when_bn_folds() -> None:
    model = cn.create_model("mobilenetv2_cifar")
    before, after = cn.profile(model), cn.profile(deploy(model))
    assert after.macs == before.macs
    assert after.memory < 0.8 * before.memory  # each BN read and wrote a whole activation tensor


def test_fold_batchnorm_patterns() -> None:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(8)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    untracked = nn.BatchNorm2d(8, track_running_stats=False)  # uses batch statistics even in eval: never folded
    bn1d = nn.BatchNorm1d(5)
    bn1d.running_var.fill_(4.0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Dropout(0.5), bn, nn.ReLU(),
        nn.Conv2d(8, 8, 1), untracked,
        nn.Flatten(), nn.Linear(8 * 16, 5), bn1d,
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        expected = model(x)
        report = DeployReport()
        fold_batchnorm(model, report)
        got = model(x)
    assert report.bn_folded == 2
    assert isinstance(model[2], nn.Identity) and isinstance(model[8], nn.Identity)
    assert isinstance(model[5], nn.BatchNorm2d)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_fuse_for_inference_protocol() -> None:
    calls = []

    class Twice(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + x

        def fuse_for_inference(self) -> nn.Module:
            calls.append(1)
            return _Scale()

    class _Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * x

        def fuse_for_inference(self) -> nn.Module:  # already the inference form
            return self

    model = nn.Sequential(nn.Conv2d(3, 3, 1), Twice(), nn.Sequential(Twice()))
    report = DeployReport()
    deployed = deploy(model, report=report)
    assert report.fused["Twice"] == 2 and len(calls) == 2
    assert [type(m).__name__ for m in deployed.modules()].count("_Scale") == 2
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(deployed(x), model(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ensemble_fuse_after_bn_folding_scales_the_conv(dtype: torch.dtype) -> None:
    block = EnsembleANTBlock(16, 16, 1, 6, 8).eval().to(dtype)
    block.branch_logits.data = torch.tensor([0.3, -0.9], dtype=dtype)
    for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(2, 16, 8, 8, dtype=dtype)
    with torch.no_grad():
        expected = block(x)
        fold_batchnorm(block)  # the projection BN is an Identity now: w_j goes into the conv
        fused = block.fuse_for_inference()
        got = fused(x)
    assert isinstance(fused, FusedEnsembleANTBlock)
    rtol, atol = TOLERANCE[dtype]
    torch.testing.assert_close(got, expected, rtol=rtol, atol=atol * float(expected.abs().max()))


@pytest.mark.slow
@pytest.mark.parametrize("name", cn.list_models())
def test_deploy_keeps_outputs_equal_for_every_model(name: str) -> None:
    _check_outputs_equal(name, torch.float64)


@pytest.mark.slow
@needs_onednn
@pytest.mark.parametrize("name", cn.list_models())
def test_onednn_deploy_keeps_outputs_equal_for_every_model(name: str) -> None:
    """oneDNN kernels run in float32 only, and some random-weight nets amplify fp32 rounding (EfficientNet-B3's
    logits reach 1e4): so the bound is the fp32 model's own rounding error, both measured against float64."""
    size = _size(name)
    model = _trained_like(name, size)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    deployed = deploy(model, onednn=True)
    with torch.no_grad():
        got, fp32 = deployed(x).double(), model(x).double()
        exact = model.double()(x.double())
    scale = float(exact.abs().max())
    rounding = float((fp32 - exact).abs().max()) / scale
    assert float((got - exact).abs().max()) / scale <= 10 * rounding + 1e-6
