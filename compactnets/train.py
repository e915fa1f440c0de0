"""Training and evaluation: one loop, read top to bottom, on CPU, one GPU or many through torchrun/DDP.

A run directory holds config.json (the resolved config), env.json (versions, device, threads, allocator, git
commit), metrics.csv (one row per epoch), events for TensorBoard when it is installed, last.pt (everything to
resume exactly) and best.pt (the weights with the best validation top-1).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchvision.transforms import v2

from . import __version__
from .allocator import allocator
from .amp import amp_dtype, cpu_has_native_bf16, keep_depthwise_fp32
from .checkpoint import load_checkpoint, save_atomic
from .data import SMALL_IMAGE_MAX, DataBundle, build_data
from .errors import UsageError
from .fastdata import DeviceBatches, images_as_uint8
from .machine import cpu_name
from .models.base import xavier_init
from .recipes import TrainConfig
from .registry import create_model
from .rundir import RunLock, check_new_run
from .weights import get_weights

METRIC_COLUMNS = [
    "epoch",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "epoch_seconds",
    "train_images_per_s",
    "val_images_per_s",
]


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss); the message says which checkpoint is still good."""


# ------------------------------------------------------------------------------------------ distributed
@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (world size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str, timeout_s: float = 300.0) -> DistInfo:
    """Join the process group that torchrun describes in the environment (NCCL on GPUs, gloo on CPUs); a
    collective that waits ``timeout_s`` for a stalled or lost rank fails, which ends the job."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return info


def _all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


# ------------------------------------------------------------------------------------------ pieces
def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available here; use --device cpu")
        return torch.device("cuda", info.local_rank if info.enabled else torch.device(name).index or 0)
    if name != "cpu":
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights; BN parameters, biases and other 1-D parameters are exempt
    unless ``decay_norm_and_bias`` (tensors with one dimension or fewer are those)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if decay_norm_and_bias or p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.decay_norm_and_bias)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "rmsprop":  # TF-style RMSProp of the MobileNet papers: decay 0.9, eps 1.0 scale
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=0.9, momentum=cfg.momentum, eps=0.0316)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise UsageError(f"unknown optimizer {cfg.optimizer!r}; use sgd, rmsprop or adamw")


def warmup_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Warm-up iterations: ``warmup_epochs`` of them, raised to ``warmup_steps`` where the run allows.

    Warm-up is about iterations, not epochs: one epoch of a small data set (digits: 11 steps at batch 128)
    is too short a ramp to lr 0.1 and made the quick start diverge. The floor takes at most a quarter of the run.
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = max(round(cfg.warmup_epochs * steps_per_epoch), min(cfg.warmup_steps, total // 4))
    return min(total - 1, warmup)


def build_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler stepped once per iteration; epoch-based settings are converted to iterations."""
    from torch.optim import lr_scheduler as sched

    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = warmup_steps(cfg, steps_per_epoch)
    main_steps = max(1, total - warmup)
    if cfg.schedule == "constant":
        main: sched.LRScheduler = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif cfg.schedule == "multistep":
        main = sched.MultiStepLR(optimizer, [m * steps_per_epoch - warmup for m in cfg.milestones], cfg.gamma)
    elif cfg.schedule in ("step", "exponential"):  # gamma every step_epochs epochs, applied exactly
        main = sched.StepLR(optimizer, max(1, round(cfg.step_epochs * steps_per_epoch)), cfg.gamma)
    elif cfg.schedule == "linear":  # decay to zero (Caffe's "poly" with power 1)
        main = sched.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=main_steps)
    elif cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, main_steps)
    elif cfg.schedule == "onecycle":
        return sched.OneCycleLR(optimizer, cfg.lr, total_steps=total, pct_start=max(0.05, warmup / total))
    else:
        raise UsageError(
            f"unknown schedule {cfg.schedule!r}; use constant, step, multistep, exponential, linear, cosine, onecycle"
        )
    if warmup <= 0:
        return main
    ramp = sched.LinearLR(optimizer, start_factor=1e-3, total_iters=warmup)
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle from ``seed + epoch``, one shard per rank) that can start
    part-way through an epoch, so a resumed run sees exactly the batches it had not seen yet."""

    def __init__(self, dataset: Dataset, info: DistInfo, seed: int, shuffle: bool = True) -> None:
        super().__init__(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.start_index = 0

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start_index :])

    def __len__(self) -> int:
        return self.num_samples - self.start_index


def _rng_state() -> dict[str, Any]:
    """Every RNG state as plain Python lists (safe for weights_only loading and all_gather_object)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def environment(device: torch.device, info: DistInfo) -> dict[str, Any]:
    """What the numbers of a run depend on: versions, device, threads, allocator, git commit."""
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    return {
        "compactnets": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu": cpu_name(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "world_size": info.world_size,
        "allocator": allocator(),
        "git_commit": commit,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
    }


