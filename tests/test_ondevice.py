"""ExecuTorch programs (XNNPACK delegate): fp32 matches PyTorch, int8 agrees with it (issue #17)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import compactnets as cn
from compactnets import ondevice
from compactnets.data import build_data

pytest.importorskip("executorch", reason="ExecuTorch is an optional extra: pip install 'compactnets[executorch]'")


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    return cn.create_model("resnet20_cifar.cn_c10").eval()


def _images(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = build_data("digits", augment="none")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data.val, range(n)), batch_size=32)
    return list(loader)


def test_fp32_program_lowers_completely_and_matches(trained: torch.nn.Module, tmp_path: Path) -> None:
    lowered = ondevice.lower(trained, torch.randn(1, 3, 32, 32))
    assert lowered.delegated_share == 1.0 and lowered.not_delegated == {} and not lowered.int8
    path = tmp_path / "m.pte"
    path.write_bytes(lowered.buffer)
    result = ondevice.agreement(trained, ondevice.PteProgram(path), _images(64))
    assert result["top1_agreement"] == 100.0 and result["max_abs_logit_diff"] < 1e-4


def test_int8_program_is_smaller_and_agrees(trained: torch.nn.Module, tmp_path: Path) -> None:
    fp32 = ondevice.lower(trained, torch.randn(1, 3, 32, 32))
    calibration = [x for x, _ in _images(128)]
    int8 = ondevice.lower(trained, torch.randn(1, 3, 32, 32), calibration)
    assert int8.int8 and len(int8.buffer) < 0.4 * len(fp32.buffer)  # int8 weights: about a quarter
    path = tmp_path / "m.int8.pte"
    path.write_bytes(int8.buffer)
    result = ondevice.agreement(trained, ondevice.PteProgram(path), _images(96))
    assert result["top1_agreement"] >= 85.0, result
    assert 0 < result["max_abs_logit_diff"] < 2.0  # quantized: close, not equal


def test_export_command_writes_and_checks_programs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from compactnets.cli import main

    out = tmp_path / "m.pte"
    args = ["export", "resnet20_cifar", "--format", "executorch", "--out", str(out), "--check", "--int8", "static",
            "--data", "digits", "--calibration-batches", "2", "--eval-limit", "64"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "xnnpack 100.0% of ops delegated" in text and "check   ok" in text
    assert (tmp_path / "m.int8.pte").is_file() and "int8 agrees with PyTorch on" in text
    assert main(["export", "resnet20_cifar", "--format", "executorch", "--out", str(out), "--dynamic-batch"]) == 2
    assert "fixed-shape program" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", ["executorch", "executorch-int8"])
def test_bench_runs_programs(runtime: str, tmp_path: Path) -> None:
    from compactnets.benchmark import make_runner

    model = cn.create_model("resnet20_cifar").eval()
    example = torch.randn(2, 3, 32, 32)
    out = make_runner(model, runtime, example, threads=1, workdir=tmp_path)()
    assert out.shape == (2, 10)
    if runtime == "executorch":
        with torch.no_grad():
            assert torch.allclose(out, model(example), atol=1e-4)


def test_channel_splits_are_delegated() -> None:
    """SeesawNet's uneven group conv and ShuffleNetV2's split slice the channels: XNNPACK takes slices, while
    ``torch.split``/``chunk`` left ``split_with_sizes_copy`` to the portable kernels (benchmarks/results/
    executorch_zoo.md)."""
    from compactnets.layers.group_conv import UnevenGroupConv
    from compactnets.models.shufflenet import ShuffleV2Unit

    for block in (UnevenGroupConv(16, 16, splits=(1, 3)), ShuffleV2Unit(16, 16, 1)):
        lowered = ondevice.lower(block.eval(), torch.randn(1, 16, 8, 8))
        assert lowered.not_delegated == {} and lowered.delegated_share == 1.0, type(block).__name__


class _PreActStem(torch.nn.Module):
    """A stem conv feeding a pre-activation BatchNorm and an identity shortcut, as PydMobileNet's stage 1."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.norm, self.conv = (
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.Conv2d(8, 8, 1),
        )
        with torch.no_grad():  # statistics far from the identity, so a BN applied to the shortcut shows
            self.norm.running_mean.uniform_(1, 2)
            self.norm.running_var.uniform_(0.05, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return y + self.conv(torch.relu(self.norm(y)))


def test_shared_conv_bn_fold_keeps_the_shortcut_exact() -> None:
    """prepare_pt2e folds a conv -> BN pair into the conv even where the conv also feeds a shortcut; our fold
    into a copy keeps both paths (the int8 PydMobileNets lost 2-13 CIFAR-10 points before it)."""
    model, x = _PreActStem().eval(), torch.randn(4, 3, 16, 16)
    captured = torch.export.export(model, (x,)).module()
    assert ondevice.fold_shared_conv_bn(captured) == 1
    assert not any(n.target is torch.ops.aten.batch_norm.default for n in captured.graph.nodes)
    torch.testing.assert_close(captured(x), model(x), rtol=1e-5, atol=1e-5)
    int8 = ondevice.quantize_int8(model, x, [torch.randn(64, 3, 16, 16)])
    error = (int8(x) - model(x)).abs().max() / model(x).abs().max()
    assert error < 0.3, error  # 0.12 here; without the fold the shortcut carries BN'd values: 4.7


def test_int8_pyramid_network_agrees_with_fp32() -> None:
    """PydMobileNet-Add-29-0.25's CIFAR-10 weights quantized (PT2E reference, before lowering) agree with fp32."""
    from compactnets.deploy import deploy

    model = deploy(cn.create_model("pydmobilenet_add_29_025_cifar.cn_c10").eval())
    images = [x for x, _ in _images(256)]
    int8 = ondevice.quantize_int8(model, images[0], images[:4])
    agree = sum(int((int8(x).argmax(1) == model(x).argmax(1)).sum()) for x in images[4:]) / sum(map(len, images[4:]))
    assert agree >= 0.9, agree


def test_int8_of_a_computed_kernel_is_a_clear_error() -> None:
    """Without deploy, PydMobileNet's pyramid kernel is computed in the graph and torchao cannot fold its BN."""
    from compactnets.errors import UsageError

    model = cn.create_model("pydmobilenet_add_29_025_cifar").eval()
    with pytest.raises(UsageError, match="deployed model"):
        ondevice.quantize_int8(model, torch.randn(2, 3, 32, 32), [torch.randn(2, 3, 32, 32)])
