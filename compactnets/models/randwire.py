"""Randomly wired networks (Xie, Kirillov, Girshick, He 2019, "Exploring Randomly Wired Neural Networks").

Each stage is a random graph from the Watts-Strogatz model WS(N, K, P) (Sec. 3.3), turned into a DAG by
pointing every edge from the lower to the higher node index (Sec. 3.2). A node sums its inputs with
positive learned weights (sigmoid), then applies ReLU -> 3x3 separable conv -> BN (Sec. 3.2). An extra
input node feeds the previous stage to the nodes without inputs, whose convs have stride 2; an extra
output node averages the nodes without outputs. The graphs are drawn from a seed, so a name and a seed
always build the same network; the edge lists live on the model (``model.graphs``) and in its state.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ..layers import ClassifierHead, ConvNormAct, DepthwiseSeparable
from ..registry import ModelCard, register_model
from .base import CompactNet, init_weights

PAPER = "RandWire (Xie et al. 2019)"


@dataclass(frozen=True)
class RandomGraph:
    """A DAG on nodes ``0..num_nodes-1`` with edges ``(u, v)``, ``u < v``."""

    num_nodes: int
    edges: tuple[tuple[int, int], ...]

    @cached_property
    def predecessors(self) -> tuple[tuple[int, ...], ...]:
        """For each node, the nodes with an edge into it, ascending."""
        preds: list[list[int]] = [[] for _ in range(self.num_nodes)]
        for u, v in self.edges:
            preds[v].append(u)
        return tuple(tuple(sorted(p)) for p in preds)

    @property
    def input_nodes(self) -> tuple[int, ...]:
        """Nodes without inputs: they read the stage input (the extra input node)."""
        return tuple(v for v, p in enumerate(self.predecessors) if not p)

    @property
    def output_nodes(self) -> tuple[int, ...]:
        """Nodes without outputs: the extra output node averages them."""
        has_successor = {u for u, _ in self.edges}
        return tuple(v for v in range(self.num_nodes) if v not in has_successor)


def watts_strogatz(num_nodes: int, k: int, p: float, seed: int) -> RandomGraph:
    """WS(N, K, P), Sec. 3.3: a ring where each node links to its K/2 neighbours on each side; then, for
    each distance i = 1..K/2 and each node v clockwise, the edge to v's i-th clockwise neighbour is rewired
    with probability P to a uniformly chosen node that is neither v nor already linked to v. Edges are then
    directed from the lower to the higher ring index. Python's ``random.Random(seed)`` draws everything.
    """
    if k % 2 or not 0 < k < num_nodes:
        raise ValueError(f"WS needs an even K with 0 < K < N, got K={k}, N={num_nodes}")
    rng = random.Random(seed)
    neighbours: list[set[int]] = [set() for _ in range(num_nodes)]
    for distance in range(1, k // 2 + 1):
        for u in range(num_nodes):
            v = (u + distance) % num_nodes
            neighbours[u].add(v)
            neighbours[v].add(u)
    for distance in range(1, k // 2 + 1):
        for u in range(num_nodes):
            if rng.random() >= p or len(neighbours[u]) >= num_nodes - 1:
                continue
            v = (u + distance) % num_nodes
            w = rng.randrange(num_nodes)
            while w == u or w in neighbours[u]:
                w = rng.randrange(num_nodes)
            neighbours[u].discard(v)
            neighbours[v].discard(u)
            neighbours[u].add(w)
            neighbours[w].add(u)
    edges = sorted((u, v) for u in range(num_nodes) for v in neighbours[u] if u < v)
    return RandomGraph(num_nodes, tuple(edges))


class RandomWiredNode(nn.Module):
    """Aggregation (sum weighted by sigmoid(w), w learned) -> ReLU -> 3x3 SepConv -> BN (Sec. 3.2, Fig. 2).

    A node with one input has no weight: ReLU, conv and BN make a positive scale on it redundant.
    """

    def __init__(self, num_inputs: int, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.aggregation_logits = nn.Parameter(torch.zeros(num_inputs)) if num_inputs > 1 else None
        self.op = DepthwiseSeparable(in_chs, out_chs, stride, 3, act=None, dw_norm_act=False, pre_act="relu")
        self.num_inputs = num_inputs

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.aggregation_logits is None:
            return self.op(inputs[0])
        weights = torch.sigmoid(self.aggregation_logits)
        x = weights[0] * inputs[0]
        for i in range(1, self.num_inputs):
            x = x + weights[i] * inputs[i]
        return self.op(x)

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The weighted sum: one multiply per input element and the adds between inputs (profiler protocol)."""
        if self.aggregation_logits is None:
            return {}
        size = inputs[0].numel()
        return {"gating": self.num_inputs * size, "residual": (self.num_inputs - 1) * size}


