"""CPU mixed precision: depthwise layers stay in fp32 under bf16 autocast, everything else follows autocast."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

import compactnets as cn
from compactnets.amp import is_depthwise, keep_depthwise_fp32
from compactnets.recipes import resolve_config
from compactnets.train import train


def _output_dtypes(model: nn.Module, x: torch.Tensor) -> dict[str, torch.dtype]:
    seen: dict[str, torch.dtype] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.dtype))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d) or is_depthwise(m)]  # fmt: skip
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().sum().backward()
    for hook in hooks:
        hook.remove()
    return seen


def test_depthwise_layers_run_in_fp32_under_bf16_autocast() -> None:
    model = cn.create_model("mobilenetv2_cifar", num_classes=10, width=0.25)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    assert set(_output_dtypes(model, x).values()) == {torch.bfloat16}  # plain autocast: every conv in bf16
    changed = keep_depthwise_fp32(model)
    depthwise = {n for n, m in model.named_modules() if is_depthwise(m)}
    assert changed == len(depthwise) == 17 and keep_depthwise_fp32(model) == 0  # idempotent
    dtypes = _output_dtypes(model, x)
    assert {dtypes[n] for n in depthwise} == {torch.float32}
    assert {d for n, d in dtypes.items() if n not in depthwise} == {torch.bfloat16}
    params = dict(model.named_parameters())
    assert all(torch.equal(before[k], v) for k, v in params.items())  # forward only: parameters untouched
    assert model.state_dict().keys() == before.keys()


def test_cpu_bf16_training_keeps_depthwise_in_fp32_and_says_so(tmp_path: Path) -> None:
    overrides = {"out": str(tmp_path / "run"), "epochs": 1, "train_subset": 32, "batch_size": 16, "amp": "bf16",
                 "log_every": 1000, "width": 0.25}  # fmt: skip
    result = train(resolve_config("mobilenetv2_cifar", "fast", overrides=overrides))
    env = json.loads((result.out / "env.json").read_text())
    assert env["amp"] == "torch.bfloat16" and env["amp_fp32_depthwise_layers"] == 17
    assert 0 <= result.last["val_top1"] <= 100
