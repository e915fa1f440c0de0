"""int8 on trained weights: fp32 vs int8 CIFAR-10 test top-1, latency and file size, onnxruntime and ExecuTorch.

    python benchmarks/int8.py --data CIFAR10_DIR [--models resnet20_cifar.cn_c10,...] [--threads 2] [--limit N]

For every shipped ``cn_c10`` weights entry (or the ones named): the deployed model (BN folded) exported to
ONNX (onnxruntime static QDQ int8, per-channel weights, uint8 activations) and to ExecuTorch (XNNPACK, PT2E
static int8), both calibrated on the same 256 training images; top-1 of each file on the CIFAR-10 test split,
batch-1 latency (median of 50 interleaved runs per file, same thread count for both runtimes) and file size.
Writes ``benchmarks/results/int8.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compactnets as cn  # noqa: E402
from compactnets import export as ex  # noqa: E402
from compactnets import ondevice  # noqa: E402
from compactnets.data import build_data  # noqa: E402
from compactnets.deploy import deploy  # noqa: E402
from compactnets.machine import cpu_name  # noqa: E402
from compactnets.weights import list_pretrained  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "int8"


def _batches(data: str, size: tuple[int, int, int], train: bool, batch: int, limit: int) -> list[Any]:
    """The first ``limit`` images of a split, unshuffled, with the evaluation preprocessing."""
    bundle = build_data(data, input_size=size, augment="none")
    out, seen = [], 0
    for x, y in DataLoader(bundle.train if train else bundle.val, batch_size=batch, shuffle=False):
        out.append((x, y))
        seen += len(y)
        if seen >= limit:
            break
    return out


def _top1(run: Callable[[torch.Tensor], torch.Tensor], batches: list[Any], step: int) -> float:
    right = seen = 0
    with torch.no_grad():
        for x, y in batches:
            logits = torch.cat([run(x[i : i + step]) for i in range(0, len(x), step)])
            right += int((logits.argmax(1) == y).sum())
            seen += len(y)
    return 100 * right / seen


def _latency_ms(runs: dict[str, Callable[[torch.Tensor], Any]], x: torch.Tensor, repeats: int = 50) -> dict:
    """Median ms per call of each runner, interleaved so that they share the machine's state."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run in runs.values():
        for _ in range(5):
            run(x)
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run(x)
            times[key].append(time.perf_counter() - start)
    return {k: round(statistics.median(v) * 1e3, 3) for k, v in times.items()}


def measure(weights: str, data: str, limit: int, tmp: Path) -> dict[str, Any]:
    model = cn.create_model(weights).eval()
    size = tuple(model.card.input_size)
    deployed = deploy(model)
    calibration = [x for x, _ in _batches(data, size, True, 32, 256)]
    test = _batches(data, size, False, 100, limit)
    files = {k: tmp / f"m{s}" for k, s in (("onnx", ".onnx"), ("onnx_int8", ".int8.onnx"),
                                          ("pte", ".pte"), ("pte_int8", ".int8.pte"))}  # fmt: skip
    ex.export_onnx(deployed, files["onnx"], size, 1, dynamic_batch=True)
    ex.quantize_onnx(files["onnx"], files["onnx_int8"], "static", calibration, size)
    ondevice.write_pte(deployed, files["pte"], size)
    ondevice.write_pte(deployed, files["pte_int8"], size, 1, calibration)
    threads = torch.get_num_threads()
    sessions = {k: ex.onnx_session(files[k], threads) for k in ("onnx", "onnx_int8")}
    runs: dict[str, Callable[[torch.Tensor], Any]] = {
        k: (lambda x, s=s: ex.run_onnx(s, x)) for k, s in sessions.items()
    }
    runs |= {k: ondevice.PteProgram(files[k]) for k in ("pte", "pte_int8")}
    steps = {"onnx": 100, "onnx_int8": 100, "pte": 1, "pte_int8": 1}
    row: dict[str, Any] = {"weights": weights, "images": sum(len(y) for _, y in test)}
    row["top1"] = {"pytorch": _top1(model, test, 100)} | {k: _top1(runs[k], test, steps[k]) for k in runs}
    row["latency_ms"] = _latency_ms(runs, torch.randn(1, *size))
    row["size_kb"] = {k: round(ex.file_size(p) / 1e3, 1) for k, p in files.items()}
    return row


def render(rows: list[dict[str, Any]], threads: int) -> None:
    lines = [
        "# int8 on trained weights (CIFAR-10)",
        "",
        f"`python benchmarks/int8.py --data CIFAR10_DIR --threads {threads}` on {cpu_name()}: each shipped "
        "`cn_c10` model, deployed (BN folded), as ONNX (onnxruntime, static QDQ int8) and as an ExecuTorch program "
        "(XNNPACK, PT2E static int8), both calibrated on the same 256 training images. Top-1 on the real CIFAR-10 "
        f"test split ({rows[0]['images'] if rows else 0} images); latency: batch 1, median of 50 interleaved runs, "
        f"{threads} threads for both runtimes; size: the file.",
        "",
        "| weights | top-1 PyTorch | ORT fp32 | ORT int8 (change) | ET fp32 | ET int8 (change) | ORT fp32 ms "
        "| ORT int8 ms | ET fp32 ms | ET int8 ms | ORT KB fp32/int8 | ET KB fp32/int8 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t, ms, kb = r["top1"], r["latency_ms"], r["size_kb"]
        lines.append(
            f"| `{r['weights']}` | {t['pytorch']:.2f} | {t['onnx']:.2f} | {t['onnx_int8']:.2f} "
            f"({t['onnx_int8'] - t['onnx']:+.2f}) | {t['pte']:.2f} | {t['pte_int8']:.2f} "
            f"({t['pte_int8'] - t['pte']:+.2f}) "
            f"| {ms['onnx']} | {ms['onnx_int8']} | {ms['pte']} | {ms['pte_int8']} "
            f"| {kb['onnx']:.0f}/{kb['onnx_int8']:.0f} | {kb['pte']:.0f}/{kb['pte_int8']:.0f} |"
        )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    OUT.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 image folder (train/ and test/)")
    parser.add_argument("--models", help="comma-separated weights (default: every cn_c10 entry)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=10_000, help="test images (default: all 10,000)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ondevice.set_threads(args.threads)
    names = args.models.split(",") if args.models else list_pretrained("*.cn_c10")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append(measure(name, args.data, args.limit, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
            render(rows, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