class RandomWiredStage(nn.Module):
    """One random graph as a network stage (Sec. 3.2, "Input and output nodes" and "Stages").

    ``edge_index`` (2 x E) is a buffer, so a checkpoint records the graph it was trained with; loading
    it into a model built from another graph fails with a message instead of silently mismatching.
    """

    def __init__(self, graph: RandomGraph, in_chs: int, out_chs: int, stride: int = 2) -> None:
        super().__init__()
        self.graph = graph
        self.register_buffer("edge_index", torch.tensor(graph.edges, dtype=torch.long).reshape(-1, 2).T.clone())
        self.nodes = nn.ModuleList(
            RandomWiredNode(len(preds), out_chs, out_chs)
            if preds
            else RandomWiredNode(1, in_chs, out_chs, stride)  # reads the extra input node
            for preds in graph.predecessors
        )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for node, preds in zip(self.nodes, self.graph.predecessors, strict=True):
            outputs.append(node(*(outputs[u] for u in preds)) if preds else node(x))
        ends = self.graph.output_nodes
        out = outputs[ends[0]]
        for v in ends[1:]:
            out = out + outputs[v]
        return out / len(ends) if len(ends) > 1 else out

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The extra output node's average: the adds and one scale (profiler protocol)."""
        ends = len(self.graph.output_nodes)
        return {"residual": (ends - 1) * output.numel(), "gating": output.numel() if ends > 1 else 0}

    def _load_from_state_dict(  # type: ignore[override]
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        saved = state_dict.get(prefix + "edge_index")
        if (
            isinstance(saved, torch.Tensor)
            and not saved.is_meta
            and not self.edge_index.is_meta
            and (saved.shape != self.edge_index.shape or not torch.equal(saved.cpu(), self.edge_index.cpu()))
        ):
            error_msgs.append(
                f"{prefix}edge_index: the checkpoint was trained on another random graph; build the model "
                "with the seed (and N, K, P) it was trained with"
            )
            return
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


# RandWire Table 1, small regime (C=78, N=32): (stage, operation, output channels in units of C); every
# stage halves the resolution (224 -> 112 -> 56 -> 28 -> 14 -> 7).
SMALL_REGIME: list[tuple[str, str, float]] = [
    ("conv1", "conv3x3", 0.5),
    ("conv2", "conv3x3", 1),
    ("conv3", "random", 1),
    ("conv4", "random", 2),
    ("conv5", "random", 4),
]
# Table 1, classifier: 1x1 conv to 1280 channels, global average pool, 1000-d FC.
HEAD_CHS = 1280


@dataclass(frozen=True)
class WSConfig:
    """The random graph generator of Sec. 3.3 / Table 2: WS(K, P) with N nodes per stage, and width C."""

    channels: int = 78
    num_nodes: int = 32
    k: int = 4
    p: float = 0.75


class RandWire(CompactNet):
    """RandWire, small regime (Table 1): conv1 (3x3 conv -> BN), conv2 (ReLU-conv-BN), three random
    stages, classifier (ReLU -> 1x1 conv -> BN -> ReLU, pool, FC). Stage s draws its graph with seed
    ``seed * 100 + s``."""

    def __init__(
        self,
        config: WSConfig = WSConfig(),
        seed: int = 0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans, self.config, self.seed = in_chans, config, seed
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        graphs: list[RandomGraph] = []
        chs = in_chans
        for stage, (name, op, width) in enumerate(SMALL_REGIME):
            out_chs = int(config.channels * width)
            if op == "random":
                graph = watts_strogatz(config.num_nodes, config.k, config.p, seed * 100 + stage)
                graphs.append(graph)
                layers[name] = RandomWiredStage(graph, chs, out_chs, stride=2)
            elif stage == 0:
                layers[name] = ConvNormAct(chs, out_chs, 3, 2, act=None)
            else:
                layers[name] = nn.Sequential(nn.ReLU(), ConvNormAct(chs, out_chs, 3, 2, act=None))
            chs = out_chs
        layers["classifier_conv"] = nn.Sequential(nn.ReLU(), ConvNormAct(chs, HEAD_CHS, 1))
        self.features = nn.Sequential(layers)  # children named as Table 1: features.conv3, ...
        self.graphs = tuple(graphs)
        self.head = ClassifierHead(HEAD_CHS, num_classes, drop_rate)
        init_weights(self)


@register_model(
    ModelCard(
        paper=PAPER,
        table="Table 2 (small regime, RandWire-WS C=78)",
        input_size=(3, 224, 224),
        num_classes=1000,
        ref_params=5_588_979,
        ref_macs=573.74e6,
        params_exact=True,
        paper_params="5.6M",
        paper_madds="583M",
        paper_metrics={"top1": 74.7, "top5": 92.2},
        reproduces=("params",),
        recipe="randwire_imagenet",
        source="reference build of Table 1 (small regime) with WS(N=32, K=4, P=0.75) graphs of seed 0",
        note="Counts depend on the graph (how many nodes read the previous stage at stride 2, how many "
        "inputs each node sums). The paper reports over several WS(4, 0.75) instances; over seeds 0-39 our "
        "build gives 5.63 +- 0.09M params and 579.8 +- 6.1M MACs (568.7-591.2M), consistent with 5.6M / "
        "583M. The registered graph (seed 0) has 5,588,979 params (prints 5.6M) and 573.7M MACs, 1.6% "
        "under 583M; other graphs: randwire_ws_small(seed=...).",
    )
)
def randwire_ws_small(seed: int = 0, **kwargs: Any) -> RandWire:
    return RandWire(WSConfig(channels=78, num_nodes=32, k=4, p=0.75), seed=seed, **kwargs)


def graph_summary(graphs: Sequence[RandomGraph]) -> list[dict[str, int]]:
    """Nodes, edges, input and output nodes of each stage's graph (for reports and tests)."""
    return [
        {"nodes": g.num_nodes, "edges": len(g.edges), "inputs": len(g.input_nodes), "outputs": len(g.output_nodes)}
        for g in graphs
    ]
