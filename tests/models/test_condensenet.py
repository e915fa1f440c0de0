"""CondenseNet: learned group convolution through its condensing stages, and the exact conversion."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import compactnets as cn
from compactnets.layers import (
    CondensedGroupConv,
    CondensedLinear,
    LearnedGroupConv,
    LearnedLinear,
    group_lasso_loss,
    update_condensation,
)
from compactnets.layers.learned_group_conv import condensing_stage
from compactnets.models.condensenet import condense, condensenet


def _randomise_bn(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def _learned(model: torch.nn.Module) -> list[LearnedGroupConv]:
    return [m for m in model.modules() if isinstance(m, LearnedGroupConv)]


def test_condensing_stage_schedule() -> None:
    # C = 4: three condensing stages over the first half of training, then optimisation
    stages = [condensing_stage(p, 4) for p in (0.0, 0.16, 0.17, 0.34, 0.49, 0.5, 1.0)]
    assert stages == [0, 0, 1, 2, 2, 3, 3]
    assert [condensing_stage(p, 8) for p in (0.0, 0.2, 0.5)] == [0, 2, 7]


def test_prune_step_drops_the_weakest_inputs_of_each_group() -> None:
    conv = LearnedGroupConv(8, 4, groups=2, condense_factor=4)  # 2 groups of 2 outputs, drop 2 inputs per step
    with torch.no_grad():
        weight = torch.arange(1.0, 9.0).repeat(4, 1)  # input j has importance j + 1 in every group
        weight[2:, :] = weight[2:, :].flip(1)  # group 1 ranks the inputs the other way round
        conv.conv.weight.copy_(weight[:, :, None, None])
    conv.update(0.2)  # stage 1
    assert conv.mask.tolist() == [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0]]
    assert conv.group_lasso() > 0
    conv.update(1.0)  # stages 2 and 3: each group keeps 8 / C = 2 inputs
    assert conv.mask.tolist() == [[0, 0, 0, 0, 0, 0, 1, 1], [1, 1, 0, 0, 0, 0, 0, 0]]
    assert int(conv.stage) == 3 and float(conv.group_lasso()) == 0.0  # no lasso once condensed
    with pytest.raises(RuntimeError, match="condensing stages are done"):
        conv.prune_step()


@pytest.mark.parametrize("progress", [0.0, 0.2, 1.0])
def test_learned_group_conv_converts_exactly_at_any_stage(progress: float) -> None:
    conv = LearnedGroupConv(12, 8, groups=4, condense_factor=4)
    _randomise_bn(conv)
    conv.update(progress)
    conv.eval()
    fused = conv.fuse_for_inference()
    assert isinstance(fused, CondensedGroupConv) and not fused.training
    kept = 12 - int(conv.stage) * 3
    assert fused.conv.weight.shape == (8, kept, 1, 1) and fused.conv.groups == 4
    x = torch.randn(2, 12, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), conv(x), rtol=1e-5, atol=1e-6)


def test_conversion_refuses_uneven_groups() -> None:
    conv = LearnedGroupConv(8, 4, groups=2, condense_factor=2)
    conv.mask[0, 0] = 0
    with pytest.raises(ValueError, match="different numbers of input channels"):
        conv.fuse_for_inference()
    with pytest.raises(ValueError, match="condensation factor 3"):
        LearnedGroupConv(8, 4, groups=2, condense_factor=3)


def test_tiny_condensenet_trains_through_its_stages_and_converts_exactly() -> None:
    """Acceptance (issue 10): train a tiny CondenseNet through its condensing stages on random data; the
    converted model (group convs + index_select) gives the condensed training model's outputs."""
    model = condensenet((2, 2), (4, 8), groups=4, condensed=False, num_classes=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    steps, seen_stages = 12, set()
    for step in range(steps):
        update_condensation(model, step / steps)
        seen_stages |= {int(m.stage) for m in _learned(model)}
        loss = F.cross_entropy(model(x), y) + 1e-3 * group_lasso_loss(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert seen_stages == {0, 1, 2, 3}
    for conv in _learned(model):  # every group reads R / C of its inputs
        assert conv.mask.sum(1).tolist() == [conv.in_chs // 4] * 4
    assert model.head.fc.mask.sum() == 16  # the classifier keeps half of its 32 features

    model.eval()
    _randomise_bn(model)
    converted = condense(copy.deepcopy(model)).eval()
    assert not _learned(converted) and isinstance(converted.head.fc, CondensedLinear)
    assert not any(isinstance(m, LearnedLinear) for m in converted.modules())
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-6)
    # the converted model has exactly the structure the condensed builder makes
    fresh = condensenet((2, 2), (4, 8), groups=4, condensed=True, num_classes=5)
    assert {k: v.shape for k, v in converted.state_dict().items()} == {
        k: v.shape for k, v in fresh.state_dict().items()
    }


def test_condensenet_86_training_model_condenses_to_the_registered_counts() -> None:
    training = cn.create_model("condensenet_86_cifar", condensed=False)
    # dense 1x1 convs (C = 4 times the condensed weights) and the full 800-feature classifier
    pruned = sum(m.conv.weight.numel() * 3 // 4 for m in _learned(training)) + 400 * 10
    assert cn.profile(training).params == 516_202 + pruned == 1_451_594
    update_condensation(training, 1.0)
    condensed = cn.profile(condense(training), (3, 32, 32), convention="macs+act+pool")
    registered = cn.profile(cn.create_model("condensenet_86_cifar"), convention="macs+act+pool")
    assert condensed.params == registered.params == 516_202
    assert condensed.ops == registered.ops


def test_condensenet_86_counts_in_the_condensenet_convention() -> None:
    # ARCHITECTURES.md 1.1: 62.38M MACs + 3.16M ReLU + 0.27M pooling = 65.81M
    result = cn.profile(cn.create_model("condensenet_86_cifar"), convention="paper")
    assert round(result.ops["macs"] / 1e6, 2) == 62.38
    assert round(result.ops["act"] / 1e6, 2) == 3.16
    assert round(result.ops["pool"] / 1e6, 2) == 0.27
    assert round(result.madds / 1e6, 2) == 65.81


def test_condensenet_head_stays_condensed_after_reset() -> None:
    model = cn.create_model("condensenet_86_cifar")
    model.reset_classifier(100)
    assert isinstance(model.head.fc, CondensedLinear) and model.head.fc.linear.in_features == 400
    assert cn.profile(model).params == 552_292  # MODELS.md: CIFAR-100 head


def test_deploy_condenses_a_training_model() -> None:
    deploy = pytest.importorskip("compactnets.deploy").deploy  # the fuse_for_inference protocol
    model = condensenet((2, 2), (4, 8), groups=4, condensed=False, num_classes=5)
    update_condensation(model, 1.0)
    model.eval()
    deployed = deploy(model)
    assert not _learned(deployed) and isinstance(deployed.head.fc, CondensedLinear)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model(x), rtol=1e-5, atol=1e-6)
