"""Activation lookup by name, so configurations can say ``"relu6"`` instead of importing classes."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ActLayer = Callable[[], nn.Module]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def get_act(act: str | ActLayer | None) -> ActLayer | None:
    """Resolve ``act`` (a name, a module class or factory, or None) to a zero-argument factory."""
    if act is None or callable(act):
        return act
    try:
        return _ACTIVATIONS[act.lower()]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; choose one of: {', '.join(_ACTIVATIONS)}") from None


def create_act(act: str | ActLayer | None) -> nn.Module:
    """Instantiate an activation; ``None`` gives ``nn.Identity``."""
    factory = get_act(act)
    if factory is None:
        return nn.Identity()
    module = factory()
    if hasattr(module, "inplace"):
        module.inplace = True
    return module
