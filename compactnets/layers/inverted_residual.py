"""The inverted residual block and the options that MobileNetV2, ANTNet, IGCV3 and SeesawNet vary.

MobileNetV2 (Sandler et al. 2018, Table 1): 1x1 expansion (t x C_in) -> BN -> ReLU6 -> 3x3 depthwise
-> BN -> ReLU6 -> 1x1 linear projection -> BN, with a residual when stride is 1 and C_in == C_out.
ANTNets (Table 1) adds channel attention and a grouped projection; IGCV3 and SeesawNet group both
1x1 convs (SeesawNet in uneven groups), drop the activation after the expansion and shuffle channels
after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from .activations import ActLayer
from .conv import ConvNormAct
from .drop import DropPath
from .group_conv import Groups
from .shuffle import ChannelShuffle

AttentionLayer = Callable[[int], nn.Module]
"""Builds an attention module for a given number of channels (e.g. a partial ``SqueezeExcite``)."""

AttentionSite = Literal["input", "dw", "project"]
"""Where attention acts: on the block input (c-ANTNet), after the depthwise conv (ANTNet,
MobileNetV3), or after the projection, before the residual add (SENet style, ANTNet-c)."""


class InvertedResidual(nn.Module):
    """Expansion -> depthwise -> projection, with optional attention, groups and shuffle.

    Children of ``self.branch`` (those that exist): ``attn_input``, ``expand``, ``shuffle``, ``dw``,
    ``attn``, ``project``, ``unshuffle``, ``attn_project``. ``residual=False`` forbids the shortcut even
    when shapes match (used by blocks that combine several branches).

    ``expand_groups``/``project_groups`` take an int or a tuple of split ratios (``(1, 3)``: SeesawNet's
    uneven group conv, see :class:`~compactnets.layers.UnevenGroupConv`). ``shuffle_groups`` shuffles the
    expanded channels after the expansion's BN; ``unshuffle`` permutes the projection's output by the
    inverse of a ``shuffle_groups``-group shuffle before the residual add (IGCV3's second permutation, as
    its CIFAR code has it).

    ``mid_chs`` gives the expanded width directly (MobileNetV3's "exp size" column) instead of
    ``round(in_chs * expansion)``; the expansion conv exists when it differs from ``in_chs``.
    ``drop_path_rate`` drops the residual branch per sample in training (stochastic depth, EfficientNet).
    """

    stochastic_depth = True  # set_drop_path replaces its drop_path (the constructor's drop_path_rate)

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        expansion: float = 6,
        kernel_size: int = 3,
        act: str | ActLayer = "relu6",
        attention: AttentionLayer | None = None,
        attention_site: AttentionSite = "dw",
        expand_groups: Groups = 1,
        project_groups: Groups = 1,
        expand_act: bool = True,
        shuffle_groups: int = 0,
        unshuffle: bool = False,
        expand_when_t1: bool = False,
        residual: bool = True,
        mid_chs: int | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        mid_chs = round(in_chs * expansion) if mid_chs is None else mid_chs
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if attention is not None and attention_site == "input":
            layers["attn_input"] = attention(in_chs)
        if mid_chs != in_chs or expand_when_t1:
            layers["expand"] = ConvNormAct(in_chs, mid_chs, 1, groups=expand_groups, act=act if expand_act else None)
        if shuffle_groups > 1:
            layers["shuffle"] = ChannelShuffle(shuffle_groups)
        layers["dw"] = ConvNormAct(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs, act=act)
        if attention is not None and attention_site == "dw":
            layers["attn"] = attention(mid_chs)
        layers["project"] = ConvNormAct(mid_chs, out_chs, 1, groups=project_groups, act=None)
        if unshuffle:
            if shuffle_groups < 2 or out_chs % shuffle_groups:
                raise ValueError(
                    f"unshuffle inverts a shuffle_groups-group shuffle of the {out_chs} output channels; "
                    f"set shuffle_groups to a divisor of {out_chs} greater than 1 (got {shuffle_groups})"
                )
            # shuffling C channels in C/g groups undoes a shuffle in g groups
            layers["unshuffle"] = ChannelShuffle(out_chs // shuffle_groups)
        if attention is not None and attention_site == "project":
            layers["attn_project"] = attention(out_chs)
        self.branch = nn.Sequential(layers)
        self.in_chs, self.mid_chs, self.out_chs, self.stride = in_chs, mid_chs, out_chs, stride
        self.use_residual = residual and stride == 1 and in_chs == out_chs
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 and self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return x + self.drop_path(out) if self.use_residual else out

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """The residual add (profiler protocol)."""
        return {"residual": output.numel() if self.use_residual else 0}
