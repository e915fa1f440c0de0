"""Export to ONNX (torch 2.14's ``torch.export``-based exporter), a ``torch.export`` program (.pt2) or,
experimentally, a Core ML package (.mlpackage, through coremltools); check the file against PyTorch, and
quantize ONNX files to int8 with onnxruntime's tools.

``compactnets export MODEL_OR_CHECKPOINT --format onnx|pt2|coreml|executorch|safetensors --out FILE [--check]
[--int8 ...]``; ``executorch`` writes an ExecuTorch program for phones (XNNPACK, :mod:`compactnets.ondevice`).
The exported network is the :func:`compactnets.deploy` form (BN folded, exact merges) unless
``--no-deploy``; ``--check`` compares the file's outputs with the original PyTorch model, so it checks
the rewrites and the export together.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import statistics
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .benchmark import time_ms
from .errors import UsageError
from .spec import resolve_spec

FORMATS = ("onnx", "pt2", "coreml", "executorch", "safetensors")
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "coreml": ".mlpackage", "executorch": ".pte", "safetensors": ""}
ONNX_EXTRA = "pip install 'compactnets[onnx]'"
COREML_EXTRA = "pip install 'compactnets[coreml]'"


def require_onnx(*modules: str) -> None:
    """Fail with the install command when a module of the ``onnx`` extra is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{', '.join(missing)} not installed: {ONNX_EXTRA}")


def resolve_model(spec: str, **kwargs: Any) -> tuple[str, nn.Module, tuple[int, int, int]]:
    """(name, model in eval mode, input size) of a spec: :func:`compactnets.spec.resolve_spec` as a tuple."""
    resolved = resolve_spec(spec, **kwargs)
    return resolved.name, resolved.model, resolved.input_size


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress and warnings meant for their developers; keep them out of the CLI."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int, int],
    batch_size: int = 1,
    opset: int | None = None,
    dynamic_batch: bool = False,
) -> Path:
    """Write ``model`` as one ONNX file with torch's ``torch.export``-based exporter (``dynamo=True``,
    which needs onnxscript). ``dynamic_batch`` makes the batch dimension symbolic."""
    require_onnx("onnx", "onnxscript")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(batch_size, *input_size)
    dynamic = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model.eval(), (x,), str(path), dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
            external_data=False, input_names=["image"], output_names=["logits"],
        )  # fmt: skip
    return path


def preprocessing(model: nn.Module, size: tuple[int, int, int]) -> dict[str, Any]:
    """What a deployment must do to an image before the model: the weights' pretrained_cfg, or a
    checkpoint's recorded normalisation, with the input size."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    meta = getattr(model, "checkpoint_meta", None) or {}
    for key in ("mean", "std"):
        if key not in cfg and meta.get(key):
            cfg[key] = list(meta[key])
    return {**cfg, "input_size": list(size)}


def add_onnx_metadata(path: str | Path, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` (preprocessing) into the ONNX file's ``metadata_props`` as JSON values."""
    import json

    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, str(path))


