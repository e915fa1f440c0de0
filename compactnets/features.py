"""Feature maps for detection and segmentation heads: timm's ``features_only`` / ``feature_info`` /
``forward_intermediates`` for every registered model.

A model's candidate maps are the outputs of its ``feature_modules()`` (the stages of ``model.features``; NASNet's
stem and cells). ``feature_info`` keeps, for every reduction (input side / map side) the network reaches, the
last candidate at that reduction, as timm does: ``{"num_chs", "reduction", "module"}``, shallow to deep. Found
once on the meta device at the card's input size (shapes only). :class:`FeatureMaps` (what
``create_model(name, features_only=True, out_indices=...)`` returns) captures the chosen maps with forward hooks,
so every family works unchanged; torchvision's ``create_feature_extractor`` works too (every model traces).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import torch
from torch import nn

from .errors import UsageError


def meta_forward(module: nn.Module, input_shape: Sequence[int]) -> None:
    """Run ``module`` in eval mode, without gradients, on a meta input of ``input_shape`` with meta copies of its
    weights (shapes only: nothing allocated, nothing computed); every submodule's train/eval flag is restored."""
    named = chain(module.named_parameters(), module.named_buffers())
    meta = {name: torch.empty_like(t, device="meta") for name, t in named}
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            torch.func.functional_call(module, meta, (torch.empty(*input_shape, device="meta"),))
    finally:
        for m, training in modes.items():
            m.training = training


def feature_info(model: nn.Module, input_size: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The deepest map of every reduction ``model`` reaches: channels, reduction and module name, shallow first."""
    size = tuple(input_size or model.card.input_size)
    shapes: dict[str, tuple[int, ...]] = {}
    modules = model.feature_modules()
    hooks = [m.register_forward_hook(lambda mod, i, out, n=n: shapes.__setitem__(n, tuple(out.shape)))
             for n, m in modules]  # fmt: skip
    try:
        meta_forward(model, (1, *size))
    finally:
        for hook in hooks:
            hook.remove()
    by_reduction: dict[int, dict[str, Any]] = {}
    for name, _ in modules:
        shape = shapes.get(name)
        if shape is not None and len(shape) == 4:
            reduction = round(size[-1] / shape[-1])
            by_reduction[reduction] = {"num_chs": shape[1], "reduction": reduction, "module": name}
    return [by_reduction[r] for r in sorted(by_reduction)]


def _check_indices(info: list[dict[str, Any]], indices: Sequence[int], name: str) -> list[int]:
    chosen = [i if i >= 0 else len(info) + i for i in indices]
    if not chosen or any(not 0 <= i < len(info) for i in chosen):
        strides = ", ".join(str(f["reduction"]) for f in info)
        raise UsageError(
            f"{name}: out_indices {tuple(indices)} out of range: it has {len(info)} feature maps "
            f"(indices 0-{len(info) - 1}, reductions {strides})"
        )
    return chosen


class FeatureMaps(nn.Module):
    """``model``'s feature maps at ``out_indices`` of its :func:`feature_info` (default: all), as a list."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        full = feature_info(model)
        indices = _check_indices(full, range(len(full)) if out_indices is None else out_indices, model.model_name)
        model.reset_classifier(0)  # the classifier is not needed
        self.model = model
        self.feature_info = [full[i] for i in indices]
        self._maps: dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        for entry in self.feature_info:
            modules[entry["module"]].register_forward_hook(
                lambda mod, i, out, n=entry["module"]: self._maps.__setitem__(n, out)
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._maps.clear()
        self.model.forward_features(x)
        maps = [self._maps[entry["module"]] for entry in self.feature_info]
        self._maps.clear()
        return maps


def forward_intermediates(
    model: nn.Module, x: torch.Tensor, indices: Sequence[int] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The last feature map and the maps at ``indices`` of :func:`feature_info` (default: all), timm's
    ``forward_intermediates`` for an unchanged model (its classifier stays)."""
    full = model.feature_info  # found once, at the card's size: the same modules at any input size
    chosen = [full[i] for i in _check_indices(full, range(len(full)) if indices is None else indices,
                                              model.model_name)]  # fmt: skip
    maps: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [modules[e["module"]].register_forward_hook(lambda mod, i, out, n=e["module"]: maps.__setitem__(n, out))
             for e in chosen]  # fmt: skip
    try:
        final = model.forward_features(x)
    finally:
        for hook in hooks:
            hook.remove()
    return final, [maps[e["module"]] for e in chosen]
