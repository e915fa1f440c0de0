"""``compactnets scale``: parse a budget, call :func:`compactnets.scaling.scale_model`, print the choice."""

from __future__ import annotations

import argparse
import json
import re

from ._table import human
from .errors import UsageError
from .registry import UnknownModelError, model_card
from .scaling import MAX_WIDTH, ScaleResult, scale_model

_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_TIME_UNITS = {"": 1.0, "ms": 1.0, "s": 1e3, "us": 1e-3}


def _number(text: str, units: dict[str, float], pattern: str) -> float | None:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*" + pattern + r"\s*", text.lower())
    return float(match.group(1)) * units[match.group(2) or ""] if match else None


def parse_amount(text: str, flag: str) -> float:
    """``"150M"``, ``"1.5G"``, ``"0.39B"``, ``"2e6"`` -> a number."""
    value = _number(text, _UNITS, "([kmgb]?)")
    if value is None:
        raise UsageError(f"{flag}: expected a number such as 150M, 1.5G or 2e6, got {text!r}")
    return value


def parse_latency(text: str) -> float:
    """``"5ms"``, ``"5"`` (ms), ``"0.005s"`` -> milliseconds."""
    value = _number(text, _TIME_UNITS, "(ms|s|us)?")
    if value is None:
        raise UsageError(f"--latency: expected a time such as 5ms or 0.005s, got {text!r}")
    return value


def _percent(value: float, limit: float) -> str:
    return f"{(value / limit - 1) * 100:+.2f}%"


def format_result(result: ScaleResult) -> str:
    """The chosen multipliers, the model's profile against the budget, and the next step up."""
    s, p, b = result.settings, result.profile, result.budget
    size = "x".join(map(str, p.input_size[1:]))
    lines = [f"{result.name} scaled to fit " + ", ".join(_budget_parts(result))]
    lines.append(f"  width       {s.width:g}")
    lines.append(f"  depth       {s.depth:g}" if s.depth is not None else "  depth       (the model's own)")
    lines.append(f"  resolution  {size}")
    params_note = f"   {_percent(p.params, b.params)} vs budget" if b.params else ""
    madds_note = f"   {_percent(p.madds, b.madds)} vs budget" if b.madds else ""
    lines.append(f"  params      {p.params:>15,}{params_note}")
    lines.append(f"  MAdds       {p.madds:>15,}   ({'+'.join(p.convention)}){madds_note}")
    if result.latency_ms is not None:
        lines.append(f"  latency     {result.latency_ms:>12.2f} ms   (batch 1, this CPU)")
    if result.larger is not None:
        ls, lp = result.larger
        step = f"width {ls.width:.4g}" + (f", depth {ls.depth:.4g}" if ls.depth is not None else "")
        step += f", {lp.input_size[1]}x{lp.input_size[2]}" if ls.resolution is not None else ""
        over = f" ({_percent(lp.madds, b.madds)})" if b.madds else ""
        lines.append(f"  next step   {step}: {human(lp.madds)} MAdds{over}, {human(lp.params)} params")
    lines.extend(f"  note        {note}" for note in result.notes)
    kwargs = ", ".join(f"{k}={v:g}" for k, v in s.create_kwargs().items())
    lines.append(f'  build       compactnets.create_model("{result.name}", {kwargs}); input {size}')
    lines.append(f"  ({result.evaluations} architectures counted)")
    return "\n".join(lines)


def _budget_parts(result: ScaleResult) -> list[str]:
    b = result.budget
    parts = []
    if b.madds:
        parts.append(f"{human(b.madds)} MAdds ({b.convention})")
    if b.params:
        parts.append(f"{human(b.params)} params")
    if b.latency_ms:
        parts.append(f"{b.latency_ms:g} ms")
    return parts


def cmd_scale(args: argparse.Namespace) -> int:
    if args.madds is None and args.params is None and args.latency is None:
        raise UsageError("give a budget: --madds 150M, --params 1M and/or --latency 5ms")
    model_card(args.model)  # unknown names fail here, with suggestions
    try:
        result = scale_model(
            args.model,
            madds=None if args.madds is None else parse_amount(args.madds, "--madds"),
            params=None if args.params is None else parse_amount(args.params, "--params"),
            latency_ms=None if args.latency is None else parse_latency(args.latency),
            depth=args.depth,
            resolution=args.resolution,
            convention=args.convention,
            num_classes=args.num_classes,
            max_width=args.max_width,
            fit="nearest" if args.nearest else "under",
        )
    except UnknownModelError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result))
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compactnets scale`` to the command line."""
    p = subparsers.add_parser(
        "scale",
        help="choose width (and depth, resolution) multipliers that fit a budget",
        description="Fit a model to a budget of MAdds, parameters and/or CPU latency by scaling its width; "
        "--depth and --resolution scale those too, EfficientNet's compound way (d = 1.2^phi, w = 1.1^phi, "
        "r = 1.15^phi). Prints the chosen multipliers and the resulting model's profile.",
    )
    p.add_argument("model", help="a registered name whose builder accepts width (see `compactnets list`)")
    p.add_argument("--madds", help="MAdds budget, e.g. 150M (counted in --convention)")
    p.add_argument("--params", help="parameter budget, e.g. 1M")
    p.add_argument("--latency", help="latency budget at batch 1 on this CPU, e.g. 5ms")
    p.add_argument("--depth", action="store_true", help="scale depth with width (compound scaling)")
    p.add_argument("--resolution", action="store_true", help="scale the input resolution with width (compound)")
    p.add_argument("--convention", default="macs", help="what --madds counts: macs (default), paper, or macs+bn...")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the card's)")
    p.add_argument("--max-width", type=float, default=MAX_WIDTH, help=f"widest multiplier searched ({MAX_WIDTH})")
    p.add_argument("--nearest", action="store_true", help="allow the step just over the budget when it is closer")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_scale)
