"""Fit any registered model to a budget by scaling its width, and optionally its depth and input resolution.

EfficientNet (Tan & Le 2019, Sec. 3.3) scales a baseline with one coefficient phi: depth ``alpha^phi``, width
``beta^phi``, resolution ``gamma^phi`` (alpha = 1.2, beta = 1.1, gamma = 1.15). :func:`scale_model` searches
phi (or the width alone) so that a model meets a budget of multiply-adds, parameters and/or CPU latency,
for every family whose builder accepts ``width_mult`` (and ``depth_mult`` for depth scaling).

Channel counts are rounded to multiples of 8, so cost is a step function of the multipliers: the search
narrows a bracket on a continuous multiplier (secant steps on log cost, bisection as a fallback) to the edge
of the last step within budget, reports that step and the next one up, then picks the shortest decimal that
builds the same model. The steps are uneven: where rounding adds 8 channels to a 16-24 channel layer at high
resolution, MobileNetV2's MACs jump by 38% (106.7M -> 146.7M at width 0.556), so width alone cannot meet
every budget closely. With ``resolution``, the neighbouring resolutions are each filled by the width and then
by the resolution in 2-pixel steps, which lands within 2% of a MAdds budget. Counting runs on the meta device.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from .benchmark import time_ms
from .complexity import ProfileResult, parse_convention, profile
from .errors import ModelArgumentError
from .models.efficientnet import compound_multipliers
from .registry import create_model, model_card

MIN_WIDTH, MAX_WIDTH = 0.05, 4.0
MIN_RESOLUTION, RESOLUTION_STEP = 32, 8  # compound-scaled resolutions are rounded to multiples of 8 pixels
RESOLUTION_FILL = 2  # ...and the last fill moves the resolution in steps of 2 pixels (about 1.8% MAdds at 224)
WIDTH_TOL = 1e-3  # bisection stops when the bracket is this narrow (relative to the multiplier)
CLOSE = 0.02  # a fit further below a MAdds budget than this gets a note on how to come closer
LatencyFn = Callable[[nn.Module, tuple[int, int, int]], float]


@dataclass(frozen=True)
class Budget:
    """Upper limits: multiply-adds (in ``convention``), parameters, and latency in ms (batch 1, this CPU)."""

    madds: float | None = None
    params: float | None = None
    latency_ms: float | None = None
    convention: str = "macs"

    def __post_init__(self) -> None:
        limits = {"madds": self.madds, "params": self.params, "latency_ms": self.latency_ms}
        if all(v is None for v in limits.values()):
            raise ValueError("give a budget: madds, params and/or latency_ms")
        for key, value in limits.items():
            if value is not None and value <= 0:
                raise ValueError(f"budget {key} must be positive, got {value}")

    def fits(self, result: ProfileResult) -> bool:
        """Whether counted MAdds and params are within the limits (latency is checked separately)."""
        return (self.madds is None or result.madds <= self.madds) and (
            self.params is None or result.params <= self.params
        )


@dataclass(frozen=True)
class ScaleSettings:
    """What :func:`scale_model` picks: ``create_model(name, width=..., depth=...)`` at ``resolution``."""

    width: float
    depth: float | None = None  # None: the builder's own depth
    resolution: int | None = None  # None: the model card's input size

    def create_kwargs(self) -> dict[str, float]:
        kwargs = {"width": self.width}
        if self.depth is not None:
            kwargs["depth"] = self.depth
        return kwargs


@dataclass
class ScaleResult:
    """The chosen settings, the chosen model's profile, and the next larger step (over budget)."""

    name: str
    settings: ScaleSettings
    profile: ProfileResult
    budget: Budget
    latency_ms: float | None = None
    larger: tuple[ScaleSettings, ProfileResult] | None = None
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return self.profile.input_size

    def usage(self) -> dict[str, float | None]:
        """Fraction of each budget used (MAdds, params, latency)."""
        b = self.budget
        return {
            "madds": self.profile.madds / b.madds if b.madds else None,
            "params": self.profile.params / b.params if b.params else None,
            "latency_ms": self.latency_ms / b.latency_ms if b.latency_ms and self.latency_ms else None,
        }

    def build(self, **kwargs: Any) -> nn.Module:
        """The chosen model (``create_model`` with the chosen width and depth)."""
        return create_model(self.name, **self.settings.create_kwargs(), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.settings.width,
            "depth": self.settings.depth,
            "input_size": list(self.input_size),
            "budget": {k: v for k, v in vars(self.budget).items() if v is not None},
            "profile": self.profile.to_dict(),
            "latency_ms": self.latency_ms,
            "usage": self.usage(),
            "larger": None
            if self.larger is None
            else {
                "width": self.larger[0].width,
                "depth": self.larger[0].depth,
                "input_size": list(self.larger[1].input_size),
                "madds": self.larger[1].madds,
                "params": self.larger[1].params,
            },
            "evaluations": self.evaluations,
            "notes": list(self.notes),
        }