def export_pt2(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int, int],
    batch_size: int = 1,
    dynamic_batch: bool = False,
) -> Path:
    """Write a ``torch.export`` program (``torch.export.load(path).module()`` runs it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(batch_size, *input_size)
    dynamic = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    with _quiet(), torch.no_grad():
        program = torch.export.export(model.eval(), (x,), dynamic_shapes=dynamic)
    torch.export.save(program, str(path))
    return path


def _coremltools() -> Any:
    """coremltools, imported without its start-up warnings (untested torch/scikit-learn versions, and the
    macOS-only runtime missing on Linux), which say nothing about the export."""
    import importlib.util
    import logging

    if importlib.util.find_spec("coremltools") is None:
        raise UsageError(f"coremltools not installed: {COREML_EXTRA}")
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import coremltools
    finally:
        logging.disable(logging.NOTSET)
    return coremltools


def require_coreml_runtime() -> None:
    """Core ML packages run only on macOS: fail clearly elsewhere instead of deep inside coremltools."""
    import platform

    if platform.system() != "Darwin":
        raise UsageError("Core ML packages run only on macOS: --check cannot run them here; export without --check")


def export_coreml(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int, int],
    batch_size: int = 1,
) -> Path:
    """Experimental: write an ML Program package (.mlpackage, fp32 compute) with coremltools, which
    converts the ``torch.export`` program (decomposed to core ATen ops). Conversion runs on Linux; running
    the package needs macOS, so :func:`check_export` can compare outputs only there."""
    ct = _coremltools()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(batch_size, *input_size)
    with _quiet(), contextlib.redirect_stderr(io.StringIO()), torch.no_grad():
        program = torch.export.export(model.eval(), (x,)).run_decompositions({})
        package = ct.convert(
            program, inputs=[ct.TensorType(name="image", shape=tuple(x.shape))],
            outputs=[ct.TensorType(name="logits")], convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16,
        )  # fmt: skip
    package.save(str(path))
    return path


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session with every graph optimisation and ``threads`` intra-op threads."""
    require_onnx("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, x: torch.Tensor) -> torch.Tensor:
    (out,) = session.run(None, {session.get_inputs()[0].name: x.contiguous().numpy()})
    return torch.from_numpy(out)


@dataclass
class CheckResult:
    """Largest differences between the exported file and PyTorch over the checked batches."""

    max_abs: float
    max_rel: float
    batch_sizes: tuple[int, ...]
    passed: bool

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "MISMATCH"
        sizes = ",".join(map(str, self.batch_sizes))
        return f"{verdict}: max |diff| {self.max_abs:.2e} (relative {self.max_rel:.2e}) at batch {sizes}"


def check_export(
    path: str | Path,
    reference: nn.Module,
    input_size: tuple[int, int, int],
    batch_sizes: Iterable[int] = (1,),
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> CheckResult:
    """Run the exported file (onnxruntime for .onnx, torch.export for .pt2, Core ML for .mlpackage, which
    only runs on macOS) on random inputs and compare with ``reference`` (the PyTorch model before deploy):
    passes if |diff| <= atol + rtol |reference|."""
    path = Path(path)
    if path.suffix == ".mlpackage":
        require_coreml_runtime()
        package = _coremltools().models.MLModel(str(path))

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(package.predict({"image": x.numpy()})["logits"])
    elif path.suffix == ".onnx":
        session = onnx_session(path)

        def run(x: torch.Tensor) -> torch.Tensor:
            return run_onnx(session, x)
    elif path.suffix == ".pte":
        from .ondevice import PteProgram

        run = PteProgram(path)  # type: ignore[assignment]
    else:
        program = torch.export.load(str(path)).module()

        def run(x: torch.Tensor) -> torch.Tensor:
            return program(x)

    max_abs = max_rel = 0.0
    passed = True
    sizes = tuple(batch_sizes)
    for batch in sizes:
        x = torch.randn(batch, *input_size)
        with torch.no_grad():
            expected, got = reference.eval()(x), run(x)
        diff = (got - expected).abs()
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float(diff.max() / expected.abs().max().clamp_min(1e-12)))
        passed &= bool((diff <= atol + rtol * expected.abs()).all())
    return CheckResult(max_abs, max_rel, sizes, passed)


def file_size(path: str | Path) -> int:
    """Bytes on disk, external ONNX data files included (a package directory: all its files)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    extra = path.with_name(path.name + ".data")
    return path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._items = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_onnx(
    path: str | Path,
    out: str | Path,
    mode: str = "static",
    calibration: Iterable[torch.Tensor] | None = None,
    input_size: tuple[int, int, int] | None = None,
    calibration_batches: int = 8,
) -> Path:
    """int8 ONNX with onnxruntime's quantization tools.

    ``static``: QDQ format, per-channel int8 weights and uint8 activations (the VNNI-friendly U8S8 pair),
    activation ranges calibrated on ``calibration`` batches (real images: use them for accuracy) or, if
    none are given, on ``calibration_batches`` random batches of ``input_size`` (enough to measure size
    and speed, not accuracy). ``dynamic``: int8 weights, activation ranges computed at run time; as small,
    but onnxruntime runs its integer convs slowly on CPUs (about 10x slower than fp32 for MobileNetV2
    here), so static is the one to deploy.
    """
    require_onnx("onnxruntime")
    from onnxruntime import quantization as q

    path, out = Path(path), Path(out)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        import onnx

        # the exporter's value_info trips the quantizer's shape inference (Gemm weight 1280 vs 1000): drop it
        source, prepared = Path(tmp) / "source.onnx", Path(tmp) / "prepared.onnx"
        proto = onnx.load(str(path))
        del proto.graph.value_info[:]
        onnx.save(proto, str(source))
        q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        if mode == "dynamic":
            q.quantize_dynamic(str(prepared), str(out), weight_type=q.QuantType.QInt8, per_channel=True)
            return out
        if mode != "static":
            raise UsageError(f"int8 mode must be 'static' or 'dynamic', got {mode!r}")
        session = onnx_session(prepared)
        name, fixed = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
        batch = fixed if isinstance(fixed, int) else 1
        if calibration is None:
            if input_size is None:
                raise ValueError("random calibration needs input_size")
            generator = torch.Generator().manual_seed(0)
            calibration = [torch.randn(batch, *input_size, generator=generator) for _ in range(calibration_batches)]
        images = torch.cat(list(calibration))
        if isinstance(fixed, int):  # a file with a fixed batch size takes batches of exactly that size
            if len(images) < fixed:
                raise UsageError(f"int8 calibration needs at least {fixed} images for a batch-{fixed} file")
            images = images[: len(images) // fixed * fixed]
        batches = [b.contiguous().numpy().astype(np.float32) for b in images.split(batch)]
        q.quantize_static(
            str(prepared), str(out), _Calibration(name, batches), quant_format=q.QuantFormat.QDQ,
            per_channel=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
        )  # fmt: skip
    return out


def onnx_latency_ms(
    path: str | Path, input_size: tuple[int, int, int], batch_size: int = 1, repeats: int = 20
) -> float:
    """Median latency of an ONNX file in onnxruntime (a quick number; ``compactnets bench`` is the tool)."""
    session = onnx_session(path, torch.get_num_threads())
    x = torch.randn(batch_size, *input_size)
    return statistics.median(time_ms(lambda: run_onnx(session, x), repeats, warmup=3))


def data_batches(
    data: str, input_size: tuple[int, int, int], train: bool, batch_size: int, drop_last: bool = False
) -> Iterator[Any]:
    """(images, targets) batches, in order, of the training or evaluation split of ``data``."""
    from torch.utils.data import DataLoader

    from .data import build_data

    bundle = build_data(data, input_size=input_size)
    split = bundle.train if train else bundle.val
    return iter(DataLoader(split, batch_size=batch_size, shuffle=False, drop_last=drop_last))


def calibration_images(data: str, input_size: tuple[int, int, int], batch_size: int, batches: int) -> list[Any]:
    """The first ``batches`` batches of images of ``data``'s training split, for int8 calibration."""
    loader = data_batches(data, input_size, True, batch_size)
    return [images for images, _ in itertools.islice(loader, batches)]


def onnx_accuracy(path: str | Path, data: str, input_size: tuple[int, int, int], limit: int | None = None) -> float:
    """Top-1 (%) of an ONNX file on the evaluation split of ``data`` (see ``compactnets.data``).

    A file exported with a fixed batch size is fed batches of that size (a last, smaller batch is left out).
    """
    session = onnx_session(path, torch.get_num_threads())
    fixed = session.get_inputs()[0].shape[0]
    batch_size = fixed if isinstance(fixed, int) else 64
    correct = total = 0
    for images, targets in data_batches(data, input_size, False, batch_size, drop_last=isinstance(fixed, int)):
        logits = run_onnx(session, images)
        correct += int((logits.argmax(1) == targets).sum())
        total += len(targets)
        if limit and total >= limit:
            break
    return 100.0 * correct / max(total, 1)


__all__ = [
    "FORMATS",
    "SUFFIXES",
    "CheckResult",
    "add_onnx_metadata",
    "calibration_images",
    "check_export",
    "data_batches",
    "export_coreml",
    "export_onnx",
    "export_pt2",
    "file_size",
    "onnx_accuracy",
    "onnx_latency_ms",
    "onnx_session",
    "preprocessing",
    "quantize_onnx",
    "require_coreml_runtime",
    "resolve_model",
]
