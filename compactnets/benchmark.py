"""Latency and throughput: ``compactnets bench MODEL... [--runtime eager,compile,onednn,onnxruntime,executorch]``.

Each configuration (model x runtime x layout x deploy x batch size) is warmed up, then timed in
rounds; within a batch size the rounds are interleaved (one run of every configuration per round, in a
rotating order), so a burst of background load hits all of them alike and their ratios stay
meaningful on a shared machine. A sample is the mean of ``number`` back-to-back calls, ``number``
chosen so that a sample lasts at least ``min_sample_ms``.

Statistics: the median with the interquartile range (default), or ``method="paper"``: the ANTNets
protocol (Sec. 4.3: 10 runs, the fastest and the slowest dropped, the mean of the other 8).

Beside the latency: images/s, achieved GFLOP/s (2 x MACs x batch / time, the MACs the kernels execute:
:func:`compactnets.complexity.executed_macs`, also timm's ``infer_gmacs`` column) and its fraction of a GEMM
peak measured on the spot (fp32 ``torch.mm``), the memory traffic of
:func:`compactnets.profile`, and the environment that the numbers depend on (device, threads,
versions, allocator, load from other processes, with a warning when other processes use the cores).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._table import format_table
from .allocator import allocator
from .complexity import executed_macs, profile
from .deploy import deploy
from .errors import UsageError
from .machine import environment
from .spec import resolve_spec

RUNTIMES = ("eager", "compile", "onednn", "onnxruntime", "executorch", "executorch-int8")
"""``onednn``: eager PyTorch on ``deploy(model, onednn=True)`` (prepacked CPU convs with fused activations)."""
METHODS = ("median", "paper")
PAPER_RUNS = 10
"""ANTNets Sec. 4.3: latency is the mean of 10 runs without the fastest and the slowest."""


# ------------------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Timing:
    """Per-call times of one configuration in milliseconds, and the statistics of them."""

    samples_ms: tuple[float, ...]
    method: str = "median"

    @property
    def center(self) -> float:
        """The median, or for ``paper`` the mean without the fastest and the slowest run."""
        if self.method == "paper":
            return paper_mean(self.samples_ms)
        return statistics.median(self.samples_ms)

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile ``q`` in [0, 1]."""
        ordered = sorted(self.samples_ms)
        pos = q * (len(ordered) - 1)
        low, high = math.floor(pos), math.ceil(pos)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    @property
    def iqr(self) -> tuple[float, float]:
        return self.quantile(0.25), self.quantile(0.75)


def paper_mean(samples: Sequence[float]) -> float:
    """ANTNets' latency: drop the fastest and the slowest of the runs, average the rest."""
    if len(samples) < 3:
        raise ValueError(f"the paper's method needs at least 3 runs (it uses {PAPER_RUNS}), got {len(samples)}")
    ordered = sorted(samples)
    return statistics.fmean(ordered[1:-1])