def measure_latency_ms(model: nn.Module, input_size: tuple[int, int, int], warmup: int = 3, repeats: int = 10) -> float:
    """Median latency (ms) of one image on this CPU: eval mode, channels_last, inference mode, the
    current torch thread count (PERFORMANCE.md: channels_last is what depthwise convs need on CPU)."""
    model = model.eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, *input_size).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return statistics.median(time_ms(lambda: model(x), repeats, warmup))


class _Evaluator:
    """Builds candidates on the meta device and counts each distinct architecture once."""

    def __init__(self, name: str, budget: Budget, num_classes: int | None) -> None:
        self.name, self.budget, self.num_classes = name, budget, num_classes
        self.card = model_card(name)
        self.cache: dict[tuple[Any, ...], ProfileResult] = {}
        self.evaluations = 0

    def build(self, settings: ScaleSettings, device: str = "meta") -> nn.Module:
        kwargs: dict[str, Any] = dict(settings.create_kwargs())
        if self.num_classes is not None:
            kwargs["num_classes"] = self.num_classes
        with torch.device(device):
            return create_model(self.name, **kwargs)

    def input_size(self, settings: ScaleSettings) -> tuple[int, int, int]:
        c, h, w = self.card.input_size
        if settings.resolution is None:
            return c, h, w
        return c, settings.resolution, round(w * settings.resolution / h)

    def key(self, settings: ScaleSettings, model: nn.Module | None = None) -> tuple[Any, ...]:
        """Input size and every tensor's shape: equal keys are the same architecture, whatever the multipliers."""
        model = self.build(settings) if model is None else model
        return (self.input_size(settings), tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()))

    def profile(self, settings: ScaleSettings) -> ProfileResult:
        model = self.build(settings)
        key = self.key(settings, model)
        if key not in self.cache:
            self.evaluations += 1
            self.cache[key] = profile(model, self.input_size(settings), convention=self.budget.convention)
        return self.cache[key]

    def excess(self, settings: ScaleSettings) -> float:
        """The largest ratio of a count to its limit: at most 1 when the model fits."""
        result, b = self.profile(settings), self.budget
        ratios = [result.madds / b.madds if b.madds else 0.0, result.params / b.params if b.params else 0.0]
        return max(ratios)


def _search(excess: Callable[[float], float], lo: float, hi: float, tol: float) -> tuple[float, float]:
    """Narrow [lo, hi] (``excess(lo) <= 1 < excess(hi)``) to ``tol``: secant steps on log(excess), which
    is close to linear in log-width and in phi, with a bisection whenever one end stays put twice."""
    f_lo, f_hi = math.log(excess(lo)), math.log(excess(hi))
    kept, repeats = "", 0
    while hi - lo > tol:
        if repeats >= 2 or f_hi <= f_lo:
            u, repeats = (lo + hi) / 2, 0
        else:
            u = lo - f_lo * (hi - lo) / (f_hi - f_lo)
            u = min(max(u, lo + tol / 3), hi - tol / 3)
        if not lo < u < hi:
            break
        f_u = math.log(excess(u))
        if f_u <= 0:
            lo, f_lo = u, f_u
            repeats, kept = (repeats + 1 if kept == "lo" else 1), "lo"
        else:
            hi, f_hi = u, f_u
            repeats, kept = (repeats + 1 if kept == "hi" else 1), "hi"
    return lo, hi


def _bisect(fits: Callable[[float], bool], lo: float, hi: float, tol: float) -> tuple[float, float]:
    """Plain bisection (``fits(lo)``, not ``fits(hi)``): for noisy measurements such as latency."""
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, hi


def _shortest_decimal(value: float, same: Callable[[float], bool], digits: int = 6) -> float:
    """The shortest decimal not above ``value`` that still builds the same model (``same``)."""
    for k in range(1, digits + 1):
        candidate = math.floor(value * 10**k + 1e-9) / 10**k
        if candidate > 0 and same(candidate):
            return candidate
    return value


