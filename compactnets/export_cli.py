"""``compactnets export``: parse arguments, call compactnets.export, print what was written and checked."""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import export
from ._table import human
from .deploy import deploy
from .errors import UsageError
from .export import (
    FORMATS,
    SUFFIXES,
    add_onnx_metadata,
    calibration_images,
    check_export,
    data_batches,
    export_coreml,
    export_onnx,
    export_pt2,
    file_size,
    onnx_accuracy,
    onnx_latency_ms,
    preprocessing,
    quantize_onnx,
    require_coreml_runtime,
)
from .models.base import CompactNet
from .spec import parse_input_size, resolve_spec
from .weights import save_pretrained


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot work, before any export."""
    if args.format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    if args.format == "safetensors":
        if args.int8 or args.check:
            raise UsageError("--format safetensors writes the weights as they are: drop --int8 and --check")
        return
    out, suffix = Path(args.out), SUFFIXES[args.format]
    if out.suffix != suffix:
        raise UsageError(f"--out for --format {args.format} must end in {suffix} (got {out.name})")
    if args.int8 and args.format not in ("onnx", "executorch"):
        raise UsageError("--int8 quantizes ONNX files and ExecuTorch programs: add --format onnx or executorch")
    if args.format == "executorch" and (args.dynamic_batch or args.int8 == "dynamic"):
        raise UsageError("--format executorch writes a fixed-shape program with static int8: drop --dynamic-batch "
                         "and use --int8 static")  # fmt: skip
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.format == "coreml" and args.dynamic_batch:
        raise UsageError("--dynamic-batch is not supported for --format coreml (the package has a fixed shape)")
    if args.format == "coreml" and args.check:
        require_coreml_runtime()  # before the export, not after it


def cmd_export(args: argparse.Namespace) -> int:
    _check_flags(args)
    out = Path(args.out)
    resolved = resolve_spec(args.model)
    name, model = resolved.name, resolved.model
    if args.format == "safetensors":
        save_pretrained(model, name, out, preprocessing(model, resolved.input_size))
        print(f"{name} -> {out}/ (model.safetensors, config.json, README.md); load it back with "
              f"create_model({name!r}, checkpoint_path={str(out)!r})")  # fmt: skip
        return 0
    size = parse_input_size(args.input_size) or resolved.input_size
    if isinstance(model, CompactNet):
        model.check_input_size(*size[1:])  # one line here, not the exporter's hundreds
    exported = model if args.no_deploy else deploy(model)
    start = time.perf_counter()
    if args.format == "onnx":
        export_onnx(exported, out, size, args.batch_size, args.opset, args.dynamic_batch)
        add_onnx_metadata(out, preprocessing(model, size))
    elif args.format == "coreml":
        export_coreml(exported, out, size, args.batch_size)
    elif args.format == "executorch":
        from .ondevice import write_pte

        delegation = write_pte(exported, out, size, args.batch_size).summary()
    else:
        export_pt2(exported, out, size, args.batch_size, args.dynamic_batch)
    form = "as defined" if args.no_deploy else "deployed: BN folded, exact merges"
    print(f"{name} ({form}) -> {out}  {human(file_size(out))}B  ({time.perf_counter() - start:.1f} s)")
    if args.format == "executorch":
        print(f"  xnnpack {delegation}")
    status = 0
    batches = (args.batch_size, args.batch_size + 1) if args.dynamic_batch else (args.batch_size,)
    if args.check:
        result = check_export(out, model, size, batches)
        print(f"  check   {result}")
        status = 0 if result.passed else 1
    if args.int8 and args.format == "executorch":
        return max(status, _executorch_int8(args, exported, model, out, size))
    if args.int8:
        _onnx_int8(args, out, size)
    return status


def _onnx_int8(args: argparse.Namespace, out: Path, size: tuple[int, int, int]) -> None:
    """``--int8`` for ONNX: FILE.int8.onnx, then its size, latency and (with ``--data``) accuracy against fp32."""
    int8_path = out.with_name(out.stem + ".int8.onnx")
    calibration = None
    if args.data:
        calibration = calibration_images(args.data, size, args.batch_size, args.calibration_batches)
    quantize_onnx(out, int8_path, args.int8, calibration, size, args.calibration_batches)
    fp32_ms, int8_ms = onnx_latency_ms(out, size), onnx_latency_ms(int8_path, size)
    print(f"  int8    {int8_path}  {human(file_size(int8_path))}B, "
          f"{file_size(int8_path) / file_size(out):.2f}x the fp32 file ({args.int8} quantization)")  # fmt: skip
    print(f"  latency fp32 {fp32_ms:.2f} ms, int8 {int8_ms:.2f} ms ({int8_ms / fp32_ms:.2f}x), batch 1, "
          f"onnxruntime, {torch.get_num_threads()} threads")  # fmt: skip
    if args.data:
        fp32_acc = onnx_accuracy(out, args.data, size, args.eval_limit)
        int8_acc = onnx_accuracy(int8_path, args.data, size, args.eval_limit)
        print(f"  top-1   fp32 {fp32_acc:.2f}%, int8 {int8_acc:.2f}% ({int8_acc - fp32_acc:+.2f}) on {args.data}")
    else:
        print("  top-1   not measured: calibrated on random inputs; pass --data to calibrate and evaluate")


def _executorch_int8(args: argparse.Namespace, exported: nn.Module, model: nn.Module, out: Path, size: Any) -> int:
    """FILE.int8.pte beside FILE.pte: PT2E int8 calibrated on --data; with --data, its top-1 against PyTorch's."""
    from .ondevice import PteProgram, agreement, write_pte

    int8_path = out.with_name(out.stem + ".int8.pte")
    if args.data:
        calibration = calibration_images(args.data, size, max(args.batch_size, 32), args.calibration_batches)
    else:
        calibration = [torch.randn(args.batch_size, *size) for _ in range(args.calibration_batches)]
    lowered = write_pte(exported, int8_path, size, args.batch_size, calibration)
    print(f"  int8    {int8_path}  {human(file_size(int8_path))}B, {file_size(int8_path) / file_size(out):.2f}x "
          f"the fp32 program (PT2E static, XNNPACK quantizer); {lowered.summary()}")  # fmt: skip
    if not args.data:
        print("  top-1   not measured: calibrated on random inputs; pass --data to calibrate and evaluate")
        return 0
    limit = args.eval_limit or 1000
    held_out = list(itertools.islice(data_batches(args.data, size, False, 50), max(1, limit // 50)))
    fp32, int8 = (agreement(model.eval(), PteProgram(p), held_out) for p in (out, int8_path))
    print(f"  top-1   PyTorch {fp32['top1_pytorch']:.2f}%, fp32 program {fp32['top1_program']:.2f}%, int8 program "
          f"{int8['top1_program']:.2f}% ({int8['top1_program'] - fp32['top1_program']:+.2f}); int8 agrees with "
          f"PyTorch on {int8['top1_agreement']:.1f}% of {int8['images']} {args.data} images")  # fmt: skip
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export to ONNX, torch.export (.pt2) or Core ML (experimental), check it, quantize to int8",
        description=export.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("model", help="a registered name, a run directory or a checkpoint file")
    p.add_argument("--format", default="onnx", help=f"one of {', '.join(FORMATS)} (default: onnx)")
    p.add_argument("--out", required=True, help="output file (.onnx, .pt2, .mlpackage or .pte)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch dimension")
    p.add_argument("--batch-size", type=int, default=1, help="batch of the example input (default: 1)")
    p.add_argument("--input-size", help="H, HxW or C,H,W (default: the card's or the checkpoint's)")
    p.add_argument("--check", action="store_true", help="run the file and compare its outputs with PyTorch")
    p.add_argument("--no-deploy", action="store_true", help="export the model as defined, without inference rewrites")
    p.add_argument("--int8", choices=["static", "dynamic"],
                   help="also write FILE.int8.onnx (onnxruntime) or FILE.int8.pte (executorch: static)")  # fmt: skip
    p.add_argument("--data", help="data set for int8 calibration and accuracy (cifar10, cifar100, digits, PATH)")
    p.add_argument("--calibration-batches", type=int, default=8, help="batches to calibrate int8 on (default: 8)")
    p.add_argument("--eval-limit", type=int, help="evaluate int8 accuracy on at most this many images")
    p.set_defaults(func=cmd_export)
