"""Mixed precision on the CPU: bf16 where the processor computes it natively, depthwise convolutions kept in fp32.

On a CPU with AVX-512 BF16 or AMX (read from ``/proc/cpuinfo`` at run time: the machines change), oneDNN runs
dense and pointwise convolutions faster in bf16, while some of its depthwise kernels are slower in bf16 than in
fp32: on the Intel Xeon with AMX all of them (bf16/fp32 training throughput 1.42x for ResNet-20, 0.97x for
MobileNetV2-CIFAR, 0.70x for PydMobileNet-Add-29-0.5), on AMD Zen 4 the strided ones.
:func:`keep_depthwise_fp32` makes autocast leave those layers in fp32; ``benchmarks/train_bf16.py`` measures
the three choices side by side.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

from .errors import UsageError
from .layers import PyramidDepthwise
from .machine import cpu_flags

AMP_SETTINGS = ("auto", "off", "bf16", "fp16")

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16() -> bool:
    """True where the CPU has bf16 dot-product instructions (AVX-512 BF16 or AMX)."""
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``--amp SETTING`` trains in on ``device`` (``None``: fp32).

    ``auto``: on CUDA bf16 where the GPU supports it, else fp16; on the CPU bf16 where the processor computes it
    natively (AVX-512 BF16 or AMX, read at run time), else fp32. On the CPU bf16 always comes with
    :func:`keep_depthwise_fp32` (the trainer applies it), which is what makes it faster for every family measured
    (``benchmarks/results/train_speed.md``).
    """
    if setting not in AMP_SETTINGS:
        raise UsageError(f"unknown --amp {setting!r}; use {', '.join(AMP_SETTINGS)}")
    if setting == "off":
        return None
    if setting == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    return torch.bfloat16 if setting == "bf16" else torch.float16


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution: one filter per channel (``groups == in_channels > 1``), or a pyramid of them."""
    if isinstance(module, PyramidDepthwise):
        return True
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def _fp32_forward(self: nn.Module, *args: Any) -> Any:
    with torch.autocast(args[0].device.type, enabled=False):
        return type(self).forward(self, *(a.float() if torch.is_tensor(a) else a for a in args))


def strided_depthwise_only() -> bool:
    """Whether bf16 training on this CPU keeps only *strided* depthwise convs in fp32 (AVX-512 BF16 without AMX).

    Measured on AMD EPYC (Zen 4, AVX-512 BF16, no AMX), 2026-12-04: a MobileNetV2-CIFAR block at batch 128 trains
    1.20-1.38x faster with its stride-1 depthwise conv in bf16 than in fp32, 2.3-5.3x slower with a strided one in
    bf16 (``benchmarks/depthwise_bf16.py``); keeping only the strided ones in fp32 took MobileNetV2-CIFAR
    training from 1.35x to 1.67x fp32 (``benchmarks/results/train_bf16.md``). On the Intel Xeon with AMX only
    "every depthwise conv in fp32" was measured, so AMX keeps it.
    """
    return "amx_bf16" not in cpu_flags()


def _runs_fp32(module: nn.Module, strided_only: bool) -> bool:
    if isinstance(module, nn.Conv2d) and strided_only:
        return is_depthwise(module) and module.stride != (1, 1)
    return is_depthwise(module)  # a PyramidDepthwise stays fp32: its stride-1 bf16 speed is not measured


def keep_depthwise_fp32(model: nn.Module, strided_only: bool | None = None) -> int:
    """Make the depthwise layers of ``model`` that are slower in bf16 run in fp32 under autocast (their input is
    cast up, autocast is off inside them); the next layer's autocast casts back down. ``strided_only``: keep
    only depthwise convs with a stride above 1 (and pyramids) in fp32; ``None`` decides by the processor
    (:func:`strided_depthwise_only`). Parameters and state_dict are unchanged. Returns the number of layers changed."""
    if strided_only is None:
        strided_only = strided_depthwise_only()
    count = 0
    for module in model.modules():
        if _runs_fp32(module, strided_only) and "forward" not in vars(module):
            module.forward = types.MethodType(_fp32_forward, module)
            count += 1
    return count
