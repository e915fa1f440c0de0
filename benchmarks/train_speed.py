"""Training speed on the CPU: fp32 eager, bf16 (``--amp auto`` where the CPU has bf16), compiled, and both.

One interleaved run of :func:`compactnets.train_bench.run_train_benchmark` (forward, loss, backward, SGD step at
batch 128, channels_last, synthetic data of the card's size, the threads torch uses) for the seed families and
two baselines; GFLOP/s from the MACs the kernels execute, against the fp32 and bf16 GEMM peaks measured in the
same run. Writes ``benchmarks/results/train_speed.{json,md}``.

    python benchmarks/train_speed.py [--models resnet20_cifar,...] [--runtimes eager,compile] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compactnets as cn  # noqa: E402
from compactnets.amp import cpu_has_native_bf16  # noqa: E402
from compactnets.train_bench import format_train_table, run_train_benchmark, train_records  # noqa: E402

MODELS = ("resnet20_cifar,mobilenetv2_cifar,antnet_g2_cifar,pydmobilenet_add_29_050_cifar,"
          "pydmobilenet_concat_29_050_cifar,igcv3_05d_cifar")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--amps", default="off,bf16", help="off,bf16 (bf16 as --amp auto trains where native)")
    parser.add_argument("--runtimes", default="eager,compile")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed"))
    args = parser.parse_args()
    cn.tune_malloc()
    models = [m for m in args.models.split(",") if m]
    cases, env = run_train_benchmark(models, args.batch_size, args.amps.split(","), args.runtimes.split(","),
                                     repeats=args.repeats, log=lambda s: print(s, file=sys.stderr))  # fmt: skip
    env["native_bf16"] = cpu_has_native_bf16()
    records = train_records(cases, env)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"env": env, "rows": records}, indent=1) + "\n")
    table = format_train_table(records)
    failures = [f"- `{r['model']}` {r['runtime']} amp={r['amp']}: {r['error']}" for r in records if r["error"]]
    lines = [
        "# Training speed on the CPU",
        "",
        f"`python benchmarks/train_speed.py` on {env['device']} ({env['threads']} threads, native bf16: "
        f"{env['native_bf16']}), {env['date']}: one training step (forward, loss, backward, SGD step) at batch "
        f"{env['batch_size']}, channels_last, synthetic data at each card's input size; medians of "
        f"{env['repeats']} interleaved steps. bf16 is what `--amp bf16` (and `--amp auto` on a CPU with native "
        "bf16) trains in: the depthwise convs 'ran as' names kept in fp32. GFLOP/s = 3 x 2 x executed MACs x "
        "batch / time; peaks: "
        f"`torch.mm` 1024^3 measured in the same run, fp32 {env['gemm_peak_gflops_fp32']:.0f} and bf16 "
        f"{env['gemm_peak_gflops_bf16']:.0f} GFLOP/s. 'first step s' is the first call (compiling, for "
        "`compile`).",
        "",
        "```",
        table,
        "```",
        *(["", "Did not run:", *failures] if failures else []),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