class _StopRequest:
    """First Ctrl-C / SIGTERM asks the loop to stop at the next step boundary (checkpointed, resumable);
    a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading_main():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (checkpoint, then exit; Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Progress:
    """tqdm bar on a terminal; a plain line every ``every`` steps otherwise (logs, CI)."""

    def __init__(self, total: int, desc: str, every: int, enabled: bool, initial: int = 0) -> None:
        self.total, self.desc, self.every, self.enabled = total, desc, max(1, every), enabled
        self.start, self.step = time.perf_counter(), initial
        self.initial = initial
        self.bar = None
        if enabled and sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False)

    def update(self, **metrics: str) -> None:
        self.step += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(metrics, refresh=False)
            self.bar.update(1)
        elif self.step % self.every == 0 or self.step == self.total:
            elapsed = time.perf_counter() - self.start
            rate = (self.step - self.initial) / max(elapsed, 1e-9)
            eta = (self.total - self.step) / max(rate, 1e-9)
            text = " ".join(f"{k} {v}" for k, v in metrics.items())
            print(f"{self.desc} step {self.step}/{self.total} {text} eta {eta / 60:.1f}m", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------ evaluation
@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)

    def to_dict(self) -> dict[str, float]:
        return {
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "images": self.images,
            "images_per_s": self.images_per_s,
        }


def recalibrate_batchnorm(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], num_batches: int, info: DistInfo
) -> None:
    """Precise BatchNorm (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021): set every BN layer's
    running statistics to the plain average over ``num_batches`` training batches, without gradients.

    The running averages (momentum 0.1) trail the weights by about ten steps; early in a short run, where the
    weights change fast, the eval-mode network then sees statistics of an older one (the quick start's
    validation loss was 33 while its training loss was 2.4). Under DDP the ranks' statistics are averaged.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or num_batches <= 0:
        return
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for index, (x, _) in enumerate(batches):
            if index >= num_batches:
                break
            model(x)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        if info.enabled:
            for buffer in (norm.running_mean, norm.running_var):
                dist.all_reduce(buffer)
                buffer.div_(info.world_size)
    model.train(was_training)


def evaluate(
    model: nn.Module,
    dataset: Dataset | DeviceBatches,
    batch_size: int = 256,
    device: torch.device | None = None,
    channels_last: bool = True,
    autocast_dtype: torch.dtype | None = None,
    num_workers: int = 0,
    info: DistInfo | None = None,
) -> EvalResult:
    """Top-1/top-5 (percent), mean cross-entropy and throughput; shards the data across ranks under DDP."""
    info = info or DistInfo()
    device = device or next(model.parameters()).device
    batches: Any
    if isinstance(dataset, DeviceBatches):  # already sharded, normalised and on the device
        batches = dataset
    else:
        shard = Subset(dataset, range(info.rank, len(dataset), info.world_size)) if info.enabled else dataset
        batches = DataLoader(
            shard,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(0),  # leaves the global RNG alone
        )
    was_training = model.training
    model.eval()
    loss_sum = correct1 = correct5 = count = 0.0
    start = time.perf_counter()
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(dim=1).sum().item()
            count += len(y)
    seconds = time.perf_counter() - start
    model.train(was_training)
    loss_sum, correct1, correct5, count = _all_reduce_sum([loss_sum, correct1, correct5, count], info, device)
    if count == 0:
        raise UsageError("the evaluation set is empty")
    return EvalResult(loss_sum / count, 100 * correct1 / count, 100 * correct5 / count, int(count), seconds)


