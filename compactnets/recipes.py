"""Training configuration and the papers' recipes as named presets.

A run's configuration is one :class:`TrainConfig`, resolved in this order: defaults < recipe < config file
< command-line flags. ``--recipe paper`` takes the recipe named by the model card. The resolved config is
saved with the run (config.json).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError


@dataclass
class TrainConfig:
    """Everything a training run depends on. Field names are the command-line flags (``--batch-size``)."""

    model: str = "mobilenetv2_cifar"
    data: str = "digits"
    data_dir: str = "data"
    download: bool = False
    out: str = ""
    recipe: str = "fast"
    # model
    width: float = 0.0  # 0: the model's default width multiplier
    drop_path: float = 0.0  # stochastic depth on residual branches, rising to this rate at the last block
    drop: float = -1.0  # dropout before the classifier; -1: the model's own
    input_size: int = 0  # 0: 32 for CIFAR and digits; an image folder's images are resized to the model card's
    init: str = "default"  # default (the model's own) or xavier
    pretrained: str = ""  # fine-tune from published weights: a tag, or "default" for the model's first
    # optimisation
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd, rmsprop or adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = False  # apply weight decay to BN parameters and biases too
    schedule: str = "cosine"  # constant, step, multistep, exponential, linear, cosine or onecycle
    milestones: list[int] = field(default_factory=list)  # epochs, for multistep
    gamma: float = 0.1  # LR factor at each milestone / step / epoch (exponential)
    step_epochs: float = 1.0  # for step and exponential: how often gamma applies
    warmup_epochs: float = 0.0
    warmup_steps: int = 0  # at least this many warm-up iterations (at most a quarter of the run)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_off_epochs: int = 0  # no mixup/cutmix in the last N epochs
    ema_decay: float = 0.0  # 0 disables the exponential moving average of weights
    precise_bn: int = 0  # before each evaluation, re-estimate BatchNorm statistics on this many training batches
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    augment: str = "auto"  # auto, cifar, imagenet or none
    skip_bad_images: bool = False  # image folders: drop unreadable files (counted) instead of refusing the folder
    # runtime
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    channels_last: bool = True
    amp: str = "auto"  # auto (bf16 where the GPU or CPU has it natively; else CUDA fp16, CPU fp32), off, bf16, fp16
    compile: bool = False
    sync_bn: bool = False
    dist_timeout: float = 300.0  # seconds a collective waits for a stalled or lost rank before the job ends
    num_workers: int = 0
    pipeline: str = "auto"  # memory (uint8 tensor on the device, batched augmentation), loader, or auto
    seed: int = 0
    deterministic: bool = False
    train_subset: int = 0  # use only the first N training images of a fixed shuffle (quick runs)
    time_limit: float = 0.0  # minutes; stop cleanly (resumable) when reached
    log_every: int = 50  # steps between log lines when stdout is not a terminal

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Recipe:
    """A paper's training recipe: the fields it sets, and where each comes from."""

    description: str
    settings: Mapping[str, Any]
    source: str


def _multistep(lr: float, milestones: list[int], epochs: int, **more: Any) -> dict[str, Any]:
    return {"lr": lr, "schedule": "multistep", "milestones": milestones, "gamma": 0.1, "epochs": epochs, **more}


