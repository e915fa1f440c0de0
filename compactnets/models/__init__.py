"""Model families; importing this package registers every name."""

from . import (
    antnet,
    channelnet,
    condensenet,
    densenet,
    efficientnet,
    mobilenetv1,
    mobilenetv2,
    mobilenetv3,
    nasnet,
    pydmobilenet,
    randwire,
    resnet,
    seesawnet,
    shiftnet,
    shufflenet,
    squeezenet,
    squeezenext,
    xception,
)
from .base import CompactNet

__all__ = ["CompactNet", "antnet", "channelnet", "mobilenetv1", "mobilenetv2", "pydmobilenet", "seesawnet"]
__all__ += ["condensenet", "densenet", "resnet"]
__all__ += ["efficientnet", "mobilenetv3", "shufflenet", "squeezenet"]
__all__ += ["nasnet", "randwire", "shiftnet", "squeezenext", "xception"]
