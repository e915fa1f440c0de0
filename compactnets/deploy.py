"""Inference rewrites that keep outputs equal (to float tolerance): ``deploy(model)``.

Four kinds of exact rewrite (the fourth opt-in), applied to a copy of the model in eval mode:

1. **Module rewrites.** A module with an exact, faster inference form defines
   ``fuse_for_inference(self) -> nn.Module`` (the project's protocol); ``deploy`` replaces it by the result.
   PydMobileNet's pyramid depthwise conv becomes one depthwise conv with the summed kernel; e-ANTNet's
   softmax branch weights (ANTNets Eq. 8, constants once trained) move into each branch's projection.
2. **BatchNorm folding.** In eval mode BN is the affine map ``gamma (y - mu) / sqrt(var + eps) + beta``
   per channel; after a conv (or linear) layer it folds into that layer's weights and bias
   (``torch.nn.utils.fuse_conv_bn_eval``). Any conv immediately followed by a BN inside an
   ``nn.Sequential`` (``ConvNormAct``'s ``conv`` -> ``bn`` among them) is folded, and the BN becomes
   ``nn.Identity`` so the module paths stay the same. Dropout and identity children in between are
   skipped; SeesawNet's uneven group conv folds part by part. A BN *before* a conv stays: pre-activation
   BN -> ReLU -> conv (DenseNet, CondenseNet) has the ReLU in between, and an input BN before a zero-padded
   conv would change the padded border.
3. **Layout.** ``channels_last=True`` stores weights NHWC, which depthwise convs need to be fast on CPUs
   (PERFORMANCE.md: NCHW depthwise is 2.2-6.6x slower). Feed NHWC inputs too.
4. **CPU kernels** (``onednn=True``, opt-in). Every 2-D conv becomes :class:`OneDNNConv2d`: its weights
   reordered into oneDNN's blocked layout for each input shape on first use, and the activation that follows
   it (ReLU, ReLU6, h-swish, swish, ...) applied inside the conv kernel, as inductor's freezing and
   onnxruntime do, instead of a second pass over the output. The same arithmetic; the result runs only on
   the CPU in float32 and does not export, so ``export`` leaves it off and ``bench --runtime onednn``
   measures it.

Rewrites 1 and 2 change the parameters (no more BN statistics; fewer tensors), so a deployed model is
for inference only and its ``state_dict`` no longer loads into the original architecture.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .layers.group_conv import UnevenGroupConv

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d, nn.Linear: nn.BatchNorm1d}


@dataclass
class DeployReport:
    """What :func:`deploy` rewrote: module rewrites by class name, BNs folded and BNs left."""

    fused: Counter[str] = field(default_factory=Counter)
    bn_folded: int = 0
    bn_left: int = 0

    def __str__(self) -> str:
        fused = ", ".join(f"{n} x{c}" for n, c in sorted(self.fused.items())) or "none"
        return f"BN folded: {self.bn_folded} (left: {self.bn_left}); module rewrites: {fused}"


_NO_OPS_AT_INFERENCE = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
"""Modules that pass their input through in eval mode: a BN after one of them still folds into the conv before."""


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    """True if ``bn`` is a BN with running statistics over exactly the outputs of ``layer``."""
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.running_mean is None:
        return False
    if isinstance(layer, UnevenGroupConv):
        return layer.out_channels == bn.num_features and type(bn) is nn.BatchNorm2d
    if type(bn) is not _BNS.get(type(layer)):
        return False
    if isinstance(layer, _CONVS):
        return layer.out_channels == bn.num_features and not layer.transposed
    return layer.out_features == bn.num_features


def _fold(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """``layer`` followed by ``bn`` as one layer (eval mode)."""
    if isinstance(layer, nn.Linear):
        return fuse_linear_bn_eval(layer, bn)
    if not isinstance(layer, UnevenGroupConv):
        return fuse_conv_bn_eval(layer, bn)
    # SeesawNet's uneven groups: output part k is convs[k]'s, so it takes BN channels of part k
    layer, start = copy.deepcopy(layer), 0
    for k, conv in enumerate(layer.convs):
        part = slice(start, start + conv.out_channels)
        start = part.stop
        part_bn = nn.BatchNorm2d(conv.out_channels, eps=bn.eps).eval().to(bn.running_mean)
        part_bn.running_mean.copy_(bn.running_mean[part])
        part_bn.running_var.copy_(bn.running_var[part])
        if bn.affine:
            part_bn.weight.data.copy_(bn.weight[part])
            part_bn.bias.data.copy_(bn.bias[part])
        layer.convs[k] = fuse_conv_bn_eval(conv, part_bn)
    return layer


def fold_batchnorm(module: nn.Module, report: DeployReport | None = None) -> nn.Module:
    """Fold every BN that follows a conv / linear layer in an ``nn.Sequential`` into it, in place.

    Identity and dropout children between the two are skipped (they do nothing in eval mode). The
    module must be in eval mode. Returns ``module``.
    """
    report = report if report is not None else DeployReport()
    for child in module.children():
        fold_batchnorm(child, report)
    if isinstance(module, nn.Sequential):
        layer_name: str | None = None
        for name, child in module._modules.items():
            if layer_name is not None and _foldable(module._modules[layer_name], child):
                module._modules[layer_name] = _fold(module._modules[layer_name], child)  # type: ignore[arg-type]
                module._modules[name] = nn.Identity()
                report.bn_folded += 1
                layer_name = None
            elif isinstance(child, (*_CONVS, nn.Linear, UnevenGroupConv)):
                layer_name = name
            elif not isinstance(child, _NO_OPS_AT_INFERENCE):
                layer_name = None
    return module


def fuse_modules(module: nn.Module, report: DeployReport | None = None) -> nn.Module:
    """Replace every descendant that defines ``fuse_for_inference()`` by its result, in place.

    The rewritten module's own children are visited too (a rewrite may contain rewritable parts), but
    ``fuse_for_inference`` is called once per module. Returns ``module``.
    """
    report = report if report is not None else DeployReport()
    for name, child in list(module.named_children()):
        fuse = getattr(child, "fuse_for_inference", None)
        if callable(fuse):
            replacement = fuse()
            if not isinstance(replacement, nn.Module):
                raise TypeError(f"{type(child).__name__}.fuse_for_inference() must return an nn.Module")
            if replacement is not child:
                report.fused[type(child).__name__] += 1
                setattr(module, name, replacement.eval())
                child = replacement
        fuse_modules(child, report)
    return module


def deploy(
    model: nn.Module, channels_last: bool = False, report: DeployReport | None = None, onednn: bool = False
) -> nn.Module:
    """An inference copy of ``model`` with every exact rewrite applied (see the module docstring).

    The caller's model is not changed. ``report``, if given, is filled with what was rewritten. The
    copy keeps ``model.card`` when there is one. ``onednn=True`` adds the CPU-only rewrite 4.
    """
    report = report if report is not None else DeployReport()
    deployed = copy.deepcopy(model).eval()
    with torch.no_grad():
        root_fuse = getattr(deployed, "fuse_for_inference", None)
        if callable(root_fuse):
            fused_root = root_fuse()
            if fused_root is not deployed:
                report.fused[type(deployed).__name__] += 1
                deployed = fused_root.eval()
        fuse_modules(deployed, report)
        fold_batchnorm(deployed, report)
        if onednn:
            use_onednn_convs(deployed, report)
    report.bn_left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in deployed.modules())
    if channels_last:
        deployed = deployed.to(memory_format=torch.channels_last)
    if hasattr(model, "card"):  # cards are immutable: share the caller's
        deployed.card = model.card
    return deployed


def _onednn_attr(act: nn.Module) -> tuple[str, list[float], str | None] | None:
    """oneDNN's name, scalars and algorithm for an activation it applies inside a conv, or None."""
    if type(act) is nn.ReLU:
        return "relu", [], None
    if type(act) in (nn.ReLU6, nn.Hardtanh):
        return "hardtanh", [float(act.min_val), float(act.max_val)], None
    if type(act) is nn.GELU:
        return "gelu", [], act.approximate
    names = {nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "swish", nn.Sigmoid: "sigmoid"}
    return (names[type(act)], [], None) if type(act) in names else None