RECIPES: dict[str, Recipe] = {
    "fast": Recipe(
        "short modern recipe for CPU runs: SGD-Nesterov, cosine with 1 warm-up epoch (at least 100 steps, at most a "
        "quarter of the run), label smoothing 0.1, precise BatchNorm statistics (16 batches) before each evaluation",
        {"lr": 0.1, "schedule": "cosine", "warmup_epochs": 1.0, "warmup_steps": 100, "label_smoothing": 0.1,
         "weight_decay": 5e-4, "epochs": 10, "batch_size": 128, "precise_bn": 16},
        "compactnets",
    ),
    "antnet": Recipe(
        "ANTNets Sec. 4: SGD momentum 0.9 Nesterov, lr 0.01 x0.1 at 200 and 300, 400 epochs, wd 4e-5 on convs",
        _multistep(0.01, [200, 300], 400, nesterov=True, weight_decay=4e-5, decay_norm_and_bias=False),
        "ANTNets Sec. 4 (batch size not given: 128 assumed)",
    ),
    "pydmobilenet": Recipe(
        "PydMobileNet Sec. 4.2: NAG 0.9, lr 0.1 x0.1 at 150 and 225, 320 epochs, wd 1e-4, batch 128, Xavier init",
        _multistep(0.1, [150, 225], 320, nesterov=True, weight_decay=1e-4, batch_size=128, init="xavier"),
        "PydMobileNet Sec. 4.2; the released notebook also used mixup (see pydmobilenet_mixup)",
    ),
    "pydmobilenet_mixup": Recipe(
        "pydmobilenet plus the released notebook's mixup (alpha 1, off for the last 20 epochs)",
        _multistep(0.1, [150, 225], 320, nesterov=True, weight_decay=1e-4, batch_size=128, init="xavier",
                   mixup_alpha=1.0, mixup_off_epochs=20),
        "thanhhvnqb/pydmobilenet_mxnet notebook (ARCHITECTURES.md 3.4)",
    ),
    "seesaw_cifar": Recipe(
        "SeesawNet Sec. 5.1 CIFAR: SGD 0.9, lr 0.1 /10 at 200, 300, 350, wd 1e-4, batch 64",
        _multistep(0.1, [200, 300, 350], 400, nesterov=False, weight_decay=1e-4, batch_size=64),
        "SeesawNet Sec. 5.1 (total epochs not stated: 400, as the released configs)",
    ),
    "seesaw_imagenet": Recipe(
        "SeesawNet Sec. 5.1 ImageNet: SGD 0.9, lr 0.045 x0.98 per epoch, 400 epochs, wd 4e-5, batch 96",
        {"lr": 0.045, "schedule": "exponential", "gamma": 0.98, "epochs": 400, "nesterov": False,
         "weight_decay": 4e-5, "batch_size": 96},
        "SeesawNet Sec. 5.1",
    ),
    "channelnet": Recipe(
        "ChannelNets Sec. 4.2: SGD 0.9, 80 epochs, lr 0.1 x0.1 at 45, 60, 65, 70, 75, batch 512",
        _multistep(0.1, [45, 60, 65, 70, 75], 80, nesterov=True, batch_size=512, weight_decay=4e-5,
                   label_smoothing=0.1),
        "ChannelNets Sec. 4.2; Nesterov, wd 4e-5 and label smoothing 0.1 from the official code",
    ),
    "mobilenetv2_imagenet": Recipe(
        "MobileNetV2 Sec. 6.1: RMSProp (decay 0.9, momentum 0.9), lr 0.045 x0.98 per epoch, wd 4e-5, batch 96",
        {"optimizer": "rmsprop", "lr": 0.045, "schedule": "exponential", "gamma": 0.98, "momentum": 0.9,
         "weight_decay": 4e-5, "batch_size": 96, "epochs": 300},
        "MobileNetV2 Sec. 6.1 (epochs not stated: 300 as torchvision's reference training)",
    ),
    "mobilenet_imagenet": Recipe(
        "MobileNets Sec. 4: RMSProp, little weight decay, no label smoothing (lr not stated: MobileNetV2's used); "
        "wd 4e-5 on all conv weights, depthwise included",
        {"optimizer": "rmsprop", "lr": 0.045, "schedule": "exponential", "gamma": 0.98, "momentum": 0.9,
         "weight_decay": 4e-5, "batch_size": 96, "epochs": 300},
        "MobileNets Sec. 4 states only RMSProp and small weight decay, with little or none on the depthwise "
        "filters (TF-slim's mobilenet_v1_arg_scope: weight_decay 4e-5, regularize_depthwise=False). "
        "TrainConfig cannot exempt them, so 4e-5 applies to them too (a deviation); the rest follows "
        "MobileNetV2",
    ),
    # ---- the survey's families (baselines of the seed papers' tables)
    "resnet_cifar": Recipe(
        "ResNet CIFAR (He et al. 2016, Sec. 4.2): SGD 0.9, lr 0.1 /10 at 32k and 48k iterations, 64k in all, "
        "wd 1e-4, batch 128",
        _multistep(0.1, [82, 123], 164, nesterov=False, weight_decay=1e-4, batch_size=128, decay_norm_and_bias=True),
        "He et al. 2016 Sec. 4.2 (iterations converted at 391 per epoch)",
    ),
    "resnext_cifar": Recipe(
        "ResNeXt CIFAR (Xie et al. 2017, Sec. 5.3): SGD Nesterov 0.9, lr 0.1 /10 at 150 and 225, 300 epochs, "
        "wd 5e-4, batch 128",
        _multistep(0.1, [150, 225], 300, nesterov=True, weight_decay=5e-4, batch_size=128, decay_norm_and_bias=True),
        "Xie et al. 2017 Sec. 5.3 (150 and 225 as the paper states; the official code, facebookresearch/ResNeXt "
        "train.lua at 833a384, decays once past 49% and 74% of 300 epochs, i.e. from epochs 148 and 223); "
        "Nesterov from that code's optimizer state",
    ),
    "resnet_imagenet": Recipe(
        "ResNeXt ImageNet (Xie et al. 2017, Sec. 4): SGD Nesterov 0.9, lr 0.1 /10 at 30, 60 and 90, 100 epochs, "
        "wd 1e-4, batch 256",
        _multistep(0.1, [30, 60, 90], 100, nesterov=True, weight_decay=1e-4, batch_size=256,
                   decay_norm_and_bias=True),
        "Xie et al. 2017 Sec. 4 (lr divided by 10 three times on fb.resnet.torch's every-30-epochs schedule); "
        "100 epochs, Nesterov and decay of every parameter from the official code (facebookresearch/ResNeXt at "
        "833a384: opts.lua nEpochs 100 for ImageNet, train.lua decay floor((epoch - 1) / 30), nesterov = true)",
    ),
    "senet_imagenet": Recipe(
        "SENet (Hu et al. 2018, Sec. 6): SGD 0.9, lr 0.6 /10 every 30 epochs, 100 epochs, batch 1024",
        {"lr": 0.6, "schedule": "step", "step_epochs": 30, "gamma": 0.1, "epochs": 100, "nesterov": False,
         "weight_decay": 1e-4, "batch_size": 1024},
        "Hu et al. 2018 Sec. 6 (weight decay not stated there: 1e-4 as ResNet); it produced Table 2's accuracies, "
        "not those of the released models, which were retrained (270 epochs, batch 256, lr 0.1 /10 at 125, 200, "
        "250: the authors in hujie-frank/SENet issue 62)",
    ),
    "densenet_cifar": Recipe(
        "DenseNet CIFAR (Huang et al. 2017, Sec. 4.2): SGD Nesterov 0.9, lr 0.1 /10 at 50% and 75%, 300 epochs, "
        "wd 1e-4, batch 64",
        _multistep(0.1, [150, 225], 300, nesterov=True, weight_decay=1e-4, batch_size=64, decay_norm_and_bias=True),
        "Huang et al. 2017 Sec. 4.2",
    ),
    "densenet_imagenet": Recipe(
        "DenseNet ImageNet (Huang et al. 2017, Sec. 4.2): SGD Nesterov 0.9, lr 0.1 /10 at 30 and 60, 90 epochs, "
        "wd 1e-4, batch 256",
        _multistep(0.1, [30, 60], 90, nesterov=True, weight_decay=1e-4, batch_size=256, decay_norm_and_bias=True),
        "Huang et al. 2017 Sec. 4.2",
    ),
    "condensenet_cifar": Recipe(
        "CondenseNet CIFAR (Huang et al. 2018, Sec. 5): SGD Nesterov 0.9, cosine from 0.1, 300 epochs, wd 1e-4, "
        "batch 64",
        {"lr": 0.1, "schedule": "cosine", "epochs": 300, "nesterov": True, "weight_decay": 1e-4, "batch_size": 64},
        "Huang et al. 2018 Sec. 5",
    ),
    "condensenet_cifar_600": Recipe(
        "condensenet_cifar for 600 epochs: CondenseNet-182 (Table 4's '*')",
        {"lr": 0.1, "schedule": "cosine", "epochs": 600, "nesterov": True, "weight_decay": 1e-4, "batch_size": 64},
        "Huang et al. 2018 Sec. 5 and Table 4 ('*': trained 600 epochs; so the official README)",
    ),
    "condensenet_imagenet": Recipe(
        "CondenseNet ImageNet (Huang et al. 2018, Sec. 5): SGD Nesterov 0.9, cosine from 0.1, 120 epochs, wd 1e-4, "
        "batch 256",
        {"lr": 0.1, "schedule": "cosine", "epochs": 120, "nesterov": True, "weight_decay": 1e-4, "batch_size": 256},
        "Huang et al. 2018 Sec. 5; lr 0.1 is the official code's default (ShichenLiu/CondenseNet main.py at "
        "011b71d: lr 0.1, cosine, Nesterov, wd 1e-4, 120 epochs; the README's ImageNet command sets only -b 256). "
        "The CondenseNet paper is not among the sources here",
    ),
    "shufflenet_imagenet": Recipe(
        "ShuffleNet (Zhang et al. 2018, Sec. 4): SGD, wd 4e-5, linear decay from 0.5 to 0, batch 1024, 3e5 "
        "iterations (about 240 epochs)",
        {"lr": 0.5, "schedule": "linear", "epochs": 240, "nesterov": False, "weight_decay": 4e-5, "batch_size": 1024},
        "Zhang et al. 2018 Sec. 4; ShuffleNet V2 (Ma et al. 2018) trains the same way",
    ),
    "mobilenetv3_imagenet": Recipe(
        "MobileNetV3 (Howard et al. 2019, Sec. 6.1): RMSProp momentum 0.9, lr 0.1 x0.99 every 3 epochs, wd 1e-5, "
        "batch 4096, EMA 0.9999",
        {"optimizer": "rmsprop", "lr": 0.1, "schedule": "exponential", "gamma": 0.99, "step_epochs": 3,
         "momentum": 0.9, "weight_decay": 1e-5, "batch_size": 4096, "ema_decay": 0.9999, "epochs": 300},
        "Howard et al. 2019 Sec. 6.1 (epochs not stated: 300 assumed)",
    ),
    "efficientnet_imagenet": Recipe(
        "EfficientNet (Tan & Le 2019, Sec. 5.2): RMSProp decay 0.9 momentum 0.9, wd 1e-5, lr 0.256 x0.97 every "
        "2.4 epochs after 5 warm-up epochs, label smoothing 0.1, EMA 0.9999, batch 4096, 350 epochs",
        {"optimizer": "rmsprop", "lr": 0.256, "schedule": "exponential", "gamma": 0.97, "step_epochs": 2.4,
         "warmup_epochs": 5, "label_smoothing": 0.1, "momentum": 0.9, "weight_decay": 1e-5, "batch_size": 4096,
         "ema_decay": 0.9999, "epochs": 350},
        "Tan & Le 2019 Sec. 5.2 (optimizer, wd, lr 0.256 and its decay, EMA; no batch size). The public TPU code "
        "(tensorflow/tpu models/official/efficientnet/main.py at 01b67067) trains at batch 2048 with lr "
        "0.016 x batch/256 = 0.128 for 218,949 steps (350 epochs); the paper's 0.256 is that rule at batch 4096, "
        "so the preset pairs 0.256 with 4096. 5 warm-up epochs and label smoothing 0.1 are that code's. "
        "AutoAugment and stochastic depth (Sec. 5.2) are not applied",
    ),
    "squeezenet_imagenet": Recipe(
        "SqueezeNet (Iandola et al. 2016): SGD 0.9, lr 0.04 decayed linearly to 0, wd 2e-4, batch 512, 170k "
        "iterations (about 68 epochs)",
        {"lr": 0.04, "schedule": "linear", "epochs": 68, "nesterov": False, "weight_decay": 2e-4, "batch_size": 512},
        "the current SqueezeNet v1.0 Caffe solver (forresti/SqueezeNet; the paper states no recipe; its README "
        "gives batch 512 as batch_size 32 x iter_size 16). The released model, whose 57.5% top-1 the card holds, "
        "shipped with the original solver (SqueezeNet_v1.0/solver.prototxt at 19c381d and 1515b38): lr 0.08, "
        "poly power 0.5, batch 1024 (iter_size 32), 85k iterations, wd 2e-4 (also about 68 epochs); TrainConfig "
        "has no poly schedule to replay it",
    ),
    "squeezenext_imagenet": Recipe(
        "SqueezeNext (Gholami et al. 2018, Sec. 4): SGD momentum 0.9, lr 0.4, 780 warm-up iterations, then decay "
        "to 0 (linear here; the solvers use poly power 2), wd 1e-4, batch 1024, 120 epochs",
        {"lr": 0.4, "schedule": "linear", "warmup_steps": 780, "epochs": 120, "nesterov": False,
         "weight_decay": 1e-4, "batch_size": 1024},
        "Gholami et al. 2018 Sec. 4 (batch, epochs) and the authors' solvers (amirgholami/SqueezeNext at "
        "917399d, */solver.prototxt: base_lr 0.4, poly power 2, 150,136 iterations, warm-up 780 iterations from "
        "0.1, momentum 0.9, wd 1e-4, Caffe's plain SGD). Approximate: TrainConfig has no poly schedule (linear "
        "decay instead) and its warm-up starts near 0, not at 0.1",
    ),
    "xception_imagenet": Recipe(
        "Xception (Chollet 2017, Sec. 4.3): SGD momentum 0.9, lr 0.045 x0.94 every 2 epochs, wd 1e-5",
        {"lr": 0.045, "schedule": "exponential", "gamma": 0.94, "step_epochs": 2, "nesterov": False,
         "weight_decay": 1e-5, "batch_size": 256, "epochs": 100},
        "Chollet 2017 Sec. 4.3 (epochs and batch not stated: approximate)",
    ),
    "nasnet_imagenet": Recipe(
        "NASNet-A mobile (Zoph et al. 2018, App. A): RMSProp, label smoothing 0.1, lr decay 0.97 every 2 epochs "
        "(approximate; auxiliary head and ScheduledDropPath not implemented)",
        {"optimizer": "rmsprop", "lr": 0.04, "schedule": "exponential", "gamma": 0.97, "step_epochs": 2,
         "label_smoothing": 0.1, "weight_decay": 4e-5, "batch_size": 1024, "epochs": 250},
        "Zoph et al. 2018 Appendix A (values approximate)",
    ),
    "randwire_imagenet": Recipe(
        "RandWire small regime (Xie et al. 2019, Sec. 4): SGD 0.9, half-period cosine from 0.1, 250 epochs, "
        "wd 5e-5, label smoothing 0.1, batch 256",
        {"lr": 0.1, "schedule": "cosine", "epochs": 250, "nesterov": False, "weight_decay": 5e-5,
         "label_smoothing": 0.1, "batch_size": 256},
        "Xie et al. 2019 Sec. 4",
    ),
    "shiftnet_cifar": Recipe(
        "ShiftResNet CIFAR (Wu et al. 2018): SGD 0.9, lr 0.1 /10 at 82 and 124, 160 epochs, wd 5e-4, batch 128",
        _multistep(0.1, [82, 124], 160, nesterov=False, weight_decay=5e-4, batch_size=128),
        "the authors' training script (alvinwan/shiftresnet-cifar main.py at 053d002: lr 0.1 while epoch <= 81, "
        "/10 while <= 123, /100 after, epochs 0-159, plain momentum 0.9, weight decay 5e-4, batch 128)",
    ),
    "shiftnet_imagenet": Recipe(
        "ShiftNet ImageNet (Wu et al. 2018): SGD, ResNet-style step schedule (approximate)",
        _multistep(0.1, [30, 60], 90, nesterov=False, weight_decay=4e-5, batch_size=256),
        "Wu et al. 2018; values approximate",
    ),
}  # fmt: skip


