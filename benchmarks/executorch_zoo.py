"""Which registered models lower completely to ExecuTorch's XNNPACK delegate (deployed, fp32, batch 1, card size).

    python benchmarks/executorch_zoo.py [--models a,b] [--out benchmarks/results/executorch_zoo]

For each model: the share of graph nodes the XNNPACK partitioner takes, the ops it leaves to ExecuTorch's
portable kernels (slow on a phone), the .pte size, and whether the program's logits match PyTorch's (max
absolute difference) on one random input. Writes ``OUT.json`` and ``OUT.md``; a model that fails to lower is a
row with its one-line error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import compactnets as cn  # noqa: E402
from compactnets import ondevice  # noqa: E402
from compactnets.deploy import deploy  # noqa: E402
from compactnets.machine import cpu_name  # noqa: E402


def measure(name: str) -> dict[str, Any]:
    model = cn.create_model(name).eval()
    x = torch.randn(1, *model.card.input_size)
    start = time.perf_counter()
    try:
        lowered = ondevice.lower(deploy(model), x)  # what `compactnets export --format executorch` writes
    except Exception as err:  # a row per model, whatever stops it
        text = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return {"model": name, "error": f"{type(err).__name__}: {text}"}
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.pte"
        path.write_bytes(lowered.buffer)
        with torch.no_grad():
            diff = float((ondevice.PteProgram(path)(x) - model(x)).abs().max())
    return {
        "model": name,
        "delegated_share": round(lowered.delegated_share, 4),
        "not_delegated": lowered.not_delegated,
        "pte_mb": round(len(lowered.buffer) / 1e6, 3),
        "max_abs_diff": diff,
        "lower_s": round(seconds, 1),
    }


def render(rows: list[dict[str, Any]], out: Path) -> None:
    complete = sum(1 for r in rows if r.get("delegated_share") == 1.0)
    lines = [
        "# ExecuTorch (XNNPACK) lowering of the zoo",
        "",
        f"`python benchmarks/executorch_zoo.py` on {cpu_name()}, torch {torch.__version__}: each model's deployed "
        "form (BN folded, exact merges: what `compactnets export --format executorch` lowers), fp32, batch 1, each "
        "card's input size. **delegated**: share of the graph's nodes the XNNPACK partitioner took; the rest run "
        "on ExecuTorch's portable kernels. **max diff**: largest |logit| difference from PyTorch on one random "
        f"input, running the .pte through `executorch.runtime` here. {complete} of {len(rows)} models lower "
        "completely.",
        "",
        "| model | delegated | not delegated (nodes) | .pte MB | max diff | lowering s |",
        "|---|--:|---|--:|--:|--:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['model']}` | failed | {r['error']} | | | |")
            continue
        left = ", ".join(f"{op} x{n}" for op, n in sorted(r["not_delegated"].items())) or "-"
        lines.append(f"| `{r['model']}` | {100 * r['delegated_share']:.1f}% | {left} | {r['pte_mb']:.2f} "
                     f"| {r['max_abs_diff']:.1e} | {r['lower_s']} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated names (default: every registered model)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "executorch_zoo")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else cn.list_models()
    rows = []
    for i, name in enumerate(names, 1):
        rows.append(measure(name))
        print(f"[{i}/{len(names)}] {json.dumps(rows[-1])[:200]}", flush=True)
        render(rows, args.out)  # after every model: an interrupted run keeps what it measured
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
