"""Check an image folder once before training: every file's header, and JPEG/PNG files' ends (truncation).

A file that is not an image, or a JPEG or PNG cut short, would otherwise fail inside a data-loader worker in
the middle of an epoch, with a traceback that does not name it. Opening a file reads only its header; a
JPEG or PNG without its end marker is decoded in full to tell a truncated file from one with trailing data.
The result is cached under ``COMPACTNETS_CACHE`` (default ``~/.cache/compactnets``), keyed by every file's
path, size and modification time, so an unchanged folder is checked once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

_ENDS = {"JPEG": (b"\xff\xd9",), "PNG": (b"IEND\xaeB`\x82",)}


@dataclass
class FolderCheck:
    """What the check found: unreadable files with the reason, and how many images have each (W, H)."""

    bad: list[tuple[str, str]] = field(default_factory=list)
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)

    def summary(self, total: int) -> str:
        path, reason = self.bad[0]
        more = f" and {len(self.bad) - 1} more" if len(self.bad) > 1 else ""
        return f"{len(self.bad)} of {total} files are not readable images: {path} ({reason}){more}"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compactnets"
    return Path(os.environ.get("COMPACTNETS_CACHE") or default)


def _ends_cleanly(path: str, image_format: str) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 64))
        tail = f.read().rstrip(b"\x00")
    return any(tail.endswith(end) for end in _ENDS[image_format])


def inspect_image(path: str) -> tuple[int, int] | str:
    """The image's (width, height), or why it cannot be read."""
    try:
        with Image.open(path) as image:
            size = image.size
            if image.format in _ENDS and not _ends_cleanly(path, image.format):
                image.load()  # no end marker: decode it all, which fails on a truncated file
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        text = str(err).strip().splitlines()
        return text[0] if text else type(err).__name__
    if min(size) < 1:
        return f"empty image ({size[0]}x{size[1]})"
    return size


def _key(paths: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def check_images(paths: Sequence[str], workers: int = 8) -> FolderCheck:
    """Inspect every file in ``paths`` (in parallel; cached while no file changes)."""
    cache = cache_dir() / "image-check" / f"{_key(paths)}.json"
    if cache.is_file():
        try:
            stored = json.loads(cache.read_text())
            sizes = Counter({(int(w), int(h)): n for w, h, n in stored["sizes"]})
            return FolderCheck([tuple(b) for b in stored["bad"]], sizes)  # type: ignore[misc]
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable cache entry: check again
    result = FolderCheck()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, found in zip(paths, pool.map(inspect_image, paths, chunksize=64), strict=True):
            if isinstance(found, str):
                result.bad.append((path, found))
            else:
                result.sizes[found] += 1
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        stored = {"bad": result.bad, "sizes": [[w, h, n] for (w, h), n in result.sizes.items()]}
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stored))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only cache only costs the next check
    return result
