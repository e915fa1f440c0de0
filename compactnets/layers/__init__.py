"""The layer vocabulary every compactnets model is built from (see docs/architecture.md)."""

from .activations import create_act, get_act
from .attention import SqueezeExcite
from .channelwise import (
    ChannelwiseConv,
    ConvClassifierHead,
    DepthwiseSeparableChannelwise,
    GroupChannelwiseConv,
    same_padding,
)
from .conv import ConvNormAct, DepthwiseSeparable, conv2d
from .drop import DropPath, drop_branch, drop_path, set_drop_path
from .group_conv import Groups, UnevenGroupConv, split_channels
from .head import ClassifierHead
from .helpers import make_divisible
from .inverted_residual import AttentionLayer, AttentionSite, InvertedResidual
from .learned_group_conv import (
    CondensedGroupConv,
    CondensedLinear,
    LearnedGroupConv,
    LearnedLinear,
    condense_model,
    group_lasso_loss,
    update_condensation,
)
from .pyramid import PyramidDepthwise, PyramidMode, fuse_pyramid_depthwise
from .shift import Shift, shift2d, shift_offsets
from .shuffle import ChannelShuffle, channel_shuffle
from .weight_init import init_weights, xavier_init

__all__ = [
    "AttentionLayer",
    "AttentionSite",
    "ChannelShuffle",
    "ChannelwiseConv",
    "ClassifierHead",
    "CondensedGroupConv",
    "CondensedLinear",
    "ConvClassifierHead",
    "ConvNormAct",
    "DepthwiseSeparable",
    "DepthwiseSeparableChannelwise",
    "DropPath",
    "GroupChannelwiseConv",
    "Groups",
    "InvertedResidual",
    "LearnedGroupConv",
    "LearnedLinear",
    "PyramidDepthwise",
    "PyramidMode",
    "Shift",
    "SqueezeExcite",
    "UnevenGroupConv",
    "channel_shuffle",
    "condense_model",
    "conv2d",
    "create_act",
    "drop_branch",
    "drop_path",
    "fuse_pyramid_depthwise",
    "get_act",
    "group_lasso_loss",
    "init_weights",
    "make_divisible",
    "same_padding",
    "set_drop_path",
    "shift2d",
    "shift_offsets",
    "split_channels",
    "update_condensation",
    "xavier_init",
]
