"""Ours against torchvision, eager and deployed, in PyTorch and in onnxruntime, interleaved in one run per pair.

For every family that torchvision also implements (and that is registered when this runs), both models
get the same weights (checked: same logits), the same input and threads. Configurations, all timed in
one interleaved run so background load hits them alike:

- torchvision eager, NCHW and channels_last; ours eager, NCHW and channels_last
- ours deployed (``compactnets.deploy``: BN folded, exact merges), channels_last
- ours deployed with ``onednn=True`` (prepacked oneDNN convs with fused activations), channels_last
- ours deployed + ``torch.compile`` with freezing (``--compile``; slow to compile)
- torchvision and ours (deployed) in onnxruntime; ours int8 (static QDQ) in onnxruntime (``--int8``)

Writes benchmarks/results/deploy_vs_torchvision.{md,csv,json} (``_b32`` added for batch 32). Ratios are
what to quote; absolute times depend on the machine and its load (recorded beside them).

    python benchmarks/bench_deploy_vs_torchvision.py [--models mobilenetv2_100,...] [--compile mobilenetv2_100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

import compactnets as cn
from compactnets.benchmark import (
    BenchRow,
    Case,
    Timing,
    environment,
    gemm_peak_gflops,
    load_warning,
    make_runner,
    measure,
    write_csv,
)
from compactnets.convert import load_torchvision_weights
from compactnets.export import export_onnx, onnx_session, quantize_onnx

RESULTS = Path(__file__).parent / "results"

# our registered name -> torchvision.models function with the same architecture
TORCHVISION = {
    "mobilenetv2_100": "mobilenet_v2",
    "mobilenetv3_large_100": "mobilenet_v3_large",
    "mobilenetv3_small_100": "mobilenet_v3_small",
    "shufflenetv2_100": "shufflenet_v2_x1_0",
    "squeezenet_11": "squeezenet1_1",
    "densenet121": "densenet121",
    "resnext50_32x4d": "resnext50_32x4d",
    "efficientnet_b0": "efficientnet_b0",
}


def _onnx_runner(model: torch.nn.Module, x: torch.Tensor, workdir: Path, stem: str, threads: int, int8: bool):
    path = export_onnx(model, workdir / f"{stem}.onnx", tuple(x.shape[1:]), batch_size=x.shape[0])
    if int8:
        path = quantize_onnx(path, workdir / f"{stem}.int8.onnx", "static", input_size=tuple(x.shape[1:]))
    session = onnx_session(path, threads)
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


def compare(
    name: str, batch: int, threads: int, repeats: int, compile_: bool, int8: bool, workdir: Path
) -> tuple[list[BenchRow], float | None]:
    ours = cn.create_model(name).eval()
    theirs = getattr(torchvision.models, TORCHVISION[name])().eval()
    load_torchvision_weights(ours, theirs)
    size = tuple(ours.card.input_size)
    x = torch.randn(batch, *size)
    deployed = cn.deploy(ours)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-3, atol=1e-4)  # same network, same weights
        torch.testing.assert_close(deployed(x), theirs(x), rtol=1e-3, atol=1e-4)
    counts = cn.profile(ours, size)
    configs: list[tuple[str, str, bool, bool, object]] = [
        ("torchvision", "eager", False, False, make_runner(theirs, "eager", x, False)),
        ("torchvision", "eager", True, False, make_runner(theirs, "eager", x, True)),
        ("ours", "eager", False, False, make_runner(ours, "eager", x, False)),
        ("ours", "eager", True, False, make_runner(ours, "eager", x, True)),
        ("ours", "eager", True, True, make_runner(deployed, "eager", x, True)),
        ("ours", "onednn", True, True, make_runner(cn.deploy(ours, onednn=True), "onednn", x, True)),
    ]
    if compile_:
        configs.append(("ours", "compile", True, True, make_runner(deployed, "compile", x, True)))
    configs += [
        ("torchvision", "onnxruntime", False, False, _onnx_runner(theirs, x, workdir, f"tv_{name}", threads, False)),
        ("ours", "onnxruntime", False, True, _onnx_runner(deployed, x, workdir, name, threads, False)),
    ]
    if int8:
        configs.append(
            ("ours", "onnxruntime-int8", False, True, _onnx_runner(deployed, x, workdir, name, threads, True))
        )
    cases = [
        Case(f"{name}" if who == "ours" else f"torchvision {TORCHVISION[name]}", runtime, batch, size, layout,
             deploy, run, counts.macs, counts.params, counts.memory)  # type: ignore[arg-type]
        for who, runtime, layout, deploy, run in configs
    ]  # fmt: skip
    peak = gemm_peak_gflops()
    monitor = measure(cases, repeats=repeats, warmup=3, min_sample_ms=20.0)
    peak = max(peak, gemm_peak_gflops())  # background load only lowers it
    env = environment("cpu", threads)
    rows = [
        BenchRow(c.model, c.runtime, batch, size, c.channels_last, c.deployed, Timing(tuple(c.samples_ms)), c.macs,
                 c.params, c.memory_bytes, c.number, peak, env, monitor.other_cores)
        for c in cases
    ]  # fmt: skip
    return rows, monitor.other_cores


def _find(rows: list[BenchRow], who: str, runtime: str, layout: bool, deployed: bool) -> BenchRow | None:
    for r in rows:
        if r.model.startswith("torchvision") == (who == "torchvision") and (r.runtime, r.channels_last, r.deployed) == (
            runtime, layout, deployed
        ):  # fmt: skip
            return r
    return None


def summary_line(name: str, rows: list[BenchRow], best: bool = False) -> str:
    """One Markdown row of the ratios the issue sets goals for, of medians or (``best``) of fastest samples."""
    tv_nhwc = _find(rows, "torchvision", "eager", True, False)
    ours_nhwc = _find(rows, "ours", "eager", True, False)
    ours_dep = _find(rows, "ours", "eager", True, True)
    ours_comp = _find(rows, "ours", "compile", True, True)
    ours_onednn = _find(rows, "ours", "onednn", True, True)
    tv_ort = _find(rows, "torchvision", "onnxruntime", False, False)
    ours_ort = _find(rows, "ours", "onnxruntime", False, True)
    ours_int8 = _find(rows, "ours", "onnxruntime-int8", False, True)
    tv_nchw, ours_nchw = _find(rows, "torchvision", "eager", False, False), _find(rows, "ours", "eager", False, False)

    def ms(row: BenchRow) -> float:
        return min(row.timing.samples_ms) if best else row.ms

    def ratio(a: BenchRow | None, b: BenchRow | None) -> str:
        return f"{ms(a) / ms(b):.2f}" if a and b else "-"

    def of_peak(row: BenchRow) -> str:
        return f"{100 * 2 * row.macs * row.batch_size / (ms(row) * 1e-3) / 1e9 / row.gemm_peak_gflops:.0f}%"

    native = min((r for r in (ours_dep, ours_onednn, ours_comp) if r), key=ms)
    cells = [
        f"`{name}`", ratio(ours_nchw, tv_nchw), ratio(ours_nhwc, tv_nhwc), ratio(ours_dep, ours_nhwc),
        f"{ratio(native, ours_nhwc)} ({native.runtime})", ratio(native, ours_ort), ratio(ours_ort, tv_ort),
        of_peak(ours_ort) if ours_ort else "-",
        f"{ratio(ours_int8, ours_ort)} ({of_peak(ours_int8)})" if ours_int8 else "-",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(TORCHVISION), help="comma-separated registered names")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--compile", default="mobilenetv2_100", help="names to also run with torch.compile")
    parser.add_argument("--int8", default="mobilenetv2_100", help="names to also run int8 in onnxruntime")
    args = parser.parse_args()
    cn.tune_malloc()  # what the compactnets command does: glibc keeps freed tensor memory
    torch.set_num_threads(args.threads)
    names = [n for n in args.models.split(",") if n in TORCHVISION and n in cn.list_models()]
    skipped = [n for n in args.models.split(",") if n not in names]
    all_rows: list[BenchRow] = []
    summaries, best_summaries, loads = [], [], []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows, other = compare(name, args.batch_size, args.threads, args.repeats, name in args.compile.split(","),
                                  name in args.int8.split(","), Path(tmp))  # fmt: skip
            all_rows += rows
            loads.append(other or 0.0)
            summaries.append(summary_line(name, rows))
            best_summaries.append(summary_line(name, rows, best=True))
            for r in rows:
                print(f"{r.model:>36} {r.runtime:>16} {'NHWC' if r.channels_last else 'NCHW'} "
                      f"{'deploy' if r.deployed else '      '} {r.ms:9.2f} ms  {100 * r.peak_fraction:5.1f}% of peak",
                      flush=True)  # fmt: skip
            warning = load_warning(other, args.threads)
            if warning:
                print(f"warning ({name}): {warning}", file=sys.stderr)
    env = environment("cpu", args.threads) | {"seconds": round(time.time() - start)}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / ("deploy_vs_torchvision" + (f"_b{args.batch_size}" if args.batch_size != 1 else ""))
    write_csv(all_rows, stem.with_suffix(".csv"))
    stem.with_suffix(".json").write_text(json.dumps({"env": env, "rows": [r.to_csv() for r in all_rows]}, indent=2))
    command = "python benchmarks/bench_deploy_vs_torchvision.py " + " ".join(sys.argv[1:])
    header = [
        "| model | ours/tv eager NCHW | ours/tv eager NHWC | deployed / eager NHWC | native / eager NHWC "
        "| native / ours ORT | ours ORT / tv ORT | ours ORT of peak | int8 / fp32 ORT (of fp32 peak) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines = [
        f"# Ours vs torchvision: eager, deployed, onnxruntime (batch {args.batch_size}, 224x224)",
        "",
        f"Command: `{command.strip()}`",
        f"Environment: {env['device']}, {args.threads} threads, allocator {env['allocator']}, torch {env['torch']}, "
        f"torchvision {env['torchvision']}, onnxruntime {env['onnxruntime']}, {env['date']}. Other processes kept "
        f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f} cores busy while measuring: quote the ratios, "
        "which come from one interleaved run per model, not the absolute times.",
        "",
        "Ratios of median latencies (< 1: the first is faster). *deployed* = `compactnets.deploy` (BN folded, "
        "exact merges), channels_last; *native* = the fastest PyTorch path: deployed eager, deployed with "
        "`onednn=True` (prepacked convs, fused activations; eager), or deployed + torch.compile (freezing); "
        "ORT = onnxruntime; % of peak = achieved GFLOP/s (2 x MACs / time) over the fp32 GEMM rate "
        "measured in the same run.",
        "",
        *header,
        *summaries,
        "",
        "The same ratios of the fastest sample of each configuration (background load only ever adds time, so "
        "on a shared machine the best samples are the less noisy comparison):",
        "",
        *header,
        *best_summaries,
    ]
    if skipped:
        lines += ["", f"Not registered when this ran (or no torchvision twin): {', '.join(skipped)}."]
    lines += ["", "## All configurations", "",
              "| model | runtime | layout | deployed | median ms | IQR ms | min ms | img/s | GFLOP/s | of peak |",
              "|---|---|---|---|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
    for r in all_rows:
        p25, p75 = r.timing.iqr
        lines.append(f"| {r.model} | {r.runtime} | {'NHWC' if r.channels_last else 'NCHW'} | "
                     f"{'yes' if r.deployed else 'no'} | {r.ms:.2f} | {p25:.2f}-{p75:.2f} | "
                     f"{min(r.timing.samples_ms):.2f} | {r.images_per_s:.1f} | "
                     f"{r.achieved_gflops:.1f} | {100 * r.peak_fraction:.0f}% |")  # fmt: skip
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