@dataclass(frozen=True)
class _SearchSpace:
    """The search variable u: log(width), or phi in compound mode (EfficientNet's rule,
    :func:`~compactnets.models.efficientnet.compound_multipliers`), and the settings at each u.

    log(MAdds) and log(params) are close to linear in u, with slope ``slope`` (MAdds ~ width^2 depth
    resolution^2, params ~ width^2 depth).
    """

    base_width: float
    base_depth: float
    base_resolution: int
    depth: bool
    resolution: bool
    u_min: float
    u_max: float
    slope: float
    tol: float

    @property
    def compound(self) -> bool:
        return self.depth or self.resolution

    @property
    def u0(self) -> float:
        """The registered model's own u."""
        return 0.0 if self.compound else math.log(self.base_width)

    def at(self, u: float) -> ScaleSettings:
        if not self.compound:
            return ScaleSettings(math.exp(u))
        depth_mult, width_mult, resolution_mult = compound_multipliers(u)
        d = self.base_depth * depth_mult if self.depth else None
        r0 = self.base_resolution
        r = max(MIN_RESOLUTION, round(r0 * resolution_mult / RESOLUTION_STEP) * RESOLUTION_STEP)
        return ScaleSettings(self.base_width * width_mult, d, r if self.resolution else None)


def _search_space(
    base: tuple[float, float, int], depth: bool, resolution: bool, madds: bool, max_width: float
) -> _SearchSpace:
    """The range, slope and tolerance of u for a model of (width, depth, resolution) ``base``."""
    base_width = base[0]
    compound = depth or resolution
    log_depth, log_width, log_resolution = (math.log(m) for m in compound_multipliers(1.0))
    step = log_width if compound else 1.0  # log-width per unit of u
    u_min, u_max = (math.log(w / base_width) / step if compound else math.log(w) for w in (MIN_WIDTH, max_width))
    slope = 2 * step + (log_depth if depth else 0.0) + (2 * log_resolution if resolution and madds else 0.0)
    tol = math.log(1 + WIDTH_TOL) / step
    return _SearchSpace(*base, depth, resolution, u_min, u_max, slope, tol)


def scale_model(
    name: str,
    madds: float | None = None,
    params: float | None = None,
    latency_ms: float | None = None,
    *,
    depth: bool = False,
    resolution: bool = False,
    convention: str = "macs",
    num_classes: int | None = None,
    max_width: float = MAX_WIDTH,
    fit: Literal["under", "nearest"] = "under",
    latency_fn: LatencyFn | None = None,
) -> ScaleResult:
    """Choose the largest width (with ``depth``/``resolution``: the largest compound coefficient phi, then
    the largest width at that depth and resolution) whose model fits every limit given.

    ``madds`` counts in ``convention`` (``"macs"``: conv + linear MACs; ``"paper"``: the card's);
    ``latency_ms`` is measured by ``latency_fn`` (default :func:`measure_latency_ms`) on real weights.
    ``fit="nearest"`` takes the step just above the MAdds/params budget when it is closer than the one below.
    Raises ``ValueError``, naming the fix, for a model without the multipliers or an unreachable budget.
    """
    card = model_card(name)
    if convention == "paper":
        convention = card.convention
    budget = Budget(madds, params, latency_ms, "+".join(parse_convention(convention)))
    ev = _Evaluator(name, budget, num_classes)
    base = (*_base_multipliers(ev, depth), card.input_size[1])
    space = _search_space(base, depth, resolution, bool(madds), max_width)

    counted = madds is not None or params is not None
    u_top, chosen, larger = space.u_max, space.at(space.u_max), None
    if counted:
        bracket = _bracket(ev, space.at, space.u0, space.u_min, space.u_max, space.slope)
        lo, hi = _search(lambda u: ev.excess(space.at(u)), *bracket, space.tol)
        u_top, chosen, larger = lo, space.at(lo), space.at(hi)
        if space.compound:  # neighbours: each depth and resolution of the two phi steps, filled by the width alone
            chosen, larger = _fill_with_width(ev, chosen, larger, max_width, resolution)
        if fit == "nearest" and ev.excess(larger) - 1 < 1 - ev.excess(chosen):
            chosen, larger = larger, None

    notes: list[str] = []
    measure = latency_fn or measure_latency_ms
    latency_bound = False
    if latency_ms is not None:

        def fast_enough(settings: ScaleSettings) -> bool:
            return measure(ev.build(settings, "cpu"), ev.input_size(settings)) <= latency_ms

        if not counted or not fast_enough(chosen):
            chosen, larger, notes = _fit_latency(ev, space, fast_enough, u_top, latency_ms, counted, max_width)
            latency_bound = True

    chosen = _round_settings(ev, chosen)
    result = ev.profile(chosen)
    if madds is not None and larger is not None and not (space.compound or latency_bound):
        notes += _width_gap_note(result.madds, ev.profile(larger).madds, madds)
    measured = measure(ev.build(chosen, "cpu"), ev.input_size(chosen)) if latency_ms is not None else None
    return ScaleResult(
        name=name,
        settings=chosen,
        profile=result,
        budget=budget,
        latency_ms=measured,
        larger=None if larger is None else (larger, ev.profile(larger)),
        evaluations=ev.evaluations,
        notes=notes,
    )


