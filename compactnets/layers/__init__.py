"""The layer vocabulary every compactnets model is built from (see docs/architecture.md)."""

from .activations import create_act, get_act
from .attention import SqueezeExcite
from .conv import ConvNormAct, DepthwiseSeparable, conv2d
from .head import ClassifierHead
from .helpers import make_divisible
from .inverted_residual import AttentionLayer, AttentionSite, InvertedResidual
from .shuffle import ChannelShuffle, channel_shuffle

__all__ = [
    "AttentionLayer",
    "AttentionSite",
    "ChannelShuffle",
    "ClassifierHead",
    "ConvNormAct",
    "DepthwiseSeparable",
    "InvertedResidual",
    "SqueezeExcite",
    "channel_shuffle",
    "conv2d",
    "create_act",
    "get_act",
    "make_divisible",
]