def recipe_names() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str, model: str | None = None) -> Recipe:
    """A recipe by name; ``paper`` means the one named by ``model``'s card."""
    if name == "paper":
        from .registry import model_card

        card_recipe = model_card(model).recipe if model else None
        if not card_recipe:
            raise UsageError(f"model {model!r} names no paper recipe; choose one of: {', '.join(recipe_names())}")
        name = card_recipe
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; choose paper or one of: {', '.join(recipe_names())}")
    return RECIPES[name]


def _coerce(name: str, value: Any) -> Any:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name not in fields:
        known = ", ".join(sorted(fields))
        raise UsageError(f"unknown config field {name!r}; fields are: {known}")
    default = getattr(TrainConfig(), name)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if isinstance(default, list):
            items = value.split(",") if isinstance(value, str) else value
            return [int(v) for v in items if str(v).strip()]
        return type(default)(value)
    except (TypeError, ValueError):
        raise UsageError(f"config field {name!r}: cannot use {value!r} (expected {type(default).__name__})") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read overrides from a JSON or TOML file (flat ``field = value`` pairs)."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of field = value pairs")
    return data


def resolve_config(
    model: str,
    recipe: str = "fast",
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < recipe < config file < explicit overrides, every value checked against its field's type."""
    values: dict[str, Any] = {"model": model, "recipe": recipe}
    from_file = load_config_file(config_file) if config_file else {}
    recipe = str((overrides or {}).get("recipe") or from_file.get("recipe") or recipe)
    if recipe == "paper":  # record which recipe that was
        from .registry import model_card

        recipe = model_card(model).recipe or "paper"
    values["recipe"] = recipe
    values.update(get_recipe(recipe, model).settings)
    values.update(from_file)
    values.update({k: v for k, v in (overrides or {}).items() if k != "recipe"})
    return check_config(TrainConfig(**{k: _coerce(k, v) for k, v in values.items()}))


# field: (lowest allowed, first value not allowed)
_RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, math.inf), "batch_size": (1, math.inf), "lr": (0, math.inf),
    "momentum": (0, 1), "weight_decay": (0, math.inf), "gamma": (0, math.inf),
    "step_epochs": (0, math.inf), "warmup_epochs": (0, math.inf), "warmup_steps": (0, math.inf),
    "label_smoothing": (0, 1), "mixup_alpha": (0, math.inf), "cutmix_alpha": (0, math.inf),
    "mixup_off_epochs": (0, math.inf), "ema_decay": (0, 1), "precise_bn": (0, math.inf),
    "grad_clip": (0, math.inf), "train_subset": (0, math.inf), "time_limit": (0, math.inf),
    "num_workers": (0, math.inf), "input_size": (0, math.inf), "width": (0, math.inf),
    "drop_path": (0, 1), "drop": (-1, 1), "dist_timeout": (1, math.inf),
}  # fmt: skip


def check_config(cfg: TrainConfig) -> TrainConfig:
    """One-line errors for values that would run and give wrong results (``--lr nan``, ``--epochs 0``)."""
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if not math.isfinite(value) or not low <= value < high:
            flag = "--" + name.replace("_", "-")
            bound = f"at least {low:g}" + (f" and below {high:g}" if math.isfinite(high) else "")
            raise UsageError(f"{flag} must be a finite number {bound}, got {value}")
    if cfg.drop < 0 and cfg.drop != -1:
        raise UsageError(f"--drop must be a rate in [0, 1), or -1 for the model's own dropout, got {cfg.drop}")
    return cfg
