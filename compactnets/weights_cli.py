"""``compactnets weights list | path | verify``: the published weights, where they are, whether they are intact."""

from __future__ import annotations

import argparse
import json

from ._table import format_table
from .errors import UsageError
from .registry import model_card
from .report import DATASETS, paper_top1
from .weights import get_weights, list_pretrained, search_folders, split_tag, weights_file


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
        data = DATASETS.get(e.num_classes)
        paper, _ = paper_top1(model_card(e.model), data)
        cfg = e.pretrained_cfg
        resize = f"resize {cfg['resize_size']} {cfg['interpolation']}, " if "resize_size" in cfg else ""
        rows.append([
            e.name,
            data or f"{e.num_classes} classes",
            f"{e.metrics.get('top1', float('nan')):.2f}",
            f"{paper:.2f}" if paper is not None else "-",
            "x".join(str(v) for v in cfg["input_size"][1:]),
            f"{resize}mean {tuple(round(v, 3) for v in cfg['mean'])} std {tuple(round(v, 3) for v in cfg['std'])}",
            e.source,
        ])  # fmt: skip
    headers = ["weights", "data", "top-1 (publisher)", "paper top-1", "input", "preprocessing", "source"]
    print(format_table(headers, rows))
    print(
        "\ntop-1 (publisher): what the publisher measured with these weights (cn_c10: compactnets, the CIFAR-10 "
        "test split, final epoch); paper top-1: what the architecture's paper prints after its own training."
    )
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    name, tag = split_tag(args.name)
    print(weights_file(get_weights(name, tag or True)))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    for entry in _entries(args.pattern):
        print(f"{entry.name}: {weights_file(entry)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    failed = 0
    for entry in _entries(args.pattern):
        if not any((folder / entry.file).is_file() for folder in search_folders()):
            print(f"absent  {entry.name}  (not downloaded: compactnets weights download {entry.name})")
            continue
        try:
            path = weights_file(entry)
            print(f"ok      {entry.name}  {path}")
        except UsageError as err:
            failed += 1
            print(f"FAILED  {entry.name}: {err}")
    return 1 if failed else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published weights: list, download, path, verify")
    actions = p.add_subparsers(dest="action", required=True, metavar="{list,download,path,verify}")
    q = actions.add_parser("list", help="weights entries: accuracy, preprocessing, source")
    q.add_argument("pattern", nargs="?", default="*", help="shell wildcard over NAME.TAG or NAME")
    q.add_argument("--json", action="store_true", help="print every field as JSON")
    q.set_defaults(func=cmd_list)
    q = actions.add_parser("download", help="fetch the files of matching entries into torch.hub's cache")
    q.add_argument("pattern", metavar="NAME[.TAG]|PATTERN")
    q.set_defaults(func=cmd_download)
    q = actions.add_parser("path", help="the verified file of NAME[.TAG] (downloaded if needed)")
    q.add_argument("name", metavar="NAME[.TAG]")
    q.set_defaults(func=cmd_path)
    q = actions.add_parser("verify", help="check every matching local file against its sha256 (exit 1 on a mismatch)")
    q.add_argument("pattern", nargs="?", default="*")
    q.set_defaults(func=cmd_verify)
