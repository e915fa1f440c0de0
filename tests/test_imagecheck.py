"""Image folders are checked before training: bad files named or skipped, mixed sizes resized (issue #21)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from compactnets import imagecheck
from compactnets.cli import main
from compactnets.data import build_data
from compactnets.errors import UsageError


def _jpeg(size: tuple[int, int], value: int = 100) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (value, 50, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _folder(root: Path, size: tuple[int, int] = (32, 32)) -> Path:
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for j in range(4):
                (root / split / name / f"{j}.jpg").write_bytes(_jpeg(size, 60 * c + 10 * j))
    return root


def test_inspect_tells_truncated_and_foreign_files_from_good_ones(tmp_path: Path) -> None:
    good, trailing, cut, text = (tmp_path / n for n in ("good.jpg", "trailing.jpg", "cut.jpg", "text.jpg"))
    data = _jpeg((40, 30))
    good.write_bytes(data)
    trailing.write_bytes(data + b"appended by a camera" * 10)  # data after the end marker is allowed
    cut.write_bytes(data[: len(data) // 2])
    text.write_text("not an image")
    assert imagecheck.inspect_image(str(good)) == (40, 30)
    assert imagecheck.inspect_image(str(trailing)) == (40, 30)
    assert "truncated" in str(imagecheck.inspect_image(str(cut))).lower()
    assert "cannot identify image file" in str(imagecheck.inspect_image(str(text)))


def test_bad_files_are_named_or_skipped_with_a_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(tmp_path / "data")
    (root / "train" / "cat" / "0.jpg").write_bytes(_jpeg((32, 32))[:300])
    (root / "test" / "dog" / "notes.jpg").write_text("a text file named like an image")
    with pytest.raises(UsageError, match=r"2 of 17 files are not readable images: .*0\.jpg \(.*\) and 1 more.*"
                       r"--skip-bad-images"):  # fmt: skip
        build_data(str(root))
    data = build_data(str(root), skip_bad_images=True)
    assert len(data.train) == 7 and len(data.val) == 8
    assert "skipping 2 of 17 files" in capsys.readouterr().err
    kept = {str(Path(p).relative_to(root)) for p, _ in data.train.samples + data.val.samples}
    assert len(kept) == 15 and not kept & {"train/cat/0.jpg", "test/dog/notes.jpg"}


def test_mixed_sizes_are_resized_to_the_input_size(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    (root / "test" / "cat" / "big.jpg").write_bytes(_jpeg((300, 200)))
    (root / "test" / "cat" / "tiny.jpg").write_bytes(_jpeg((1, 1)))
    (root / "train" / "dog" / "40.jpg").write_bytes(_jpeg((40, 40)))
    data = build_data(str(root), input_size=(3, 32, 32))
    shapes = {tuple(data.val[i][0].shape) for i in range(len(data.val))}
    assert shapes == {(3, 32, 32)} and {tuple(data.train[i][0].shape) for i in range(len(data.train))} == shapes


def test_training_on_a_mixed_folder_uses_the_card_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(tmp_path / "data", (48, 48))
    (root / "test" / "dog" / "40.jpg").write_bytes(_jpeg((40, 40)))
    out = tmp_path / "run"
    args = ["train", "resnet20_cifar", "--data", str(root), "--epochs", "1", "--batch-size", "4", "--out", str(out)]
    assert main(args) == 0
    assert torch.load(out / "last.pt", weights_only=True)["input_size"] == [3, 32, 32]  # the card's, not 48


def test_the_check_is_cached_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "data")
    paths = sorted(str(p) for p in root.rglob("*.jpg"))
    first = imagecheck.check_images(paths)
    assert first.bad == [] and first.sizes == {(32, 32): 16}

    def fail(path: str) -> object:
        raise AssertionError("inspected again")

    monkeypatch.setattr(imagecheck, "inspect_image", fail)
    assert imagecheck.check_images(paths).sizes == first.sizes  # from the cache
    Path(paths[0]).write_bytes(_jpeg((32, 32), 1)[:200])
    monkeypatch.undo()
    assert [p for p, _ in imagecheck.check_images(paths).bad] == [paths[0]]
