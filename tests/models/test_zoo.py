"""Every registered model: counts against its card, output shape, forward and backward at batch 2."""

from __future__ import annotations

import pytest
import torch

import compactnets as cn
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
