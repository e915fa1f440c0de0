"""Model specs and input sizes: what ``compactnets export|bench|eval|report MODEL`` accept.

A spec is a registered name (random weights), ``NAME.TAG`` (published weights), a run directory (what
``compactnets train`` writes: ``config.json``, ``best.pt`` / ``last.pt``) or a checkpoint file (trained
weights). :func:`resolve_spec` builds the model in eval mode and says what is known about it: its registered
name, input size, class names and where it came from. :func:`parse_input_size` reads ``--input-size``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from .checkpoint import load_model
from .errors import UsageError
from .registry import create_model, list_models, model_card
from .weights import WeightsEntry, get_weights, split_tag

InputSize = tuple[int, int, int]
SpecKind = Literal["name", "weights", "run", "checkpoint"]
"""``name``: registered, random weights; ``weights``: published ``NAME.TAG``; ``run``: a run directory;
``checkpoint``: a checkpoint file."""
RUN_CONFIG = "config.json"
"""The file that makes a folder a run directory (written before the first checkpoint)."""

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
"""What makes a spec that names nothing read as a missing file rather than an unknown model."""


# ------------------------------------------------------------------------------------------ input sizes
def as_input_size(value: int | Sequence[int]) -> InputSize:
    """``S`` (3 x S x S), ``(H, W)`` (3 channels) or ``(C, H, W)`` as ``(C, H, W)``; ``ValueError`` otherwise."""
    if isinstance(value, int):
        value = (3, value, value)
    size = tuple(int(s) for s in value)
    if len(size) == 2:
        size = (3, *size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"input_size must be (C, H, W), (H, W) or an int, got {value!r}")
    return size  # type: ignore[return-value]


def parse_input_size(text: str | None) -> InputSize | None:
    """``--input-size`` text (``224``, ``160x128``, ``3,224,224``) as ``(C, H, W)``; ``None`` stays ``None``."""
    if text is None:
        return None
    text = text.strip().lower()
    error = UsageError(f"--input-size: expected H, HxW or C,H,W (e.g. 224 or 3,224,224), got {text!r}")
    if not re.fullmatch(r"\d+(?:[x,]\d+){0,2}", text):
        raise error
    parts = [int(p) for p in re.split(r"[x,]", text)]
    try:
        return as_input_size(parts[0] if len(parts) == 1 else parts)
    except ValueError:
        raise error from None


# ---------------------------------------------------------------------------------------------- specs
def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (it holds ``config.json``)."""
    path = Path(path)
    return path.is_dir() and (path / RUN_CONFIG).is_file()


def spec_kind(spec: str, pretrained: bool = False) -> SpecKind:
    """What ``spec`` names (``pretrained``: a plain name means its default published weights).

    A registered name wins over a path of the same name. A spec that is neither raises a
    :class:`UsageError` naming the missing file when it reads as a path (a ``/`` or a checkpoint suffix), else
    :class:`~compactnets.registry.UnknownModelError` with the closest names.
    """
    if spec in list_models():
        return "weights" if pretrained else "name"
    base, tag = split_tag(spec)
    if tag and base in list_models():
        return "weights"
    path = Path(spec).expanduser()
    if not path.exists():
        if "/" in spec or path.suffix in CHECKPOINT_SUFFIXES:
            raise UsageError(f"checkpoint {spec} not found")
        model_card(base)  # raises UnknownModelError with close matches
    return "run" if path.is_dir() else "checkpoint"


@dataclass(frozen=True)
class ResolvedModel:
    """A model built from a spec, in eval mode, and what is known about it."""

    spec: str
    kind: SpecKind
    name: str
    """The registered name (for a checkpoint: its card's, else the file's stem)."""
    model: nn.Module
    input_size: InputSize
    """The weights' (published weights), the checkpoint's, else the model card's."""
    classes: tuple[str, ...] | None = None
    """Class names, where the weights record them (published weights, checkpoints of named data)."""
    weights: WeightsEntry | None = None
    path: Path | None = None
    """The run directory or checkpoint file."""

    @property
    def source(self) -> str:
        """Where the weights came from, in words."""
        if self.weights is not None:
            return f"published weights {self.weights.name}"
        if self.path is not None:
            return f"checkpoint {self.path}"
        return "random weights"


def resolve_spec(
    spec: str, *, pretrained: bool = False, num_classes: int | None = None, **kwargs: Any
) -> ResolvedModel:
    """Build the model ``spec`` names, in eval mode (see :func:`spec_kind`).

    ``num_classes`` and ``kwargs`` (``create_model``'s) apply to registered names; ``num_classes`` only to
    random weights: published weights and checkpoints keep their classifier and report their ``classes``.
    """
    kind = spec_kind(spec, pretrained)
    if kind == "name":
        model = create_model(spec, num_classes=num_classes, **kwargs).eval()
        return ResolvedModel(spec, kind, spec, model, tuple(model_card(spec).input_size))  # type: ignore[arg-type]
    if kind == "weights":
        base, tag = split_tag(spec)
        entry = get_weights(base, tag or True)
        model = create_model(entry.name, **kwargs).eval()
        size = tuple(model.pretrained_cfg["input_size"])
        return ResolvedModel(spec, kind, base, model, size, tuple(entry.classes), weights=entry)  # type: ignore[arg-type]
    return _resolve_checkpoint(spec, kind)


def _resolve_checkpoint(spec: str, kind: SpecKind) -> ResolvedModel:
    """A run directory or checkpoint file: the training work's loader, then what the checkpoint records."""
    path = Path(spec).expanduser()
    model = load_model(path).eval()
    card = getattr(model, "card", None)
    meta = getattr(model, "checkpoint_meta", {}) or {}
    size = meta.get("input_size") or (card.input_size if card is not None else None)
    if size is None:
        raise UsageError(f"{spec}: the checkpoint does not say its input size; pass --input-size")
    name = card.name if card is not None else path.stem
    classes = tuple(meta["classes"]) if meta.get("classes") is not None else None
    return ResolvedModel(spec, kind, name, model, as_input_size(size), classes, path=path)


__all__ = [
    "RUN_CONFIG",
    "InputSize",
    "ResolvedModel",
    "SpecKind",
    "as_input_size",
    "is_run_dir",
    "parse_input_size",
    "resolve_spec",
    "spec_kind",
]
