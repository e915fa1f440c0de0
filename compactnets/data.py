"""Data sets and augmentation: CIFAR-10/100, any image folder, and an offline default (digits).

Small-image sources (CIFAR, digits) are held in memory as uint8 tensors. Augmentation uses
torchvision.transforms.v2: CIFAR style (pad-4 random crop, flip, normalise) for inputs up to 64 px,
ImageNet style (random-resized crop, flip; eval resize to 1/0.875 and centre crop) above.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from .errors import UsageError

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SMALL_IMAGE_MAX = 64  # inputs up to this size get CIFAR-style augmentation
DIGITS_TEST_FRACTION = 0.2
_EVAL_FOLDERS = ("val", "test")


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor (N, 3, H, W) with int64 targets; ``transform`` per sample."""

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        classes: Sequence[str],
        transform: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images of shape (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images, self.targets, self.classes, self.transform = images, targets.long(), list(classes), transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = tv_tensors.Image(self.images[index])
        return (self.transform(image) if self.transform else image), int(self.targets[index])


@dataclass
class DataBundle:
    """Train and evaluation sets of one source, with what the model and the run need to know."""

    name: str
    train: Dataset
    val: Dataset
    classes: list[str]
    input_size: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise UsageError(f"{path} is not a readable CIFAR batch file ({err}); delete it and download again") from None


_CIFAR = {
    # name: (folder in the archive, train files, test files, label key, meta file, names key, torchvision class)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        "batches.meta",
        "label_names",
        "CIFAR10",
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names", "CIFAR100"),
}


def load_cifar(
    name: str, root: str | Path, train: bool, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """CIFAR-10/100 from the official python-pickle release under ``root``, as (uint8 NCHW, labels, classes).

    With ``download`` the archive is fetched by torchvision first (needs a network).
    """
    folder, train_files, test_files, label_key, meta_file, names_key, tv_name = _CIFAR[name]
    base = Path(root) / folder
    if not base.is_dir() and download:
        import torchvision.datasets

        getattr(torchvision.datasets, tv_name)(str(root), train=True, download=True)
    if not base.is_dir():
        raise UsageError(
            f"{name} not found: expected {base}/ (the python version of the data set). Run with --download "
            f"when online, or unpack cifar-{name[5:]}-python.tar.gz into a folder and pass it as --data-dir. "
            "Offline, `--data digits` needs no download, and any image folder works as --data PATH."
        )
    images, labels = [], []
    for file in train_files if train else test_files:
        batch = _read_pickle(base / file)
        images.append(torch.as_tensor(batch["data"], dtype=torch.uint8).reshape(-1, 3, 32, 32))
        labels.append(torch.as_tensor(batch[label_key], dtype=torch.long))
    classes = list(_read_pickle(base / meta_file)[names_key])
    return torch.cat(images), torch.cat(labels), classes


def load_digits_images(train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """scikit-learn's 8x8 digits (1,797 images, shipped with the package) as 32x32 RGB uint8, fixed 80/20 split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        raise UsageError("the digits data set needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    gray = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # values 0..16
    gray = F.interpolate(gray, size=(32, 32), mode="bilinear", align_corners=False)
    images = (gray.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    targets = torch.as_tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(0))  # the fixed split
    n_test = int(len(order) * DIGITS_TEST_FRACTION)
    index = order[n_test:] if train else order[:n_test]
    return images[index], targets[index], [str(d) for d in range(10)]


def build_transforms(
    input_size: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: str = "auto",
    native_size: int | None = None,
    resize_size: int | None = None,
    interpolation: str = "bilinear",
) -> v2.Compose:
    """The paper-standard pipelines. ``augment``: auto (by input size), cifar, imagenet or none.

    ImageNet-style evaluation resizes the shorter side to ``resize_size`` (default: size / 0.875) with
    ``interpolation`` and crops the centre, as the weights' publisher did (their ``pretrained_cfg``).
    """
    size = input_size[1]
    style = augment if augment != "auto" else ("cifar" if size <= SMALL_IMAGE_MAX else "imagenet")
    if style not in ("cifar", "imagenet", "none"):
        raise UsageError(f"unknown augmentation {augment!r}; choose auto, cifar, imagenet or none")
    ops: list[Any] = [v2.ToImage()]
    if style == "imagenet":
        if train:
            ops += [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        else:
            mode = v2.InterpolationMode(interpolation)
            ops += [v2.Resize(resize_size or round(size / 0.875), mode, antialias=True), v2.CenterCrop(size)]
    else:
        if native_size != size:
            ops.append(v2.Resize(size, antialias=True))
            ops.append(v2.CenterCrop(size))
        if train and style == "cifar":
            ops += [v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


def _image_folder(
    path: Path,
    input_size: tuple[int, int, int] | None,
    augment: str,
    cfg: Mapping[str, Any] | None = None,
    skip_bad_images: bool = False,
) -> DataBundle:
    """An ImageFolder pair whose files were all checked first (:mod:`compactnets.imagecheck`); every image is
    resized to the input size (``input_size``, else the images' own when they are small, else 224)."""
    from torchvision.datasets import ImageFolder

    train_dir = path / "train"
    eval_dir = next((path / d for d in _EVAL_FOLDERS if (path / d).is_dir()), None)
    if not train_dir.is_dir() or eval_dir is None:
        raise UsageError(
            f"{path} does not have the image-folder layout: expected {path}/train/<class>/<image> and "
            f"{path}/val/<class>/<image> (or test/ instead of val/)"
        )
    try:
        train_set, val_set = ImageFolder(str(train_dir)), ImageFolder(str(eval_dir))
    except (FileNotFoundError, RuntimeError) as err:
        raise UsageError(f"{path}: {err}") from None
    if train_set.classes != val_set.classes:
        raise UsageError(f"{path}: train/ and {eval_dir.name}/ have different class folders")
    native = _checked_native_size(path, (train_set, val_set), skip_bad_images)
    side = max(native) if native else 0
    size = input_size or ((3, side, side) if 0 < side <= SMALL_IMAGE_MAX else (3, 224, 224))
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if size[1] <= SMALL_IMAGE_MAX else (IMAGENET_MEAN, IMAGENET_STD)
    mean, std = (tuple(cfg["mean"]), tuple(cfg["std"])) if cfg else (mean, std)
    resize = (
        {"resize_size": cfg.get("resize_size"), "interpolation": cfg.get("interpolation", "bilinear")} if cfg else {}
    )
    square = native[0] if native and native[0] == native[1] else None  # None: resize every image
    train_set.transform = build_transforms(size, mean, std, True, augment, square)
    val_set.transform = build_transforms(size, mean, std, False, augment, square, **resize)
    return DataBundle(path.name, train_set, val_set, list(train_set.classes), size, mean, std)


def _checked_native_size(path: Path, sets: Sequence[Any], skip_bad_images: bool) -> tuple[int, int] | None:
    """Check every file of ``sets`` (ImageFolders); refuse unreadable ones, or drop them with ``skip_bad_images``.
    Returns the images' common (W, H), or None when their sizes differ."""
    from .imagecheck import check_images

    paths = [p for s in sets for p, _ in s.samples]
    found = check_images(paths)
    if found.bad and not skip_bad_images:
        raise UsageError(f"{path}: {found.summary(len(paths))}; remove them or pass --skip-bad-images")
    if found.bad:
        bad = {p for p, _ in found.bad}
        for dataset in sets:
            dataset.samples = dataset.imgs = [s for s in dataset.samples if s[0] not in bad]
            dataset.targets = [t for _, t in dataset.samples]
        print(f"warning: skipping {found.summary(len(paths))}", file=sys.stderr)
    if not all(s.samples for s in sets):
        raise UsageError(f"{path}: no readable images left in train/ or its evaluation folder")
    return next(iter(found.sizes)) if len(found.sizes) == 1 else None


def build_data(
    data: str,
    data_dir: str | Path = "data",
    download: bool = False,
    input_size: tuple[int, int, int] | None = None,
    augment: str = "auto",
    pretrained_cfg: Mapping[str, Any] | None = None,
    skip_bad_images: bool = False,
) -> DataBundle:
    """``data`` is ``cifar10``, ``cifar100``, ``digits`` or a path to an image folder; a ``pretrained_cfg``
    (timm's keys: mean, std, resize_size, interpolation) replaces the source's evaluation preprocessing, since
    published weights bring their own. An image folder's files are checked first: unreadable ones are named
    in the error, or dropped with ``skip_bad_images``."""
    if data in _CIFAR or data == "digits":
        if data == "digits":
            train_x, train_y, classes = load_digits_images(True)
            val_x, val_y, _ = load_digits_images(False)
            mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
        else:
            train_x, train_y, classes = load_cifar(data, data_dir, True, download)
            val_x, val_y, _ = load_cifar(data, data_dir, False, download)
            mean, std = (CIFAR10_MEAN, CIFAR10_STD) if data == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
        cfg = pretrained_cfg
        mean, std = (tuple(cfg["mean"]), tuple(cfg["std"])) if cfg else (mean, std)
        size = input_size or (3, 32, 32)
        train = TensorImageDataset(train_x, train_y, classes, build_transforms(size, mean, std, True, augment, 32))
        val = TensorImageDataset(val_x, val_y, classes, build_transforms(size, mean, std, False, augment, 32))
        return DataBundle(data, train, val, classes, size, mean, std)
    path = Path(data).expanduser()
    if not path.exists():
        raise UsageError(
            f"unknown data set {data!r}: use cifar10, cifar100, digits (offline, no download) or the path of an "
            "image folder with train/<class>/ and val/<class>/ (or test/)"
        )
    return _image_folder(path, input_size, augment, pretrained_cfg, skip_bad_images)
