"""Pyramid depthwise convolution (PydMobileNet, Hoang & Jo 2018, Sec. 3.1).

The paper applies M depthwise convs with kernel sizes K = {k_1, ..., k_M} (3x3, 5x5, 7x7) to the same
h x w x d_i tensor, each with "same" padding (k - 1) / 2 and the same stride, and combines the outputs:

- **Addition**: the depthwise convs cost ``h w d_i sum_m k_m^2`` and the M - 1 additions
  ``(M - 1) h w d_i``; with the pointwise 1x1 after it, PydDWConvolution-Add costs
  ``h w d_i (M - 1 + sum_m k_m^2 + d_j)``, i.e. ``k^2 d_j / (M - 1 + sum_m k_m^2 + d_j)`` times less than a
  standard k x k conv.
- **Concatenation**: the depthwise convs cost ``h w d_i sum_m k_m^2``, the concatenation nothing, and the
  pointwise 1x1 on M d_i channels ``h w M d_i d_j``: in all ``h w d_i (sum_m k_m^2 + M d_j)``, a ratio of
  ``k^2 d_j / (sum_m k_m^2 + M d_j)``. (Where the paper's text writes d_i for d_j in a ratio,
  ARCHITECTURES.md 7.2, d_j is meant.)

Because every kernel is centred on the same input pixel, both combinations are exactly one depthwise conv
with the largest kernel K = max(k_m), each small kernel zero-padded to K x K:

- Add: ``sum_m conv(x, w_m) = conv(x, sum_m pad(w_m))``, a K x K depthwise conv with C outputs.
- Concat: the M kernels of channel c become outputs ``c M + m`` of one depthwise conv with channel
  multiplier M (``groups = C``, ``M C`` outputs).

The M kernels stay the trainable parameters (weight decay, initialisation and the parameter count are
those of the paper's M convs). What runs (``single_conv``), measured in benchmarks/results/pyramid_depthwise.md:

- Add runs the one merged conv, its kernel built in ``forward``, so training and inference both pay for one
  K x K depthwise conv: ``h w C K^2`` MACs, 49 per position and channel for {3, 5, 7} instead of 83, and one
  memory-bound pass instead of three plus the sums.
- Concat runs the M separate convs and ``torch.cat`` by default. The merged conv has channel multiplier M,
  and on CPU (oneDNN) only multiplier 1 has a fast depthwise kernel: the merged conv is 1.4-8x slower than
  the three convs there. ``single_conv=True`` selects it (for backends where it pays; exact either way).

The profiler reports the paper's architecture on both paths, ``h w C sum_m k_m^2`` (83 for {3, 5, 7}), which
is what ARCHITECTURES.md 3.5 and the papers count. ``fuse_for_inference()`` returns the merged conv with its
kernel precomputed (the profiler then counts what that conv executes).

**Channel order of the Concat output: literal**, ``torch.cat([conv_3(x), conv_5(x), conv_7(x)], 1)``, channel
``m C + c`` = kernel m on channel c, as in the paper and the released checkpoints. A grouped conv instead
puts the M outputs of a group next to each other (channel ``c M + m``, "grouped" order), and no single
grouped conv emits the literal order. The default path gets the literal order for free from ``torch.cat``;
interleaving the three outputs into grouped order instead (so the next BN and 1x1 conv could take the merged
conv's order, with their channels permuted) made that path up to 6x slower in channels_last (an earlier run
of the benchmark), for a merged conv that is slower anyway. The merged path reorders its output with one
copy (``grouped_to_literal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .shuffle import channel_shuffle

PyramidMode = Literal["add", "concat"]


def _pad_to(kernel: torch.Tensor, k: int, size: int) -> torch.Tensor:
    """Zero-pad a (C, 1, k, k) kernel to (C, 1, size, size), keeping it centred (``k`` given, not read from the
    tensor, so that torch.fx can trace it)."""
    p = (size - k) // 2
    return F.pad(kernel, (p, p, p, p)) if p else kernel


def grouped_to_literal(y: torch.Tensor, groups: int) -> torch.Tensor:
    """Reorder the (N, groups M, H, W) output of a grouped conv with M outputs per group, channel ``c M + m``,
    to the literal concatenation order ``m C + c``: a channel shuffle with ``groups`` groups (one copy, in
    ``y``'s memory format)."""
    return channel_shuffle(y, groups)


class GroupedToLiteral(nn.Module):
    """Module form of :func:`grouped_to_literal`, so a fused concat pyramid is ``Sequential(conv, this)``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grouped_to_literal(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class PyramidDepthwise(nn.Module):
    """Depthwise convs with kernels ``kernel_sizes`` on the same input, summed (``"add"``) or
    concatenated (``"concat"``, M x channels outputs, ``torch.cat`` order).

    Parameters ``weight_{k}x{k}`` (listed by :attr:`weights`) have shape (C, 1, k, k), those of
    ``nn.Conv2d(C, C, k, groups=C, bias=False)``; they are the layer's own, so the profiler sees them. No
    bias, BN or activation between the convs and the combination (PydMobileNet Fig. 1c/d). ``single_conv``
    runs the merged K x K conv (default: for add yes, for concat no; see the module docstring).
    """

    def __init__(
        self,
        channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        stride: int = 1,
        mode: PyramidMode = "add",
        single_conv: bool | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("add", "concat"):
            raise ValueError(f"mode must be 'add' or 'concat', got {mode!r}")
        sizes = tuple(int(k) for k in kernel_sizes)
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes) or len(set(sizes)) < len(sizes):
            raise ValueError(
                f"kernel_sizes must be distinct, odd and positive (centred kernels), got {tuple(kernel_sizes)}"
            )
        self.channels, self.kernel_sizes, self.stride, self.mode = channels, sizes, stride, mode
        self.single_conv = mode == "add" if single_conv is None else single_conv
        self.merged_size = max(sizes)
        self.out_chs = channels * len(sizes) if mode == "concat" else channels
        for k in sizes:
            self.register_parameter(f"weight_{k}x{k}", nn.Parameter(torch.empty(channels, 1, k, k)))
        self.reset_parameters()

    @property
    def weights(self) -> list[torch.Tensor]:
        """The M kernels, in the order of ``kernel_sizes``."""
        return [getattr(self, f"weight_{k}x{k}") for k in self.kernel_sizes]

    def reset_parameters(self) -> None:
        """Each kernel initialised as its own ``nn.Conv2d`` would be (Kaiming uniform, a=sqrt(5))."""
        for weight in self.weights:
            nn.init.kaiming_uniform_(weight, a=5**0.5)

    def merged_weight(self) -> torch.Tensor:
        """The kernel of the single conv: (C, 1, K, K) for add, (M C, 1, K, K) in grouped order for concat."""
        padded = [_pad_to(w, k, self.merged_size) for w, k in zip(self.weights, self.kernel_sizes, strict=True)]
        if self.mode == "add":
            return torch.stack(padded).sum(0)
        # (C, M, 1, K, K) -> (C M, 1, K, K): output channel c M + m is kernel m of channel c
        return torch.stack(padded, dim=1).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.single_conv:
            y = F.conv2d(x, self.merged_weight(), None, self.stride, self.merged_size // 2, 1, self.channels)
            return y if self.mode == "add" else grouped_to_literal(y, self.channels)
        outs = [F.conv2d(x, w, None, self.stride, k // 2, 1, self.channels)
                for w, k in zip(self.weights, self.kernel_sizes, strict=True)]  # fmt: skip
        if self.mode == "add":
            return sum(outs[1:], outs[0])  # element-wise adds keep the input's memory format
        return torch.cat(outs, 1)

    def merged_conv(self) -> nn.Conv2d:
        """The merged conv as a plain depthwise ``nn.Conv2d`` with the kernel precomputed (a detached copy;
        for concat its outputs are in grouped order)."""
        conv = nn.Conv2d(
            self.channels, self.out_chs, self.merged_size, self.stride, self.merged_size // 2,
            groups=self.channels, bias=False,
            device=self.weights[0].device, dtype=self.weights[0].dtype,
        )  # fmt: skip
        with torch.no_grad():
            conv.weight.copy_(self.merged_weight())
        return conv

    def fuse_for_inference(self) -> nn.Module:
        """For inference: the same function as one conv with its kernel precomputed, no per-call kernel
        build; it does not train the M kernels. Add: a plain ``nn.Conv2d`` (7x7 depthwise for {3, 5, 7}).
        Concat: ``Sequential(conv, GroupedToLiteral)``, the channel-multiplier-M conv and the reorder to
        ``torch.cat`` order, slower than the M convs on CPU (see the module docstring)."""
        conv = self.merged_conv()
        return conv if self.mode == "add" else nn.Sequential(conv, GroupedToLiteral(self.channels))

    def count_ops(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, int]:
        """MACs of the paper's M separate depthwise convs, ``N h w C sum_m k_m^2`` for the batch (profiler
        protocol), on either path. The merged conv executes ``N h w C K^2`` (add) or ``N h w M C K^2`` (concat)."""
        positions = output.numel() // self.out_chs * self.channels  # N h w C
        return {"macs": positions * sum(k * k for k in self.kernel_sizes)}

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, kernel_sizes={self.kernel_sizes}, stride={self.stride}, mode={self.mode!r}, "
            f"single_conv={self.single_conv}"
        )


def fuse_pyramid_depthwise(model: nn.Module) -> nn.Module:
    """For inference: replace every :class:`PyramidDepthwise` that runs its merged conv (``single_conv``:
    all add-mode layers by default) by :meth:`~PyramidDepthwise.fuse_for_inference`, in place. Returns
    ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, PyramidDepthwise):
            if child.single_conv:
                setattr(model, name, child.fuse_for_inference())
        else:
            fuse_pyramid_depthwise(child)
    return model
