"""CPU mixed precision: depthwise layers stay in fp32 under bf16 autocast, everything else follows autocast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import compactnets as cn
from compactnets import amp
from compactnets.amp import is_depthwise, keep_depthwise_fp32
from compactnets.cli import main
from compactnets.errors import UsageError
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
    changed = keep_depthwise_fp32(model, strided_only=False)
    depthwise = {n for n, m in model.named_modules() if is_depthwise(m)}
    assert changed == len(depthwise) == 17 and keep_depthwise_fp32(model, strided_only=False) == 0  # idempotent
    dtypes = _output_dtypes(model, x)
    assert {dtypes[n] for n in depthwise} == {torch.float32}
    assert {d for n, d in dtypes.items() if n not in depthwise} == {torch.bfloat16}
    params = dict(model.named_parameters())
    assert all(torch.equal(before[k], v) for k, v in params.items())  # forward only: parameters untouched
    assert model.state_dict().keys() == before.keys()


def test_strided_only_keeps_the_strided_depthwise_convs_in_fp32() -> None:
    """Zen 4's oneDNN runs stride-1 depthwise convs faster in bf16 and strided ones far slower."""
    model = cn.create_model("mobilenetv2_cifar", num_classes=10, width=0.25)
    strided = {n for n, m in model.named_modules() if is_depthwise(m) and m.stride != (1, 1)}
    assert keep_depthwise_fp32(model, strided_only=True) == len(strided) == 3  # the 32-, 64-, 160-ch rows
    dtypes = _output_dtypes(model, torch.randn(2, 3, 32, 32))
    assert {dtypes[n] for n in strided} == {torch.float32}
    assert {d for n, d in dtypes.items() if n not in strided} == {torch.bfloat16}


@pytest.mark.parametrize(("flags", "fp32_layers"), [({"avx512_bf16", "amx_bf16"}, 17), ({"avx512_bf16"}, 3)])
def test_cpu_bf16_training_keeps_depthwise_in_fp32_and_says_so(
    flags: set[str], fp32_layers: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: flags)  # AMX: every depthwise conv; Zen 4: the strided ones
    overrides = {"out": str(tmp_path / "run"), "epochs": 1, "train_subset": 32, "batch_size": 16, "amp": "bf16",
                 "log_every": 1000, "width": 0.25}  # fmt: skip
    result = train(resolve_config("mobilenetv2_cifar", "fast", overrides=overrides))
    env = json.loads((result.out / "env.json").read_text())
    assert env["amp"] == "torch.bfloat16" and env["amp_fp32_depthwise_layers"] == fp32_layers
    assert env["amp_fp32_depthwise"] == ("all" if "amx_bf16" in flags else "strided")
    assert 0 <= result.last["val_top1"] <= 100


@pytest.mark.parametrize(("flags", "expected"), [({"avx512_bf16"}, torch.bfloat16), ({"amx_bf16", "avx2"},
                         torch.bfloat16), ({"avx2", "avx512f"}, None), (set(), None)])  # fmt: skip
def test_amp_auto_on_the_cpu_follows_the_processor(
    flags: set[str], expected: torch.dtype | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: flags)
    cpu = torch.device("cpu")
    assert amp.amp_dtype("auto", cpu) is expected
    assert amp.amp_dtype("off", cpu) is None and amp.amp_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(UsageError, match="unknown --amp 'bf32'; use auto, off, bf16, fp16"):
        amp.amp_dtype("bf32", cpu)


def test_training_under_amp_auto_records_what_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amp, "cpu_flags", lambda: {"amx_bf16"})
    overrides = {"out": str(tmp_path / "run"), "epochs": 1, "train_subset": 32, "batch_size": 16,
                 "log_every": 1000, "width": 0.25}  # fmt: skip
    result = train(resolve_config("mobilenetv2_cifar", "fast", overrides=overrides))  # the recipe's amp: auto
    env = json.loads((result.out / "env.json").read_text())
    assert env["amp_setting"] == "auto" and env["cpu_native_bf16"] is True
    assert env["amp"] == "torch.bfloat16" and env["amp_fp32_depthwise_layers"] == 17


def test_bench_train_measures_amp_settings_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "resnet20_cifar", "--train", "--amp", "off,bf16", "--batch-size", "4", "--repeats", "2",
            "--threads", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["amp"]: row for row in report["rows"]}
    assert rows["off"]["precision"] == "fp32" and rows["bf16"]["precision"] == "bf16"  # no depthwise layer
    assert rows["off"]["vs_fp32_eager"] == 1.0 and rows["bf16"]["images_per_s"] > 0
    macs = rows["off"]["executed_macs"]
    assert macs == cn.profile(cn.create_model("resnet20_cifar")).macs
    for row in rows.values():  # 3 x 2 x executed MACs per image, from the measured step time
        assert row["achieved_gflops"] == pytest.approx(6 * macs * 4 / row["step_ms"] / 1e6, rel=1e-2)
    assert report["env"]["gemm_peak_gflops_fp32"] > 0 and report["env"]["gemm_peak_gflops_bf16"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--amp", "fp8"], "unknown fp8"), (["--runtime", "onnxruntime"], "unknown onnxruntime"),
     (["--batch-size", "1,32"], "one --batch-size")],
)  # fmt: skip
def test_bench_train_refuses_bad_options_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "resnet20_cifar", "--train", "--repeats", "1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
