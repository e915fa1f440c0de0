"""Pretrained weights by tag: a registry of entries (data), verified files, and the preprocessing they expect.

An entry ``NAME.TAG`` (e.g. ``pydmobilenet_add_29_050_cifar.cn_c10``) names a safetensors file, its full
sha256, where it comes from, the classes and preprocessing it expects (timm's ``pretrained_cfg`` keys) and
what its publisher measured with it. The entries compactnets trains and ships live in the package folder
``compactnets/pretrained/`` as ``NAME.TAG.json`` beside ``NAME.TAG.safetensors``: adding weights adds files, not
code. Every file is checked against its sha256 before its first use in a process.

Where a file is looked for, in order: ``checkpoint_path`` (no hash: the user's own file), the folder
``COMPACTNETS_WEIGHTS_DIR``, the package folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import WeightsError

PACKAGE_DIR = Path(__file__).with_name("pretrained")
ENV_DIR = "COMPACTNETS_WEIGHTS_DIR"
REFERENCE_SEED = 0  # reference_input(): the input whose logits every entry records


@dataclass(frozen=True)
class WeightsEntry:
    """One set of published weights for one registered model."""

    model: str
    tag: str
    file: str
    sha256: str
    classes: tuple[str, ...]
    pretrained_cfg: Mapping[str, Any]  # timm's keys: input_size, interpolation, crop_pct, mean, std, num_classes
    metrics: Mapping[str, Any]  # what the publisher measured: data, split, top1, top5, command
    source: str = "compactnets"  # who published the weights: compactnets, torchvision, ...
    license: str = "MIT"
    url: str = ""  # where to download the file when no copy is found (empty: shipped in the package)
    converter: str = ""  # how the publisher's state_dict maps onto ours: "" (our keys) or "torchvision"
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)  # recipe, epochs, run records, machine
    reference_logits: tuple[tuple[float, ...], ...] = ()  # logits for reference_input(), checked by the tests

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tag": self.tag,
            "file": self.file,
            "sha256": self.sha256,
            "classes": list(self.classes),
            "pretrained_cfg": dict(self.pretrained_cfg),
            "metrics": dict(self.metrics),
            "source": self.source,
            "license": self.license,
            "url": self.url,
            "converter": self.converter,
            "model_kwargs": dict(self.model_kwargs),
            "training": dict(self.training),
            "reference_logits": [list(row) for row in self.reference_logits],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsEntry:
        values = dict(data)
        values["classes"] = tuple(values["classes"])
        values["reference_logits"] = tuple(tuple(row) for row in values.get("reference_logits", ()))
        return cls(**values)


def reference_input(entry: WeightsEntry, batch: int = 2) -> torch.Tensor:
    """A fixed normalised-scale input (seeded) at the entry's input size, for logit checks."""
    generator = torch.Generator().manual_seed(REFERENCE_SEED)
    return torch.randn(batch, *entry.pretrained_cfg["input_size"], generator=generator)


@cache
def _entries() -> dict[str, WeightsEntry]:
    entries = {}
    for manifest in sorted(PACKAGE_DIR.glob("*.json")):
        entry = WeightsEntry.from_dict(json.loads(manifest.read_text()))
        entries[entry.name] = entry
    return entries


def list_pretrained(pattern: str = "*") -> list[str]:
    """``NAME.TAG`` of every weights entry whose name or model matches a shell-style wildcard."""
    return sorted(
        n for n, e in _entries().items() if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(e.model, pattern)
    )


def split_tag(name: str) -> tuple[str, str | None]:
    """``"NAME.TAG"`` -> (NAME, TAG); a plain name -> (name, None)."""
    model, sep, tag = name.partition(".")
    return model, (tag if sep else None)


