"""Latency of the registered ImageNet models in one interleaved run, then the comparison report.

Runs ``compactnets bench`` (deployed, channels_last eager and onnxruntime, batch 1) on the compact
ImageNet configurations that are registered, and ``compactnets report`` on them with those latencies:
accuracy (the papers') against MACs and params, latency against MACs and memory traffic, and which of
the two predicts latency better on this machine. Writes benchmarks/results/zoo/.

    python benchmarks/bench_zoo.py [--threads 1] [--runtime eager,onnxruntime] [--repeats 15] [--report-only]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import compactnets as cn
from compactnets.benchmark import BenchConfig, format_rows, run_benchmark, write_csv
from compactnets.report import make_report

OUT = Path(__file__).parent / "results" / "zoo"

# One to three configurations per family, all at 224x224 (ImageNet), from 40M to about 1G MACs.
ZOO = [
    "mobilenetv1_050", "mobilenetv1_100", "mobilenetv2_100", "mobilenetv2_140",
    "antnet_g1", "antnet_g2", "antnet_e", "igcv3_10d", "seesaw_shuffle_05d", "seesaw_shuffle_10d",
    "channelnet_v1", "channelnet_v3", "shufflenet_g3_150", "shufflenetv2_050", "shufflenetv2_100",
    "shufflenetv2_200", "mobilenetv3_small_100", "mobilenetv3_large_100", "efficientnet_b0",
    "squeezenet_11", "squeezenext_23_100", "condensenet_74_g4c4", "nasnet_a_mobile", "shiftnet_a",
    "randwire_ws_small",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtime", default="eager,onnxruntime")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--report-only", action="store_true", help="rebuild the reports from results/zoo/latency.csv")
    args = parser.parse_args()
    cn.tune_malloc()  # what the compactnets command does: glibc keeps freed tensor memory
    names = [n for n in ZOO if n in cn.list_models()]
    missing = sorted(set(ZOO) - set(names))
    runtimes = args.runtime.split(",")
    if args.report_only:
        command = "python benchmarks/bench_zoo.py --report-only (latency.csv: see latency.md)"
        report(names, runtimes, OUT / "latency.csv", command)
        return
    config = BenchConfig(runtimes=runtimes, threads=args.threads, channels_last=(True,), deploy=(True,),
                         repeats=args.repeats)  # fmt: skip
    rows, env = run_benchmark(names, config, log=lambda line: print(line, file=sys.stderr))
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(rows, OUT / "latency.csv")
    command = "python benchmarks/bench_zoo.py " + " ".join(sys.argv[1:])
    (OUT / "latency.md").write_text(
        f"# Latency of the registered ImageNet models (batch 1, 224x224)\n\nCommand: `{command.strip()}`\n\n"
        f"Environment: {env['device']}, {env['threads']} threads, allocator {env['allocator']}, torch {env['torch']}, "
        f"onnxruntime {env['onnxruntime']}, {env['date']}; fp32 GEMM peak {env['gemm_peak_gflops']} GFLOP/s; other "
        f"processes kept up to {env['other_cores_busy']:.1f} cores busy. Every model deployed (`compactnets.deploy`), "
        f"channels_last in PyTorch; one interleaved run.\n\n```\n{format_rows(rows)}\n```\n"
        + (f"\nNot registered when this ran: {', '.join(missing)}.\n" if missing else "")
    )  # fmt: skip
    print(format_rows(rows))
    report(names, runtimes, csv_path, command.strip())


def report(names: list[str], runtimes: list[str], csv_path: Path, command: str) -> None:
    for runtime in runtimes:
        result = make_report(names, OUT / f"report_{runtime}", bench=[str(csv_path)], runtime=runtime,
                             command=f"{command}  (report on its {runtime} latencies)")  # fmt: skip
        print(f"{runtime}: {result['latency_note']}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
