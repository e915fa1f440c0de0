"""compactnets.scaling and `compactnets scale`: budgets met, steps checked, EfficientNet-style compound scaling."""

from __future__ import annotations

import json

import pytest
import torch

import compactnets as cn
from compactnets.cli import main
from compactnets.scaling import Budget, ScaleResult, measure_latency_ms, scale_model


def _macs(name: str, size: int, **kwargs: float) -> int:
    with torch.device("meta"):
        model = cn.create_model(name, **kwargs)
    return cn.profile(model, size).macs


@pytest.mark.parametrize("name", ["mobilenetv2_100", "antnet_g2", "efficientnet_b0"])
def test_scale_meets_a_madds_budget_within_2_percent(name: str) -> None:
    """The acceptance check: width and resolution scaled to 150M MACs land within 2% below the budget."""
    budget = 150e6
    result = scale_model(name, madds=budget, resolution=True)
    assert 0.98 * budget <= result.profile.macs <= budget
    assert result.larger is not None and result.larger[1].macs > budget  # the next step up is over
    # create_model accepts what scale picked, and the card's model at that resolution counts the same
    size = result.input_size[1]
    assert _macs(name, size, **result.settings.create_kwargs()) == result.profile.macs


def test_width_only_reports_the_steps_around_the_budget() -> None:
    """Width alone: the largest step under the budget and the one above it (channels move in steps of 8)."""
    result = scale_model("mobilenetv2_100", madds=150e6)
    assert result.settings.resolution is None and result.input_size == (3, 224, 224)
    assert result.settings.width == 0.57  # the shortest decimal that builds the chosen model
    assert result.profile.macs == 147_439_552 and result.profile.macs <= 150e6
    larger_settings, larger = result.larger  # type: ignore[misc]
    assert larger.macs == 150_231_376 and larger_settings.width > result.settings.width


def test_params_budget_and_error_messages() -> None:
    result = scale_model("squeezenet_11", params=600e3)
    assert 0.9 * 600e3 < result.profile.params <= 600e3
    assert cn.profile(result.build(), 224).params == result.profile.params
    assert result.larger is not None and result.larger[1].params > 600e3
    nearest = scale_model("squeezenet_11", params=600e3, fit="nearest")  # the closer of the two steps
    gaps = [abs(p - 600e3) for p in (result.profile.params, result.larger[1].params)]
    assert abs(nearest.profile.params - 600e3) == min(gaps)
    with pytest.raises(ValueError, match=r"does not take width_mult.*_100"):
        scale_model("mobilenetv2_140", madds=150e6)  # its builder fixes width 1.4
    with pytest.raises(ValueError, match="drop --depth"):
        scale_model("squeezenet_11", madds=150e6, depth=True)
    with pytest.raises(ValueError, match="smallest model"):
        scale_model("squeezenet_11", params=1000)
    with pytest.raises(ValueError, match="give a budget"):
        Budget()


def test_latency_budget_with_a_given_clock() -> None:
    """Latency limits the width through ``latency_fn`` (here a deterministic stand-in: 1 ms per 100K params)."""

    def clock(model: torch.nn.Module, size: tuple[int, int, int]) -> float:
        return sum(p.numel() for p in model.parameters()) / 1e5

    result = scale_model("squeezenet_11", madds=300e6, latency_ms=5.0, latency_fn=clock)
    assert result.latency_ms is not None and result.latency_ms <= 5.0
    assert result.profile.params <= 5e5 and result.profile.madds <= 300e6
    assert any("latency" in note for note in result.notes)


@pytest.mark.slow
def test_measured_latency_is_positive_and_scales() -> None:
    small = measure_latency_ms(cn.create_model("squeezenet_11", width=0.25), (3, 64, 64))
    assert 0 < small < 1e3
    result = scale_model("squeezenet_11", latency_ms=small * 3, madds=500e6)
    assert isinstance(result, ScaleResult) and result.latency_ms is not None


@pytest.mark.slow
def test_compound_depth_width_resolution() -> None:
    result = scale_model("efficientnet_b0", madds=1e9, depth=True, resolution=True)
    assert 0.98e9 <= result.profile.macs <= 1e9
    assert result.settings.depth is not None and result.settings.depth > 1.0
    assert result.settings.resolution is not None and result.settings.resolution > 224


def test_cli_scale(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scale", "squeezenet_11", "--params", "600K"]) == 0
    out = capsys.readouterr().out
    assert "width" in out and 'create_model("squeezenet_11", width=' in out and "next step" in out
    assert main(["scale", "squeezenet_11", "--params", "600K", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["params"] <= 600e3 and data["width"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scale", "squeezenet_11"], "give a budget"),
        (["scale", "squeezenet_11", "--madds", "lots"], "--madds"),
        (["scale", "squeezenet_11", "--latency", "5 minutes"], "--latency"),
        (["scale", "squeezenet_11", "--madds", "100M", "--depth"], "drop --depth"),
        (["scale", "squeezenet_1", "--madds", "100M"], "did you mean"),
    ],
)
def test_cli_scale_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