def get_weights(model: str, tag: str | bool = True) -> WeightsEntry:
    """The entry ``model.tag``; ``tag=True`` takes the model's first (default) tag. One-line errors."""
    tags = sorted(e.tag for e in _entries().values() if e.model == model)
    if not tags:
        published = ", ".join(sorted({e.model for e in _entries().values()})) or "none"
        raise WeightsError(
            f"no pretrained weights are published for {model!r} (models with weights: {published}); "
            "train your own with `compactnets train`, or pass checkpoint_path="
        )
    chosen = tags[0] if tag is True else str(tag)
    if chosen not in tags:
        raise WeightsError(f"{model} has no weights tagged {chosen!r}; its tags: {', '.join(tags)}")
    return _entries()[f"{model}.{chosen}"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of files whose hash matched in this process


def offline() -> bool:
    """No downloads: ``COMPACTNETS_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("COMPACTNETS_OFFLINE", "HF_HUB_OFFLINE"))


def search_folders() -> list[Path]:
    """Where weights files are looked for, in order: ``COMPACTNETS_WEIGHTS_DIR``, torch.hub's cache, the package."""
    folders = [Path(os.environ[ENV_DIR]).expanduser()] if os.environ.get(ENV_DIR) else []
    return [*folders, Path(torch.hub.get_dir()) / "checkpoints", PACKAGE_DIR]


def _download(entry: WeightsEntry) -> Path:
    """Fetch ``entry.url`` into torch.hub's cache with torch.hub's downloader (it checks the hash prefix)."""
    target = search_folders()[-2] / entry.file
    if offline() or not entry.url:
        why = "offline (COMPACTNETS_OFFLINE or HF_HUB_OFFLINE is set)" if entry.url else "not in the package"
        raise WeightsError(f"{entry.name}: {target} not found and {why}; fetch {entry.url or entry.file} elsewhere "
                           f"and put it in {target.parent} or in ${ENV_DIR}")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(entry.url, str(target), hash_prefix=entry.sha256[:8], progress=True)
    except RuntimeError as err:  # torch.hub's hash check
        raise WeightsError(f"{entry.url} did not match its published sha256 ({err}); try again later") from None
    except OSError as err:
        raise WeightsError(
            f"could not download {entry.url} ({err}); put the file in {target.parent} or in ${ENV_DIR}, "
            "or set COMPACTNETS_OFFLINE=1"
        ) from None
    return target


def weights_file(entry: WeightsEntry, verify: bool = True) -> Path:
    """The entry's file (``search_folders()``, else downloaded), checked against its sha256 on first use.

    torchvision publishes only the first 8-10 hex digits of a file's sha256 (in its name, the prefix torch.hub
    checks); such entries hold that prefix and are checked against it.
    """
    path = next((f / entry.file for f in search_folders() if (f / entry.file).is_file()), None) or _download(entry)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if verify and key not in _VERIFIED:
        actual = sha256_of(path)
        if not actual.startswith(entry.sha256):
            raise WeightsError(
                f"{path} is corrupt or not the published file for {entry.name} (sha256 {actual[:16]}..., expected "
                f"{entry.sha256[:16]}...); delete it and fetch it again ({entry.url or 'reinstall compactnets'})"
            )
        _VERIFIED.add(key)
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, a compactnets checkpoint or run directory, or a plain state_dict file."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.is_file():
            raise WeightsError(f"weights file {path} not found")
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"{path} is not a readable safetensors file ({err})") from None
    from .checkpoint import load_checkpoint

    if path.is_dir():
        return load_checkpoint(path)["state_dict"]
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} not found") from None
    except Exception as err:  # torch raises many types for foreign files
        raise WeightsError(f"{path} is not a readable weights file ({str(err).splitlines()[0]})") from None
    if isinstance(data, dict) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no state_dict of tensors")
    return data


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str) -> nn.Module:
    """Load ``state_dict`` into ``model``: every tensor must fit (``num_batches_tracked`` may be absent);
    otherwise one line says how many do not."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    reshaped = [k for k in state_dict if k in own and own[k].shape != state_dict[k].shape]
    if missing or unexpected or reshaped:
        first = next(iter(missing + unexpected + reshaped))
        raise WeightsError(
            f"the weights do not fit {name}: {len(missing)} tensors missing, {len(unexpected)} unexpected, "
            f"{len(reshaped)} of another shape (first: {first}); are they for another model or class count?"
        )
    model.load_state_dict(state_dict, strict=False)
    return model


def load_user_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str) -> nn.Module:
    """The user's own file: our key names, or another library's (torchvision's) mapped by position where every
    tensor's shape agrees (:func:`compactnets.convert.remap_state_dict`)."""
    own = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k for k in state_dict if not k.endswith("num_batches_tracked")}
    if given != own:
        from .convert import remap_state_dict

        with contextlib.suppress(ValueError):  # not a positional match either: load_weights says what does not fit
            state_dict = remap_state_dict(state_dict, model)
    return load_weights(model, state_dict, name)


