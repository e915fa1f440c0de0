"""``compactnets train`` and ``compactnets eval``: parse arguments, call compactnets.train."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import UsageError
from .recipes import RECIPES, TrainConfig, load_config_file, resolve_config

_SKIP = {"model", "recipe", "out"}  # positional or given their own flag below


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; only flags given on the command line override (default SUPPRESS)."""
    group = parser.add_argument_group("overrides (any TrainConfig field; defaults come from the recipe)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(TrainConfig(), f.name)
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        elif isinstance(default, list):
            group.add_argument(flag, default=argparse.SUPPRESS, metavar="N,N,...", help="comma-separated")
        else:
            group.add_argument(
                flag, type=type(default), default=argparse.SUPPRESS, metavar=type(default).__name__.upper()
            )


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - _SKIP
    values = {k: v for k, v in vars(args).items() if k in names}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects key=value, got {item!r}")
        values[key.strip().replace("-", "_")] = value.strip()
    return values


AUTO_RESUME_FREE = ("out", "time_limit", "log_every", "num_workers", "dist_timeout")
"""Fields a requeued or restarted job may change without becoming another run."""


def _resume_auto(args: argparse.Namespace, overrides: dict[str, Any]) -> str | None:
    """``--resume auto``: the run directory to continue, or None to start afresh in an empty one; a directory
    holding another model's or configuration's run is refused. Every rank decides alike: rank 0 writes the
    first checkpoint only after all ranks have joined the process group."""
    if not args.model or not args.out:
        raise UsageError("--resume auto needs the model and --out DIR (the command a restarted job repeats)")
    run = Path(args.out)
    if not (run / "last.pt").is_file():
        return None
    wanted = resolve_config(args.model, args.recipe, args.config, overrides | {"out": args.out}).to_dict()
    saved = load_config_file(run / "config.json") if (run / "config.json").is_file() else {}
    differ = [k for k, v in wanted.items() if k not in AUTO_RESUME_FREE and k in saved and saved[k] != v]
    if differ:
        shown = ", ".join(f"{k} {saved[k]!r} there, {wanted[k]!r} here" for k in differ[:3])
        raise UsageError(f"--resume auto: {run} holds another run ({shown}); choose another --out")
    overrides.update({k: wanted[k] for k in AUTO_RESUME_FREE if k != "out"})  # this command's, not the saved
    return str(run)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainingError, train

    overrides = _explicit(args)
    if args.resume == "auto":
        args.resume = _resume_auto(args, overrides)
    if args.resume:
        run = Path(args.resume)
        saved = run / "config.json"
        if not saved.is_file():
            raise UsageError(f"--resume {run}: no config.json there; is it a compactnets run directory?")
        config = load_config_file(saved)
        if args.model and args.model != config.get("model"):
            raise UsageError(f"--resume {run}: that run trains {config.get('model')!r}, not {args.model!r}")
        cfg = resolve_config(config["model"], config.get("recipe", "fast"), saved, overrides | {"out": str(run)})
    else:
        if not args.model:
            raise UsageError("name a model to train (see `compactnets list`), or --resume RUN_DIR")
        if args.out:
            overrides["out"] = args.out
        cfg = resolve_config(args.model, args.recipe, args.config, overrides)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    try:
        result = train(cfg, resume=bool(args.resume))
    except TrainingError as err:
        raise UsageError(str(err)) from None
    except (RuntimeError, OSError, ValueError) as err:
        if "RANK" not in os.environ:
            raise
        # under torchrun: one line naming this rank and the cause; torchrun then stops the other ranks
        cause = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        if "timed out" in cause.lower() or "timeout" in cause.lower():
            cause += f" (no answer from another rank within --dist-timeout {cfg.dist_timeout:g} s: it stalled or died)"
        print(f"compactnets: rank {os.environ['RANK']}: {type(err).__name__}: {cause}", file=sys.stderr, flush=True)
        return 1
    if result.stopped_early:
        return 130 if not cfg.time_limit else 0
    final = result.last.get("val_top1")
    headline = (
        f"final val top-1 {final:.2f}% (best epoch {result.best_top1:.2f}%)"
        if final is not None
        else (f"best val top-1 {result.best_top1:.2f}%")
    )
    if os.environ.get("RANK", "0") == "0":  # one line per job, not per process
        print(f"done: {cfg.model} on {cfg.data}, {cfg.epochs} epochs: {headline} -> {result.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from .data import build_data
    from .registry import list_models, model_card
    from .train import DistInfo, eval_checkpoint_or_model, pick_device

    size = (3, args.input_size, args.input_size) if args.input_size else None
    target = Path(args.target)
    weights = _weights_of(args.target, args.pretrained)
    if weights is not None:  # published weights bring their own preprocessing
        size = size or tuple(weights.pretrained_cfg["input_size"])  # type: ignore[assignment]
    elif size is None and (target.is_dir() or target.is_file()):
        from .checkpoint import load_checkpoint

        size = tuple(load_checkpoint(target).get("input_size") or ()) or None  # type: ignore[assignment]
    elif size is None and args.target in list_models():
        size = model_card(args.target).input_size
    cfg = weights.pretrained_cfg if weights is not None else None
    augment = "auto" if cfg else "none"
    data = build_data(args.data, args.data_dir, args.download, size, augment, cfg, args.skip_bad_images)
    device = pick_device(args.device, DistInfo())
    _, result = eval_checkpoint_or_model(
        args.target,
        data,
        args.batch_size,
        device,
        args.channels_last,
        pretrained=args.pretrained,
        match_classes=not args.ignore_class_names,
    )
    record = {
        "target": weights.name if weights is not None else args.target,
        "data": args.data,
        **({"weights_sha256": weights.sha256} if weights is not None else {}),
        **result.to_dict(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if target.is_dir():
        (target / "eval.json").write_text(json.dumps(record, indent=2) + "\n")
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(
            f"{args.target} on {args.data} ({result.images} images): top-1 {result.top1:.2f}%  "
            f"top-5 {result.top5:.2f}%  loss {result.loss:.4f}  {result.images_per_s:.0f} img/s"
        )
    return 0


def _weights_of(target: str, pretrained: bool) -> Any:
    """The weights entry an eval target names (``NAME.TAG``, or ``NAME`` with --pretrained), else None."""
    from .spec import spec_kind
    from .weights import get_weights, split_tag

    if spec_kind(target, pretrained) != "weights":  # an unknown target stops here, naming the closest models
        return None
    name, tag = split_tag(target)
    return get_weights(name, tag or True)


def register_cli(sub: argparse._SubParsersAction) -> None:
    recipes = ", ".join(sorted(RECIPES))
    p = sub.add_parser(
        "train",
        help="train a model (CPU, GPU, or torchrun/DDP)",
        description="Train a registered model. Config: defaults < --recipe < --config FILE < flags. "
        f"Recipes: paper (the model card's), {recipes}.",
    )
    p.add_argument("model", nargs="?", help="registered name (omit with --resume)")
    p.add_argument("--recipe", default="fast", help="recipe preset, or 'paper' for the model card's (default: fast)")
    p.add_argument("--config", help="JSON or TOML file of field = value overrides")
    p.add_argument("--out", help="run directory (default: runs/MODEL-DATA-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR|auto",
                   help="continue an interrupted run exactly; 'auto' (with MODEL --out DIR): continue DIR's run if "
                        "it holds one of this model and configuration, else start it (for restarted jobs)")  # fmt: skip
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any field (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint, run directory or fresh model on a data set")
    p.add_argument("target", help="run directory, checkpoint file, NAME.TAG (published weights) or model name")
    p.add_argument("--pretrained", action="store_true", help="NAME: evaluate its default published weights")
    p.add_argument("--ignore-class-names", action="store_true",
                   help="evaluate a checkpoint on a folder whose class names differ from its own")  # fmt: skip
    p.add_argument("--data", default="digits", help="cifar10, cifar100, digits or an image-folder path")
    p.add_argument("--data-dir", default="data", help="where CIFAR lives (default: ./data)")
    p.add_argument("--download", action="store_true", help="download CIFAR if missing (needs a network)")
    p.add_argument("--input-size", type=int, help="square input size (default: the checkpoint's or model card's)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="image folders: leave out unreadable files (counted) instead of refusing them")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)
