"""Run under torchrun by tests/test_distributed.py: train a tiny model, save this rank's weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from compactnets.recipes import resolve_config
from compactnets.train import train

out, pipeline, mode = sys.argv[1], sys.argv[2], sys.argv[3]  # mode: full | stop | resume
overrides = {
    "width": 0.25,
    "train_subset": 64,
    "batch_size": 16,
    "epochs": 2,
    "lr": 0.05,
    "log_every": 1000,
    "warmup_epochs": 0.0,
    "out": out,
    "device": "cpu",
    "pipeline": pipeline,
    "mixup_alpha": 0.2,
}
result = train(
    resolve_config("antnet_g2_cifar", "fast", overrides=overrides),
    resume=mode == "resume",
    on_step=(lambda epoch, step: (epoch, step) == (0, 1)) if mode == "stop" else None,
)
torch.save(result.model.state_dict(), Path(out) / f"rank{dist.get_rank()}-{mode}.pt")
dist.destroy_process_group()
