"""Load weights from other libraries (torchvision, timm) into compactnets models."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def remap_state_dict(source: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map ``source`` onto ``model``'s keys by position, checking every shape.

    Works when both implementations register the same tensors in the same order (the paper's layer
    order), which is what makes a positional mapping a structural check rather than a guess.
    """
    target = model.state_dict()
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src_items) != len(dst_keys):
        raise ValueError(f"source has {len(src_items)} tensors, {type(model).__name__} has {len(dst_keys)}")
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), dst_key in zip(src_items, dst_keys, strict=True):
        if tensor.shape != target[dst_key].shape:
            raise ValueError(
                f"shape mismatch: {src_key} {tuple(tensor.shape)} -> {dst_key} {tuple(target[dst_key].shape)}"
            )
        mapped[dst_key] = tensor
    for key in target:  # keep our own counters
        if key.endswith("num_batches_tracked"):
            mapped[key] = target[key]
    return mapped


def load_torchvision_weights(model: nn.Module, torchvision_model: nn.Module) -> nn.Module:
    """Copy a torchvision model's weights into the equivalent compactnets model (strict)."""
    model.load_state_dict(remap_state_dict(torchvision_model.state_dict(), model), strict=True)
    return model
