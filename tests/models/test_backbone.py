"""torch.fx: every registered model traces (torchvision's create_feature_extractor needs it), and traced graphs
compute what the eager model computes."""

from __future__ import annotations

import json

import pytest
import torch
from torch.fx import symbolic_trace
from torchvision.models.feature_extraction import create_feature_extractor

import compactnets as cn
from compactnets.cli import main
from compactnets.errors import ModelArgumentError, UsageError


@pytest.mark.parametrize("name", cn.list_models())
def test_every_model_traces_with_torch_fx(name: str) -> None:
    with torch.device("meta"):  # tracing reads no values: no weights allocated
        model = cn.create_model(name)
    graph = symbolic_trace(model).graph
    assert sum(node.op == "call_module" for node in graph.nodes) > 0


# one model per layer that had to be written for tracing: pyramid (merged and not), channel-wise convs and the
# convolutional classifier, uneven group convs, channel shuffle, shift, attention blocks
TRACED = ["pydmobilenet_add_29_025_cifar", "pydmobilenet_concat_29_025_cifar", "channelnet_v3",
          "seesaw_shuffle_05d_cifar", "shufflenetv2_050", "shiftresnet20_cifar", "antnet_g2_cifar"]  # fmt: skip


@pytest.mark.parametrize("name", TRACED)
def test_traced_graph_and_feature_extractor_match_the_model(name: str) -> None:
    torch.manual_seed(0)
    model = cn.create_model(name).eval()
    size = model.card.input_size if model.card.input_size[-1] <= 32 else (3, 224, 224)
    x = torch.randn(2, *size)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(symbolic_trace(model)(x), expected, rtol=1e-5, atol=1e-5)
        features = create_feature_extractor(model, return_nodes={"features": "f"})
        torch.testing.assert_close(features(x)["f"], model.forward_features(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", cn.list_models())
def test_feature_maps_of_every_model_have_the_shapes_feature_info_gives(name: str) -> None:
    with torch.device("meta"):
        model = cn.create_model(name)
        info = model.feature_info
        reductions = [f["reduction"] for f in info]
        assert reductions == sorted(set(reductions)) and len(info) >= 3  # distinct strides, shallow to deep
        assert info[-1]["num_chs"] == model.num_features  # the deepest map is what the classifier pools
        size = model.card.input_size
        backbone = cn.create_model(name, features_only=True, out_indices=(-2, -1))
        assert backbone.feature_info == info[-2:]
        maps = backbone(torch.empty(2, *size))
    for entry, fmap in zip(info[-2:], maps, strict=True):
        assert fmap.shape[:2] == (2, entry["num_chs"])
        assert round(size[-1] / fmap.shape[-1]) == entry["reduction"]


def test_forward_intermediates_and_bad_indices() -> None:
    torch.manual_seed(0)
    model = cn.create_model("antnet_g2_cifar").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, indices=(0, -1))
        torch.testing.assert_close(final, model.forward_features(x))
    torch.testing.assert_close(maps[-1], final)
    assert [m.shape[1] for m in maps] == [model.feature_info[0]["num_chs"], model.num_features]
    with pytest.raises(UsageError, match=r"antnet_g2_cifar: out_indices \(7,\) out of range: it has \d feature"):
        cn.create_model("antnet_g2_cifar", features_only=True, out_indices=(7,))


NO_RESIDUAL = ("densenet", "condensenet", "mobilenetv1", "nasnet", "randwire", "shufflenetv2", "squeezenet_1",
               "channelnet_v1_code")  # fmt: skip
"""Families whose blocks concatenate or have no shortcut: nothing for stochastic depth to drop."""


def _small_input(model: cn.CompactNet) -> torch.Tensor:
    side = model.card.input_size[-1] if model.card.input_size[-1] <= 32 else max(model.min_input_size() or 1, 64)
    return torch.randn(2, model.in_chans, side, side)


@pytest.mark.parametrize("name", cn.list_models())
def test_drop_path_drops_in_training_and_is_the_identity_in_eval(name: str) -> None:
    if name.startswith(NO_RESIDUAL) and "bypass" not in name:
        with pytest.raises(ModelArgumentError, match="has no residual branches"):
            cn.create_model(name, drop_path_rate=0.2)
        return
    torch.manual_seed(0)
    plain = cn.create_model(name, drop_rate=0.0)
    torch.manual_seed(0)
    model = cn.create_model(name, drop_rate=0.0, drop_path_rate=0.5)
    model.load_state_dict(plain.state_dict())  # the same weights (drop path has none)
    x = _small_input(model)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x), rtol=0, atol=0)
        model.train()
        outputs = [model(x) for _ in range(3)]
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])  # different branches dropped


@pytest.mark.parametrize("name", ["resnet20_cifar", "pydmobilenet_add_29_025_cifar", "nasnet_a_mobile"])
def test_grad_checkpointing_gives_the_same_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = cn.create_model(name, drop_rate=0.0).train()
    x = _small_input(model)
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        model(x).square().mean().backward()
        grads.append([None if p.grad is None else p.grad.clone() for p in model.parameters()])
    assert [g is None for g in grads[0]] == [g is None for g in grads[1]]
    for plain, checkpointed in zip(*grads, strict=True):
        if plain is not None:
            torch.testing.assert_close(checkpointed, plain, rtol=1e-4, atol=1e-6)


def test_profile_and_list_show_the_feature_maps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "resnet20_cifar", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["feature_info"] == cn.create_model("resnet20_cifar").feature_info
    assert [f["reduction"] for f in record["feature_info"]] == [1, 2, 4]  # ResNet-20's three stages (He et al.)
    assert main(["profile", "antnet_g2"]) == 0
    assert "maps    16@2, 24@4, 32@8, 96@16, 1280@32" in capsys.readouterr().out
    assert main(["list", "antnet_g2", "--json"]) == 0  # from the stored counts: instant
    listed = json.loads(capsys.readouterr().out)[0]["feature_info"]
    assert listed == [
        {"num_chs": f["num_chs"], "reduction": f["reduction"]} for f in cn.create_model("antnet_g2").feature_info
    ]
