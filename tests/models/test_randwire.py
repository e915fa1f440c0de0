"""RandWire: the WS generator (Sec. 3.3), seeded determinism, node operations (Sec. 3.2), Table 1 layout."""

from __future__ import annotations

import pytest
import torch

import compactnets as cn
from compactnets.models.randwire import (
    RandomGraph,
    RandomWiredNode,
    RandomWiredStage,
    graph_summary,
    watts_strogatz,
)


def test_ws_without_rewiring_is_the_ring_lattice() -> None:
    graph = watts_strogatz(8, 4, 0.0, seed=0)
    ring = {(u, (u + d) % 8) for u in range(8) for d in (1, 2)}
    assert set(graph.edges) == {(min(u, v), max(u, v)) for u, v in ring}
    assert graph.input_nodes == (0,) and graph.output_nodes == (7,)


@pytest.mark.parametrize("p", [0.25, 0.75, 1.0])
def test_ws_graph_is_a_dag_with_nk_over_2_edges(p: float) -> None:
    graph = watts_strogatz(32, 4, p, seed=3)
    assert len(graph.edges) == 32 * 4 // 2 == len(set(graph.edges))  # rewiring keeps the edge count
    assert all(0 <= u < v < 32 for u, v in graph.edges)  # lower -> higher index: acyclic, no self loops
    assert graph.input_nodes[0] == 0 and graph.output_nodes[-1] == 31


def test_same_seed_same_graph_other_seed_other_graph() -> None:
    assert watts_strogatz(32, 4, 0.75, seed=5) == watts_strogatz(32, 4, 0.75, seed=5)
    assert watts_strogatz(32, 4, 0.75, seed=5).edges != watts_strogatz(32, 4, 0.75, seed=6).edges
    with pytest.raises(ValueError, match="even K"):
        watts_strogatz(32, 3, 0.75, seed=0)


def _meta_model(**kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        return cn.create_model("randwire_ws_small", **kwargs)


def test_a_name_always_builds_the_same_network() -> None:
    first, second, other = _meta_model(), _meta_model(), _meta_model(seed=1)
    assert first.graphs == second.graphs and first.graphs != other.graphs
    count = [sum(p.numel() for p in m.parameters()) for m in (first, second, other)]
    assert count == [5_588_979, 5_588_979, 5_790_680]
    assert graph_summary(first.graphs) == [
        {"nodes": 32, "edges": 64, "inputs": 5, "outputs": 6},
        {"nodes": 32, "edges": 64, "inputs": 8, "outputs": 4},
        {"nodes": 32, "edges": 64, "inputs": 6, "outputs": 3},
    ]


def test_stages_follow_table_1_small_regime() -> None:
    model = _meta_model()
    names = [n for n, _ in model.features.named_children()]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "classifier_conv"]
    stages = [model.features.conv3, model.features.conv4, model.features.conv5]
    assert [(s.in_chs, s.out_chs) for s in stages] == [(78, 78), (78, 156), (156, 312)]  # C, 2C, 4C with C=78
    for stage, graph in zip(stages, model.graphs, strict=True):
        assert isinstance(stage, RandomWiredStage) and stage.graph is graph
        assert stage.edge_index.shape == (2, len(graph.edges))
        for v, node in enumerate(stage.nodes):
            dw = node.op.dw.conv
            if v in graph.input_nodes:  # reads the previous stage, halves the resolution
                assert dw.stride == (2, 2) and dw.in_channels == stage.in_chs and node.num_inputs == 1
            else:
                assert dw.stride == (1, 1) and node.num_inputs == len(graph.predecessors[v])
    features = model.forward_features(torch.zeros(1, 3, 224, 224, device="meta"))
    assert features.shape == (1, 1280, 7, 7)


def test_graph_is_saved_with_the_weights_and_checked_on_load() -> None:
    model = cn.create_model("randwire_ws_small")
    stage = model.features.conv3
    assert [tuple(e) for e in stage.edge_index.T.tolist()] == list(stage.graph.edges)
    state = model.state_dict()
    assert "features.conv3.edge_index" in state
    cn.create_model("randwire_ws_small").load_state_dict(state)  # same seed: loads
    with pytest.raises(RuntimeError, match="another random graph"):
        cn.create_model("randwire_ws_small", seed=1).load_state_dict(state)


def test_node_aggregates_with_positive_learned_weights() -> None:
    node = RandomWiredNode(3, 8, 8).eval()
    with torch.no_grad():
        node.aggregation_logits.copy_(torch.tensor([0.0, 2.0, -1.0]))
    inputs = [torch.randn(2, 8, 5, 5) for _ in range(3)]
    weights = torch.sigmoid(torch.tensor([0.0, 2.0, -1.0]))
    expected = node.op(sum(w * x for w, x in zip(weights, inputs, strict=True)))
    torch.testing.assert_close(node(*inputs), expected)
    assert RandomWiredNode(1, 8, 8).aggregation_logits is None  # one input: no weight to learn
    # ReLU first, and not in place: the node's inputs feed other nodes too
    x = torch.randn(2, 8, 5, 5)
    before = x.clone()
    RandomWiredNode(1, 8, 8)(x)
    assert torch.equal(x, before)


def test_output_node_averages_the_graph_outputs() -> None:
    graph = RandomGraph(3, ((0, 1),))  # outputs: nodes 1 and 2
    stage = RandomWiredStage(graph, 4, 4, stride=1).eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        expected = (stage.nodes[1](stage.nodes[0](x)) + stage.nodes[2](x)) / 2
        torch.testing.assert_close(stage(x), expected)


def test_torch_export_unrolls_the_graph() -> None:
    model = cn.create_model("randwire_ws_small", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), expected, rtol=1e-4, atol=1e-5)
