"""The ``compactnets`` command: a thin layer that parses arguments and calls the library."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

import torch

from . import __version__
from ._table import format_table, human
from .allocator import tune_malloc
from .complexity import ProfileResult, card_counts, executed_macs, parse_convention, profile
from .errors import UsageError
from .features import feature_info
from .registry import UnknownModelError, create_model, list_models, model_card, parse_printed
from .spec import parse_input_size

# Modules that add subcommands: each defines ``register_cli(subparsers)`` and raises ``UsageError``
# for bad input. Keeping them out of this file keeps the CLI thin and each tool in its own module.
COMMAND_MODULES: tuple[str, ...] = (
    "compactnets.train_cli",
    "compactnets.scale_cli",
    "compactnets.bench_cli",
    "compactnets.export_cli",
    "compactnets.report_cli",
    "compactnets.weights_cli",
)


def _build_on_meta(name: str, **kwargs: object) -> torch.nn.Module:
    """Build a model without allocating weights: counting needs shapes only."""
    with torch.device("meta"):
        return create_model(name, **kwargs)  # type: ignore[arg-type]


def _delta(ours: float, printed: str | None) -> str:
    if not printed:
        return "-"
    target, _ = parse_printed(printed)
    return f"{(ours - target) / target * 100:+.1f}%"


def cmd_list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r} (`compactnets list` shows all)")
    rows, records = [], []
    for name in names:
        card = model_card(name)
        counts = card_counts(name, count=args.count)  # stored by `make counts` unless --count
        size = "x".join(map(str, card.input_size[1:]))
        records.append({**card.to_dict(), "params": counts.params, "macs": counts.macs,
                        "madds_paper_convention": counts.madds,
                        "feature_info": [{"num_chs": c, "reduction": r} for c, r in counts.features]})  # fmt: skip
        rows.append([
            name, size, card.num_classes, human(counts.params), human(counts.macs),
            card.paper_params or "-", card.paper_madds or "-",
            _delta(counts.params, card.paper_params), _delta(counts.madds, card.paper_madds),
            card.convention if card.paper_madds else "-",
        ])  # fmt: skip
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    headers = ["name", "input", "classes", "params", "MACs", "paper params", "paper MAdds",
               "d params", "d MAdds", "convention"]  # fmt: skip
    print(format_table(headers, rows))
    print(f"\n{len(names)} model(s). MACs: conv + linear multiply-accumulates. 'd MAdds' compares the "
          "paper's number with ours counted in the card's convention.")  # fmt: skip
    return 0


def _per_layer_table(result: ProfileResult) -> str:
    rows = []
    for layer in result.layers:
        rows.append([
            layer.name, layer.type, "x".join(map(str, layer.output_shape)) or "-",
            f"{layer.params:,}", f"{layer.ops.get('macs', 0):,}", f"{layer.madds(result.convention):,}",
            f"{layer.memory:,}",
        ])  # fmt: skip
    headers = ["layer", "type", "output", "params", "MACs", "MAdds", "memory (B)"]
    return format_table(headers, rows, align="lllrrrr")


def cmd_profile(args: argparse.Namespace) -> int:
    card = model_card(args.model)
    kwargs: dict[str, object] = {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.width is not None:
        kwargs["width"] = args.width
    model = _build_on_meta(args.model, **kwargs)
    size = parse_input_size(args.input_size) or card.input_size
    in_chans = getattr(model, "in_chans", 3)
    if size[0] != in_chans:
        raise UsageError(
            f"--input-size: {args.model} takes {in_chans}-channel images, got {size[0]} channels in "
            f"{args.input_size!r} (give H, HxW or {in_chans},H,W)"
        )
    try:
        convention = parse_convention(args.convention, model)
    except ValueError as err:
        raise UsageError(str(err)) from None
    result = profile(model, size, convention="+".join(convention))
    executed = executed_macs(model, size)
    if args.json:
        record = {"name": args.model, **result.to_dict(per_layer=args.per_layer), "executed_macs": executed,
                  "feature_info": feature_info(model, size)}  # fmt: skip
        print(json.dumps(record, indent=2))
        return 0
    if args.per_layer:
        print(_per_layer_table(result))
        print()
    extras = ", ".join(f"{k} {human(v)}" for k, v in result.ops.items() if k != "macs")
    print(f"{args.model} at {'x'.join(map(str, size))}")
    print(f"  params  {result.params:>15,}")
    print(f"  MACs    {result.macs:>15,}   (conv + linear, as the paper's layers)")
    if executed != result.macs:
        print(f"  executed{executed:>15,}   MACs the kernels execute ({executed / result.macs:.2f}x: a layer "
              "computes its result another way, e.g. a pyramid merged into one conv)")  # fmt: skip
    print(f"  MAdds   {result.madds:>15,}   (convention: {'+'.join(result.convention)})")
    print(f"  memory  {result.memory:>15,}   bytes at fp32 ({human(result.memory)}B): activations read + written "
          "+ weights, ShuffleNet V2 guideline 1")  # fmt: skip
    print(f"  extras  {extras}")
    maps = ", ".join(f"{f['num_chs']}@{f['reduction']}" for f in feature_info(model, size))
    print(f"  maps    {maps}   (channels@reduction: feature_info, features_only=True)")
    if card.paper_madds or card.paper_params:
        as_card = size == card.input_size and args.width is None and args.num_classes in (None, card.num_classes)
        reproduced = (", ".join(card.reproduces) or "nothing") if as_card else "not compared at other settings"
        print(
            f"  paper   {card.paper_params or '-'} params, {card.paper_madds or '-'} MAdds at "
            f"{'x'.join(map(str, card.input_size[1:]))} ({card.paper}, {card.table}); reproduced: {reproduced} "
            f"(convention '{card.convention}')"
        )
    if card.note:
        print(f"  note    {card.note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compactnets",
        description="Build, measure, train, compare and export compact CNNs by name.",
    )
    parser.add_argument("--version", action="version", version=f"compactnets {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list registered models with our and the papers' counts")
    p.add_argument("pattern", nargs="?", default="*", help="shell wildcard, e.g. 'antnet*' (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--count", action="store_true",
        help="count every model afresh (slow: about 30 s for the zoo) instead of reading the stored counts",
    )  # fmt: skip
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("profile", help="count parameters and multiply-adds of a model")
    p.add_argument("model", help="a registered name (see `compactnets list`)")
    p.add_argument("--input-size", help="H, HxW or C,H,W (default: the model card's)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the card's)")
    p.add_argument("--width", type=float, help="width multiplier")
    p.add_argument("--per-layer", action="store_true", help="print a per-layer table")
    p.add_argument(
        "--convention", default="macs",
        help="what MAdds counts: macs (default), paper (the card's), all, or macs plus any of "
             "+bn,+act,+pool,+gating,+residual",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_profile)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_malloc()  # glibc: keep freed tensor memory for reuse (COMPACTNETS_MALLOC_TUNING=0 turns it off)
    try:
        return int(args.func(args) or 0)
    except (UsageError, UnknownModelError, FileNotFoundError) as err:
        print(f"compactnets {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