def _fit_latency(
    ev: _Evaluator,
    space: _SearchSpace,
    fast_enough: Callable[[ScaleSettings], bool],
    u_top: float,
    latency_ms: float,
    counted: bool,
    max_width: float,
) -> tuple[ScaleSettings, ScaleSettings | None, list[str]]:
    """Bisect u below ``u_top`` on the measured latency: the fastest-enough settings, the step above, notes."""
    at, tol = space.at, space.tol
    if not fast_enough(at(space.u_min)):
        raise ValueError(
            f"{ev.name}: even width {at(space.u_min).width:.3g} is slower than {latency_ms} ms on this CPU; "
            "raise --latency or pick a smaller family"
        )
    lo, hi = _bisect(lambda u: fast_enough(at(u)), space.u_min, u_top, 10 * tol)
    larger = at(hi) if ev.key(at(hi)) != ev.key(at(lo)) else None
    notes = ["latency set the size: measured on this CPU, which is noisy; re-run to confirm"]
    if not counted and space.u_max - lo <= 10 * tol:
        notes.append(f"the widest model searched (width {max_width}) meets the latency; raise --max-width")
    return at(lo), larger, notes


def _width_gap_note(madds: float, above: float, budget: float) -> list[str]:
    """A note when width alone stops further than ``CLOSE`` below the MAdds budget (none otherwise)."""
    if madds >= (1 - CLOSE) * budget:
        return []
    return [
        f"width alone reaches {(madds / budget - 1) * 100:+.1f}% of the MAdds budget and the next step "
        f"is {(above / budget - 1) * 100:+.1f}%: --resolution fills the gap, --nearest takes the closer step"
    ]


def _fill_with_width(
    ev: _Evaluator, below: ScaleSettings, above: ScaleSettings, max_width: float, resolution: bool
) -> tuple[ScaleSettings, ScaleSettings]:
    """The neighbours of the phi step: each depth of the steps just below and above the budget, and (with
    ``resolution``) resolutions a few ``RESOLUTION_STEP`` around them, each filled by the width alone and then
    by the resolution in ``RESOLUTION_FILL`` steps. Returns the best fit and the step above it.

    Several resolutions matter because cost jumps where a stride-2 map grows by a row (just past multiples
    of 32 pixels, for a 32-stride net) and where rounding adds 8 channels to a narrow layer.
    """
    depths = dict.fromkeys((below.depth, above.depth))
    sizes: list[int | None] = [below.resolution]
    if resolution and below.resolution is not None and above.resolution is not None:
        around = [below.resolution + k * RESOLUTION_STEP for k in (-1, 0, 1)] + [above.resolution]
        sizes = [r for r in dict.fromkeys(around) if r >= MIN_RESOLUTION]
    fits: list[tuple[float, ScaleSettings, ScaleSettings]] = []
    for depth in depths:
        for size in sizes:
            fixed = replace(below, depth=depth, resolution=size)

            def at_width(v: float, fixed: ScaleSettings = fixed) -> ScaleSettings:
                return replace(fixed, width=math.exp(v))

            v0 = math.log(below.width)
            try:
                lo, hi = _bracket(ev, at_width, v0, math.log(MIN_WIDTH), math.log(max_width), 2.0)
            except ValueError:  # this depth and resolution cannot meet the budget at any width
                continue
            lo, hi = _search(lambda v, at_width=at_width: ev.excess(at_width(v)), lo, hi, math.log(1 + WIDTH_TOL))
            fits.append((ev.excess(at_width(lo)), at_width(lo), at_width(hi)))
    if not fits:
        return below, above
    fits.sort(key=lambda fit: fit[0], reverse=True)
    if resolution:  # the resolution fill, for the two best width fits
        fits = [(ev.excess(f[0]), *f) for f in (_fill_with_resolution(ev, b, a) for _, b, a in fits[:2])]
        fits.sort(key=lambda fit: fit[0], reverse=True)
    return fits[0][1], fits[0][2]


