"""Exact parameter and multiply-add counting, per layer, in the conventions the papers use.

Default ("macs"): multiply-accumulates of conv and linear layers only, grouped and depthwise convs
counted exactly (``C_out H_out W_out (C_in / groups) k^2``; ``in x out`` for linear). Optional extras
(ARCHITECTURES.md section 1): ``bn`` (normalised elements), ``act`` (activation outputs), ``pool``
(pooling window elements), ``gating`` (attention rescale multiplies), ``residual`` (residual adds).

Counting uses forward hooks that are removed afterwards: the model's state_dict, hooks and
train/eval flags are left as they were. A module whose forward does work outside child modules
(a functional conv, a residual add) reports it by defining
``count_ops(self, inputs, output) -> dict[str, int]`` (counts for the whole batch).

Memory traffic (ShuffleNet V2, Ma et al. 2018, guideline 1: "memory access cost") is counted beside the
operations, in bytes at fp32 for one image: a leaf module that computes something reads its inputs and its
weights (parameters and float buffers such as BN statistics) and writes its output; a container reads and
writes what its ``count_ops`` declares (a residual add reads two tensors and writes one, a gating multiply
reads one and writes one). A module that moves memory in other ways declares it as
``{"memory": element_reads_plus_writes}`` in ``count_ops``. Views (flatten, identity, dropout in eval) move
nothing. This is the traffic of each op run on its own, the model ShuffleNet V2 uses; fused kernels move less.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputShapeError
from .features import feature_info
from .registry import create_model, list_models, model_card
from .spec import as_input_size

OPS: tuple[str, ...] = ("macs", "bn", "act", "pool", "gating", "residual")
"""Every kind of operation the profiler counts; ``macs`` is always part of a convention."""

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_ACTS = (
    nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.GELU, nn.Tanh,
    nn.LeakyReLU, nn.PReLU, nn.ELU, nn.Mish, nn.Hardtanh, nn.Softmax,
)  # fmt: skip
_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                   nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)  # fmt: skip
_POOLS = (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._MaxPoolNd)

BYTES_PER_ELEMENT = 4
"""Memory traffic is reported for fp32 tensors and weights."""
MEMORY = "memory"
"""``count_ops`` key for a module's own memory traffic in elements (reads + writes), beside :data:`OPS`."""
_ACCESSES_PER_OP = {"gating": 2, "residual": 3}
"""Elements a container's element-wise op reads and writes: x * s reads x, writes out; a + b reads two."""


@dataclass
class LayerProfile:
    """Counts of one module (per image): its own parameters and the operations it performs."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    ops: dict[str, int] = field(default_factory=dict)
    memory: int = 0
    """Memory traffic in bytes at fp32: activations read + written + weights (ShuffleNet V2 guideline 1)."""

    def madds(self, convention: tuple[str, ...]) -> int:
        return sum(self.ops.get(k, 0) for k in convention)


@dataclass
class ProfileResult:
    """Totals and per-layer counts for one input image.

    ``macs`` is always conv + linear MACs; ``madds`` adds the extras named in ``convention``.
    """

    params: int
    ops: dict[str, int]
    convention: tuple[str, ...]
    input_size: tuple[int, int, int]
    layers: list[LayerProfile]

    @property
    def macs(self) -> int:
        return self.ops["macs"]

    @property
    def madds(self) -> int:
        return sum(self.ops[k] for k in self.convention)

    @property
    def memory(self) -> int:
        """Total memory traffic in bytes at fp32 (activations read + written + weights, summed over layers)."""
        return sum(la.memory for la in self.layers)

    @property
    def flops(self) -> int:
        """2 x MACs, the convention of ``torch.utils.flop_counter`` and fvcore's "flops"."""
        return 2 * self.macs

    def to_dict(self, per_layer: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "params": self.params,
            "macs": self.macs,
            "madds": self.madds,
            "convention": "+".join(self.convention),
            "input_size": list(self.input_size),
            "ops": dict(self.ops),
            "memory_bytes": self.memory,
        }
        if per_layer:
            out["layers"] = [
                {"name": la.name, "type": la.type, "output_shape": list(la.output_shape),
                 "params": la.params, **la.ops, "memory_bytes": la.memory}
                for la in self.layers
            ]  # fmt: skip
        return out


