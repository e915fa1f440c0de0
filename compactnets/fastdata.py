"""Small-image pipeline: the whole data set as one uint8 tensor on the training device, augmented in batches.

As in airbench: decode once, then per batch gather, pad-4 random crop, horizontal flip and normalise with
tensor ops on the device, instead of per-image PIL transforms in worker processes (which compete with the
model for the CPU's cores). The augmentation has the semantics of torchvision's
``RandomCrop(size, padding=4)`` + ``RandomHorizontalFlip()`` + ``Normalize`` (tests compare the two).
All random draws of an epoch come from a generator seeded by (seed, epoch, rank), so a resumed run that
starts part-way through an epoch sees exactly the batches it had not seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from .data import TensorImageDataset

PAD = 4  # CIFAR-style augmentation: zero padding before the random crop


def images_as_uint8(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(N, 3, H, W) uint8 images and labels of an in-memory or image-folder data set of equal-size images;
    None when the images differ in size (use the standard loader then)."""
    if isinstance(dataset, Subset):
        inner = images_as_uint8(dataset.dataset)
        if inner is None:
            return None
        index = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return inner[0][index], inner[1][index]
    if isinstance(dataset, TensorImageDataset):
        return dataset.images, dataset.targets
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None

    def decode(path: str) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes without holding the GIL
        arrays = list(pool.map(decode, [p for p, _ in samples], chunksize=256))
    if len({a.shape for a in arrays}) != 1:
        return None
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor([t for _, t in samples], dtype=torch.long)


def pad_crop_flip(batch: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Zero-pad by ``PAD``, crop each image at its own (dy, dx), mirror where ``flips``: one gather for the batch.

    Equals torchvision's ``pad(PAD)`` -> ``crop(dy, dx, H, W)`` -> ``hflip`` applied image by image.
    """
    n, channels, height, width = batch.shape
    padded = torch.nn.functional.pad(batch, (PAD, PAD, PAD, PAD))
    rows = (dy[:, None] + torch.arange(height, device=batch.device))[:, None, :, None]
    cols = dx[:, None] + torch.arange(width, device=batch.device)
    cols = torch.where(flips[:, None], cols.flip(-1), cols)[:, None, None, :]  # a flip reads columns reversed
    images = torch.arange(n, device=batch.device)[:, None, None, None]
    planes = torch.arange(channels, device=batch.device)[None, :, None, None]
    return padded[images, planes, rows, cols]


class DeviceBatches:
    """Batches of normalised, augmented float images made on ``device`` from a uint8 tensor.

    ``train=True``: per-epoch shuffle and, unless ``augment=False``, pad-``PAD`` random crop and flip; the
    last partial batch is dropped. ``train=False``: every image once, in order, no augmentation. Under DDP
    each rank takes a disjoint shard of the epoch's permutation (``rank::world_size``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        train: bool = True,
        augment: bool | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = True,
    ) -> None:
        self.images = images.to(device)
        self.targets = targets.to(device)
        self.batch_size, self.device, self.train = batch_size, device, train
        self.augment = train if augment is None else augment
        self.seed, self.rank, self.world_size, self.channels_last = seed, rank, world_size, channels_last
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(mean, device=device).view(shape) * 255
        self.std = torch.tensor(std, device=device).view(shape) * 255
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    @property
    def per_rank(self) -> int:
        return len(self.targets) // self.world_size if self.train else math.ceil(len(self.targets) / self.world_size)

    def __len__(self) -> int:
        if self.train:
            return self.per_rank // self.batch_size
        return math.ceil(len(range(self.rank, len(self.targets), self.world_size)) / self.batch_size)

    def _epoch_draws(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's sample order, crop offsets (dy, dx) and flips for the whole epoch."""
        n = len(self.targets)
        if not self.train:
            order = torch.arange(self.rank, n, self.world_size, device=self.device)
            zeros = torch.zeros(len(order), dtype=torch.long, device=self.device)
            return order, zeros + PAD, zeros + PAD, zeros.bool()
        gen = torch.Generator(device="cpu").manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen)[: self.per_rank * self.world_size][self.rank :: self.world_size]
        gen.manual_seed(self.seed * 100_003 + self.epoch * 7_919 + self.rank + 1)
        offsets = torch.randint(0, 2 * PAD + 1, (2, len(order)), generator=gen)
        flips = torch.rand(len(order), generator=gen) < 0.5
        to = self.device
        return order.to(to), offsets[0].to(to), offsets[1].to(to), flips.to(to)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, dy, dx, flips = self._epoch_draws()
        for step in range(self.start_step, len(self)):
            index = slice(step * self.batch_size, (step + 1) * self.batch_size)
            batch = self.images[order[index]]
            if self.augment:
                batch = pad_crop_flip(batch, dy[index], dx[index], flips[index])
            x = (batch.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.targets[order[index]]
        self.start_step = 0
