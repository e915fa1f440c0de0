"""Model registry and model cards: one registered name per configuration a paper table reports.

A card is data. ``compactnets list``, the tests and the reports all read the numbers from it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from .errors import ModelArgumentError

_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_printed(printed: str) -> tuple[float, float]:
    """Parse a number as a paper prints it (``"3.7M"``, ``"569M"``, ``"0.221M"``) into (value, unit of
    its last digit): ``"3.7M"`` -> (3.7e6, 0.1e6)."""
    match = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*([KMG]?)\s*", printed)
    if not match:
        raise ValueError(f"cannot parse printed number {printed!r}; expected e.g. '3.7M' or '569M'")
    whole, frac, unit = match.groups()
    scale = _UNITS[unit]
    value = float(f"{whole}.{frac or 0}") * scale
    last_digit = 10.0 ** -(len(frac) if frac else 0) * scale
    return value, last_digit


def matches_printed(value: float, printed: str, rtol: float = 0.0) -> bool:
    """True if ``value`` prints as ``printed`` when rounded or truncated, or lies within ``rtol`` of it."""
    target, unit = parse_printed(printed)
    eps = 1e-9 * max(target, 1.0)
    rounded = abs(value - target) <= unit / 2 + eps
    truncated = target - eps <= value < target + unit
    return rounded or truncated or abs(value - target) <= rtol * target + eps


@dataclass(frozen=True)
class ModelCard:
    """What a paper says about one configuration, and what a faithful build of it counts.

    ``ref_params``/``ref_macs`` come from reference builds (MODELS.md; params include BN, MACs are
    conv + linear only). ``paper_*`` hold the paper's numbers as printed. ``convention`` names the
    counting convention of :func:`compactnets.profile` that reproduces ``paper_madds`` and
    ``reproduces`` lists which paper numbers it reproduces ("params", "madds"); ``note`` says why
    where a paper number is not reproduced.
    """

    paper: str
    table: str
    input_size: tuple[int, int, int]
    num_classes: int
    ref_params: float | None = None
    ref_macs: float | None = None
    params_exact: bool = False
    paper_params: str | None = None
    paper_madds: str | None = None
    paper_metrics: Mapping[str, float] = field(default_factory=dict)
    convention: str = "macs"
    reproduces: tuple[str, ...] = ()
    paper_rtol: float = 0.0
    note: str = ""
    recipe: str | None = None
    source: str = ""
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the card."""
        return {
            "name": self.name,
            "paper": self.paper,
            "table": self.table,
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "ref_params": self.ref_params,
            "ref_macs": self.ref_macs,
            "params_exact": self.params_exact,
            "paper_params": self.paper_params,
            "paper_madds": self.paper_madds,
            "paper_metrics": dict(self.paper_metrics),
            "convention": self.convention,
            "reproduces": list(self.reproduces),
            "paper_rtol": self.paper_rtol,
            "note": self.note,
            "recipe": self.recipe,
            "source": self.source,
        }


ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class _Entry:
    builder: ModelBuilder
    card: ModelCard


_REGISTRY: dict[str, _Entry] = {}


class UnknownModelError(KeyError, ValueError):
    """Raised for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


MULTIPLIERS: tuple[str, ...] = ("width_mult", "depth_mult", "head_width_mult")
"""Builder keywords that scale a network (MobileNets Sec. 3.3's width multiplier, EfficientNet Eq. 3's depth
coefficient); ``create_model``'s ``width`` and ``depth`` are the first two."""


def check_multiplier(name: str, keyword: str, value: object) -> None:
    """Refuse a width or depth multiplier that is not a positive, finite number (``None`` means the default):
    ``width=-5`` or ``depth=0`` would otherwise build a degenerate network without a word."""
    if value is None:
        return
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not valid:
        raise ModelArgumentError(
            f"{name}: {keyword} must be a positive, finite number (a multiplier such as 0.5 or 1.4), got {value!r}"
        )


