"""Convolution + normalization + activation, the unit every table row is made of."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .activations import ActLayer, create_act, get_act
from .group_conv import Groups, UnevenGroupConv

KernelSize = int | tuple[int, int]
"""A square kernel ``k`` or an ``(kh, kw)`` pair (SqueezeNext's 3x1 and 1x3 convs)."""


def conv2d(
    in_chs: int,
    out_chs: int,
    kernel_size: KernelSize = 1,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    bias: bool = False,
    padding: KernelSize | None = None,
) -> nn.Conv2d:
    """A 2-D convolution with "same" padding for odd kernels (``(k - 1) // 2 * dilation`` per side).

    ``padding`` overrides it, e.g. ``0`` for the unpadded ("valid") stems of Xception and NASNet.
    """
    if padding is None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        padding = ((kh - 1) // 2 * dilation, (kw - 1) // 2 * dilation)
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias)


class ConvNormAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, with named children ``conv``, ``bn``, ``act``.

    ``act=None`` gives a linear unit (MobileNetV2's linear bottleneck); ``norm=False`` drops the BN
    and, unless ``bias`` says otherwise, gives the conv a bias. ``groups`` is an int (even groups) or a
    tuple of split ratios such as ``(1, 3)``, which makes ``conv`` an :class:`UnevenGroupConv` (SeesawNet);
    the BN then normalises the concatenated groups, as in the author's code.

    Between the conv and the BN, two optional children (ChannelNets, Gao et al. 2018): ``fuse``, a
    channel-fusion layer that completes the conv (the group channel-wise conv after a 1x1 group conv,
    Sec. 3.2), then ``drop``, dropout at ``drop_rate`` (ChannelNets applies 1e-4 after 1x1 convs, Sec. 4.2).

    ``preact=True`` puts ``bn`` (over the input channels) and ``act`` before ``conv``: the pre-activation
    unit BN -> ReLU -> conv of DenseNet (Huang et al. 2017, Sec. 3) and CondenseNet.

    ``kernel_size`` may be an ``(kh, kw)`` pair and ``padding`` overrides the "same" padding (see :func:`conv2d`).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: KernelSize = 1,
        stride: int = 1,
        groups: Groups = 1,
        act: str | ActLayer | None = "relu",
        norm: bool = True,
        dilation: int = 1,
        bias: bool | None = None,
        drop_rate: float = 0.0,
        fuse: nn.Module | None = None,
        preact: bool = False,
        padding: KernelSize | None = None,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        bias = not norm if bias is None else bias
        if preact and norm:
            layers["bn"] = nn.BatchNorm2d(in_chs)
        if preact and act is not None:
            layers["act"] = create_act(act)
        if isinstance(groups, int):
            layers["conv"] = conv2d(in_chs, out_chs, kernel_size, stride, groups, dilation, bias, padding)
        elif padding is not None or not isinstance(kernel_size, int):
            raise ValueError("uneven groups take a square kernel with 'same' padding; drop padding/kernel pair")
        else:
            layers["conv"] = UnevenGroupConv(in_chs, out_chs, groups, kernel_size, stride, dilation, bias=bias)
        if fuse is not None:
            layers["fuse"] = fuse
        if drop_rate > 0:
            layers["drop"] = nn.Dropout(drop_rate)
        if norm and not preact:
            layers["bn"] = nn.BatchNorm2d(out_chs)
        if act is not None and not preact:
            layers["act"] = create_act(act)
        super().__init__(layers)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride


class DepthwiseSeparable(nn.Sequential):
    """Depthwise k x k conv then pointwise 1x1 conv (MobileNets, Howard et al. 2017, Sec. 3.1).

    ``dw_norm_act=False`` removes BN and activation between the two convs, as ChannelNets does (Sec. 4.2);
    ``pw_drop_rate`` and ``pw_fuse`` go to the pointwise :class:`ConvNormAct` (its ``drop_rate`` and ``fuse``).

    ``pre_act`` adds a child ``pre_act`` before ``dw``, never in place (the input may feed other branches).
    With ``dw_norm_act=False, act=None`` this is the ReLU -> SepConv -> BN unit of Xception (Chollet 2017,
    Fig. 5), NASNet's separable operations and RandWire's nodes (Xie et al. 2019, Sec. 3.2).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        kernel_size: int = 3,
        act: str | ActLayer | None = "relu",
        pw_groups: Groups = 1,
        dw_norm_act: bool = True,
        pw_drop_rate: float = 0.0,
        pw_fuse: nn.Module | None = None,
        pre_act: str | ActLayer | None = None,
    ) -> None:
        pre_act_factory = get_act(pre_act)
        super().__init__(
            OrderedDict(
                **({"pre_act": pre_act_factory()} if pre_act_factory is not None else {}),
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
                pw=ConvNormAct(in_chs, out_chs, 1, groups=pw_groups, act=act, drop_rate=pw_drop_rate, fuse=pw_fuse),
            )
        )
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
