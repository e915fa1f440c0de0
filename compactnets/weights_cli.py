"""``compactnets weights list | path | verify``: the published weights, where they are, whether they are intact."""

from __future__ import annotations

import argparse
import json

from ._table import format_table
from .errors import UsageError
from .registry import model_card
from .weights import get_weights, list_pretrained, split_tag, weights_file


def _entries(pattern: str) -> list:
    names = list_pretrained(pattern)
    if not names:
        raise UsageError(f"no published weights match {pattern!r} (`compactnets weights list` shows them all)")
    return [get_weights(*split_tag(n)) for n in names]


def cmd_list(args: argparse.Namespace) -> int:
    entries = _entries(args.pattern)
    if args.json:
        print(json.dumps([e.to_dict() | {"name": e.name} for e in entries], indent=1))
        return 0
    rows = []
    for e in entries:
        paper_error = model_card(e.model).paper_metrics.get("cifar10_error")
        cfg = e.pretrained_cfg
        rows.append([
            e.name,
            f"{e.metrics.get('top1', float('nan')):.2f}",
            f"{100 - paper_error:.2f}" if paper_error is not None else "-",
            e.training.get("epochs", "-"),
            "x".join(str(v) for v in cfg["input_size"][1:]),
            f"mean {tuple(round(v, 4) for v in cfg['mean'])} std {tuple(round(v, 4) for v in cfg['std'])}",
            e.source,
        ])  # fmt: skip
    headers = ["weights", "top-1 (ours)", "paper top-1", "epochs", "input", "preprocessing", "source"]
    print(format_table(headers, rows))
    print(
        "\ntop-1 (ours): the publisher's measurement of these weights (cn_c10: the CIFAR-10 test split, final "
        "epoch); paper top-1: what the paper prints for the architecture after its own, longer training."
    )
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    name, tag = split_tag(args.name)
    print(weights_file(get_weights(name, tag or True)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    failed = 0
    for entry in _entries(args.pattern):
        try:
            path = weights_file(entry)
            print(f"ok      {entry.name}  {path}")
        except UsageError as err:
            failed += 1
            print(f"FAILED  {entry.name}: {err}")
    return 1 if failed else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published weights: list them, print a file's path, verify sha256s")
    actions = p.add_subparsers(dest="action", required=True, metavar="{list,path,verify}")
    q = actions.add_parser("list", help="weights entries: accuracy, preprocessing, source")
    q.add_argument("pattern", nargs="?", default="*", help="shell wildcard over NAME.TAG or NAME")
    q.add_argument("--json", action="store_true", help="print every field as JSON")
    q.set_defaults(func=cmd_list)
    q = actions.add_parser("path", help="the verified file of NAME[.TAG]")
    q.add_argument("name", metavar="NAME[.TAG]")
    q.set_defaults(func=cmd_path)
    q = actions.add_parser("verify", help="check every matching file against its sha256 (exit 1 on a mismatch)")
    q.add_argument("pattern", nargs="?", default="*")
    q.set_defaults(func=cmd_verify)