def _fill_with_resolution(
    ev: _Evaluator, below: ScaleSettings, above: ScaleSettings
) -> tuple[ScaleSettings, ScaleSettings]:
    """Raise the resolution of ``below`` in steps of ``RESOLUTION_FILL`` pixels while the model still fits."""
    assert below.resolution is not None
    lo, step = below.resolution, RESOLUTION_FILL
    hi = lo + step
    while ev.excess(replace(below, resolution=hi)) <= 1:  # find a resolution over the budget
        lo, step = hi, step * 2
        hi = lo + step
    while hi - lo > RESOLUTION_FILL:
        mid = lo + (hi - lo) // (2 * RESOLUTION_FILL) * RESOLUTION_FILL
        lo, hi = (mid, hi) if ev.excess(replace(below, resolution=mid)) <= 1 else (lo, mid)
    if lo == below.resolution:
        return below, above
    return replace(below, resolution=lo), replace(below, resolution=hi)


def _base_multipliers(ev: _Evaluator, depth: bool) -> tuple[float, float]:
    """The registered model's own (width, depth), after checking that its builder takes the multipliers."""
    try:
        ev.build(ScaleSettings(1.0, 1.0 if depth else None))
    except (TypeError, ModelArgumentError) as err:  # the registry names a missing multiplier itself
        what = "width_mult and depth_mult" if depth else "width_mult"
        hint = "drop --depth" if depth else "scale a name whose builder accepts width (e.g. the family's _100)"
        raise ValueError(f"{ev.name} does not take {what} ({err}); {hint}") from None
    with torch.device("meta"):
        default = create_model(ev.name)
    return float(getattr(default, "width_mult", 1.0)), float(getattr(default, "depth_mult", 1.0))


def _bracket(
    ev: _Evaluator, at: Callable[[float], ScaleSettings], u0: float, u_min: float, u_max: float, slope: float
) -> tuple[float, float]:
    """A bracket [lo, hi] around the budget's edge, starting from the model's own size and the guess
    that log(cost) grows by ``slope`` per unit of u; errors name the fix when the budget is out of range."""
    u = min(max(u0 - math.log(ev.excess(at(u0))) / slope, u_min), u_max)
    delta = 0.04 / slope  # about 4% in cost
    if ev.excess(at(u)) <= 1:
        lo = u
        while True:
            hi = min(lo + delta, u_max)
            if ev.excess(at(hi)) > 1:
                return lo, hi
            if hi == u_max:
                raise ValueError(
                    f"{ev.name}: the budget is above the largest model searched ({_describe(ev, at(hi))}); "
                    "lower it or raise max_width (--max-width)"
                )
            lo, delta = hi, delta * 2
    hi = u
    while True:
        lo = max(hi - delta, u_min)
        if ev.excess(at(lo)) <= 1:
            return lo, hi
        if lo == u_min:
            raise ValueError(
                f"{ev.name}: even the smallest model searched ({_describe(ev, at(lo))}) exceeds the budget; "
                "raise it or pick a smaller family"
            )
        hi, delta = lo, delta * 2


def _describe(ev: _Evaluator, settings: ScaleSettings) -> str:
    result = ev.profile(settings)
    return f"width {settings.width:.3g}: {result.madds / 1e6:.1f}M MAdds, {result.params / 1e6:.2f}M params"


def _round_settings(ev: _Evaluator, settings: ScaleSettings) -> ScaleSettings:
    """Shortest decimals for width and depth that build the same architecture."""
    target = ev.key(settings)
    width = _shortest_decimal(settings.width, lambda w: ev.key(replace(settings, width=w)) == target)
    settings = replace(settings, width=width)
    if settings.depth is not None:
        d = _shortest_decimal(settings.depth, lambda d: ev.key(replace(settings, depth=d)) == target)
        settings = replace(settings, depth=d)
    return settings
