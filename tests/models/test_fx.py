"""torch.fx: every registered model traces (torchvision's create_feature_extractor needs it), and traced graphs
compute what the eager model computes."""

from __future__ import annotations

import pytest
import torch
from torch.fx import symbolic_trace
from torchvision.models.feature_extraction import create_feature_extractor

import compactnets as cn


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
