"""The CPU memory allocator: which one this process runs, and glibc's malloc tuned for tensors.

A CNN step allocates and frees the same large activation tensors again and again. glibc serves blocks of
more than its mmap threshold (at most 32 MiB, dynamically adjusted) with fresh ``mmap`` calls and hands them
back on ``free``, so every step page-faults its activations in anew, and it trims freed heap tops. On this
project's 2-core CPU that made eager MobileNetV2 inference at batch 32 1.5x and CIFAR training 1.06-1.46x
slower than with the blocks kept (the README's allocator section has the commands).

:func:`tune_malloc` raises both thresholds to 1 GiB with ``mallopt`` at run time, so no ``LD_PRELOAD`` is
needed: freed blocks stay in the process and the next step reuses them. The price is a resident size that
stays at its high-water mark, which is what a training or benchmark process has anyway. The ``compactnets``
command calls it on start (``COMPACTNETS_MALLOC_TUNING=0`` turns it off); library users call it themselves.
It does nothing when another allocator (jemalloc, tcmalloc, mimalloc) is preloaded, or off glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

KEEP_BYTES = 1 << 30
"""Blocks up to this size come from the heap, and up to this much free heap top stays mapped."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_PRELOADABLE = ("jemalloc", "tcmalloc", "mimalloc")
_tuned = False


def _preloaded() -> str | None:
    """The replacement allocator preloaded or mapped into this process, if any."""
    preload = os.environ.get("LD_PRELOAD", "")
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    return next((name for name in _PRELOADABLE if name in preload or name in maps), None)


def allocator() -> str:
    """``jemalloc`` / ``tcmalloc`` / ``mimalloc`` (with jemalloc's ``MALLOC_CONF`` when set), ``glibc tuned``
    after :func:`tune_malloc`, ``glibc``, or ``default`` off Linux."""
    name = _preloaded()
    if name == "jemalloc" and os.environ.get("MALLOC_CONF"):
        return f"jemalloc ({os.environ['MALLOC_CONF']})"
    if name:
        return name
    if not sys.platform.startswith("linux"):
        return "default"
    return "glibc tuned" if _tuned else "glibc"


def tune_malloc() -> bool:
    """Keep freed tensor memory in the process (glibc only; see the module docstring). True if glibc's malloc
    is tuned now; False when it is off, another allocator runs, or this is not glibc. Safe to call again."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get("COMPACTNETS_MALLOC_TUNING", "1") == "0" or _preloaded() or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no libc.so.6)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) == 1
    return _tuned


__all__ = ["KEEP_BYTES", "allocator", "tune_malloc"]
