"""What the machine is, read at run time: the machines behind this project change between sessions.

:func:`environment` is the record every measurement and run keeps beside its numbers.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .allocator import allocator


@cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first processor (empty where ``/proc/cpuinfo`` is not available)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def device_name(device: str | torch.device = "cpu") -> str:
    """The GPU's name for a CUDA device, else the processor's."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def git_commit() -> str:
    """The commit of the source tree this package runs from ("" outside a git checkout)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    return ""


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "-"


def environment(device: str | torch.device = "cpu", threads: int | None = None) -> dict[str, Any]:
    """What measured numbers depend on: versions, processor and device, threads, allocator, load, commit, time.

    ``device`` is what ran (``"cpu"``, ``"cuda"``, ``torch.device("cuda:0")``); ``threads`` defaults to torch's
    intra-op threads now. ``device`` in the record is the device's name (GPU or processor), ``torch_device``
    the torch device.
    """
    from . import __version__  # the package is fully imported by the time anything measures

    return {
        "compactnets": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": np.__version__,
        "onnxruntime": _version("onnxruntime"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "device": device_name(device),
        "torch_device": str(torch.device(device)),
        "cores": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "allocator": allocator(),
        "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(sys.argv),
    }
