"""Time the pyramid depthwise conv (PydMobileNet 3x3 + 5x5 + 7x7) as the paper writes it, three separate
depthwise convs then a sum or concatenation, against :class:`compactnets.layers.PyramidDepthwise` run as
one merged conv (``single_conv=True``; a 7x7 conv for add, a channel-multiplier-3 7x7 conv for concat), its
``fuse_for_inference()`` conv (kernel precomputed) and, for concat, the layer's default (three convs).

Same weights, input, thread count and memory layout for all; runs are interleaved (rotating who goes first)
so machine noise hits each alike. Shapes are the pyramid inputs of PydMobileNet-Add/Concat-alpha=1 on CIFAR
(32 x 32 x 32, 64 x 16 x 16, 128 x 8 x 8). "infer" is a forward pass under inference_mode; "train" is forward
+ backward (input and weight gradients). Each row runs at least ``--repeats`` interleaved rounds and more
within ``--budget`` seconds. Prints the best time of the interleaved runs and the speed-up
(three convs / variant), and writes Markdown + JSON to benchmarks/results/.

    python benchmarks/bench_pyramid_depthwise.py [--batch 16 --repeats 5 --budget 1.5 --threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from compactnets import tune_malloc
from compactnets.layers import PyramidDepthwise

RESULTS = Path(__file__).parent / "results"
SHAPES = [(32, 32), (64, 16), (128, 8)]  # (channels, height = width) of the pyramids in Net-29/56, alpha = 1


class ThreeConvs(nn.Module):
    """The literal definition: one depthwise nn.Conv2d per kernel, outputs summed or concatenated."""

    def __init__(self, layer: PyramidDepthwise) -> None:
        super().__init__()
        c = layer.channels
        self.mode = layer.mode
        self.convs = nn.ModuleList(
            nn.Conv2d(c, c, k, layer.stride, k // 2, groups=c, bias=False) for k in layer.kernel_sizes
        )
        with torch.no_grad():
            for conv, weight in zip(self.convs, layer.weights, strict=True):
                conv.weight.copy_(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [conv(x) for conv in self.convs]
        return sum(outs[1:], outs[0]) if self.mode == "add" else torch.cat(outs, 1)


def _timer(model: nn.Module, x: torch.Tensor, train: bool) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        if train:
            inp = x.detach().requires_grad_(True)
            model(inp).sum().backward()
        else:
            with torch.inference_mode():
                model(x)
        return (time.perf_counter() - start) * 1e3

    return run


def compare(
    mode: str, channels: int, size: int, batch: int, layout: str, train: bool, repeats: int, budget: float
) -> dict:
    torch.manual_seed(0)
    single = PyramidDepthwise(channels, mode=mode, single_conv=True)  # type: ignore[arg-type]
    variants: dict[str, nn.Module] = {"three": ThreeConvs(single), "single": single}
    if mode == "concat":  # the layer's default for concat: three convs and torch.cat
        variants["default"] = PyramidDepthwise(channels, mode="concat", single_conv=False)
        variants["default"].load_state_dict(single.state_dict())
    if not train:
        variants["fused"] = single.fuse_for_inference()
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    variants = {k: m.to(memory_format=memory_format) for k, m in variants.items()}
    x = torch.randn(batch, channels, size, size).to(memory_format=memory_format)
    with torch.no_grad():  # the same function, the same channel order
        expected = variants["three"](x)
        for key, model in variants.items():
            if key != "three":
                torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)
    timers = {k: _timer(m, x, train) for k, m in variants.items()}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for run in timers.values():  # warm-up
        run(), run()
    order = list(timers)
    deadline = time.perf_counter() + budget
    i = 0
    while i < repeats or (time.perf_counter() < deadline and i < 50 * repeats):  # interleaved, rotating
        for key in order[i % len(order) :] + order[: i % len(order)]:
            times[key].append(timers[key]())
        i += 1
    best = {k: min(v) for k, v in times.items()}
    row = {"mode": mode, "shape": f"{channels}x{size}x{size}", "batch": batch, "layout": layout,
           "pass": "train" if train else "infer", "runs": i, **{f"{k}_ms": v for k, v in best.items()},
           **{f"{k}_median_ms": statistics.median(v) for k, v in times.items()},
           "speedup_single": best["three"] / best["single"]}  # fmt: skip
    if "default" in best:
        row["speedup_default"] = best["three"] / best["default"]
    if "fused" in best:
        row["speedup_fused"] = best["three"] / best["fused"]
    return row


def _ms(row: dict, key: str) -> str:
    return f"{row[key + '_ms']:.2f}" if key + "_ms" in row else "-"


def _ratio(row: dict, key: str) -> str:
    return f"{row['speedup_' + key]:.2f}x" if "speedup_" + key in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="at least this many interleaved runs")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per configuration for more runs")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    tune_malloc()  # what the compactnets command does: glibc keeps freed tensor memory
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows = []
    for mode in ("add", "concat"):
        for train in (False, True):
            for channels, size in SHAPES:
                for layout in ("nchw", "channels_last"):
                    r = compare(mode, channels, size, args.batch, layout, train, args.repeats, args.budget)
                    rows.append(r)
                    print(f"{mode:>6} {r['pass']:>5} {r['shape']:>9} {layout:>13}: three {_ms(r, 'three'):>8} ms  "
                          f"single conv {_ms(r, 'single'):>8} ms ({_ratio(r, 'single')})  "
                          f"default {_ms(r, 'default'):>8} ms ({_ratio(r, 'default')})  "
                          f"fused {_ms(r, 'fused'):>8} ms ({_ratio(r, 'fused')})", flush=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    env = {"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
           "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(elapsed, 1),
           "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    stem = "pyramid_depthwise"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"env": env, "batch": args.batch, "rows": rows}, indent=2) + "\n")

    def span(mode: str, key: str) -> str:
        values = [r["speedup_" + key] for r in rows if r["mode"] == mode and "speedup_" + key in r]
        return f"{min(values):.2f}x to {max(values):.2f}x"

    lines = [
        "# Pyramid depthwise conv (3x3 + 5x5 + 7x7): three depthwise convs vs one merged conv",
        "",
        f"Command: `python benchmarks/bench_pyramid_depthwise.py --batch {args.batch} --repeats {args.repeats} "
        f"--budget {args.budget} --threads {args.threads}`",
        f"Environment: torch {env['torch']}, threads {args.threads}, {env['cpu']}, {env['date']}, eager, "
        f"batch {args.batch}, {elapsed:.0f} s, 1-minute load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}.",
        f"Times: the best of the interleaved runs of each variant (at least {args.repeats}, more within "
        f"{args.budget} s per row; noise on a shared",
        "machine only adds time, medians are in the JSON). Speed-up = three / variant, > 1 is faster than three convs.",
        "",
        "- *three*: the paper's definition, three `nn.Conv2d` depthwise convs, then sum (add) or `torch.cat` (concat).",
        "- *single conv*: `PyramidDepthwise(single_conv=True)`, the kernel built from the three trainable kernels on",
        "  every call, one depthwise conv (7x7; for concat with channel multiplier 3, then a reorder to `torch.cat`",
        "  order). The add-mode default.",
        "- *default*: concat's default, `PyramidDepthwise(mode='concat')` = `single_conv=False`: three convs and",
        "  `torch.cat`: the same work as *three*, so its speed-up (ideally 1.00x) also shows the noise of the run.",
        "- *fused*: `fuse_for_inference()`, the single conv with its kernel precomputed (a plain `nn.Conv2d`; for",
        "  concat followed by the reorder).",
        "- infer = forward under `inference_mode`; train = forward + backward (input and weight gradients).",
        "",
        f"Add, single conv: {span('add', 'single')}. Concat, single conv: {span('concat', 'single')}; "
        f"concat default: {span('concat', 'default')}.",
        "",
        "| mode | pass | C x H x W | layout | three (ms) | single conv (ms) | default (ms) | fused (ms) "
        "| speed-up single | speed-up default | speed-up fused |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(f"| {r['mode']} | {r['pass']} | {r['shape']} | {r['layout']} | {_ms(r, 'three')} | {_ms(r, 'single')} | "
          f"{_ms(r, 'default')} | {_ms(r, 'fused')} | {_ratio(r, 'single')} | {_ratio(r, 'default')} | "
          f"{_ratio(r, 'fused')} |" for r in rows),
    ]  # fmt: skip
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / (stem + '.md')} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