def register_model(card: ModelCard) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder`` under its function name with ``card``; the registered builder checks
    the keywords in :data:`MULTIPLIERS` before building."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")

        @functools.wraps(builder)
        def checked_builder(*args: Any, **kwargs: Any) -> nn.Module:
            for keyword in MULTIPLIERS:
                check_multiplier(name, keyword, kwargs.get(keyword))
            return builder(*args, **kwargs)

        _REGISTRY[name] = _Entry(checked_builder, replace(card, name=name))
        return checked_builder

    return decorator


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.6)
    if not close:  # prefix matches help for short or partial names ('antnet')
        close = [n for n in sorted(_REGISTRY) if n.startswith(name)][:5]
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`compactnets list` shows all {len(_REGISTRY)} names)")


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching a shell-style wildcard (``"antnet*"``), sorted; with ``pretrained``, the
    ``NAME.TAG`` of every published weights entry instead (timm's convention)."""
    if pretrained:
        from .weights import list_pretrained

        return list_pretrained(pattern)
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_card(name: str) -> ModelCard:
    """The card of a registered model."""
    return _entry(name).card


def _build(name: str, builder: ModelBuilder, kwargs: dict[str, Any]) -> nn.Module:
    """``builder(**kwargs)``; a family whose constructor has no ``drop_path_rate`` gets it through
    :func:`compactnets.layers.set_drop_path` (every residual branch), one without residual branches an error."""
    rate = kwargs.pop("drop_path_rate", None)
    try:
        model = builder(**kwargs) if rate is None else _build_with_rate(builder, kwargs, rate)
    except TypeError as err:
        for key, flag in (("width_mult", "width"), ("depth_mult", "depth")):
            if f"unexpected keyword argument '{key}'" in str(err):
                raise ModelArgumentError(f"{name} has no {flag} multiplier: leave --{flag} out") from None
        raise TypeError(f"{name}: {err}") from None
    except ValueError as err:
        if rate is not None and "no residual branches" in str(err):
            raise ModelArgumentError(f"{name}: drop_path_rate: {err}") from None
        raise
    return model


def _build_with_rate(builder: ModelBuilder, kwargs: dict[str, Any], rate: float) -> nn.Module:
    try:
        return builder(**kwargs, drop_path_rate=rate)  # the family's own schedule (EfficientNet, MobileNetV2)
    except TypeError as err:
        if "drop_path_rate" not in str(err):
            raise
    from .layers import set_drop_path

    model = builder(**kwargs)
    set_drop_path(model, rate)
    return model


def create_model(
    name: str,
    num_classes: int | None = None,
    pretrained: bool | str = False,
    width: float | None = None,
    depth: float | None = None,
    checkpoint_path: str | None = None,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name (timm style).

    ``num_classes`` defaults to the card's (or the weights'); ``width`` and ``depth`` are aliases of the
    builder's ``width_mult`` and ``depth_mult`` (what ``compactnets scale`` picks); other keyword arguments go
    to the model's constructor. ``pretrained=True`` (or a tag, or a name ``NAME.TAG``) loads published weights,
    verified by sha256, and sets ``model.pretrained_cfg``; a different ``num_classes`` then replaces the
    classifier. ``checkpoint_path`` loads the user's own weights (safetensors, state_dict or compactnets
    checkpoint). The card is attached as ``model.card``. ``features_only=True`` returns a
    :class:`compactnets.features.FeatureMaps` (a list of feature maps at ``out_indices`` of the model's
    ``feature_info``, default all) for a detection or segmentation head.
    """
    from . import weights as w

    name, tag = w.split_tag(name)
    entry = _entry(name)
    check_multiplier(name, "width", width)
    check_multiplier(name, "depth", depth)
    chosen = w.get_weights(name, tag or pretrained) if (tag or pretrained) and not checkpoint_path else None
    if width is not None:
        kwargs["width_mult"] = width
    if depth is not None:
        kwargs["depth_mult"] = depth
    if chosen is not None:
        kwargs = {**chosen.model_kwargs, **kwargs}
    default_classes = chosen.num_classes if chosen is not None else entry.card.num_classes
    kwargs["num_classes"] = default_classes if (num_classes is None or chosen is not None) else num_classes
    model = _build(name, entry.builder, kwargs)
    if chosen is not None:
        w.load_entry(model, chosen)
        model.pretrained_cfg = w.pretrained_cfg(chosen)
        if num_classes is not None and num_classes != chosen.num_classes:
            model.reset_classifier(num_classes)
            model.pretrained_cfg["num_classes"] = num_classes
    elif checkpoint_path:
        w.load_user_weights(model, w.read_state_dict(checkpoint_path), name)
    model.card = entry.card
    if features_only:
        from .features import FeatureMaps

        return FeatureMaps(model, out_indices)
    if out_indices is not None:
        raise TypeError(f"{name}: out_indices applies with features_only=True")
    return model
