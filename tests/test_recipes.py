"""The papers' recipes against their sources (issue 20): each preset holds the values its source states, and
says where it deviates. A change to a preset that contradicts its source fails here."""

from __future__ import annotations

import pytest

import compactnets as cn
from compactnets.recipes import RECIPES, resolve_config

# preset -> the values its source gives (the source is named in the preset's own ``source``).
SOURCE_VALUES = {
    # alvinwan/shiftresnet-cifar main.py: lr 0.1 while epoch <= 81, /10 while <= 123, /100 after; 160 epochs
    "shiftnet_cifar": {"lr": 0.1, "milestones": [82, 124], "epochs": 160, "weight_decay": 5e-4, "nesterov": False},
    # amirgholami/SqueezeNext solver.prototxt: base_lr 0.4, warm-up 780 iterations, plain momentum, wd 1e-4
    "squeezenext_imagenet": {"lr": 0.4, "warmup_steps": 780, "nesterov": False, "momentum": 0.9, "weight_decay": 1e-4},
    # ResNeXt Sec. 4 on fb.resnet.torch's schedule (facebookresearch/ResNeXt opts.lua, train.lua)
    "resnet_imagenet": {"lr": 0.1, "milestones": [30, 60, 90], "epochs": 100, "nesterov": True, "weight_decay": 1e-4},
    "resnext_cifar": {"lr": 0.1, "milestones": [150, 225], "epochs": 300, "nesterov": True, "weight_decay": 5e-4},
    # EfficientNet Sec. 5.2 and the TPU code (0.016 x 4096 / 256 = 0.256)
    "efficientnet_imagenet": {"lr": 0.256, "batch_size": 4096, "label_smoothing": 0.1, "warmup_epochs": 5.0},
    # ShichenLiu/CondenseNet main.py defaults; CondenseNet-182 trained 600 epochs
    "condensenet_imagenet": {"lr": 0.1, "schedule": "cosine", "epochs": 120, "nesterov": True, "weight_decay": 1e-4},
    "condensenet_cifar_600": {"lr": 0.1, "schedule": "cosine", "epochs": 600},
    # SENet Sec. 6
    "senet_imagenet": {"lr": 0.6, "batch_size": 1024, "epochs": 100, "step_epochs": 30.0},
    # the current SqueezeNet v1.0 solver (its source names the original one, which produced the card's top-1)
    "squeezenet_imagenet": {"lr": 0.04, "batch_size": 512, "weight_decay": 2e-4},
    "mobilenet_imagenet": {"optimizer": "rmsprop", "weight_decay": 4e-5},
}


@pytest.mark.parametrize("recipe", sorted(SOURCE_VALUES))
def test_preset_holds_its_sources_values(recipe: str) -> None:
    cfg = resolve_config("mobilenetv2_cifar", recipe)
    for field, value in SOURCE_VALUES[recipe].items():
        assert getattr(cfg, field) == value, f"{recipe}: {field} is {getattr(cfg, field)!r}, its source {value!r}"


@pytest.mark.parametrize(
    ("recipe", "said"),
    [
        ("squeezenext_imagenet", ["poly power 2", "warm-up starts near 0"]),  # schedules TrainConfig lacks
        ("squeezenet_imagenet", ["original solver", "lr 0.08", "poly power 0.5", "57.5%"]),
        ("mobilenet_imagenet", ["depthwise", "a deviation"]),
        ("efficientnet_imagenet", ["batch 2048", "0.016 x batch/256"]),
        ("senet_imagenet", ["Table 2's accuracies", "retrained"]),
        ("condensenet_imagenet", ["main.py"]),
    ],
)
def test_preset_names_its_deviations(recipe: str, said: list[str]) -> None:
    text = RECIPES[recipe].description + " " + RECIPES[recipe].source
    for words in said:
        assert words in text, f"{recipe} does not say {words!r}"


@pytest.mark.parametrize(
    ("model", "recipe"),
    [
        ("condensenet_182_cifar", "condensenet_cifar_600"),  # Table 4's '*': 600 epochs
        ("condensenet_86_cifar", "condensenet_cifar"),
        ("resnext50_32x4d", "resnet_imagenet"),
        ("resnext29_16x64d_cifar", "resnext_cifar"),
        ("shiftresnet20_cifar", "shiftnet_cifar"),
        ("densenet_bc_190_k40_cifar", "densenet_cifar"),
    ],
)
def test_cards_name_their_papers_recipe(model: str, recipe: str) -> None:
    assert cn.model_card(model).recipe == recipe
    assert resolve_config(model, "paper").recipe == recipe
