"""Training and evaluation: one loop, read top to bottom, on CPU, one GPU or many through torchrun/DDP.

``_train`` reads as the run: :func:`start_run` (job, device, directory, seeds), :func:`load_data`,
:func:`build_model`, :class:`TrainBatches`, :class:`TrainState` (what the steps change, and what last.pt holds),
:class:`RunLog` (the directory's files), then epochs of :func:`train_one_epoch` (the step, in one block) and
:func:`end_epoch` (evaluate, checkpoint, log).

A run directory holds config.json (the resolved config), env.json (versions, device, threads, allocator, git
commit), metrics.csv (one row per epoch), events for TensorBoard when it is installed, last.pt (everything to
resume exactly) and best.pt (the weights with the best validation top-1).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
import random
import signal
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

from .amp import amp_dtype, cpu_has_native_bf16, keep_depthwise_fp32, strided_depthwise_only
from .checkpoint import load_checkpoint, save_atomic
from .data import SMALL_IMAGE_MAX, DataBundle, build_data
from .errors import UsageError
from .fastdata import DeviceBatches, images_as_uint8
from .machine import environment as machine_environment
from .models.base import xavier_init
from .recipes import TrainConfig
from .registry import create_model, model_card
from .rundir import RunLock, check_new_run
from .spec import ResolvedModel, resolve_spec
from .weights import WeightsEntry, get_weights

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
        timeout = datetime.timedelta(seconds=timeout_s)
        store = _restart_store(info, timeout)
        dist.init_process_group(backend=backend, timeout=timeout, store=store, rank=info.rank, world_size=world_size)
    return info


def _restart_store(info: DistInfo, timeout: datetime.timedelta) -> dist.Store | None:
    """The store of a job torchrun restarted (``--max-restarts``), or None for the default (env://) one.

    torchrun's agent shares one rendezvous store with every attempt of its workers, and env:// adds no
    per-attempt prefix to it, so a restarted process group reads the last attempt's keys and never forms
    (PyTorch issue 135712). With one agent (one node) the restart count is the same on every worker and
    names a fresh prefix; across nodes it is not, so say what to do instead of hanging.
    """
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    if attempt == 0 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    if int(os.environ.get("GROUP_WORLD_SIZE", "1")) > 1:
        raise UsageError(
            "this multi-node job was restarted by torchrun, whose shared rendezvous store would make the new "
            "process group hang: launch torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in its environment"
        )
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    store = dist.TCPStore(addr, port, info.world_size, is_master=False, timeout=timeout)
    return dist.PrefixStore(f"compactnets/attempt_{attempt}", store)


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
    """What the numbers of a run depend on: :func:`compactnets.machine.environment` (versions, processor,
    device, threads, allocator, commit), the world size and when the run started."""
    return machine_environment(device) | {"world_size": info.world_size, "started": time.strftime("%Y-%m-%d %H:%M:%S")}


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


@dataclass(frozen=True)
class Run:
    """What every part of one run shares: its config, this process's place in the job, device, directory."""

    cfg: TrainConfig
    info: DistInfo
    device: torch.device
    out: Path


def start_run(cfg: TrainConfig, resume: bool) -> tuple[Run, dict[str, Any] | None]:
    """Join the job, pick the device, check (or load, to resume) the run directory, then seed every RNG."""
    wants_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    info = init_distributed("cuda" if wants_cuda else "cpu", cfg.dist_timeout)
    device = pick_device(cfg.device, info)
    if info.enabled and not cfg.out:
        raise UsageError("under torchrun, pass --out so that every rank writes to the same run directory")
    out = Path(cfg.out) if cfg.out else _default_out(cfg)
    checkpoint = load_checkpoint(out, prefer="last") if resume else None
    if not resume:
        check_new_run(out)
    seed_everything(cfg.seed + info.rank, cfg.deterministic)
    return Run(cfg, info, device, out), checkpoint


def load_data(run: Run, checkpoint: dict[str, Any] | None) -> tuple[DataBundle, Dataset, WeightsEntry | None]:
    """The data (normalised as the ``--pretrained`` weights expect), the training subset, and those weights."""
    cfg = run.cfg
    size = (3, cfg.input_size, cfg.input_size) if cfg.input_size else None
    if size is None and Path(cfg.data).expanduser().is_dir():  # an image folder: resized to the card's input
        size = model_card(cfg.model).input_size
    weights = (
        get_weights(cfg.model, True if cfg.pretrained == "default" else cfg.pretrained) if cfg.pretrained else None
    )
    norm = {k: weights.pretrained_cfg[k] for k in ("mean", "std")} if weights else None
    data = build_data(cfg.data, cfg.data_dir, cfg.download, size, cfg.augment, norm, cfg.skip_bad_images)
    train_set: Dataset = data.train
    if cfg.train_subset:
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed))
        train_set = Subset(train_set, order[: cfg.train_subset].tolist())
    if checkpoint and checkpoint.get("classes") and checkpoint["classes"] != data.classes:
        raise UsageError(
            f"{run.out} was trained on {len(checkpoint['classes'])} classes; {cfg.data} has {data.num_classes}"
        )
    return data, train_set, weights


