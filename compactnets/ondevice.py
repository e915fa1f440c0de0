"""On-device programs through ExecuTorch, PyTorch's runtime for phones and edge devices.

``torch.export`` -> ``to_edge_transform_and_lower`` with the XNNPACK partitioner -> a ``.pte`` program, fp32
or int8 (PT2E static quantization with the XNNPACK quantizer: per-channel symmetric weights, per-tensor
activations calibrated on real images). Programs run here through ``executorch.runtime`` on the CPU, which is
how ``--check`` compares them with PyTorch and how ``bench`` times them. ExecuTorch is an optional extra:
``pip install 'compactnets[executorch]'``.
"""

from __future__ import annotations

import importlib.util
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UsageError


def executorch_available() -> bool:
    return importlib.util.find_spec("executorch") is not None


def _require() -> None:
    if not executorch_available():
        raise UsageError("ExecuTorch is not installed: pip install 'compactnets[executorch]' (executorch 1.5)")


@dataclass
class Lowered:
    """A lowered program and what the XNNPACK delegate took of it."""

    buffer: bytes
    int8: bool
    delegated_nodes: int
    not_delegated: dict[str, int] = field(default_factory=dict)  # op -> nodes left to the portable kernels

    @property
    def delegated_share(self) -> float:
        total = self.delegated_nodes + sum(self.not_delegated.values())
        return self.delegated_nodes / total if total else 1.0

    def summary(self) -> str:
        left = ", ".join(f"{op} x{n}" for op, n in sorted(self.not_delegated.items())) or "none"
        return f"{100 * self.delegated_share:.1f}% of ops delegated to XNNPACK; not delegated: {left}"


def fold_shared_conv_bn(graph_module: torch.fx.GraphModule) -> int:
    """Fold each eval BatchNorm whose conv also feeds other ops into a copy of that conv; return how many.

    ``prepare_pt2e`` (torchao 0.18) folds every conv -> BatchNorm pair into the conv's own weights, also where the
    conv's output has other users, which then see the BatchNorm'd values: in a pre-activation network (PydMobileNet,
    Sec. 3: BN-ReLU-conv blocks) the stem conv feeds stage 1's first BatchNorm and its identity shortcut, and the
    int8 program lost 2-13 points of CIFAR-10 top-1. A copy of the conv with the folded weights keeps both paths.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    graph, folded = graph_module.graph, 0
    for bn in list(graph.nodes):
        conv = bn.args[0] if bn.target is torch.ops.aten.batch_norm.default else None
        if not isinstance(conv, torch.fx.Node) or conv.target is not torch.ops.aten.conv2d.default:
            continue
        if len(conv.users) == 1 or bn.args[5]:  # a conv of its own (prepare_pt2e folds it right), or training
            continue
        if not all(_is_constant(n) for n in (*conv.args[1:3], *bn.args[1:5])):  # computed weights: not foldable
            continue
        weight = _constant(graph_module, conv.args[1])
        bias = _constant(graph_module, conv.args[2] if len(conv.args) > 2 else None)
        gamma, beta, mean, var = (_constant(graph_module, n) for n in bn.args[1:5])
        fused = fuse_conv_bn_weights(weight, bias, mean, var, bn.args[7], gamma, beta)
        fake = conv.args[1].meta["val"].fake_mode
        with graph.inserting_before(bn):
            attrs = []
            for kind, tensor in zip(("weight", "bias"), fused, strict=True):
                name = f"_shared_conv_bn_{folded}_{kind}"
                graph_module.register_parameter(name, tensor)
                attrs.append(graph.get_attr(name))
                attrs[-1].meta["val"] = fake.from_tensor(tensor, static_shapes=True)  # the quantizer reads shapes
            copy = graph.call_function(conv.target, (conv.args[0], *attrs, *conv.args[3:]), dict(conv.kwargs))
        copy.meta = dict(conv.meta)
        bn.replace_all_uses_with(copy)
        graph.erase_node(bn)
        folded += 1
    graph.lint()
    graph_module.recompile()
    return folded


def _is_constant(node: Any) -> bool:
    return node is None or (isinstance(node, torch.fx.Node) and node.op == "get_attr")


def _constant(graph_module: torch.fx.GraphModule, node: Any) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node names (``None`` for an absent argument, such as a conv without bias)."""
    return None if node is None else operator.attrgetter(str(node.target))(graph_module)