class OneDNNConv2d(nn.Module):
    """A 2-D conv with its weights pre-reordered for oneDNN and, optionally, the following activation fused
    into the kernel (``torch.ops.mkldnn._convolution_pointwise``, the op inductor's CPU freezing emits).
    Built by ``deploy(model, onednn=True)``; CPU float32 inference only.

    oneDNN picks the weight layout for a given input shape, so the weights are reordered on the first call
    with each input shape and kept (at most ``MAX_SHAPES`` shapes): reordered without the shape, ResNeXt-50's
    convs ran 2.5x slower here than with it."""

    MAX_SHAPES = 4

    def __init__(self, conv: nn.Conv2d, act: nn.Module | None = None) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("OneDNNConv2d takes convs with explicit zero padding")
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.attr, self.scalars, self.algorithm = _onednn_attr(act) if act is not None else ("none", [], None)
        self.register_buffer("weight", conv.weight.detach().float())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().float())
        self._packed: dict[tuple[int, ...], torch.Tensor] = {}  # input shape -> opaque oneDNN weight tensor

    def __getstate__(self) -> dict:
        """Copies and pickles drop the packed weights (opaque tensors have no storage); they repack on use."""
        return {**self.__dict__, "_packed": {}}

    def _packed_weight(self, shape: tuple[int, ...]) -> torch.Tensor:
        packed = self._packed.get(shape)
        if packed is None:
            if len(self._packed) >= self.MAX_SHAPES:
                self._packed.clear()
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(shape)
            )
            self._packed[shape] = packed
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.device.type != "cpu":
            raise RuntimeError(
                f"OneDNNConv2d (deploy(onednn=True)) runs on CPU float32 inputs, got {x.dtype} on {x.device}; "
                "deploy without onednn for other devices and dtypes"
            )
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(tuple(x.shape)), self.bias, self.padding, self.stride, self.dilation,
            self.groups, self.attr, self.scalars, self.algorithm,
        )  # fmt: skip

    def extra_repr(self) -> str:
        shape = f"{self.in_channels}, {self.out_channels}, stride={tuple(self.stride)}, groups={self.groups}"
        return f"{shape}, {self.attr}"