# ------------------------------------------------------------------------------------------ training
@dataclass
class RunResult:
    out: Path
    epochs_done: int
    best_top1: float
    last: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    model: nn.Module | None = None


def _default_out(cfg: TrainConfig) -> Path:
    data_name = Path(cfg.data).name if cfg.data not in ("cifar10", "cifar100", "digits") else cfg.data
    return Path("runs") / f"{cfg.model}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _model_kwargs(cfg: TrainConfig, num_classes: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if cfg.width:
        kwargs["width"] = cfg.width
    if cfg.drop_path:
        kwargs["drop_path_rate"] = cfg.drop_path
    if cfg.drop >= 0:
        kwargs["drop_rate"] = cfg.drop
    return kwargs


def _mixer(cfg: TrainConfig, num_classes: int) -> Callable[..., Any] | None:
    mixers = []
    if cfg.mixup_alpha > 0:
        mixers.append(v2.MixUp(alpha=cfg.mixup_alpha, num_classes=num_classes))
    if cfg.cutmix_alpha > 0:
        mixers.append(v2.CutMix(alpha=cfg.cutmix_alpha, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


def train(
    cfg: TrainConfig,
    resume: bool = False,
    on_step: Callable[[int, int], bool] | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data``; with ``resume`` continue the run in ``cfg.out`` exactly.

    ``on_step(epoch, step)`` is called after every optimizer step; returning True stops the run as an
    interruption would (checkpoint, then return) — tests use it to simulate a kill. The run directory is
    locked for the run's life (:class:`compactnets.rundir.RunLock`, held by the first process of a job).
    """
    launched = "RANK" in os.environ  # torchrun: every rank must be given the same --out
    if not cfg.out and not launched:
        cfg = dataclasses.replace(cfg, out=str(_default_out(cfg)))
    lock = RunLock(Path(cfg.out)).acquire() if cfg.out and int(os.environ.get("RANK", "0")) == 0 else None
    try:
        return _train(cfg, resume, on_step)
    finally:
        if lock is not None:
            lock.release()


def _train(cfg: TrainConfig, resume: bool, on_step: Callable[[int, int], bool] | None) -> RunResult:
    probe = torch.device(
        "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    info = init_distributed(probe.type, cfg.dist_timeout)
    device = pick_device(cfg.device, info)
    out = Path(cfg.out) if cfg.out else _default_out(cfg)
    if info.enabled and not cfg.out:
        raise UsageError("under torchrun, pass --out so that every rank writes to the same run directory")
    checkpoint: dict[str, Any] | None = None
    if resume:
        checkpoint = load_checkpoint(out, prefer="last")
    else:
        check_new_run(out)
    seed_everything(cfg.seed + info.rank, cfg.deterministic)

    size = (3, cfg.input_size, cfg.input_size) if cfg.input_size else None
    weights = (
        get_weights(cfg.model, True if cfg.pretrained == "default" else cfg.pretrained) if cfg.pretrained else None
    )
    norm = {k: weights.pretrained_cfg[k] for k in ("mean", "std")} if weights else None  # what the weights expect
    data = build_data(cfg.data, cfg.data_dir, cfg.download, size, cfg.augment, norm)
    train_set: Dataset = data.train
    if cfg.train_subset:
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed))
        train_set = Subset(train_set, order[: cfg.train_subset].tolist())
    if checkpoint and checkpoint.get("classes") and checkpoint["classes"] != data.classes:
        raise UsageError(
            f"{out} was trained on {len(checkpoint['classes'])} classes; {cfg.data} has {data.num_classes}"
        )

    fine_tune = weights.tag if weights is not None and checkpoint is None else False  # resume loads its own
    model = create_model(cfg.model, **_model_kwargs(cfg, data.num_classes), pretrained=fine_tune)
    if cfg.init not in ("default", "xavier"):
        raise UsageError(f"unknown init {cfg.init!r}; use default or xavier")
    if cfg.init == "xavier" and weights is not None:
        raise UsageError("--init xavier would overwrite the --pretrained weights; leave --init default")
    if cfg.init == "xavier":
        xavier_init(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and info.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    raw_model = model
    per_rank_batch = cfg.batch_size // info.world_size
    if per_rank_batch < 1 or cfg.batch_size % info.world_size:
        raise UsageError(
            f"--batch-size {cfg.batch_size} (global) must be a multiple of the {info.world_size} processes"
        )
    memory = _memory_pipeline(cfg, data, train_set, per_rank_batch, device, info)
    sampler = ResumableDistributedSampler(train_set, info, cfg.seed)
    # the loader draws worker seeds from its own generator, re-seeded every epoch: the global RNG (augmentation,
    # dropout, mixup) then only advances with the samples themselves, which keeps resume exact
    loader_rng = torch.Generator()
    loader = DataLoader(
        train_set,
        batch_size=per_rank_batch,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        generator=loader_rng,
    )
    steps_per_epoch = len(memory[0]) if memory else len(sampler) // per_rank_batch
    if steps_per_epoch == 0:
        raise UsageError(f"the training set ({len(train_set)} images) is smaller than one batch ({cfg.batch_size})")
    optimizer = build_optimizer(cfg, raw_model)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch)
    autocast_dtype = amp_dtype(cfg.amp, device)
    # CPU bf16: oneDNN's depthwise kernels are slower in bf16 than in fp32 (benchmarks/results/train_bf16.md)
    fp32_depthwise = keep_depthwise_fp32(raw_model) if autocast_dtype == torch.bfloat16 and device.type == "cpu" else 0
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    ema = (
        AveragedModel(raw_model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        if cfg.ema_decay
        else None
    )
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = torch.compile(model) if cfg.compile else model
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    mixer = _mixer(cfg, data.num_classes)

    start_epoch, start_step, best_top1 = 0, 0, -1.0
    history: list[dict[str, float]] = []  # every finished epoch's metrics row, kept in last.pt
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        if ema is not None and checkpoint.get("ema_state_dict") is not None:
            ema.load_state_dict(checkpoint["ema_state_dict"])
        start_epoch, start_step = checkpoint["epoch"], checkpoint["step_in_epoch"]
        best_top1 = checkpoint.get("best_top1", -1.0)
        history = list(checkpoint.get("history", []))
        if info.is_main and "history" in checkpoint:  # rows a kill kept out of metrics.csv, or wrote twice
            _write_metrics(out / "metrics.csv", history)
        rng = checkpoint["rng"]
        if len(rng) == info.world_size:
            _set_rng_state(rng[info.rank])
        elif info.is_main:
            print(
                f"warning: checkpoint has RNG states for {len(rng)} processes, this job has {info.world_size}; "
                "augmentation will not repeat exactly",
                file=sys.stderr,
            )

    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict() | {"out": str(out)}, indent=2) + "\n")
        env = environment(device, info) | {
            "per_process_batch": per_rank_batch,
            "global_batch": cfg.batch_size,
            "amp_setting": cfg.amp,
            "amp": str(autocast_dtype),
            "amp_fp32_depthwise_layers": fp32_depthwise,
            "cpu_native_bf16": cpu_has_native_bf16(),
            "lr_note": "lr applies to the global batch; scale it linearly if you change --batch-size",
        }
        (out / "env.json").write_text(json.dumps(env, indent=2) + "\n")
    writer = _tensorboard(out) if info.is_main else None

    meta = {
        "model": cfg.model,
        "model_kwargs": _model_kwargs(cfg, data.num_classes),
        "classes": data.classes,
        "input_size": list(data.input_size),
        "mean": list(data.mean),
        "std": list(data.std),
    }

    def save(epoch: int, step_in_epoch: int, metrics: dict[str, float] | None = None) -> None:
        rng = [_rng_state()]
        if info.enabled:
            gathered: list[Any] = [None] * info.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if not info.is_main:
            return
        save_atomic(
            meta
            | {
                "config": cfg.to_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "best_top1": best_top1,
                "state_dict": raw_model.state_dict(),
                "ema_state_dict": ema.state_dict() if ema else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng,
                "metrics": metrics or {},
                "history": history,
            },
            out / "last.pt",
        )

    eval_model = ema.module if ema is not None else raw_model
    started = time.perf_counter()
    last_metrics: dict[str, float] = {}
    stopped = False
    epoch = start_epoch
    with _StopRequest() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            first_step = start_step if epoch == start_epoch else 0
            if memory:
                memory[0].set_epoch(epoch, first_step)
            sampler.set_epoch(epoch)
            sampler.start_index = first_step * per_rank_batch
            loader_rng.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + info.rank)
            batches = memory[0] if memory else loader
            mixing = mixer is not None and epoch < cfg.epochs - cfg.mixup_off_epochs
            model.train()
            loss_sum = correct = seen = 0.0
            epoch_start = time.perf_counter()
            progress = Progress(
                steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.log_every, info.is_main, first_step
            )
            step = first_step
            for step, (x, y) in enumerate(batches, start=first_step):
                if step >= steps_per_epoch:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                target = y
                if mixing:
                    x, target = mixer(x, y)  # type: ignore[misc]
                with torch.autocast(
                    device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
                ):
                    logits = step_model(x)
                    loss = criterion(logits.float(), target)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; training stopped. "
                        f"{out / 'last.pt'} still holds the last good state. Lower --lr or set --grad-clip."
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(raw_model)
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
                progress.update(
                    loss=f"{loss_sum / seen:.3f}",
                    acc=f"{100 * correct / seen:.1f}%",
                    lr=f"{optimizer.param_groups[0]['lr']:.4g}",
                    ips=f"{seen * info.world_size / (time.perf_counter() - epoch_start):.0f}/s",
                )
                user_stop = on_step(epoch, step) if on_step else False
                over_time = cfg.time_limit > 0 and time.perf_counter() - started > cfg.time_limit * 60
                if _any_rank(stop.requested or user_stop or over_time, info, device):
                    progress.close()
                    save(epoch, step + 1)
                    stopped = True
                    if info.is_main:
                        print(
                            f"stopped at epoch {epoch + 1} step {step + 1}; resume with: compactnets train "
                            f"{cfg.model} --resume {out}",
                            flush=True,
                        )
                    return RunResult(out, epoch, best_top1, last_metrics, stopped_early=True, model=raw_model)
            progress.close()
            train_seconds = time.perf_counter() - epoch_start
            if ema is not None and cfg.channels_last:
                ema.module.to(memory_format=torch.channels_last)
            if cfg.precise_bn:
                sampler.start_index = 0
                recalibrate_batchnorm(eval_model, _on_device(batches, device, cfg.channels_last), cfg.precise_bn, info)
            result = evaluate(
                eval_model,
                memory[1] if memory else data.val,
                max(per_rank_batch, 64),
                device,
                cfg.channels_last,
                autocast_dtype,
                cfg.num_workers,
                info,
            )
            totals = _all_reduce_sum([loss_sum, correct, seen], info, device)
            last_metrics = {
                "epoch": epoch + 1,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": totals[0] / max(totals[2], 1),
                "train_top1": 100 * totals[1] / max(totals[2], 1),
                "val_loss": result.loss,
                "val_top1": result.top1,
                "val_top5": result.top5,
                "epoch_seconds": time.perf_counter() - epoch_start,
                "train_images_per_s": totals[2] / max(train_seconds, 1e-9),
                "val_images_per_s": result.images_per_s,
            }
            improved = result.top1 > best_top1
            best_top1 = max(best_top1, result.top1)
            history.append(last_metrics)
            # best.pt, then last.pt (which holds the history), then metrics.csv: a kill between any two is
            # repaired by the resume (the epoch is redone, or metrics.csv is rewritten from the history)
            if info.is_main and improved:
                save_atomic(meta | {"state_dict": eval_model.state_dict(), "best_top1": best_top1,
                                    "epoch": epoch + 1, "metrics": last_metrics}, out / "best.pt")  # fmt: skip
            save(epoch + 1, 0, last_metrics)
            if info.is_main:
                _append_metrics(out / "metrics.csv", last_metrics)
                if writer is not None:
                    for key, value in last_metrics.items():
                        writer.add_scalar(key, value, epoch + 1)
                print(
                    f"epoch {epoch + 1}/{cfg.epochs}: train loss {last_metrics['train_loss']:.4f} "
                    f"top-1 {last_metrics['train_top1']:.2f}% | val loss {result.loss:.4f} top-1 {result.top1:.2f}% "
                    f"top-5 {result.top5:.2f}% | {last_metrics['train_images_per_s']:.0f} img/s, "
                    f"{last_metrics['epoch_seconds']:.0f}s",
                    flush=True,
                )
    if writer is not None:
        writer.close()
    return RunResult(out, cfg.epochs, best_top1, last_metrics, stopped, model=raw_model)


def _memory_pipeline(
    cfg: TrainConfig, data: DataBundle, train_set: Dataset, batch: int, device: torch.device, info: DistInfo
) -> tuple[DeviceBatches, DeviceBatches] | None:
    """Train and eval batches from uint8 tensors on the device, when the data allows and cfg asks for it."""
    if cfg.pipeline not in ("auto", "memory", "loader"):
        raise UsageError(f"unknown --pipeline {cfg.pipeline!r}; use auto, memory or loader")
    small = data.input_size[1] <= SMALL_IMAGE_MAX and cfg.augment in ("auto", "cifar", "none")
    if cfg.pipeline == "loader" or (cfg.pipeline == "auto" and not small):
        return None
    train_images, val_images = images_as_uint8(train_set), images_as_uint8(data.val)
    same_size = train_images is not None and tuple(train_images[0].shape[2:]) == tuple(data.input_size[1:])
    if train_images is None or val_images is None or not same_size:
        if cfg.pipeline == "memory":
            raise UsageError(
                "--pipeline memory needs images of one size equal to the input size; use --pipeline loader"
            )
        return None
    common = {
        "mean": data.mean,
        "std": data.std,
        "device": device,
        "rank": info.rank,
        "world_size": info.world_size,
        "channels_last": cfg.channels_last,
    }
    train_batches = DeviceBatches(
        *train_images, batch, train=True, augment=cfg.augment != "none", seed=cfg.seed, **common
    )
    val_batches = DeviceBatches(*val_images, max(batch, 64), train=False, **common)
    return train_batches, val_batches


def _on_device(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device, channels_last: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        yield (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def _any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Every rank must stop at the same step, or DDP would hang."""
    if not info.enabled:
        return flag
    return _all_reduce_sum([float(flag)], info, device)[0] > 0


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    """Rewrite ``metrics.csv`` from ``rows`` atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.rewrite.tmp")
    tmp.unlink(missing_ok=True)
    for row in rows:
        _append_metrics(tmp, row)
    if rows:
        os.replace(tmp, path)
    else:
        path.unlink(missing_ok=True)


def _append_metrics(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()})


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))


def eval_checkpoint_or_model(
    target: str,
    data: DataBundle,
    batch_size: int,
    device: torch.device,
    channels_last: bool = True,
    pretrained: bool = False,
    match_classes: bool = True,
) -> tuple[nn.Module, EvalResult]:
    """Evaluate a checkpoint / run directory, a registered model with published weights (``NAME.TAG`` or
    ``pretrained``), or a freshly built registered model, on ``data.val``. A checkpoint that stores class
    names must match the folder's, in order (``match_classes=False``: only their number)."""
    from .checkpoint import load_model
    from .registry import list_models
    from .weights import get_weights, split_tag

    name, tag = split_tag(target)
    if name in list_models() and (tag or pretrained):
        entry = get_weights(name, tag or True)
        if list(entry.classes) != list(data.classes):
            raise UsageError(f"{entry.name} predicts {entry.num_classes} classes ({', '.join(entry.classes[:3])}, "
                             f"...) that are not {data.name}'s ({', '.join(data.classes[:3])}, ...)")  # fmt: skip
        model = create_model(entry.name).eval()
    elif target in list_models():
        model = create_model(target, num_classes=data.num_classes)
    else:
        model = load_model(target)
        classes = model.checkpoint_meta.get("classes")
        if classes is not None and len(classes) != data.num_classes:
            raise UsageError(f"{target} predicts {len(classes)} classes but {data.name} has {data.num_classes}")
        if classes is not None and match_classes and list(classes) != list(data.classes):
            raise UsageError(f"{target} was trained on the classes {', '.join(classes[:4])}, ... but {data.name} "
                             f"holds {', '.join(data.classes[:4])}, ...; pass --ignore-class-names if they are the "
                             "same classes under other names, in the same order")  # fmt: skip
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, evaluate(model, data.val, batch_size, device, channels_last)