def load_entry(model: nn.Module, entry: WeightsEntry) -> nn.Module:
    """Load an entry's verified file into ``model``, through the entry's converter."""
    state = read_state_dict(weights_file(entry))
    if entry.converter == "torchvision":  # same tensors in the same (the paper's) order, other names
        from .convert import remap_state_dict

        try:
            state = remap_state_dict(state, model)
        except ValueError as err:
            raise WeightsError(f"{entry.name}: the file does not fit the model ({err})") from None
    elif entry.converter:
        raise WeightsError(f"{entry.name}: unknown converter {entry.converter!r}; upgrade compactnets")
    return load_weights(model, state, entry.name)


def pretrained_cfg(entry: WeightsEntry) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` for a model built with these weights."""
    return {**entry.pretrained_cfg, "num_classes": entry.num_classes, "tag": entry.tag, "hf_hub_id": None}


def final_state_dict(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The final weights of a finished run (the EMA's where the run kept one) and the checkpoint's metadata."""
    from .checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run_dir, prefer="last")
    epochs = checkpoint["config"]["epochs"]
    if checkpoint["epoch"] != epochs or checkpoint["step_in_epoch"]:
        raise WeightsError(f"{run_dir} has not finished (epoch {checkpoint['epoch']} of {epochs}); resume it first")
    state = checkpoint["state_dict"]
    if checkpoint.get("ema_state_dict"):  # AveragedModel: module.<key>, plus its counter
        state = {k.removeprefix("module."): v for k, v in checkpoint["ema_state_dict"].items() if k != "n_averaged"}
    return {k: v.contiguous() for k, v in state.items()}, checkpoint


def publish_run(run_dir: str | Path, tag: str, out_dir: str | Path = PACKAGE_DIR, **extra: Any) -> WeightsEntry:
    """Write a finished run's final weights as ``NAME.TAG.safetensors`` and its entry as ``NAME.TAG.json`` in
    ``out_dir``, with the reference logits the tests check; ``extra`` fills the entry's other fields
    (``metrics``, ``training``, ``license``)."""
    from safetensors.torch import save_file

    state, checkpoint = final_state_dict(run_dir)
    model_name, out_dir = checkpoint["model"], Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    file = f"{model_name}.{tag}.safetensors"
    save_file(state, str(out_dir / file), metadata={"format": "pt"})  # one key: the header is then deterministic
    entry = WeightsEntry(
        model=model_name,
        tag=tag,
        file=file,
        sha256=sha256_of(out_dir / file),
        classes=tuple(checkpoint["classes"]),
        pretrained_cfg={
            "input_size": list(checkpoint["input_size"]),
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": list(checkpoint["mean"]),
            "std": list(checkpoint["std"]),
        },
        model_kwargs={k: v for k, v in checkpoint.get("model_kwargs", {}).items() if k != "num_classes"},
        **{"metrics": {}, **extra},
    )
    from .registry import create_model

    model = create_model(model_name, num_classes=entry.num_classes, **entry.model_kwargs)
    load_weights(model, state, entry.name)
    with torch.no_grad():
        logits = model.eval()(reference_input(entry))
    entry = WeightsEntry.from_dict(entry.to_dict() | {"reference_logits": logits.tolist()})
    (out_dir / f"{entry.name}.json").write_text(json.dumps(entry.to_dict(), indent=1) + "\n")
    _entries.cache_clear()
    return entry


def save_pretrained(model: nn.Module, name: str, out_dir: str | Path, cfg: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` in the layout timm uses on the Hugging Face hub: ``model.safetensors``, ``config.json``
    (architecture, num_classes, pretrained_cfg, card) and a README model card. ``create_model(name,
    checkpoint_path=out_dir)`` loads it back."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})  # config.json names the model
    card = model.card.to_dict() if hasattr(model, "card") else {}
    config = {"architecture": name, "num_classes": model.num_classes, "pretrained_cfg": dict(cfg or {}), "card": card}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    cfg_lines = "\n".join(f"- {k}: {v}" for k, v in (cfg or {}).items()) or "- (not recorded)"
    (out / "README.md").write_text(
        f"---\nlibrary_name: compactnets\ntags: [image-classification, compactnets]\n---\n# {name}\n\n"
        f"{card.get('paper', '')}, {card.get('table', '')}. {model.num_classes} classes.\n\n"
        f"```python\nimport compactnets as cn\nmodel = cn.create_model({name!r}, num_classes={model.num_classes}, "
        f"checkpoint_path='{out.name}')\n```\n\nPreprocessing:\n{cfg_lines}\n"
    )
    return out