def onednn_available() -> bool:
    """True if this torch build has the oneDNN CPU ops that :class:`OneDNNConv2d` calls."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def use_onednn_convs(module: nn.Module, report: DeployReport | None = None) -> nn.Module:
    """Rewrite 4, in place: every ``nn.Conv2d`` child becomes a :class:`OneDNNConv2d`; inside an
    ``nn.Sequential`` an activation oneDNN can fuse that follows it (identity and dropout children between
    skipped) moves into it and becomes ``nn.Identity``. Returns ``module``."""
    if not onednn_available():
        raise RuntimeError("this torch build has no oneDNN (mkldnn) CPU kernels: deploy without onednn")
    report = report if report is not None else DeployReport()
    names = list(module._modules)
    for i, name in enumerate(names):
        child = module._modules[name]
        if type(child) is nn.Conv2d:
            act_name = None
            if isinstance(module, nn.Sequential):
                rest = (n for n in names[i + 1 :] if not isinstance(module._modules[n], _NO_OPS_AT_INFERENCE))
                act_name = next(rest, None)
                if act_name is not None and _onednn_attr(module._modules[act_name]) is None:  # type: ignore[arg-type]
                    act_name = None
            module._modules[name] = OneDNNConv2d(child, module._modules[act_name] if act_name else None)
            report.fused["OneDNNConv2d" + ("+act" if act_name else "")] += 1
            if act_name:
                module._modules[act_name] = nn.Identity()
        elif child is not None:
            use_onednn_convs(child, report)
    return module