def parse_convention(convention: str, model: nn.Module | None = None) -> tuple[str, ...]:
    """``"macs"``, ``"macs+bn+act"``, ``"+bn,+act"``, ``"all"`` or ``"paper"`` (the model card's) -> op kinds."""
    text = convention.strip().lower()
    if text == "paper":
        card = getattr(model, "card", None)
        if card is None:
            raise ValueError("convention 'paper' needs a model built by create_model (it reads the card)")
        text = card.convention
    if text == "all":
        return OPS
    tokens = [t for t in re.split(r"[\s,+]+", text) if t]
    unknown = [t for t in tokens if t not in OPS]
    if unknown:
        raise ValueError(
            f"unknown counting term(s) {', '.join(map(repr, unknown))} in convention {convention!r}; "
            f"use 'macs', 'paper', 'all' or macs plus any of: {', '.join('+' + k for k in OPS[1:])}"
        )
    return tuple(k for k in OPS if k == "macs" or k in tokens)


def _normalise_input_size(input_size: Any, model: nn.Module) -> tuple[int, int, int]:
    """``input_size`` as (C, H, W) (:func:`compactnets.spec.as_input_size`); ``None``: the model card's."""
    if input_size is None:
        card = getattr(model, "card", None)
        if card is None:
            raise ValueError("input_size is required for a model not built by create_model")
        return tuple(card.input_size)  # type: ignore[return-value]
    return as_input_size(input_size)


def _module_ops(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> dict[str, int]:
    ops: dict[str, int] = {}
    if isinstance(module, nn.modules.conv._ConvNd) and isinstance(output, torch.Tensor):
        # every output element costs (C_in / groups) * prod(kernel) MACs
        ops["macs"] = output.numel() * module.weight[0].numel()
    elif isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
        ops["macs"] = output.numel() * module.in_features
    elif isinstance(module, _NORMS) and isinstance(output, torch.Tensor):
        ops["bn"] = output.numel()
    elif isinstance(module, _ACTS) and isinstance(output, torch.Tensor):
        ops["act"] = output.numel()
    elif isinstance(module, _ADAPTIVE_POOLS) and inputs and isinstance(inputs[0], torch.Tensor):
        ops["pool"] = inputs[0].numel()
    elif isinstance(module, _POOLS) and isinstance(output, torch.Tensor):
        kernel = module.kernel_size
        window = kernel if isinstance(kernel, int) else int(torch.tensor(kernel).prod())
        if isinstance(kernel, int):
            window = kernel ** (output.dim() - 2)
        ops["pool"] = output.numel() * window
    count_ops = getattr(module, "count_ops", None)
    if callable(count_ops):
        for key, value in count_ops(inputs, output).items():
            if key not in (*OPS, MEMORY):
                raise ValueError(f"{type(module).__name__}.count_ops returned unknown kind {key!r}")
            ops[key] = ops.get(key, 0) + int(value)
    return ops


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _storage_root(tensor: torch.Tensor) -> torch.Tensor:
    return tensor._base if tensor._base is not None else tensor


def _memory_elements(module: nn.Module, inputs: tuple[Any, ...], output: Any, ops: dict[str, int]) -> int:
    """Elements read and written by ``module`` itself (see the module docstring); ``ops`` includes its
    ``count_ops`` result, whose ``memory`` entry, if any, replaces the estimate."""
    if MEMORY in ops:
        return ops[MEMORY]
    tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    weights = sum(t.numel() for t in tensors if t.is_floating_point())  # BN reads its running stats too
    if next(module.children(), None) is not None:  # a container: only the work it declares
        return weights + sum(n * ops.get(kind, 0) for kind, n in _ACCESSES_PER_OP.items())
    ins, outs = _tensors(inputs), _tensors(output)
    roots = {id(_storage_root(t)) for t in ins}
    if not ops and not weights and all(id(_storage_root(t)) in roots for t in outs):
        return 0  # a view or a pass-through (flatten, identity, dropout in eval)
    return sum(t.numel() for t in ins) + sum(t.numel() for t in outs) + weights


def profile(
    model: nn.Module,
    input_size: tuple[int, ...] | int | None = None,
    convention: str = "macs",
) -> ProfileResult:
    """Count parameters and multiply-adds of ``model`` for one image of ``input_size`` (C, H, W).

    ``input_size`` defaults to the model card's. ``convention`` picks which operations ``madds``
    adds to the conv/linear MACs (see :func:`parse_convention`); every kind is always measured and
    reported in ``ops``, and the memory traffic of every layer in ``memory`` (bytes at fp32). Runs one
    forward pass in eval mode without gradients, on the model's device (``meta`` works and allocates
    nothing).
    """
    conv = parse_convention(convention, model)
    size = _normalise_input_size(input_size, model)
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    names = {m: n for n, m in model.named_modules()}
    rows: dict[str, LayerProfile] = {}

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        ops = _module_ops(module, inputs, output)
        memory = _memory_elements(module, inputs, output, ops) * BYTES_PER_ELEMENT
        ops.pop(MEMORY, None)
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        if not ops and not own_params and not memory:
            return
        name = names.get(module, type(module).__name__) or "(model)"
        shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
        row = rows.setdefault(name, LayerProfile(name, type(module).__name__, shape, own_params))
        for key, value in ops.items():  # a module called twice accumulates
            row.ops[key] = row.ops.get(key, 0) + value
        row.memory += memory

    training = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *size, device=device, dtype=dtype))
    except InputShapeError:
        raise  # already names the model and the size it needs
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"cannot profile {type(model).__name__} at input size {size}: {err}") from err
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in training.items():
            module.training = mode

    layers = list(rows.values())
    totals = {k: sum(la.ops.get(k, 0) for la in layers) for k in OPS}
    params = sum(p.numel() for p in model.parameters())
    return ProfileResult(params, totals, conv, size, layers)


