"""Training throughput: ``compactnets bench MODEL... --train [--amp off,bf16,auto] [--runtime eager,compile]``.

One training step is what the trainer does per batch: forward and loss under the autocast ``--amp`` gives
(CPU bf16 with :func:`compactnets.amp.keep_depthwise_fp32`, as in training), backward, and an SGD step with
momentum, at batch 128 (settable) on synthetic data of the card's input size, channels_last. ``compile`` is
``torch.compile`` (inductor) of the model in training mode; the first step, which compiles, is timed apart.
Every (model, amp, runtime) case is warmed up, then timed in interleaved rounds
(:func:`compactnets.benchmark.measure`), so their ratios survive background load.

Achieved GFLOP/s counts 3 x 2 x executed MACs per image (forward, and a backward of about twice the forward;
:func:`compactnets.complexity.executed_macs`), against fp32 and bf16 ``torch.mm`` peaks measured in the same run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._table import format_table
from .amp import amp_dtype, keep_depthwise_fp32, strided_depthwise_only
from .benchmark import compile_another, gemm_peak_gflops, load_warning, measure, sample_ms
from .complexity import executed_macs
from .errors import UsageError
from .machine import environment
from .registry import create_model, model_card

TRAIN_AMPS = ("off", "bf16", "auto")
TRAIN_RUNTIMES = ("eager", "compile")


@dataclass
class TrainCase:
    """One (model, amp, runtime) configuration; ``run()`` is one training step of ``batch_size`` images."""

    model: str
    amp: str
    runtime: str
    batch_size: int
    run: Callable[[], Any]
    precision: str = "fp32"
    """What ran: ``fp32``, ``bf16``, ``bf16, depthwise fp32`` or ``bf16, strided depthwise fp32``."""
    macs: int = 0
    first_step_s: float = 0.0
    """The first step (for ``compile``: tracing and code generation)."""
    error: str = ""
    """Why the case could not run (it is then reported, not timed)."""
    number: int = 1
    samples_ms: list[float] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else float("nan")

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.ms * 1e3

    @property
    def achieved_gflops(self) -> float:
        return 3 * 2 * self.macs * self.batch_size / (self.ms * 1e-3) / 1e9


def make_train_step(
    name: str, amp: str, runtime: str, batch_size: int, device: str = "cpu"
) -> tuple[Callable[[], None], str]:
    """A zero-argument training step of ``name`` (fresh weights, seed 0) and the precision it runs in."""
    if runtime not in TRAIN_RUNTIMES:
        raise UsageError(f"--train measures the runtimes {', '.join(TRAIN_RUNTIMES)}, not {runtime!r}")
    torch.manual_seed(0)
    card = model_card(name)
    model = create_model(name).to(device, memory_format=torch.channels_last).train()
    dtype = amp_dtype(amp, torch.device(device))
    depthwise_fp32 = dtype == torch.bfloat16 and device == "cpu" and keep_depthwise_fp32(model) > 0
    precision = "fp32" if dtype is None else str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")
    precision += f", {'strided ' if strided_depthwise_only() else ''}depthwise fp32" if depthwise_fp32 else ""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch_size, *card.input_size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, card.num_classes, (batch_size,), device=device)
    net = compile_another(model) if runtime == "compile" else model
    criterion = nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step() -> None:
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(net(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()

    return step, precision


def _build_case(name: str, amp: str, runtime: str, batch_size: int, device: str, macs: int) -> TrainCase:
    case = TrainCase(name, amp, runtime, batch_size, run=lambda: None, macs=macs)
    try:
        case.run, case.precision = make_train_step(name, amp, runtime, batch_size, device)
        case.first_step_s = sample_ms(case.run) / 1e3
    except UsageError:
        raise
    except Exception as err:  # a compiler failure is a result to report, not a crash
        lines = str(err).strip().splitlines() or [""]
        case.error = f"{type(err).__name__}: {lines[0]}"[:200]
    return case


def run_train_benchmark(
    models: Sequence[str],
    batch_size: int = 128,
    amps: Sequence[str] = ("off", "bf16"),
    runtimes: Sequence[str] = ("eager",),
    device: str = "cpu",
    threads: int | None = None,
    repeats: int = 10,
    warmup: int = 2,
    log: Callable[[str], None] = print,
) -> tuple[list[TrainCase], dict[str, Any]]:
    """Measure a training step of every model under every amp setting and runtime, interleaved."""
    unknown = [a for a in amps if a not in TRAIN_AMPS] + [r for r in runtimes if r not in TRAIN_RUNTIMES]
    if unknown:
        raise UsageError(
            f"--train: unknown {', '.join(unknown)}; --amp takes {', '.join(TRAIN_AMPS)}, "
            f"--runtime {', '.join(TRAIN_RUNTIMES)}"
        )
    if batch_size < 1 or repeats < 1:
        raise UsageError("--train: the batch size and repeats must be positive")
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        env = environment(device, torch.get_num_threads())
        peaks = {"fp32": gemm_peak_gflops(device), "bf16": gemm_peak_gflops(device, dtype=torch.bfloat16)}
        cases = []
        for name in models:
            with torch.device("meta"):
                macs = executed_macs(create_model(name))
            for amp in amps:
                for runtime in runtimes:
                    log(f"preparing {name} amp={amp} {runtime}")
                    cases.append(_build_case(name, amp, runtime, batch_size, device, macs))
        for case in cases:
            if case.error:
                log(f"warning: {case.model} amp={case.amp} {case.runtime} did not run: {case.error}")
        runnable = [c for c in cases if not c.error]
        monitor = measure(runnable, repeats, warmup, min_sample_ms=0.0)
        peaks = {
            "fp32": max(peaks["fp32"], gemm_peak_gflops(device)),
            "bf16": max(peaks["bf16"], gemm_peak_gflops(device, dtype=torch.bfloat16)),
        }
    finally:
        torch.set_num_threads(previous)
    warning = load_warning(monitor.other_cores, env["threads"])
    if warning:
        log(f"warning: {warning}")
    env |= {"gemm_peak_gflops_fp32": round(peaks["fp32"], 1), "gemm_peak_gflops_bf16": round(peaks["bf16"], 1),
            "batch_size": batch_size, "repeats": repeats, "other_cores_busy": monitor.other_cores}  # fmt: skip
    return cases, env


def train_records(cases: Sequence[TrainCase], env: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON-ready record per case, with the ratio to the same model's fp32 eager step (where measured)."""
    base = {c.model: c.ms for c in cases if c.amp == "off" and c.runtime == "eager" and not c.error}
    records = []
    for c in cases:
        record: dict[str, Any] = {
            "model": c.model, "amp": c.amp, "runtime": c.runtime, "precision": c.precision,
            "batch_size": c.batch_size, "executed_macs": c.macs, "error": c.error or None,
        }  # fmt: skip
        if not c.error:
            record |= {
                "step_ms": round(c.ms, 3),
                "images_per_s": round(c.images_per_s, 1),
                "vs_fp32_eager": round(base[c.model] / c.ms, 3) if c.model in base else None,
                "achieved_gflops": round(c.achieved_gflops, 2),
                "of_fp32_peak": round(c.achieved_gflops / env["gemm_peak_gflops_fp32"], 4),
                "of_bf16_peak": round(c.achieved_gflops / env["gemm_peak_gflops_bf16"], 4),
                "first_step_s": round(c.first_step_s, 2),
            }
        records.append(record)
    return records


def format_train_table(records: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in records:
        if r["error"]:
            rows.append([r["model"], r["runtime"], r["amp"], r["precision"], "-", "-", "-", "-", "-", "-"])
            continue
        ratio = f"{r['vs_fp32_eager']:.2f}x" if r["vs_fp32_eager"] is not None else "-"
        rows.append([
            r["model"], r["runtime"], r["amp"], r["precision"], f"{r['images_per_s']:.0f}", ratio,
            f"{r['achieved_gflops']:.1f}", f"{100 * r['of_fp32_peak']:.1f}%", f"{100 * r['of_bf16_peak']:.1f}%",
            f"{r['first_step_s']:.1f}",
        ])  # fmt: skip
    headers = ["model", "runtime", "amp", "ran as", "img/s", "vs fp32 eager", "GFLOP/s", "of fp32 peak",
               "of bf16 peak", "first step s"]  # fmt: skip
    return format_table(headers, rows, align="llllrrrrrr")
