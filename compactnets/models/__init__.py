"""Model families; importing this package registers every name."""

from . import antnet, mobilenetv1, mobilenetv2
from .base import CompactNet

__all__ = ["CompactNet", "antnet", "mobilenetv1", "mobilenetv2"]