COUNTS_FILE = Path(__file__).parent / "models" / "counts.json"
"""Every registered model's :class:`CardCounts`, written by ``make counts``; ``tests/models/test_zoo.py`` checks
each against a fresh count."""


@dataclass(frozen=True)
class CardCounts:
    """Our exact counts of a registered model at its card's input size and class count: parameters, conv +
    linear MACs, and MAdds in the card's convention (what ``compactnets list`` shows)."""

    params: int
    macs: int
    madds: int
    features: tuple[tuple[int, int], ...] = ()
    """(channels, reduction) of each map in the model's ``feature_info`` (what ``features_only`` returns)."""


@cache
def _stored() -> dict[str, dict[str, Any]]:
    return json.loads(COUNTS_FILE.read_text()) if COUNTS_FILE.exists() else {}


def _card_key(name: str) -> dict[str, Any]:
    """What stored counts depend on beside the architecture: a card edit makes them stale."""
    card = model_card(name)
    return {"input_size": list(card.input_size), "num_classes": card.num_classes, "convention": card.convention}


def count_card(name: str) -> CardCounts:
    """Count ``name`` at its card's input size and convention, on the meta device (no weights allocated)."""
    card = model_card(name)
    with torch.device("meta"):
        model = create_model(name)
    result = profile(model, card.input_size, convention=card.convention)
    features = tuple((f["num_chs"], f["reduction"]) for f in feature_info(model, card.input_size))
    return CardCounts(result.params, result.macs, result.madds, features)


def card_counts(name: str, count: bool = False) -> CardCounts:
    """``name``'s counts from :data:`COUNTS_FILE`, instantly; counted afresh with ``count``, or where nothing
    is stored for the card's current input size, class count and convention (a new model, an edited card)."""
    entry = None if count else _stored().get(name)
    if entry is None or any(entry.get(key) != value for key, value in _card_key(name).items()):
        return count_card(name)
    if "features" not in entry:
        return count_card(name)
    return CardCounts(entry["params"], entry["macs"], entry["madds"], tuple(map(tuple, entry["features"])))


def write_card_counts(path: Path = COUNTS_FILE) -> int:
    """Count every registered model and write :data:`COUNTS_FILE` (one line per model); returns how many."""
    lines = [
        f"  {json.dumps(name)}: {json.dumps({**_card_key(name), **asdict(count_card(name))})}" for name in list_models()
    ]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    _stored.cache_clear()
    return len(lines)


def executed_macs(model: nn.Module, input_size: tuple[int, ...] | int | None = None) -> int:
    """Multiply-accumulates the model's kernels execute for one image: convolutions and matrix products as
    dispatched to ATen (``torch.utils.flop_counter``), whatever the layers are in the paper.

    It differs from :func:`profile`'s ``macs`` where a layer computes its result in another way than the paper
    describes: PydMobileNet-Add runs its 3x3 + 5x5 + 7x7 pyramid as one merged 7x7 depthwise conv (49 MACs per
    output element, where the paper counts 9 + 25 + 49 = 83). Runs in eval mode without gradients on the
    model's device (``meta`` allocates nothing).
    """
    from torch.utils.flop_counter import FlopCounterMode

    size = _normalise_input_size(input_size, model)
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    training = {m: m.training for m in model.modules()}
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(torch.zeros(1, *size, device=device, dtype=dtype))
    finally:
        for module, mode in training.items():
            module.training = mode
    return counter.get_total_flops() // 2  # the counter's flops are 2 x MACs