def quantize_int8(model: nn.Module, example: torch.Tensor, batches: Iterable[torch.Tensor]) -> nn.Module:
    """PT2E static int8 for XNNPACK: insert observers, run the calibration ``batches``, convert."""
    _require()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    captured = torch.export.export(model.eval(), (example,)).module()
    fold_shared_conv_bn(captured)
    try:
        prepared = prepare_pt2e(captured, quantizer)
    except ValueError as error:  # torchao folds BN into a conv only where the conv's weight is a constant
        if "get_attr" not in str(error):
            raise
        raise UsageError(
            "int8: a BatchNorm follows a conv whose weights are computed in the graph (a merged pyramid kernel); "
            "quantize the deployed model (compactnets.deploy, the export default) instead"
        ) from None
    n = example.shape[0]  # the captured graph's batch size
    with torch.no_grad():
        for batch in batches:
            for start in range(0, len(batch) - n + 1, n):
                prepared(batch[start : start + n])
    return convert_pt2e(prepared)


def lower(model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor] | None = None) -> Lowered:
    """``model`` as an ExecuTorch program for inputs shaped like ``example``; int8 when ``calibration`` is given."""
    _require()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    model = model.eval()
    if calibration is not None:
        model = quantize_int8(model, example, calibration)
    exported = torch.export.export(model, (example.contiguous(),))
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    info = get_delegation_info(edge.exported_program().graph_module)
    left = {op: b.non_delegated for op, b in info.delegation_by_operator.items() if b.non_delegated}
    left = {op: n for op, n in left.items() if op not in ("getitem", "alloc")}  # bookkeeping, not compute
    buffer = edge.to_executorch().buffer
    return Lowered(bytes(buffer), calibration is not None, info.num_delegated_nodes, left)


def write_pte(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int, int],
    batch_size: int = 1,
    calibration: Iterable[torch.Tensor] | None = None,
) -> Lowered:
    """Lower ``model`` (see :func:`lower`) for ``batch_size`` images of ``input_size`` and write the ``.pte``."""
    lowered = lower(model, torch.randn(batch_size, *input_size), calibration)
    Path(path).write_bytes(lowered.buffer)
    return lowered


class PteProgram:
    """A ``.pte`` file loaded through ``executorch.runtime``; call it like a model (one input, one output)."""

    def __init__(self, path: str | Path) -> None:
        _require()
        from executorch.runtime import Runtime

        self.path = Path(path)
        self._method = Runtime.get().load_program(str(self.path)).load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._method.execute([x.contiguous()])[0]

    @property
    def batch_size(self) -> int:
        return int(self._method.metadata.input_tensor_meta(0).sizes()[0])


def set_threads(threads: int) -> None:
    """The XNNPACK thread pool's size, so that timings compare with PyTorch at the same thread count."""
    _require()
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)


def agreement(reference: nn.Module, program: Any, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """Top-1 of ``reference`` and ``program`` on labelled ``batches``, how often their top-1 agree, and the largest
    logit difference."""
    same = right_ref = right_prog = seen = 0
    max_diff = 0.0
    with torch.no_grad():
        for x, y in batches:
            step = getattr(program, "batch_size", 1)  # a program has a fixed batch: a last, smaller one is dropped
            x, y = x[: len(x) - len(x) % step], y[: len(y) - len(y) % step]
            if not len(x):
                continue
            ref = reference(x)
            out = torch.cat([program(x[i : i + step]) for i in range(0, len(x), step)])
            same += int((ref.argmax(1) == out.argmax(1)).sum())
            right_ref += int((ref.argmax(1) == y).sum())
            right_prog += int((out.argmax(1) == y).sum())
            seen += len(y)
            max_diff = max(max_diff, float((ref - out).abs().max()))
    if seen == 0:
        raise UsageError("no images to compare on")
    return {
        "images": seen,
        "top1_pytorch": 100 * right_ref / seen,
        "top1_program": 100 * right_prog / seen,
        "top1_agreement": 100 * same / seen,
        "max_abs_logit_diff": max_diff,
    }
