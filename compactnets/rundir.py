"""Run directories: one training at a time in a directory, and nothing overwritten that a run did not write.

A run holds an exclusive ``flock`` on ``DIR/.lock`` for its whole life (the kernel releases it when the process
dies, so a killed run never leaves a stale lock). A new run starts only in a missing or empty directory; a
directory with a run in it is continued with ``--resume`` (one killed before its first checkpoint starts
again); anything else (a user's own files, an older tool's
output) is refused, never overwritten or appended to. Temporary files a killed run left behind
(:func:`compactnets.checkpoint.save_atomic`'s ``.NAME.*.tmp``) are removed when the next run claims the directory.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from .errors import UsageError

LOCK = ".lock"


def _check_writable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a directory for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot create the run directory ({err.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: the run directory is not writable")


def check_new_run(out: Path) -> None:
    """Refuse to start a new run in ``out`` unless it is missing or empty (a lock file alone counts as empty)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a directory for the run")
    if (out / "last.pt").exists():
        raise UsageError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK and not _is_stale_tmp(p))
    if entries and not _never_checkpointed(out, entries):
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise UsageError(f"--out {out} is not empty (holds {shown}) and is not a run to resume; choose a new --out")


START_FILES = {"config.json", "env.json", "tb"}
"""What a run writes before its first checkpoint."""


def _never_checkpointed(out: Path, entries: list[str]) -> bool:
    """A run killed before its first checkpoint: only its start files, and a config.json this trainer wrote. A
    restarted job (``--resume auto``, torchrun's restarts) starts it again, overwriting only those."""
    if not set(entries) <= START_FILES or "config.json" not in entries:
        return False
    try:
        config = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"model", "recipe", "out", "epochs"} <= config.keys()


def _is_stale_tmp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


class RunLock:
    """The exclusive lock of a run directory: ``acquire()`` at the start of a run, ``release()`` at its end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._file: IO[str] | None = None
        self._created = False

    def acquire(self) -> RunLock:
        self._created = not self.out.exists()
        _check_writable(self.out)
        handle = (self.out / LOCK).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UsageError(
                f"{self.out} is in use by another training ({holder}); wait for it, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle
        for stale in self.out.iterdir():  # a run killed mid-save left these; no live run owns them (we hold the lock)
            if _is_stale_tmp(stale):
                stale.unlink(missing_ok=True)
        return self

    def release(self) -> None:
        """Unlock; a directory this run created and left empty (it failed before writing) is removed."""
        if self._file is not None:
            lock = self.out / LOCK
            if self._created and [p.name for p in self.out.iterdir()] == [LOCK]:
                lock.unlink()
                self.out.rmdir()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
