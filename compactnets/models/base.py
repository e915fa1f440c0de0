"""The contract every compactnets model keeps (timm's): ``features`` then ``head``."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ClassifierHead, PyramidDepthwise


class CompactNet(nn.Module):
    """Base of every model: ``forward_features`` (image -> last feature map) and ``forward_head``.

    Subclasses set ``self.features`` (an ``nn.Module``), ``self.head`` (a :class:`ClassifierHead`
    or anything with ``reset(num_classes)``) and ``self.in_chans``.
    """

    features: nn.Module
    head: ClassifierHead
    in_chans: int = 3

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"{type(self).__name__} expects images of shape (N, {self.in_chans}, H, W), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        return self.features(x)

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


def init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convs, unit BN, N(0, 0.01) linear: the MobileNetV2 reference init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def xavier_init(model: nn.Module) -> None:
    """Xavier (Glorot) uniform weights for every conv, linear and pyramid kernel, zero biases, unit BN.

    MXNet's default ``mx.init.Xavier()`` (uniform, average of fan-in and fan-out, magnitude 3), which
    the PydMobileNet code uses: bound ``sqrt(6 / (fan_in + fan_out))``, torch's ``xavier_uniform_``.
    Frozen parameters (a fixed-affine BN) keep gamma = 1, beta = 0 all the same.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, PyramidDepthwise):
            for weight in m.weights:  # each kernel as the depthwise conv it stands for
                nn.init.xavier_uniform_(weight)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
