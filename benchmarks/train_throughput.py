"""Training throughput: compactnets' pipeline against a plain torchvision training loop, in one run.

For each model, both loops train on the same CIFAR-size image folder for the same number of steps:
- plain: ImageFolder + per-image torchvision transforms in DataLoader workers, NCHW, the usual loop;
- ours: the folder decoded once into a uint8 tensor, batched augmentation on the device (compactnets.fastdata),
  channels_last (the trainer's CPU defaults).
Also times the data pipelines alone (no model). Runs alternate so machine noise hits both; prints images/s and
the ratio ours/plain, and writes benchmarks/results/train_throughput.{md,json}.

    python benchmarks/train_throughput.py --data /path/to/cifar10-jpeg [--models resnet20_cifar,mobilenetv2_cifar]

With no --data, the CIFAR-10 JPEG archive of ../shared/data is unpacked to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

import compactnets as cn
from compactnets.data import build_data
from compactnets.fastdata import DeviceBatches, images_as_uint8
from compactnets.train import DistInfo, environment

RESULTS = Path(__file__).parent / "results"
ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def _plain_batches(data, batch: int, workers: int):
    loader = DataLoader(
        data.train, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0
    )
    while True:
        yield from loader


def _our_batches(images, labels, data, batch: int):
    batches = DeviceBatches(images, labels, batch, data.mean, data.std, torch.device("cpu"))
    epoch = 0
    while True:
        batches.set_epoch(epoch)
        yield from batches
        epoch += 1


def _time_steps(model: nn.Module | None, batches, steps: int, channels_last: bool) -> float:
    """Images per second over ``steps`` training steps (or data batches alone when model is None)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if model is not None else None
    start, images = time.perf_counter(), 0
    for _ in range(steps):
        x, y = next(batches)
        if model is not None:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        images += len(y)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="image folder with train/ and test/ (default: unpack the shared archive)")
    parser.add_argument("--models", default="resnet20_cifar,mobilenetv2_cifar")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements per loop")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    args = parser.parse_args()
    cn.tune_malloc()  # what the compactnets command does: glibc keeps freed tensor memory

    tmp = None
    if args.data is None:
        if not ARCHIVE.is_file():
            raise SystemExit(f"pass --data: {ARCHIVE} not found")
        tmp = tempfile.TemporaryDirectory()
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(tmp.name, filter="data")
        args.data = str(next(p.parent for p in Path(tmp.name).rglob("train") if p.is_dir()))
    data = build_data(args.data)
    start = time.perf_counter()
    images, labels = images_as_uint8(data.train)
    decode_s = time.perf_counter() - start
    print(f"decoded {len(labels)} images once in {decode_s:.1f}s", flush=True)

    rows = []
    plain_data = _plain_batches(data, args.batch_size, args.workers)
    our_data = _our_batches(images, labels, data, args.batch_size)
    for name in ["(data only)", *args.models.split(",")]:
        plain, ours = [], []
        if name == "(data only)":
            model_plain = model_ours = None
        else:
            model_plain = cn.create_model(name, num_classes=data.num_classes).train()
            model_ours = cn.create_model(name, num_classes=data.num_classes).train()
            model_ours.to(memory_format=torch.channels_last)
            _time_steps(model_plain, plain_data, 1, False)  # warm-up
            _time_steps(model_ours, our_data, 1, True)
        steps = args.steps * (20 if model_plain is None else 1)
        for _ in range(args.repeats):
            plain.append(_time_steps(model_plain, plain_data, steps, False))
            ours.append(_time_steps(model_ours, our_data, steps, True))
        row = {"model": name, "plain_img_s": statistics.median(plain), "ours_img_s": statistics.median(ours)}
        row["ratio"] = row["ours_img_s"] / row["plain_img_s"]
        rows.append(row)
        print(
            f"{name:>20}: plain {row['plain_img_s']:8.1f} img/s   ours {row['ours_img_s']:8.1f} img/s   "
            f"ratio {row['ratio']:.2f}",
            flush=True,
        )
    env = environment(torch.device("cpu"), DistInfo())
    env["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS", "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_throughput.json").write_text(
        json.dumps({"env": env, "rows": rows, "decode_s": decode_s}, indent=2) + "\n"
    )
    lines = [
        "# Training throughput: compactnets pipeline vs a plain torchvision loop",
        "",
        f"Command: `python benchmarks/train_throughput.py --models {args.models}` (CIFAR-10 JPEG folder, batch "
        f"{args.batch_size}, {args.steps} steps x {args.repeats} alternating repeats, median).",
        f"Environment: torch {env['torch']}, {env['threads']} threads, allocator {env['allocator']}, {env['started']}.",
        f"Plain: ImageFolder + per-image transforms, DataLoader with {args.workers} workers, NCHW. "
        f"Ours: decoded once ({decode_s:.1f}s for {len(labels)} images), batched augmentation, channels_last.",
        "",
        "| model | plain (img/s) | ours (img/s) | ratio |",
        "|---|---|---|---|",
        *(f"| {r['model']} | {r['plain_img_s']:.1f} | {r['ours_img_s']:.1f} | {r['ratio']:.2f} |" for r in rows),
    ]
    (RESULTS / "train_throughput.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'train_throughput.md'}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
