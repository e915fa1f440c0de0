"""Time a compactnets model against torchvision's implementation of the same network, in one run.

Both models get the same weights, input, thread count and memory layout; runs are interleaved so
machine noise hits both alike. Prints median latency per configuration and the ratio ours/torchvision
(< 1 means ours is faster), and writes Markdown + JSON to benchmarks/results/.

    python benchmarks/bench_vs_torchvision.py [--model mobilenetv2_100 --reference mobilenet_v2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

import compactnets as cn
from compactnets.convert import load_torchvision_weights

RESULTS = Path(__file__).parent / "results"


def _time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def compare(name: str, reference: str, batch: int, layout: str, repeats: int, size: int) -> dict[str, float]:
    ours = cn.create_model(name).eval()
    theirs = getattr(torchvision.models, reference)().eval()
    load_torchvision_weights(ours, theirs)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    ours, theirs = ours.to(memory_format=memory_format), theirs.to(memory_format=memory_format)
    x = torch.randn(batch, 3, size, size).to(memory_format=memory_format)
    ours_ms, theirs_ms = [], []
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-3, atol=1e-4)  # same network, same output
        for _ in range(2):  # warm-up
            _time_once(ours, x), _time_once(theirs, x)
        for i in range(repeats):  # interleave, alternating who goes first
            pair = [(ours, ours_ms), (theirs, theirs_ms)]
            for model, sink in pair if i % 2 == 0 else pair[::-1]:
                sink.append(_time_once(model, x) * 1e3)
    ours_med, theirs_med = statistics.median(ours_ms), statistics.median(theirs_ms)
    return {"batch": batch, "layout": layout, "ours_ms": ours_med, "torchvision_ms": theirs_med,
            "ratio": ours_med / theirs_med}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mobilenetv2_100")
    parser.add_argument("--reference", default="mobilenet_v2", help="torchvision.models function name")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    cn.tune_malloc()  # what the compactnets command does: glibc keeps freed tensor memory
    torch.set_num_threads(args.threads)
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for layout in ("nchw", "channels_last"):
            repeats = args.repeats if batch < 8 else max(5, args.repeats // 2)
            row = compare(args.model, args.reference, batch, layout, repeats, args.input_size)
            rows.append(row)
            print(f"batch {batch:>3} {layout:>13}: ours {row['ours_ms']:8.1f} ms  torchvision "
                  f"{row['torchvision_ms']:8.1f} ms  ratio {row['ratio']:.3f}", flush=True)  # fmt: skip
    env = {"torch": torch.__version__, "torchvision": torchvision.__version__, "threads": args.threads,
           "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    stem = f"{args.model}_vs_torchvision"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    lines = [
        f"# {args.model} vs torchvision `{args.reference}` (eager, {args.input_size}x{args.input_size})",
        "",
        f"Command: `python benchmarks/bench_vs_torchvision.py --model {args.model} --reference {args.reference}`",
        f"Environment: torch {env['torch']}, torchvision {env['torchvision']}, {args.threads} threads, "
        f"{env['cpu']}, {env['date']}. Median of interleaved runs; ratio = ours / torchvision.",
        "",
        "| batch | layout | ours (ms) | torchvision (ms) | ratio |",
        "|---|---|---|---|---|",
        *(f"| {r['batch']} | {r['layout']} | {r['ours_ms']:.1f} | {r['torchvision_ms']:.1f} | {r['ratio']:.3f} |"
          for r in rows),
    ]  # fmt: skip
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()
