"""Channel-wise convolutions (ChannelNets, Gao, Wang, Ji, NeurIPS 2018, Sec. 3).

A channel-wise convolution treats the C channels at each spatial position as a 1-D signal of length C
and convolves it with a small shared kernel of size ``dc``: ``dc`` parameters and ``dc`` MACs per
output element, instead of the ``m x n`` of a 1x1 conv. Three layers are built from it: the group
channel-wise conv (Sec. 3.2), the depth-wise separable channel-wise conv (Sec. 3.3) and the
convolutional classification layer (Sec. 3.4).

The paper describes these as 3-D convolutions over the input seen as one ``C x H x W`` map
(ARCHITECTURES.md 5.1: ``Conv3d(1, k, (dc, 1, 1))`` on ``x.unsqueeze(1)``). Here each is the equivalent
``nn.Conv1d``: the same weights and outputs, but no 5-D tensors, so ``model.to(memory_format=
torch.channels_last)`` works (it rejects 5-D weights); the profiler counts ``nn.Conv1d`` exactly; ONNX and
``torch.export`` see an ordinary convolution; and for a channels_last input, whose channels are the
contiguous axis, the views in and out are free. Timed on this (shared) CPU against the Conv3d and a
Conv2d over an ``(N, 1, C, H * W)`` view, it was the fastest of the three on channels_last inputs and
within about 30% of the Conv2d form on NCHW inputs; the Conv3d was the slowest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from .conv import conv2d


def same_padding(length: int, kernel_size: int, stride: int = 1) -> tuple[int, int]:
    """TensorFlow's ``'SAME'`` padding along one axis, as (before, after).

    The output has ``ceil(length / stride)`` elements; an odd total puts the extra element after
    (kernel 64, stride 1: 31 before, 32 after; kernel 8, stride 2 on 512 channels: 3 and 3).
    """
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel_size - length, 0)
    return total // 2, total - total // 2


class ChannelwiseConv(nn.Module):
    """Channel-wise convolution (Sec. 3.1): 1-D convs along the channel axis, shared over positions.

    ``num_kernels`` independent kernels of size ``kernel_size`` slide over the ``channels`` input channels
    with ``stride``; the outputs of kernel ``k`` form the ``k``-th contiguous group of output channels
    (kernel-major, as the official code's unstack). ``padding`` is ``"same"`` (TF's rule, see
    :func:`same_padding`), an int (both sides) or ``(before, after)``; unequal sides are padded with
    ``F.pad``. The kernels are one ``nn.Conv1d(1, num_kernels, kernel_size, stride)`` child, ``conv``, run on
    every pixel's channel vector: an ``(N * H * W, 1, C)`` view. Params ``num_kernels * kernel_size``;
    MACs ``kernel_size`` per output element (``dc x n x df^2`` in the paper's terms). The output keeps the
    input's memory format (NCHW or channels_last).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        stride: int = 1,
        num_kernels: int = 1,
        padding: str | int | tuple[int, int] = "same",
    ) -> None:
        super().__init__()
        if isinstance(padding, str):
            if padding != "same":
                raise ValueError(f"padding must be 'same', an int or (before, after); got {padding!r}")
            before, after = same_padding(channels, kernel_size, stride)
        elif isinstance(padding, int):
            before = after = padding
        else:
            before, after = padding
        length = (channels + before + after - kernel_size) // stride + 1
        if length < 1:
            raise ValueError(
                f"a channel-wise kernel of size {kernel_size} does not fit {channels} channels padded by "
                f"({before}, {after}); use a smaller kernel or more padding"
            )
        self.in_chs, self.out_chs = channels, num_kernels * length
        self.kernel_size, self.stride, self.num_kernels = kernel_size, stride, num_kernels
        self.padding = (before, after)
        # symmetric padding goes into the conv; asymmetric ('same' with an odd total) into F.pad
        self._pad = (before, after) if before != after else None
        self.conv = nn.Conv1d(1, num_kernels, kernel_size, stride, before if before == after else 0, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 1 / dc): each output sums dc inputs, so this keeps the signal's variance."""
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w = x.shape[0], x.shape[2], x.shape[3]  # indexed, not unpacked: torch.fx traces it
        signals = x.permute(0, 2, 3, 1).flatten(0, 2).unsqueeze(1)  # one signal per pixel: a view if channels_last
        if self._pad is not None:
            signals = F.pad(signals, self._pad)
        # (N*H*W, num_kernels, L) -> (N, num_kernels * L, H, W), kernel-major channels, channels_last strides
        out = self.conv(signals).reshape(n, h, w, self.out_chs).permute(0, 3, 1, 2)
        if is_fx_symbolic_tracing():
            return out  # a traced graph keeps the channels_last strides
        return out.contiguous() if x.is_contiguous() else out

    def extra_repr(self) -> str:
        return (
            f"{self.in_chs} -> {self.out_chs}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"num_kernels={self.num_kernels}, padding={self.padding}"
        )