def build_model(run: Run, data: DataBundle, weights: WeightsEntry | None, resuming: bool) -> nn.Module:
    """The model on its device: fine-tuned from ``weights`` (a resume loads its own), optionally Xavier-initialised."""
    cfg = run.cfg
    if cfg.init not in ("default", "xavier"):
        raise UsageError(f"unknown init {cfg.init!r}; use default or xavier")
    if cfg.init == "xavier" and weights is not None:
        raise UsageError("--init xavier would overwrite the --pretrained weights; leave --init default")
    fine_tune = weights.tag if weights is not None and not resuming else False
    model = create_model(cfg.model, **_model_kwargs(cfg, data.num_classes), pretrained=fine_tune)
    if cfg.init == "xavier":
        xavier_init(model)
    model.to(run.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and run.info.enabled and run.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


@dataclass
class TrainBatches:
    """Each epoch's training batches, from device memory (small images) or a DataLoader, resumable mid-epoch."""

    loader: DataLoader
    sampler: ResumableDistributedSampler
    loader_rng: torch.Generator
    memory: tuple[DeviceBatches, DeviceBatches] | None
    per_rank_batch: int
    steps_per_epoch: int

    @classmethod
    def build(cls, run: Run, data: DataBundle, train_set: Dataset) -> TrainBatches:
        cfg, info = run.cfg, run.info
        per_rank_batch = cfg.batch_size // info.world_size
        if per_rank_batch < 1 or cfg.batch_size % info.world_size:
            raise UsageError(
                f"--batch-size {cfg.batch_size} (global) must be a multiple of the {info.world_size} processes"
            )
        memory = _memory_pipeline(cfg, data, train_set, per_rank_batch, run.device, info)
        sampler = ResumableDistributedSampler(train_set, info, cfg.seed)
        # the loader draws worker seeds from its own generator, re-seeded every epoch: the global RNG (augmentation,
        # dropout, mixup) then only advances with the samples themselves, which keeps resume exact
        loader_rng = torch.Generator()
        loader = DataLoader(
            train_set,
            batch_size=per_rank_batch,
            sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=run.device.type == "cuda",
            drop_last=True,
            generator=loader_rng,
        )
        steps = len(memory[0]) if memory else len(sampler) // per_rank_batch
        if steps == 0:
            raise UsageError(f"the training set ({len(train_set)} images) is smaller than one batch ({cfg.batch_size})")
        return cls(loader, sampler, loader_rng, memory, per_rank_batch, steps)

    @property
    def source(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        return self.memory[0] if self.memory else self.loader

    def epoch(self, run: Run, epoch: int, first_step: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` from ``first_step`` on, in the order an uninterrupted run sees them."""
        if self.memory:
            self.memory[0].set_epoch(epoch, first_step)
        self.sampler.set_epoch(epoch)
        self.sampler.start_index = first_step * self.per_rank_batch
        self.loader_rng.manual_seed(run.cfg.seed * 100_003 + epoch * 1_009 + run.info.rank)
        return self.source

    def whole_epoch(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches from its start (precise BN)."""
        self.sampler.start_index = 0
        return self.source


@dataclass
class TrainState:
    """Everything the optimizer steps change; :meth:`state_dict` is what ``last.pt`` holds beside the RNG states."""

    model: nn.Module  # the module itself: not wrapped by DDP, not compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: AveragedModel | None
    epoch: int = 0  # where the run continues: this epoch (0-based) ...
    step: int = 0  # ... at this step
    best_top1: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)  # every finished epoch's metrics row

    @classmethod
    def build(
        cls, cfg: TrainConfig, model: nn.Module, steps_per_epoch: int, device: torch.device, amp: torch.dtype | None
    ) -> TrainState:
        optimizer = build_optimizer(cfg, model)
        scheduler = build_scheduler(cfg, optimizer, steps_per_epoch)
        scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
        ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
            if cfg.ema_decay
            else None
        )
        return cls(model, optimizer, scheduler, scaler, ema)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step,
            "best_top1": self.best_top1,
            "state_dict": self.model.state_dict(),
            "ema_state_dict": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["state_dict"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        if self.ema is not None and checkpoint.get("ema_state_dict") is not None:
            self.ema.load_state_dict(checkpoint["ema_state_dict"])
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step_in_epoch"]
        self.best_top1 = checkpoint.get("best_top1", -1.0)
        self.history = list(checkpoint.get("history", []))


class RunLog:
    """A run directory's files: config.json, env.json, metrics.csv, TensorBoard events, last.pt and best.pt.

    Only the main process writes; every process joins :meth:`save_last` (it gathers their RNG states).
    """

    def __init__(self, run: Run, meta: dict[str, Any]) -> None:
        self.run, self.meta, self.out = run, meta, run.out
        self.writer: Any = None

    def start(self, env: dict[str, Any], history: list[dict[str, float]] | None) -> None:
        """Write config.json and env.json; on a resume, rewrite metrics.csv from the checkpoint's ``history``
        (rows a kill kept out of it, or wrote twice)."""
        if not self.run.info.is_main:
            return
        if history is not None:
            _write_metrics(self.out / "metrics.csv", history)
        self.out.mkdir(parents=True, exist_ok=True)
        config = self.run.cfg.to_dict() | {"out": str(self.out)}
        (self.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        first_epoch = len(history or []) + 1
        env = env | {"sessions": [*_sessions(self.out / "env.json", history is not None), _session(env, first_epoch)]}
        (self.out / "env.json").write_text(json.dumps(env, indent=2) + "\n")
        self.writer = _tensorboard(self.out)

    def save_last(self, state: TrainState, metrics: dict[str, float] | None = None) -> None:
        rng = [_rng_state()]
        if self.run.info.enabled:
            gathered: list[Any] = [None] * self.run.info.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if self.run.info.is_main:
            extra = {"config": self.run.cfg.to_dict(), "rng": rng, "metrics": metrics or {}}
            save_atomic(self.meta | state.state_dict() | extra, self.out / "last.pt")

    def save_best(self, state: TrainState, metrics: dict[str, float]) -> None:
        if self.run.info.is_main:
            best = {"state_dict": state.eval_model.state_dict(), "best_top1": state.best_top1, "epoch": state.epoch}
            save_atomic(self.meta | best | {"metrics": metrics}, self.out / "best.pt")

    def record_epoch(self, m: dict[str, float]) -> None:
        """Append the epoch's row to metrics.csv and TensorBoard, and print it."""
        if not self.run.info.is_main:
            return
        _append_metrics(self.out / "metrics.csv", m)
        if self.writer is not None:
            for key, value in m.items():
                self.writer.add_scalar(key, value, int(m["epoch"]))
        print(
            f"epoch {int(m['epoch'])}/{self.run.cfg.epochs}: train loss {m['train_loss']:.4f} "
            f"top-1 {m['train_top1']:.2f}% | val loss {m['val_loss']:.4f} top-1 {m['val_top1']:.2f}% "
            f"top-5 {m['val_top5']:.2f}% | {m['train_images_per_s']:.0f} img/s, {m['epoch_seconds']:.0f}s",
            flush=True,
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _train(cfg: TrainConfig, resume: bool, on_step: Callable[[int, int], bool] | None) -> RunResult:
    run, checkpoint = start_run(cfg, resume)
    data, train_set, weights = load_data(run, checkpoint)
    model = build_model(run, data, weights, resuming=checkpoint is not None)
    batches = TrainBatches.build(run, data, train_set)
    autocast_dtype = amp_dtype(cfg.amp, run.device)
    # CPU bf16: some of oneDNN's depthwise kernels are slower in bf16 than in fp32 (benchmarks/results/train_bf16.md)
    on_cpu_bf16 = autocast_dtype == torch.bfloat16 and run.device.type == "cpu"
    fp32_depthwise = keep_depthwise_fp32(model) if on_cpu_bf16 else 0
    state = TrainState.build(cfg, model, batches.steps_per_epoch, run.device, autocast_dtype)
    if run.info.enabled:
        device_ids = [run.device.index] if run.device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    step_model = torch.compile(model) if cfg.compile else model
    if checkpoint is not None:
        state.load_state_dict(checkpoint)
        _restore_rng(checkpoint["rng"], run.info)
    log = RunLog(run, _checkpoint_meta(cfg, data))
    env = _env_record(run, batches, autocast_dtype, fp32_depthwise)
    log.start(env, state.history if checkpoint is not None and "history" in checkpoint else None)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    mixer = _mixer(cfg, data.num_classes)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    with _StopRequest() as stop:

        def should_stop(epoch: int, step: int) -> bool:
            user_stop = on_step(epoch, step) if on_step else False
            over_time = cfg.time_limit > 0 and time.perf_counter() - started > cfg.time_limit * 60
            return _any_rank(stop.requested or user_stop or over_time, run.info, run.device)

        while state.epoch < cfg.epochs:
            mixing = mixer if mixer is not None and state.epoch < cfg.epochs - cfg.mixup_off_epochs else None
            stats = train_one_epoch(run, state, step_model, batches, criterion, mixing, autocast_dtype, should_stop)
            if stats.stopped:
                log.save_last(state)
                log.close()
                if run.info.is_main:
                    print(f"stopped at epoch {state.epoch + 1} step {state.step}; resume with: compactnets train "
                          f"{cfg.model} --resume {run.out}", flush=True)  # fmt: skip
                return RunResult(run.out, state.epoch, state.best_top1, metrics, stopped_early=True, model=state.model)
            metrics = end_epoch(run, state, stats, batches, data, autocast_dtype, log)
    log.close()
    return RunResult(run.out, cfg.epochs, state.best_top1, metrics, False, model=state.model)


@dataclass
class EpochStats:
    """Running sums of one epoch's training steps (this process's share)."""

    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    loss_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0
    stopped: bool = False  # asked to stop: ``state`` points at the next step


def train_one_epoch(
    run: Run,
    state: TrainState,
    step_model: nn.Module,
    batches: TrainBatches,
    criterion: nn.Module,
    mixer: Callable[..., Any] | None,
    autocast_dtype: torch.dtype | None,
    should_stop: Callable[[int, int], bool],
) -> EpochStats:
    """The optimizer steps of epoch ``state.epoch`` from ``state.step``, until its end or ``should_stop``."""
    cfg, device, stats = run.cfg, run.device, EpochStats()
    steps_per_epoch = batches.steps_per_epoch
    progress = Progress(steps_per_epoch, f"epoch {state.epoch + 1}/{cfg.epochs}", cfg.log_every,
                        run.info.is_main, state.step)  # fmt: skip
    step_model.train()
    for step, (x, y) in enumerate(batches.epoch(run, state.epoch, state.step), start=state.step):
        if step >= steps_per_epoch:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x, target = mixer(x, y) if mixer is not None else (x, y)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = step_model(x)
            loss = criterion(logits.float(), target)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at epoch {state.epoch + 1}, step {step + 1}; training "
                                f"stopped. {_good_state(run.out)}. Lower --lr or set --grad-clip.")  # fmt: skip
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            state.scaler.unscale_(state.optimizer)
            nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        state.step = step + 1
        stats.loss_sum += loss.item() * len(y)
        stats.correct += (logits.argmax(1) == y).sum().item()
        stats.seen += len(y)
        progress.update(
            loss=f"{stats.loss_sum / stats.seen:.3f}",
            acc=f"{100 * stats.correct / stats.seen:.1f}%",
            lr=f"{state.optimizer.param_groups[0]['lr']:.4g}",
            ips=f"{stats.seen * run.info.world_size / (time.perf_counter() - stats.started):.0f}/s",
        )
        if should_stop(state.epoch, step):
            stats.stopped = True
            break
    progress.close()
    stats.seconds = time.perf_counter() - stats.started
    return stats


def end_epoch(
    run: Run,
    state: TrainState,
    stats: EpochStats,
    batches: TrainBatches,
    data: DataBundle,
    autocast_dtype: torch.dtype | None,
    log: RunLog,
) -> dict[str, float]:
    """Evaluate, refuse non-finite results, then write best.pt, last.pt and metrics.csv, in that order: a kill
    between any two is repaired by the resume (the epoch is redone, or metrics.csv is rewritten from the history)."""
    cfg, info, device = run.cfg, run.info, run.device
    eval_model = state.eval_model
    if state.ema is not None and cfg.channels_last:
        eval_model.to(memory_format=torch.channels_last)
    if cfg.precise_bn:
        recalibrate_batchnorm(eval_model, _on_device(batches.whole_epoch(), device, cfg.channels_last),
                              cfg.precise_bn, info)  # fmt: skip
    val = batches.memory[1] if batches.memory else data.val
    result = evaluate(eval_model, val, max(batches.per_rank_batch, 64), device, cfg.channels_last, autocast_dtype,
                      cfg.num_workers, info)  # fmt: skip
    loss_sum, correct, seen = _all_reduce_sum([stats.loss_sum, stats.correct, stats.seen], info, device)
    metrics = {
        "epoch": state.epoch + 1,
        "lr": state.optimizer.param_groups[0]["lr"],
        "train_loss": loss_sum / max(seen, 1),
        "train_top1": 100 * correct / max(seen, 1),
        "val_loss": result.loss,
        "val_top1": result.top1,
        "val_top5": result.top5,
        "epoch_seconds": time.perf_counter() - stats.started,
        "train_images_per_s": seen / max(stats.seconds, 1e-9),
        "val_images_per_s": result.images_per_s,
    }
    _refuse_non_finite(result.loss, eval_model, state.epoch + 1, log)
    improved = result.top1 > state.best_top1
    state.best_top1 = max(state.best_top1, result.top1)
    state.history.append(metrics)
    state.epoch, state.step = state.epoch + 1, 0
    if improved:
        log.save_best(state, metrics)
    log.save_last(state, metrics)
    log.record_epoch(metrics)
    return metrics


def _refuse_non_finite(val_loss: float, model: nn.Module, epoch: int, log: RunLog) -> None:
    """Non-finite weights (or a non-finite validation loss) are never saved as best or last."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if math.isfinite(val_loss) and not bad:
        return
    what = f"{len(bad)} weight tensors (first: {bad[0]})" if bad else "the validation loss"
    raise TrainingError(f"{what} became non-finite in epoch {epoch}; training stopped and nothing of it was "
                        f"saved. {_good_state(log.out)}. Lower --lr or set --grad-clip.")  # fmt: skip


def _good_state(out: Path) -> str:
    """Which checkpoint still holds the last good state, for an error message."""
    last = out / "last.pt"
    return f"{last} still holds the last good state" if last.is_file() else "no checkpoint was written yet"


def _restore_rng(states: list[dict[str, Any]], info: DistInfo) -> None:
    if len(states) == info.world_size:
        _set_rng_state(states[info.rank])
    elif info.is_main:
        print(
            f"warning: checkpoint has RNG states for {len(states)} processes, this job has {info.world_size}; "
            "augmentation will not repeat exactly",
            file=sys.stderr,
        )


def _checkpoint_meta(cfg: TrainConfig, data: DataBundle) -> dict[str, Any]:
    """What a checkpoint says about its model and data, so that ``load_model`` can rebuild it alone."""
    return {
        "model": cfg.model,
        "model_kwargs": _model_kwargs(cfg, data.num_classes),
        "classes": data.classes,
        "input_size": list(data.input_size),
        "mean": list(data.mean),
        "std": list(data.std),
    }


SESSION_KEYS = ("started", "command", "cpu", "threads", "world_size", "amp", "git_commit")


def _session(env: dict[str, Any], first_epoch: int) -> dict[str, Any]:
    """What one invocation of a run (the first, or a resume) ran with, and the epoch it started at."""
    return {key: env.get(key) for key in SESSION_KEYS} | {"first_epoch": first_epoch}


def _sessions(path: Path, resuming: bool) -> list[dict[str, Any]]:
    """The sessions an earlier env.json recorded (a resume keeps them, so the first command is never lost)."""
    if not resuming or not path.is_file():
        return []
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return list(earlier.get("sessions") or [_session(earlier, 1)])


def _env_record(run: Run, batches: TrainBatches, autocast_dtype: torch.dtype | None, fp32_depthwise: int) -> dict:
    return environment(run.device, run.info) | {
        "per_process_batch": batches.per_rank_batch,
        "global_batch": run.cfg.batch_size,
        "amp_setting": run.cfg.amp,
        "amp": str(autocast_dtype),
        "amp_fp32_depthwise_layers": fp32_depthwise,
        "amp_fp32_depthwise": ("strided" if strided_depthwise_only() else "all") if fp32_depthwise else "none",
        "cpu_native_bf16": cpu_has_native_bf16(),
        "lr_note": "lr applies to the global batch; scale it linearly if you change --batch-size",
    }


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
    """Evaluate what ``target`` names (:func:`compactnets.spec.resolve_spec`: a checkpoint / run directory,
    published weights ``NAME.TAG`` or ``pretrained``, or a freshly built registered model) on ``data.val``.
    A checkpoint that stores class names must match the folder's, in order (``match_classes=False``: only
    their number)."""
    resolved = resolve_spec(target, pretrained=pretrained, num_classes=data.num_classes)
    _check_classes(resolved, data, match_classes)
    model = resolved.model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, evaluate(model, data.val, batch_size, device, channels_last)


def _check_classes(resolved: ResolvedModel, data: DataBundle, match_classes: bool) -> None:
    """Refuse weights whose recorded classes are not the data's (published weights: exactly, in order)."""
    classes, entry = resolved.classes, resolved.weights
    if classes is None:
        return
    if entry is not None and list(classes) != list(data.classes):
        raise UsageError(f"{entry.name} predicts {entry.num_classes} classes ({', '.join(classes[:3])}, "
                         f"...) that are not {data.name}'s ({', '.join(data.classes[:3])}, ...)")  # fmt: skip
    if len(classes) != data.num_classes:
        raise UsageError(f"{resolved.spec} predicts {len(classes)} classes but {data.name} has {data.num_classes}")
    if match_classes and list(classes) != list(data.classes):
        raise UsageError(f"{resolved.spec} was trained on the classes {', '.join(classes[:4])}, ... but "
                         f"{data.name} holds {', '.join(data.classes[:4])}, ...; pass --ignore-class-names if "
                         "they are the same classes under other names, in the same order")  # fmt: skip
