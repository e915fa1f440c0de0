"""Convolution + normalization + activation, the unit every table row is made of."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .activations import ActLayer, create_act


def conv2d(
    in_chs: int,
    out_chs: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    bias: bool = False,
) -> nn.Conv2d:
    """A 2-D convolution with "same" padding for odd kernels (``(k - 1) // 2 * dilation``)."""
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias)


class ConvNormAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, with named children ``conv``, ``bn``, ``act``.

    ``act=None`` gives a linear unit (MobileNetV2's linear bottleneck); ``norm=False`` drops the BN
    and, unless ``bias`` says otherwise, gives the conv a bias.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | ActLayer | None = "relu",
        norm: bool = True,
        dilation: int = 1,
        bias: bool | None = None,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        bias = not norm if bias is None else bias
        layers["conv"] = conv2d(in_chs, out_chs, kernel_size, stride, groups, dilation, bias=bias)
        if norm:
            layers["bn"] = nn.BatchNorm2d(out_chs)
        if act is not None:
            layers["act"] = create_act(act)
        super().__init__(layers)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride


class DepthwiseSeparable(nn.Sequential):
    """Depthwise k x k conv then pointwise 1x1 conv (MobileNets, Howard et al. 2017, Sec. 3.1).

    ``dw_norm_act=False`` removes BN and activation between the two convs, as ChannelNets does (Sec. 4.2).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        kernel_size: int = 3,
        act: str | ActLayer | None = "relu",
        pw_groups: int = 1,
        dw_norm_act: bool = True,
    ) -> None:
        super().__init__(
            OrderedDict(
                dw=ConvNormAct(
                    in_chs,
                    in_chs,
                    kernel_size,
                    stride,
                    groups=in_chs,
                    act=act if dw_norm_act else None,
                    norm=dw_norm_act,
                    bias=False,
                ),
                pw=ConvNormAct(in_chs, out_chs, 1, groups=pw_groups, act=act),
            )
        )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
