"""``compactnets report``: parse arguments, call :func:`compactnets.report.make_report`, list the files written."""

from __future__ import annotations

import argparse
import sys

from . import report
from .report import make_report


def cmd_report(args: argparse.Namespace) -> int:
    result = make_report(
        args.inputs, args.out, args.bench or (), args.runtime, args.batch_size, args.measure_latency,
        not args.no_plots, command="compactnets report " + " ".join(sys.argv[2:]),
    )  # fmt: skip
    for path in result["files"]:
        print(f"wrote {path}")
    if result["latency_note"]:
        print(result["latency_note"])
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="Markdown/CSV table and plots: accuracy vs MACs/params, latency vs MACs/memory",
        description=report.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("inputs", nargs="+", metavar="RUN_OR_MODEL",
                   help="run directories, registered names or wildcard patterns ('antnet*_cifar')")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--bench", action="append", metavar="CSV", help="latencies from `compactnets bench --csv` files")
    p.add_argument("--runtime", default="eager", help="which bench runtime's latency to report (default: eager)")
    p.add_argument("--batch-size", type=int, default=1, help="which batch size's latency to report (default: 1)")
    p.add_argument("--measure-latency", action="store_true",
                   help="benchmark models without a latency now (deployed, channels_last, 10 runs)")  # fmt: skip
    p.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    p.set_defaults(func=cmd_report)
