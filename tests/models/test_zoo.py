"""Every registered model: counts against its card, output shape, forward and backward at batch 2."""

from __future__ import annotations

import json

import pytest
import torch

import compactnets as cn
from compactnets.complexity import COUNTS_FILE, CardCounts, card_counts
from compactnets.errors import InputShapeError
from compactnets.registry import matches_printed

ALL_MODELS = cn.list_models()
PARAMS_RTOL = 0.005  # MODELS.md: reference params within 0.5%
MACS_RTOL = 0.01  # and MACs within 1%


def _meta_profile(name: str, convention: str = "macs") -> cn.ProfileResult:
    with torch.device("meta"):
        model = cn.create_model(name)
    return cn.profile(model, convention=convention)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_counts_match_card(name: str) -> None:
    card = cn.model_card(name)
    result = _meta_profile(name, card.convention)
    if card.ref_params is not None:
        if card.params_exact:
            assert result.params == card.ref_params
        else:
            assert result.params == pytest.approx(card.ref_params, rel=PARAMS_RTOL)
    if card.ref_macs is not None:
        assert result.macs == pytest.approx(card.ref_macs, rel=MACS_RTOL)
    if "params" in card.reproduces:
        assert matches_printed(result.params, card.paper_params or "", card.paper_rtol), (
            f"{name}: {result.params:,} params do not print as the paper's {card.paper_params}"
        )
    if "madds" in card.reproduces:
        assert matches_printed(result.madds, card.paper_madds or "", card.paper_rtol), (
            f"{name}: {result.madds:,} MAdds ({card.convention}) do not print as {card.paper_madds}"
        )
    stored = card_counts(name)  # what `compactnets list` shows without counting
    with torch.device("meta"):
        features = tuple((f["num_chs"], f["reduction"]) for f in cn.create_model(name).feature_info)
    assert stored == CardCounts(result.params, result.macs, result.madds, features), (
        f"{name}: the counts stored in {COUNTS_FILE.name} are stale; run `make counts`"
    )


def test_counts_are_stored_for_every_card() -> None:
    stored = json.loads(COUNTS_FILE.read_text())
    assert sorted(stored) == ALL_MODELS, f"{COUNTS_FILE.name} lists other models than the registry: run `make counts`"
    for name in ALL_MODELS:
        card = cn.model_card(name)
        assert stored[name]["input_size"] == list(card.input_size), name
        assert stored[name]["num_classes"] == card.num_classes and stored[name]["convention"] == card.convention, name


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_backward(name: str) -> None:
    card = cn.model_card(name)
    model = cn.create_model(name, num_classes=7)
    size = card.input_size if card.input_size[1] <= 64 else (3, 64, 64)  # small input keeps it fast
    x = torch.randn(2, *size)
    out = model(x)
    assert out.shape == (2, 7)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["mobilenetv1_100", "antnet_e_cifar"])
def test_model_contract(name: str) -> None:
    model = cn.create_model(name).eval()
    x = torch.randn(1, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape[1] == model.num_features
    assert model.forward_head(features, pre_logits=True).shape == (1, model.num_features)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model(x).shape == (1, 5)
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="expects images"):
        model(torch.randn(3, 32, 32))


def _assert_smallest_input_is_named(model: torch.nn.Module, name: str, device: str = "meta") -> int:
    """Below the side ``min_input_size`` finds, the model raises the one-line error; at it and just above, it runs."""
    side = model.min_input_size()
    assert side is not None, name
    if side > 1:
        small = side - 1
        with pytest.raises(InputShapeError, match=rf"^{name} needs at least {side}x{side} input, got {small}x{small}$"):
            model(torch.zeros(1, 3, small, small, device=device))
        with pytest.raises(InputShapeError, match=rf"got {small}x{side + 8}$"):  # either side too small is named
            model(torch.zeros(1, 3, small, side + 8, device=device))
    for size in (side, side + 1, side + 2):  # bisection assumes every larger input runs: the next two do
        assert model(torch.zeros(1, 3, size, size, device=device)).shape == (1, model.num_classes)
    return side


# The models the issue found failing on small inputs (the real device, CPU) and two that take any input.
SMALL_INPUT_CASES = [("squeezenet_11", 17), ("densenet_bc_100_k12_cifar", 4), ("mobilenetv1_100", 1)]


@pytest.mark.parametrize(("name", "side"), SMALL_INPUT_CASES)
def test_too_small_input_names_the_minimum(name: str, side: int) -> None:
    model = cn.create_model(name).eval()
    with torch.no_grad():
        assert _assert_smallest_input_is_named(model, name, "cpu") == side
    model.train()
    if side > 1:  # in training mode, from the public check, and with the model's modes left as they were
        with pytest.raises(InputShapeError, match=rf"{name} needs at least {side}x{side} input, got 3x3"):
            model(torch.randn(2, 3, 3, 3))
        with pytest.raises(InputShapeError, match=f"got 3x{side}"):
            model.check_input_size(3, side)
    model.check_input_size(side, side)
    assert all(m.training for m in model.modules())


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_MODELS)
def test_too_small_input_names_the_minimum_for_every_model(name: str) -> None:
    with torch.device("meta"):
        model = cn.create_model(name).eval()
    _assert_smallest_input_is_named(model, name)
