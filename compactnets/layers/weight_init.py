"""Weight initialisation shared by the model families and the trainer."""

from __future__ import annotations

from torch import nn

from .pyramid import PyramidDepthwise


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
