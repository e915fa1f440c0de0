"""``compactnets bench`` (and ``bench --train``): parse arguments, call compactnets.benchmark and train_bench."""

from __future__ import annotations

import argparse
import json
import sys

from . import benchmark
from .benchmark import METHODS, PAPER_RUNS, RUNTIMES, BenchConfig, format_rows, run_benchmark, write_csv
from .errors import UsageError
from .spec import parse_input_size
from .train_bench import format_train_table, run_train_benchmark, train_records


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option}: expected integers separated by commas (e.g. 1,32), got {text!r}") from None
    if not values:
        raise UsageError(f"{option}: expected at least one integer")
    return values


def _variants(value: str) -> tuple[bool, ...]:
    return {"off": (False,), "on": (True,), "both": (False, True)}[value]


def cmd_bench(args: argparse.Namespace) -> int:
    if args.train:
        return cmd_train_bench(args)
    if args.amp or args.json:
        raise UsageError("--amp and --json apply to --train (training steps); inference runs in fp32")
    config = BenchConfig(
        batch_sizes=_int_list(args.batch_size or "1", "--batch-size"),
        runtimes=[r.strip() for r in args.runtime.split(",") if r.strip()],
        input_size=parse_input_size(args.input_size),
        device=args.device,
        threads=args.threads,
        channels_last=_variants(args.channels_last),
        deploy=_variants(args.deploy),
        method=args.method,
        repeats=args.repeats or 20,
        warmup=args.warmup,
        min_sample_ms=args.min_sample_ms,
    )
    rows, _ = run_benchmark(args.models, config, log=lambda line: print(line, file=sys.stderr))
    print(format_rows(rows))
    if config.method == "paper":
        print(f"\n{PAPER_RUNS} runs per configuration, fastest and slowest dropped, mean of the other 8 (ANTNets).")
    else:
        print(f"\nmedian of {config.repeats} interleaved samples; spread = interquartile range; "
              "GFLOP/s = 2 x MACs x batch / time, 'of peak' against the fp32 GEMM rate measured now.")  # fmt: skip
    if args.csv:
        print(f"wrote {write_csv(rows, args.csv)}")
    return 0


def cmd_train_bench(args: argparse.Namespace) -> int:
    """``compactnets bench MODEL... --train``: the options of ``bench`` that apply to a training step."""
    batch = int(args.batch_size) if args.batch_size and args.batch_size.isdigit() else None
    if args.batch_size and batch is None:
        raise UsageError(f"--train takes one --batch-size (an integer), got {args.batch_size!r}")
    cases, env = run_train_benchmark(
        args.models,
        batch_size=batch or 128,
        amps=[a.strip() for a in (args.amp or "off,bf16").split(",") if a.strip()],
        runtimes=[r.strip() for r in (args.runtime or "eager").split(",") if r.strip()],
        device=args.device,
        threads=args.threads,
        repeats=args.repeats if args.repeats is not None else 10,
        log=lambda line: print(line, file=sys.stderr),
    )
    records = train_records(cases, env)
    if args.json:
        print(json.dumps({"env": env, "rows": records}, indent=1))
        return 0
    print(format_train_table(records))
    print(f"\nmedian of {env['repeats']} interleaved steps at batch {env['batch_size']}, {env['threads']} threads; "
          "GFLOP/s = 3 x 2 x executed MACs x batch / time; peaks measured now (torch.mm): fp32 "
          f"{env['gemm_peak_gflops_fp32']:.0f}, bf16 {env['gemm_peak_gflops_bf16']:.0f} GFLOP/s.")  # fmt: skip
    for r in records:
        if r["error"]:
            print(f"{r['model']} {r['runtime']} amp={r['amp']}: did not run: {r['error']}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="latency and throughput (eager, torch.compile, oneDNN-fused eager, onnxruntime)",
        description=benchmark.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered names, run directories or checkpoints")
    p.add_argument("--batch-size", help="comma-separated batch sizes (default: 1; --train: one, default 128)")
    p.add_argument("--input-size", help="H, HxW or C,H,W (default: the card's)")
    p.add_argument("--runtime", default="eager", help=f"comma-separated, from {', '.join(RUNTIMES)} (default: eager)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, help="intra-op threads for torch and onnxruntime (default: torch's)")
    p.add_argument("--channels-last", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                   help="NHWC memory format for the torch runtimes ('both' measures both)")  # fmt: skip
    p.add_argument("--deploy", nargs="?", const="on", default="off", choices=["off", "on", "both"],
                   help="apply compactnets.deploy (BN folding, exact merges) first ('both' measures both)")  # fmt: skip
    p.add_argument("--method", default="median", choices=METHODS,
                   help="median of --repeats samples with IQR, or paper: ANTNets' mean of 8 of 10 runs")  # fmt: skip
    p.add_argument("--repeats", type=int, help="samples per configuration (default: 20; --train: 10 steps)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up calls per configuration (default: 5)")
    p.add_argument("--min-sample-ms", type=float, default=20.0,
                   help="a sample averages enough calls to last this long (default: 20 ms; 0 = one call)")  # fmt: skip
    p.add_argument("--csv", help="also write the results as CSV (timm's columns first)")
    p.add_argument("--train", action="store_true",
                   help="time training steps (forward, backward, SGD step) instead of inference; "
                        "--runtime eager,compile and --amp as columns")  # fmt: skip
    p.add_argument("--amp", help="with --train: comma-separated, from off, bf16, auto (default: off,bf16)")
    p.add_argument("--json", action="store_true", help="with --train: print the records as JSON")
    p.set_defaults(func=cmd_bench)