# ------------------------------------------------------------------- environment (record: machine.py)
class LoadMonitor:
    """How many cores other processes kept busy while we measured (from /proc/stat, minus our own CPU time).

    Falls back to the 1-minute load average where /proc/stat is missing.
    """

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = None
        self.other_cores: float | None = None

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(v) for v in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> LoadMonitor:
        busy = self._busy_seconds()
        self._start = (time.perf_counter(), busy if busy is not None else math.nan, self._own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        wall0, busy0, own0 = self._start
        busy = self._busy_seconds()
        wall = time.perf_counter() - wall0
        if busy is None or math.isnan(busy0) or wall <= 0:
            self.other_cores = max(0.0, os.getloadavg()[0] - 1) if hasattr(os, "getloadavg") else None
            return
        self.other_cores = max(0.0, ((busy - busy0) - (self._own_seconds() - own0)) / wall)


def load_warning(other_cores: float | None, threads: int) -> str | None:
    """A warning when other processes kept more than a quarter of a core busy (the medians then mean little)."""
    if other_cores is None or other_cores <= 0.25:
        return None
    cores = os.cpu_count() or 1
    return (
        f"other processes kept {other_cores:.1f} of {cores} cores busy while measuring ({threads} threads used): "
        "absolute times mean little; compare configurations measured in the same run (they are interleaved)"
    )


def gemm_peak_gflops(
    device: str = "cpu", size: int = 1024, repeats: int = 10, dtype: torch.dtype = torch.float32
) -> float:
    """The best ``torch.mm`` rate of ``size`` x ``size`` matrices of ``dtype`` now, with the current threads.

    Background load only lowers it: the benchmark measures it before and after and keeps the higher.
    A well-tuned conv library (onnxruntime's MLAS) can beat it, so a fraction above 100% is possible.
    """
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def product() -> None:
        torch.mm(a, b)
        sync()

    best_ms = min(time_ms(product, repeats, warmup=1))
    return 2 * size**3 / (best_ms * 1e-3) / 1e9


# -------------------------------------------------------------------------------------------- the timer
def sample_ms(run: Callable[[], Any], number: int = 1) -> float:
    """The time of ``number`` back-to-back calls of ``run``, per call, in milliseconds."""
    start = time.perf_counter()
    for _ in range(number):
        run()
    return (time.perf_counter() - start) * 1e3 / number


def time_ms(run: Callable[[], Any], repeats: int, warmup: int = 0, number: int = 1) -> list[float]:
    """``repeats`` samples of :func:`sample_ms` (ms per call) after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    return [sample_ms(run, number) for _ in range(repeats)]


def rotating_order(count: int, rounds: int) -> Iterable[int]:
    """Indices of ``count`` cases for ``rounds`` interleaved rounds: every case once per round, the starting
    case rotating from round to round, so machine noise hits each alike."""
    for i in range(rounds):
        yield from ((i + j) % count for j in range(count))


def time_interleaved(runs: dict[Any, Callable[[], Any]], rounds: int, warmup: int = 2) -> dict[Any, list[float]]:
    """``rounds`` interleaved single-call samples (ms) of every run, after ``warmup`` untimed calls of each."""
    for run in runs.values():
        time_ms(run, 0, warmup)
    keys = list(runs)
    samples: dict[Any, list[float]] = {key: [] for key in keys}
    for index in rotating_order(len(keys), rounds):
        samples[keys[index]].append(sample_ms(runs[keys[index]]))
    return samples


# ---------------------------------------------------------------------------------------- configurations
@dataclass
class Case:
    """One configuration ready to run: ``run()`` does one forward pass of ``batch_size`` images."""

    model: str
    runtime: str
    batch_size: int
    input_size: tuple[int, int, int]
    channels_last: bool
    deployed: bool
    run: Callable[[], Any]
    macs: int = 0
    params: int = 0
    memory_bytes: int = 0
    number: int = 1
    samples_ms: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        layout = "NHWC" if self.channels_last else "NCHW"
        return f"{self.model} {self.runtime} {layout}{' deploy' if self.deployed else ''} b{self.batch_size}"


COMPILES_PER_MODEL = 4
"""Dynamo cache entries one benchmarked model may need (train and eval mode, autocast on and off)."""


def compile_another(model: nn.Module, **kwargs: Any) -> Callable[..., Any]:
    """``torch.compile(model, **kwargs)`` with room left in dynamo's cache for this model.

    Every :class:`~compactnets.models.base.CompactNet` shares one ``forward`` code object, and dynamo compiles at
    most ``recompile_limit`` (8) entries per code object, then runs the frame eagerly without saying so beyond a
    log warning: a benchmark that compiled more than a few models in one process timed the later ones in eager
    while labelling them ``compile``. Each call raises the limit by :data:`COMPILES_PER_MODEL`.
    """
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit += COMPILES_PER_MODEL
    dynamo_config.accumulated_recompile_limit += COMPILES_PER_MODEL
    return torch.compile(model, **kwargs)


def make_runner(
    model: nn.Module,
    runtime: str,
    example: torch.Tensor,
    channels_last: bool = False,
    threads: int | None = None,
    workdir: str | Path | None = None,
) -> Callable[[], Any]:
    """A zero-argument callable running ``model`` on ``example`` in ``runtime`` (eager, compile, onnxruntime).

    ``compile`` is ``torch.compile`` with inductor's freezing (weights become constants, BN folds);
    ``onnxruntime`` exports ``model`` to ONNX in ``workdir`` and runs it on the CPU with ``threads``.
    """
    model = model.eval()
    if runtime.startswith("executorch"):
        return _executorch_runner(model, runtime, example, threads, workdir)
    if runtime == "onnxruntime":
        if example.device.type != "cpu":
            raise UsageError("the onnxruntime runtime runs on the CPU here: use --device cpu")
        from .export import export_onnx, onnx_session

        workdir = Path(workdir or tempfile.mkdtemp(prefix="compactnets-bench-"))
        path = export_onnx(model, workdir / f"model_{id(model)}_{example.shape[0]}.onnx", tuple(example.shape[1:]),
                           batch_size=example.shape[0])  # fmt: skip
        session = onnx_session(path, threads)
        feed = {session.get_inputs()[0].name: example.contiguous().numpy()}
        return lambda: session.run(None, feed)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if example.device.type == "cuda" else (lambda: None)
    if runtime == "onednn" and example.device.type != "cpu":
        raise UsageError("the onednn runtime runs on the CPU: use --device cpu")
    if runtime in ("eager", "onednn"):

        def run_eager() -> Any:
            with torch.inference_mode():
                out = model(example)
            sync()
            return out

        return run_eager
    if runtime == "compile":
        import torch._inductor.config as inductor_config

        compiled = compile_another(model)
        with torch.no_grad(), inductor_config.patch(freezing=True):
            compiled(example)  # compiles now, with freezing

        def run_compiled() -> Any:
            with torch.no_grad():
                out = compiled(example)
            sync()
            return out

        return run_compiled
    raise UsageError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")


def _executorch_runner(
    model: nn.Module, runtime: str, example: torch.Tensor, threads: int | None, workdir: str | Path | None
) -> Callable[[], Any]:
    """An ExecuTorch program (XNNPACK; ``executorch-int8``: PT2E int8 calibrated on random inputs, enough for
    latency, not accuracy) run through ``executorch.runtime`` on the CPU with ``threads``."""
    if example.device.type != "cpu":
        raise UsageError(f"the {runtime} runtime runs on the CPU here: use --device cpu")
    from .ondevice import PteProgram, set_threads, write_pte

    workdir = Path(workdir or tempfile.mkdtemp(prefix="compactnets-bench-"))
    path = workdir / f"model_{id(model)}_{example.shape[0]}_{runtime}.pte"
    size = tuple(example.shape[1:])
    calibration = [torch.randn_like(example) for _ in range(4)] if runtime == "executorch-int8" else None
    write_pte(model, path, size, example.shape[0], calibration)  # type: ignore[arg-type]
    set_threads(threads or torch.get_num_threads())
    program, x = PteProgram(path), example.contiguous()
    return lambda: program(x)


def measure(
    cases: Sequence[Case],
    repeats: int = 20,
    warmup: int = 5,
    min_sample_ms: float = 20.0,
    interleave: bool = True,
) -> LoadMonitor:
    """Warm up every case, pick its ``number`` of calls per sample, then record ``repeats`` samples each.

    With ``interleave`` one round runs every case once, the starting case rotating from round to round.
    Fills ``case.samples_ms`` (per call) and returns the load other processes put on the machine meanwhile.
    """
    for case in cases:
        per_call = sample_ms(case.run, max(1, warmup))
        case.number = max(1, math.ceil(min_sample_ms / max(per_call, 1e-3)))
        case.samples_ms.clear()

    def sample(case: Case) -> None:
        case.samples_ms.append(sample_ms(case.run, case.number))

    with LoadMonitor() as monitor:
        if interleave:
            for index in rotating_order(len(cases), repeats):
                sample(cases[index])
        else:
            for case in cases:
                for _ in range(repeats):
                    sample(case)
    return monitor


# --------------------------------------------------------------------------------------------- results
CSV_COLUMNS = [
    # timm's benchmark CSV columns first (infer_step_time in ms, param_count in millions, infer_gmacs per image)
    "model", "infer_img_size", "infer_batch_size", "infer_samples_per_sec", "infer_step_time",
    "infer_step_time_p25", "infer_step_time_p75", "infer_step_time_min", "infer_step_time_max",
    "infer_gmacs", "param_count",
    # ours
    "runtime", "deployed", "channels_last", "method", "repeats", "number", "memory_mb", "achieved_gflops",
    "gemm_peak_gflops", "peak_fraction", "device", "threads", "allocator", "other_cores_busy",
    "torch", "onnxruntime",
]  # fmt: skip


@dataclass
class BenchRow:
    """One line of the results: a configuration and its statistics."""

    model: str
    runtime: str
    batch_size: int
    input_size: tuple[int, int, int]
    channels_last: bool
    deployed: bool
    timing: Timing
    macs: int
    params: int
    memory_bytes: int
    number: int
    gemm_peak_gflops: float
    env: dict[str, Any]
    other_cores: float | None

    @property
    def ms(self) -> float:
        return self.timing.center

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.ms * 1e3

    @property
    def achieved_gflops(self) -> float:
        return 2 * self.macs * self.batch_size / (self.ms * 1e-3) / 1e9

    @property
    def peak_fraction(self) -> float:
        return self.achieved_gflops / self.gemm_peak_gflops if self.gemm_peak_gflops else math.nan

    def to_csv(self) -> dict[str, Any]:
        p25, p75 = self.timing.iqr
        samples = self.timing.samples_ms
        return {
            "model": self.model,
            "infer_img_size": self.input_size[-1],
            "infer_batch_size": self.batch_size,
            "infer_samples_per_sec": round(self.images_per_s, 2),
            "infer_step_time": round(self.ms, 4),
            "infer_step_time_p25": round(p25, 4),
            "infer_step_time_p75": round(p75, 4),
            "infer_step_time_min": round(min(samples), 4),
            "infer_step_time_max": round(max(samples), 4),
            "infer_gmacs": round(self.macs / 1e9, 4),
            "param_count": round(self.params / 1e6, 3),
            "runtime": self.runtime,
            "deployed": self.deployed,
            "channels_last": self.channels_last,
            "method": self.timing.method,
            "repeats": len(samples),
            "number": self.number,
            "memory_mb": round(self.memory_bytes / 1e6, 3),
            "achieved_gflops": round(self.achieved_gflops, 2),
            "gemm_peak_gflops": round(self.gemm_peak_gflops, 1),
            "peak_fraction": round(self.peak_fraction, 4),
            "device": self.env.get("device"),
            "threads": self.env.get("threads"),
            "allocator": self.env.get("allocator"),
            "other_cores_busy": None if self.other_cores is None else round(self.other_cores, 2),
            "torch": self.env.get("torch"),
            "onnxruntime": self.env.get("onnxruntime"),
        }


def write_csv(rows: Iterable[BenchRow], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.to_csv())
    return path


def format_rows(rows: Sequence[BenchRow]) -> str:
    """A readable table; 'spread' is the IQR (median) or the min-max of the kept runs (paper)."""
    lines = []
    for r in rows:
        if r.timing.method == "paper":
            kept = sorted(r.timing.samples_ms)[1:-1]
            spread = f"{kept[0]:.2f}-{kept[-1]:.2f}"
        else:
            p25, p75 = r.timing.iqr
            spread = f"{p25:.2f}-{p75:.2f}"
        lines.append([
            r.model, r.runtime, "NHWC" if r.channels_last else "NCHW", "yes" if r.deployed else "no",
            r.batch_size, f"{r.ms:.2f}", spread, f"{r.images_per_s:.1f}", f"{r.achieved_gflops:.1f}",
            f"{100 * r.peak_fraction:.0f}%",
        ])  # fmt: skip
    center = "mean of 8 ms" if rows and rows[0].timing.method == "paper" else "median ms"
    headers = ["model", "runtime", "layout", "deploy", "batch", center, "spread ms", "img/s", "GFLOP/s", "of peak"]
    return format_table(headers, lines, align="llllrrrrrr")


# ------------------------------------------------------------------------------------------- the driver
@dataclass
class BenchConfig:
    """What ``run_benchmark`` measures; the product of its lists is the set of configurations."""

    batch_sizes: Sequence[int] = (1,)
    runtimes: Sequence[str] = ("eager",)
    input_size: tuple[int, int, int] | None = None
    device: str = "cpu"
    threads: int | None = None
    channels_last: Sequence[bool] = (False,)
    deploy: Sequence[bool] = (False,)
    method: str = "median"
    repeats: int = 20
    warmup: int = 5
    min_sample_ms: float = 20.0

    def __post_init__(self) -> None:
        unknown = [r for r in self.runtimes if r not in RUNTIMES]
        if unknown:
            raise UsageError(f"unknown runtime(s) {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
        if self.method not in METHODS:
            raise UsageError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.method == "paper":  # a run is one inference
            self.repeats, self.min_sample_ms = PAPER_RUNS, 0.0
        if self.device not in ("cpu", "cuda") or (self.device == "cuda" and not torch.cuda.is_available()):
            raise UsageError(f"device {self.device!r} is not available here: use --device cpu")
        if not self.batch_sizes or min(self.batch_sizes) < 1 or self.repeats < 1:
            raise UsageError("batch sizes and repeats must be positive")


def run_benchmark(
    models: Sequence[str], config: BenchConfig, log: Callable[[str], None] = print
) -> tuple[list[BenchRow], dict[str, Any]]:
    """Measure every registered name or checkpoint in ``models`` under ``config``; interleaved per batch size."""
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run_benchmark(models, config, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run_benchmark(
    models: Sequence[str], config: BenchConfig, log: Callable[[str], None]
) -> tuple[list[BenchRow], dict[str, Any]]:
    threads = torch.get_num_threads()
    env = environment(config.device, threads)
    loaded = {}
    for spec in models:
        resolved = resolve_spec(spec)
        model, size = resolved.model, config.input_size or resolved.input_size
        counts = profile(model, size)
        loaded[spec] = (resolved.name, model.to(config.device), size, counts, executed_macs(model, size))
    peak = gemm_peak_gflops(config.device)
    env["gemm_peak_gflops"] = round(peak, 1)
    log(f"{env['device']}, {threads} threads, allocator {env['allocator']}, torch {env['torch']}, "
        f"onnxruntime {env['onnxruntime']}; fp32 GEMM peak now {peak:.0f} GFLOP/s")  # fmt: skip
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="compactnets-bench-") as workdir:
        for batch in config.batch_sizes:
            cases: list[Case] = []
            for spec, runtime, layout, deployed in itertools.product(
                models, config.runtimes, config.channels_last, config.deploy
            ):
                if runtime == "onnxruntime" and layout:  # NCHW input; onnxruntime picks its own layouts
                    if False in config.channels_last:
                        continue
                    layout = False
                if runtime == "onednn" and not deployed:  # a deploy form: measured once, as deployed
                    if True in config.deploy:
                        continue
                    deployed = True
                name, model, size, counts, macs = loaded[spec]
                example = torch.randn(batch, *size, device=config.device)
                net = deploy(model, onednn=runtime == "onednn") if deployed else model
                run = make_runner(net, runtime, example, layout, threads, workdir)
                cases.append(Case(name, runtime, batch, size, layout, deployed, run, macs,
                                  counts.params, counts.memory))  # fmt: skip
            monitor = measure(cases, config.repeats, config.warmup, config.min_sample_ms)
            warning = load_warning(monitor.other_cores, threads)
            if warning:
                log(f"warning: {warning}")
            for case in cases:
                rows.append(BenchRow(
                    case.model, case.runtime, batch, case.input_size, case.channels_last, case.deployed,
                    Timing(tuple(case.samples_ms), config.method), case.macs, case.params, case.memory_bytes,
                    case.number, peak, env, monitor.other_cores,
                ))  # fmt: skip
    peak = max(peak, gemm_peak_gflops(config.device))
    for row in rows:
        row.gemm_peak_gflops = peak
    env["gemm_peak_gflops"] = round(peak, 1)
    env["other_cores_busy"] = max((r.other_cores or 0.0 for r in rows), default=0.0)
    return rows, env


__all__ = [
    "BenchConfig",
    "BenchRow",
    "Case",
    "LoadMonitor",
    "Timing",
    "allocator",
    "compile_another",
    "environment",
    "gemm_peak_gflops",
    "make_runner",
    "measure",
    "paper_mean",
    "rotating_order",
    "run_benchmark",
    "sample_ms",
    "time_interleaved",
    "time_ms",
    "write_csv",
]