class GroupChannelwiseConv(ChannelwiseConv):
    """Group channel-wise convolution (Sec. 3.2), the fusion layer after a g-group 1x1 conv.

    ``groups`` channel-wise convs, each over all ``channels`` inputs with stride ``groups`` and TF-'SAME'
    padding, each giving one group of ``channels / groups`` outputs. ``kernel_size >= groups`` makes every
    output group depend on every input channel. Params ``kernel_size x groups`` (16 for ChannelNets' g=2,
    dc=8: the official ``Conv3d(1, 2, (8, 1, 1), stride (2, 1, 1), padding 3)``).
    """

    def __init__(self, channels: int, groups: int = 2, kernel_size: int = 8) -> None:
        if kernel_size < groups:
            raise ValueError(
                f"a group channel-wise conv needs kernel_size >= groups so that every output group sees "
                f"every input channel (Sec. 3.2); got kernel_size={kernel_size}, groups={groups}"
            )
        if channels % groups:
            raise ValueError(f"{channels} channels do not split into {groups} groups; use a divisor of {channels}")
        super().__init__(channels, kernel_size, stride=groups, num_kernels=groups)
        self.groups = groups


class DepthwiseSeparableChannelwise(nn.Sequential):
    """Depth-wise separable channel-wise convolution (Sec. 3.3): a k x k depthwise conv, then one
    channel-wise conv with stride 1 and 'same' padding in place of the 1x1 conv (m = n channels).

    Params ``k^2 m + dc`` (dc = 64 in ChannelNet-v2); no BN or activation between or after, as the
    reference count and the official code have it. Children ``dw`` (Conv2d) and ``cw``.
    """

    def __init__(self, channels: int, stride: int = 1, kernel_size: int = 3, channel_kernel: int = 64) -> None:
        super().__init__()
        self.dw = conv2d(channels, channels, kernel_size, stride, groups=channels)
        self.cw = ChannelwiseConv(channels, channel_kernel, stride=1, padding="same")
        self.in_chs = self.out_chs = channels
        self.stride = stride


class ConvClassifierHead(nn.Module):
    """Convolutional classification layer (Sec. 3.4) in place of global pooling + FC.

    One 3-D conv with a ``df x df x (m - n + 1)`` kernel, no padding and no bias, over the final
    ``m x df x df`` feature map seen as one 3-D map: logit ``j`` reads channels ``j .. j + m - n``.
    Params ``df^2 (m - n + 1)`` (1,225 for m=1024, n=1000, df=7), MACs ``n`` times that. As in
    :class:`ChannelwiseConv` it is written as the equivalent ``nn.Conv1d(df^2, 1, m - n + 1)`` over the
    channels, with the df^2 positions as its input channels: ``conv.weight[0, p, t]`` is the 3-D kernel at
    position ``p`` (row-major) and channel offset ``t``. A channels_last input needs no copy; on this CPU it
    is about twice as fast as the 3-D conv.

    ``feature_size`` is df, fixed when the layer is built (7 for 224x224 inputs); a feature map of another
    size is adaptively average-pooled to df x df first (the identity at the designed size), so any input
    size works. ``pre_logits=True`` and ``num_classes=0`` give the globally average-pooled features: the
    paper's view of the layer as pooling (a fixed df x df x 1 kernel) followed by a channel-wise conv.
    ``reset(num_classes)`` builds a new kernel of depth ``m - num_classes + 1``, so ``num_classes <= m``.
    """

    def __init__(self, in_chs: int, num_classes: int, feature_size: int = 7, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.in_chs, self.feature_size, self.drop_rate = in_chs, feature_size, drop_rate
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.resize = nn.AdaptiveAvgPool2d(feature_size)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv: nn.Conv1d | None = None
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        """Replace the kernel with a freshly initialised one for ``num_classes`` outputs (0: features)."""
        if not 0 <= num_classes <= self.in_chs:
            raise ValueError(
                f"the convolutional classification layer maps {self.in_chs} channels to at most {self.in_chs} "
                f"classes (kernel depth m - n + 1 >= 1), got num_classes={num_classes}; use a model with a "
                "fully connected head (e.g. channelnet_v2) for more classes"
            )
        self.num_classes = num_classes
        if num_classes:
            depth = self.in_chs - num_classes + 1
            self.conv = nn.Conv1d(self.feature_size**2, 1, depth, bias=False)
        else:
            self.conv = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.01), as the FC it replaces (``init_weights``)."""
        if self.conv is not None:
            nn.init.normal_(self.conv.weight, 0, 0.01)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits or self.conv is None:
            return self.dropout(self.pool(x).flatten(1))
        if is_fx_symbolic_tracing() or x.shape[-2:] != (self.feature_size, self.feature_size):
            x = self.resize(x)  # the identity at the feature size, which a traced graph cannot test
        x = self.dropout(x).flatten(2).transpose(1, 2)  # (N, df^2, m): positions as conv1d channels
        return self.conv(x).flatten(1)  # (N, 1, n) -> (N, n)
