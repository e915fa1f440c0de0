"""Memory traffic (ShuffleNet V2 guideline 1) counted by profile(): exact bytes on small models."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets.cli import main
from compactnets.layers import ChannelShuffle, InvertedResidual

FP32 = 4


def test_pointwise_conv_matches_guideline_1() -> None:
    # ShuffleNet V2 Sec. 2, G1: a 1x1 conv with c1 inputs and c2 outputs on h x w moves hw(c1 + c2) + c1 c2
    h = w = 7
    c1, c2 = 24, 40
    result = cn.profile(nn.Conv2d(c1, c2, 1, bias=False), (c1, h, w))
    assert result.memory == FP32 * (h * w * (c1 + c2) + c1 * c2)


def test_each_op_reads_and_writes_views_move_nothing() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), ChannelShuffle(2),
        nn.Identity(), nn.Dropout(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip
    result = cn.profile(model, (3, 6, 6))
    act = 8 * 36
    by_type = {la.type: la.memory // FP32 for la in result.layers}
    assert by_type["Conv2d"] == 3 * 36 + act + 8 * 3 * 9 + 8
    assert by_type["BatchNorm2d"] == 2 * act + 4 * 8  # weight, bias, running mean and variance
    assert by_type["ReLU"] == 2 * act  # in place still reads and writes
    assert by_type["ChannelShuffle"] == 2 * act  # a copy, no parameters and no MACs
    assert by_type["AdaptiveAvgPool2d"] == act + 8
    assert by_type["Linear"] == 8 + 4 + 8 * 4 + 4
    assert {"Identity", "Dropout", "Flatten"}.isdisjoint(by_type)
    assert result.memory == FP32 * sum(by_type.values())


def test_residual_add_and_containers() -> None:
    block = InvertedResidual(16, 16, expansion=1)
    result = cn.profile(block, (16, 5, 5))
    own = next(la for la in result.layers if la.name == "(model)")
    assert own.memory == FP32 * 3 * 16 * 25  # x + out: two reads, one write
    assert result.memory == sum(la.memory for la in result.layers)


def test_count_ops_may_declare_memory() -> None:
    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(x)], 1)

        def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
            return {"memory": 2 * output.numel()}  # the concatenation copies both halves

    result = cn.profile(Concat(), (4, 3, 3))
    own = next(la for la in result.layers if la.name == "(model)")
    assert own.memory == FP32 * 2 * 8 * 9 and "memory" not in own.ops


def test_memory_on_meta_matches_cpu_and_is_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    cpu = cn.profile(cn.create_model("antnet_g2_cifar"))
    with torch.device("meta"):
        meta = cn.profile(cn.create_model("antnet_g2_cifar"))
    assert meta.memory == cpu.memory > cpu.params * FP32
    assert main(["profile", "antnet_g2_cifar", "--json", "--per-layer"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memory_bytes"] == cpu.memory == sum(la["memory_bytes"] for la in data["layers"])


def test_profile_prints_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "mobilenetv1_025", "--input-size", "32", "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "memory (B)" in out
    total = cn.profile(cn.create_model("mobilenetv1_025"), (3, 32, 32)).memory
    assert f"memory  {total:>15,}" in out
