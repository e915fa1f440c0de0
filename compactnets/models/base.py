"""The contract every compactnets model keeps (timm's): ``features`` then ``head``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing
from torch.utils.checkpoint import checkpoint

from .. import features as features_module
from ..errors import InputShapeError
from ..layers import ClassifierHead, init_weights, xavier_init

__all__ = ["MAX_PROBED_SIDE", "CompactNet", "init_weights", "xavier_init"]  # the inits: layers/weight_init.py

MAX_PROBED_SIDE = 4096
"""The largest input side :meth:`CompactNet.min_input_size` tries before giving up."""


class CompactNet(nn.Module):
    """Base of every model: ``forward_features`` (image -> last feature map) and ``forward_head``.

    Subclasses set ``self.features`` (an ``nn.Module``), ``self.head`` (a :class:`ClassifierHead`
    or anything with ``reset(num_classes)``) and ``self.in_chans``.
    """

    features: nn.Module
    head: ClassifierHead
    in_chans: int = 3
    grad_checkpointing: bool = False
    _min_input_side: int | None = None  # found once, on the first too-small input

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if is_fx_symbolic_tracing():  # torch.fx (torchvision's create_feature_extractor) traces the plain graph
            return self.features(x)
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{self.model_name} expects images of shape (N, {self.in_chans}, H, W), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        if not torch.compiler.is_compiling():
            self._check_dtype(x)
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return self.checkpointed_features(x)
        if torch.compiler.is_compiling():  # torch.compile and torch.export trace the plain graph
            return self.features(x)
        try:
            return self.features(x)
        except RuntimeError as err:  # e.g. a pooling window larger than its input: "Output size is too small"
            too_small = None if isinstance(err, torch.OutOfMemoryError) else self._too_small(*x.shape[-2:])
            if too_small is None:
                raise  # not a size problem: the original error
            raise InputShapeError(too_small) from None

    def _check_dtype(self, x: torch.Tensor) -> None:
        """Integer images, or a precision other than the weights' outside autocast, get a one-line error."""
        if not x.is_floating_point():
            raise InputShapeError(
                f"{self.model_name} takes floating-point images (normalised, as the data pipeline makes them), "
                f"got {x.dtype}; convert with x.float() / 255 and normalise"
            )
        weight = next(self.parameters(), None)
        if weight is not None and x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise InputShapeError(
                f"{self.model_name}'s weights are {weight.dtype} but the input is {x.dtype}: convert one to the "
                "other (model.to(dtype) or x.to(dtype)), or run under torch.autocast"
            )

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def num_features(self) -> int:
        return self.head.in_chs

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (``0`` makes the model return pooled features)."""
        self.head.reset(num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in backward instead of keeping them (timm's API): less memory,
        about one more forward of time. BatchNorm's running statistics are updated again by the recomputation."""
        self.grad_checkpointing = enable

    def checkpointed_features(self, x: torch.Tensor) -> torch.Tensor:
        """``features`` with every stage under ``torch.utils.checkpoint`` (non-reentrant, RNG state kept, so
        dropout and drop path repeat exactly)."""
        for _, stage in self.feature_modules():
            x = checkpoint(stage, x, use_reentrant=False)
        return x

    def feature_modules(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs are candidate feature maps: the stages of ``features``, in order."""
        return [(f"features.{name}", module) for name, module in self.features.named_children()]

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """timm's ``feature_info``: the deepest map at every reduction, ``{"num_chs", "reduction", "module"}``
        (:func:`compactnets.features.feature_info`, at the card's input size)."""
        if "_feature_info" not in self.__dict__:
            self.__dict__["_feature_info"] = features_module.feature_info(self)
        return self.__dict__["_feature_info"]

    def forward_intermediates(
        self, x: torch.Tensor, indices: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The last feature map and the maps at ``indices`` of ``feature_info`` (default all), as timm's."""
        return features_module.forward_intermediates(self, x, indices)

    @property
    def model_name(self) -> str:
        """The registered name (from the card ``create_model`` attaches), else the class name."""
        card = getattr(self, "card", None)
        return card.name if card is not None and card.name else type(self).__name__

    def min_input_size(self) -> int | None:
        """The smallest side ``s`` such that the features run on an ``s x s`` input (``None``: none up to
        ``MAX_PROBED_SIDE`` does).

        Found once by bisection on the meta device (shapes only: no weights copied, no arithmetic) and cached; a
        network whose every pooling window and unpadded conv fits a 1x1 map gives 1.
        """
        if self._min_input_side is None:
            self._min_input_side = _smallest_side(lambda side: self._features_run_at(side, side))
        return self._min_input_side

    def check_input_size(self, height: int, width: int) -> None:
        """Raise :class:`InputShapeError` ("NAME needs at least HxW input, got hxw") if ``height x width`` is
        smaller than the network's pooling and unpadded convs allow; a no-op for any input that runs."""
        too_small = self._too_small(height, width)
        if too_small is not None:
            raise InputShapeError(too_small)

    def _too_small(self, height: int, width: int) -> str | None:
        """The error message if the features fail on a ``height x width`` input for being too small, else None."""
        height, width = int(height), int(width)
        if self._features_run_at(height, width):
            return None
        side = self.min_input_size()
        if side is None or min(height, width) >= side:
            return None
        return f"{self.model_name} needs at least {side}x{side} input, got {height}x{width}"

    def _features_run_at(self, height: int, width: int) -> bool:
        """Whether ``self.features`` runs on one ``height x width`` image, tried on the meta device in eval mode."""
        try:
            features_module.meta_forward(self.features, (1, self.in_chans, height, width))
        except RuntimeError:
            return False
        return True


def _smallest_side(runs: Callable[[int], bool]) -> int | None:
    """The smallest ``s`` with ``runs(s)``: doubling from 1, then bisection (a network that runs on an input
    runs on every larger one)."""
    high = 1
    while not runs(high):
        if high >= MAX_PROBED_SIDE:
            return None
        high *= 2
    low = high // 2  # fails, or 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if runs(middle) else (middle, high)
    return high
