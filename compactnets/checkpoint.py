"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is one file saved with ``torch.save`` and loaded with ``torch.load(weights_only=True)``, which
only accepts tensors and plain containers. ``last.pt`` holds everything needed to resume exactly (model,
optimizer, scheduler, EMA, grad scaler, RNG states, position); ``best.pt`` the evaluated weights.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UsageError

FORMAT = "compactnets.checkpoint"
VERSION = 1


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the previous file or the new one, never a torn file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_checkpoint(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or a run directory (``best.pt``, else ``last.pt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        order = ["best.pt", "last.pt"] if prefer == "best" else ["last.pt", "best.pt"]
        for name in order:
            if (path / name).is_file():
                return path / name
        raise UsageError(f"{path} holds no checkpoint (best.pt or last.pt); is it a compactnets run directory?")
    if not path.is_file():
        raise UsageError(f"checkpoint {path} not found")
    return path


def load_checkpoint(path: str | Path, prefer: str = "best") -> dict[str, Any]:
    """Read a checkpoint safely; corrupt, truncated or foreign files give a clear error."""
    file = resolve_checkpoint(path, prefer)
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(
            f"{file} is not a readable compactnets checkpoint (corrupt or foreign file: {first})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{file} is not a compactnets checkpoint (no '{FORMAT}' marker)")
    if data.get("version", 0) > VERSION:
        raise UsageError(f"{file} was written by a newer compactnets (format {data['version']}); upgrade to read it")
    return data


def load_model(path: str | Path, prefer: str = "best") -> nn.Module:
    """Rebuild the model of a checkpoint or run directory and load its weights (eval mode)."""
    from .registry import create_model

    data = load_checkpoint(path, prefer)
    model = create_model(data["model"], **data.get("model_kwargs", {}))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise UsageError(f"{path}: weights do not fit {data['model']} ({str(err).splitlines()[0]})") from None
    model.checkpoint_meta = {k: data.get(k) for k in ("classes", "input_size", "epoch", "metrics", "mean", "std")}
    return model.eval()
