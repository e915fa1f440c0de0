"""The in-memory batch pipeline: same augmentation as torchvision's per-image transforms, exact sharding."""

from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from compactnets.data import CIFAR10_MEAN, CIFAR10_STD, build_transforms, load_digits_images
from compactnets.fastdata import PAD, DeviceBatches, pad_crop_flip


def _images(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, _ = load_digits_images(True)
    noise = torch.randint(0, 60, images[:n].shape, generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    return images[:n] // 2 + noise, labels[:n]  # colour varies across channels and positions


def test_pad_crop_flip_equals_torchvision_per_image() -> None:
    images, _ = _images(12)
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, 12), generator=torch.Generator().manual_seed(0))
    flips = torch.arange(12) % 2 == 0
    out = pad_crop_flip(images, dy, dx, flips)
    for i in range(12):
        expected = TF.crop(TF.pad(images[i], [PAD]), int(dy[i]), int(dx[i]), 32, 32)
        expected = TF.horizontal_flip(expected) if flips[i] else expected
        assert torch.equal(out[i], expected)


def test_augmentation_statistics_match_the_standard_path() -> None:
    """Per-channel mean/std and the share of padded (zero) pixels agree with RandomCrop + flip + Normalize."""
    images, labels = _images()
    standard = build_transforms((3, 32, 32), CIFAR10_MEAN, CIFAR10_STD, train=True, augment="cifar", native_size=32)
    torch.manual_seed(0)
    reference = torch.stack([standard(v2.functional.to_image(img)) for _ in range(8) for img in images])
    batches = DeviceBatches(images, labels, 32, CIFAR10_MEAN, CIFAR10_STD, torch.device("cpu"), channels_last=False)
    ours = []
    for epoch in range(8):
        batches.set_epoch(epoch)
        ours += [x for x, _ in batches]
    ours_t = torch.cat(ours)
    assert ours_t.shape == reference.shape
    torch.testing.assert_close(ours_t.mean((0, 2, 3)), reference.mean((0, 2, 3)), atol=0.03, rtol=0)
    torch.testing.assert_close(ours_t.std((0, 2, 3)), reference.std((0, 2, 3)), atol=0.03, rtol=0)
    zero = torch.tensor([-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD, strict=True)]).view(1, 3, 1, 1)
    padded_share = [((t - zero).abs() < 1e-4).all(1).float().mean().item() for t in (ours_t, reference)]
    assert abs(padded_share[0] - padded_share[1]) < 0.01 and padded_share[0] > 0.05


def test_eval_batches_equal_the_standard_eval_transform() -> None:
    images, labels = _images(40)
    evaluate = build_transforms((3, 32, 32), CIFAR10_MEAN, CIFAR10_STD, train=False, native_size=32)
    batches = DeviceBatches(images, labels, 16, CIFAR10_MEAN, CIFAR10_STD, torch.device("cpu"), train=False)
    xs, ys = zip(*batches, strict=True)
    assert len(batches) == 3 and torch.equal(torch.cat(ys), labels)
    expected = torch.stack([evaluate(v2.functional.to_image(img)) for img in images])
    torch.testing.assert_close(torch.cat(xs), expected, rtol=1e-5, atol=1e-5)


def test_ranks_take_disjoint_shards_and_resume_mid_epoch() -> None:
    images, labels = _images(64)
    common = (8, CIFAR10_MEAN, CIFAR10_STD, torch.device("cpu"))
    shards = [DeviceBatches(images, torch.arange(64), *common, rank=r, world_size=2) for r in (0, 1)]
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert len(seen[0]) == len(seen[1]) == 32 and not set(seen[0].tolist()) & set(seen[1].tolist())
    full = DeviceBatches(images, labels, *common)
    full.set_epoch(3)
    batches = list(full)
    full.set_epoch(3, start_step=5)
    resumed = list(full)
    assert len(resumed) == len(batches) - 5
    for (xa, ya), (xb, yb) in zip(batches[5:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
