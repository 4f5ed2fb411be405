"""Tests of the built-in data sets, the image helpers and the decode cache."""

from __future__ import annotations

import hashlib
import math
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import DATASETS, Dataset, create
from ganforge.data.cifar10 import CLASSES
from ganforge.data.images import cached, decode_image, list_images, load_folder, resize_batch, to_channels
from ganforge.errors import DataError, UserError


def make(name: str, **kwargs) -> Dataset:
    return create(DataConfig(name=name, **kwargs))


def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def gradient(width: int, height: int) -> np.ndarray:
    """A smooth RGB test pattern (JPEG keeps it close to exact)."""
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    return np.broadcast_to(np.concatenate([x + 0 * y, y + 0 * x, 128 + 0 * x * y], axis=2), (height, width, 3)).astype(np.uint8)


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """Two classes of deliberately awkward images: grey, RGBA, palette, odd sizes, JPEG."""
    root = tmp_path / "pets"
    save(root / "cats" / "a.png", Image.new("L", (40, 30), 100))
    rgba = Image.new("RGBA", (17, 23), (255, 0, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 17, 23))  # fully transparent: must come out white
    save(root / "cats" / "b.png", rgba)
    save(root / "dogs" / "c.JPG", Image.fromarray(gradient(64, 48)))
    save(root / "dogs" / "d.gif", Image.new("RGB", (9, 9), (0, 0, 255)).convert("P"))
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------- digits


def test_digits_shapes_range_labels() -> None:
    ds = make("digits")
    assert ds.data.shape == (1797, 1, 8, 8) and ds.data.dtype == torch.uint8
    assert int(ds.data.min()) == 0 and int(ds.data.max()) == 255
    assert ds.labels is not None and ds.labels.dtype == torch.int64
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    assert ds.class_names == [str(d) for d in range(10)] and ds.num_classes == 10
    test = make("digits", split="test")
    assert len(test) == 360 and torch.equal(test.data, ds.data[-360:])


def test_digits_resolution_and_channels() -> None:
    native = make("digits")
    ds = make("digits", resolution=32, channels=3)
    assert ds.data.shape == (1797, 3, 32, 32)
    assert torch.equal(ds.data[:, 0], ds.data[:, 2])  # grey copied to all three channels
    # Upsampling keeps the overall brightness.
    assert abs(ds.data.float().mean() - native.data.float().mean()) < 3.0


def test_digits_rejects_bad_options() -> None:
    with pytest.raises(DataError, match="no split 'val'"):
        make("digits", split="val")
    with pytest.raises(DataError, match="takes no data.root"):
        make("digits", root="/somewhere")
    with pytest.raises(DataError, match="data.channels"):
        make("digits", channels=2)


def test_max_samples_and_unknown_name() -> None:
    assert len(make("digits", max_samples=100)) == 100
    with pytest.raises(UserError, match="did you mean 'digits'"):
        make("digts")


# --------------------------------------------------------------------------- tensor helpers


def test_to_channels_round_trip() -> None:
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    grey = to_channels(rgb, 1)
    assert grey.shape == (2, 1, 4, 4) and int(grey[0, 0, 0, 0]) == round(0.299 * 255)
    assert to_channels(grey, 3).shape == (2, 3, 4, 4)
    assert to_channels(rgb, None) is rgb


def test_resize_batch_crops_non_square() -> None:
    x = torch.zeros(2, 1, 10, 20, dtype=torch.uint8)
    x[..., 5:15] = 200  # the centred 10x10 square
    out = resize_batch(x, 5)
    assert out.shape == (2, 1, 5, 5) and bool((out == 200).all())


# --------------------------------------------------------------------------- folders


def test_list_images(class_folder: Path) -> None:
    (class_folder / ".hidden.png").write_bytes(b"")
    names = [p.name for p in list_images(class_folder)]
    assert names == ["a.png", "b.png", "c.JPG", "d.gif"]


def test_image_folder_with_classes(class_folder: Path) -> None:
    ds = make("image-folder", root=str(class_folder), resolution=16)
    assert ds.data.shape == (4, 3, 16, 16) and ds.data.dtype == torch.uint8
    assert ds.class_names == ["cats", "dogs"]
    assert ds.labels is not None and ds.labels.bincount().tolist() == [2, 2]
    images = {tuple(img[:, 8, 8].tolist()) for img in ds.data}
    assert (255, 255, 255) in images  # the transparent RGBA image, on white
    assert (100, 100, 100) in images  # grey became RGB
    assert (0, 0, 255) in images  # palette image


def test_image_folder_grey_and_native_size(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / f"{i}.png", Image.fromarray(gradient(20, 12)))
    ds = make("image-folder", root=str(tmp_path), channels=1)
    assert ds.data.shape == (3, 1, 12, 20)  # native size, not cropped
    assert ds.labels is None and ds.class_names is None  # a flat folder has no labels


def test_netpbm_faces_are_images_too(tmp_path: Path) -> None:
    """Classic face sets (AT&T/ORL) ship as .pgm: Netpbm files are read like any other image."""
    for person in ("s1", "s2"):
        (tmp_path / person).mkdir()
        for i in range(2):
            Image.fromarray(np.ascontiguousarray(gradient(16, 16)[..., i])).save(tmp_path / person / f"{i}.pgm")
    Image.fromarray(gradient(16, 16)).save(tmp_path / "s2" / "9.ppm")
    ds = make("image-folder", root=str(tmp_path), channels=1)
    assert ds.data.shape == (5, 1, 16, 16) and ds.class_names == ["s1", "s2"]


def test_mixed_sizes_need_a_resolution(class_folder: Path) -> None:
    with pytest.raises(DataError, match="data.resolution"):
        make("image-folder", root=str(class_folder))


def test_corrupt_file_is_skipped_with_one_warning(class_folder: Path) -> None:
    bad = class_folder / "dogs" / "bad.png"
    bad.write_bytes(b"\x00garbage, not a png" * 10)
    with pytest.warns(UserWarning) as record:
        ds = make("image-folder", root=str(class_folder), resolution=8)
    messages = [str(w.message) for w in record if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "skipped 1 unreadable image(s)" in messages[0] and str(bad) in messages[0]
    assert "cannot identify image file" in messages[0]
    assert len(ds) == 4


def test_missing_or_empty_root(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=f"'{missing}' does not exist"):
        make("image-folder", root=str(missing))
    with pytest.raises(DataError, match="needs data.root"):
        make("image-folder")
    with pytest.raises(DataError, match="no images found"):
        make("image-folder", root=str(tmp_path))
    with pytest.raises(DataError, match="needs data.root"):
        make("celeba")
    with pytest.raises(DataError, match="has no splits"):
        make("image-folder", root=str(tmp_path), split="test")


def test_all_unreadable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of the 1 image files"):
        load_folder(tmp_path, 8, 3, labels_from_subfolders=False, cache=False)


def test_decode_image_crops_centre(tmp_path: Path) -> None:
    array = np.zeros((30, 90, 3), np.uint8)
    array[:, 30:60] = 255  # a white centre square between black sides
    path = save(tmp_path / "wide.png", Image.fromarray(array))
    out = decode_image(path, 10, 3)
    assert out.shape == (3, 10, 10)
    # The resampling kernel reaches just past the crop (as resize-then-crop would).
    assert int(out[:, :, 1:-1].min()) == 255 and int(out.min()) > 200


def test_decode_image_16_bit_and_cmyk(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    grey = decode_image(save(tmp_path / "g16.png", Image.fromarray(ramp)), None, None)
    assert grey.shape == (1, 40, 40) and int(grey.min()) == 0 and int(grey.max()) == 255  # scaled, not clipped
    cmyk = decode_image(save(tmp_path / "c.jpg", Image.new("CMYK", (20, 20), (0, 255, 255, 0))), 8, 3)
    assert cmyk[:, 4, 4].tolist() == [255, 0, 0]


def test_large_jpeg_fast_path_matches_full_decode(tmp_path: Path) -> None:
    # Big JPEGs are decoded at reduced scale (draft); the result must match a full decode.
    path = save(tmp_path / "big.jpg", Image.fromarray(gradient(640, 480)))
    fast = decode_image(path, 32, 3).float()
    with Image.open(path) as im:
        full = im.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC, box=(80, 0, 560, 480))
    reference = torch.from_numpy(np.array(full)).permute(2, 0, 1).float()
    assert (fast - reference).abs().mean() < 1.0


def test_celeba_defaults(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "celeba" / "images"
    if not source.is_dir():
        pytest.skip(f"{source} is missing")
    for path in sorted(source.iterdir())[:12]:
        shutil.copy(path, tmp_path / path.name)
    ds = make("celeba", root=str(tmp_path))
    assert ds.data.shape == (12, 3, 64, 64) and ds.labels is None
    assert 40 < ds.data.float().mean() < 220


# --------------------------------------------------------------------------- cache


def test_cached_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    calls = []

    def build() -> dict:
        calls.append(1)
        return {"x": torch.arange(5), "names": ["a", "b"], "none": None}

    first = cached(["test", 1], build)
    second = cached(["test", 1], build)
    assert len(calls) == 1 and torch.equal(first["x"], second["x"]) and second["names"] == ["a", "b"]
    assert list((tmp_path / "cache" / "decoded").glob("*.tmp")) == []  # written atomically
    cached(["test", 2], build)
    assert len(calls) == 2


def test_folder_cache_hit_and_invalidation(class_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    first = make("image-folder", root=str(class_folder), resolution=16)
    entries = list((tmp_path / "cache" / "decoded").iterdir())
    assert len(entries) == 1
    second = make("image-folder", root=str(class_folder), resolution=16)
    assert torch.equal(first.data, second.data) and torch.equal(first.labels, second.labels)
    assert list((tmp_path / "cache" / "decoded").iterdir()) == entries  # a hit, nothing new
    save(class_folder / "dogs" / "e.png", Image.new("RGB", (16, 16), (1, 2, 3)))
    third = make("image-folder", root=str(class_folder), resolution=16)
    assert len(third) == 5


# --------------------------------------------------------------------------- MNIST


def _idx_header(dtype_code: int, *dims: int) -> bytes:
    return bytes([0, 0, dtype_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_mnist_test_split(shared_data: Path) -> None:
    root = shared_data / "mnist"
    ds = make("mnist", root=str(root), split="test")
    assert ds.data.shape == (10000, 1, 28, 28) and ds.data.dtype == torch.uint8
    counts = ds.labels.bincount(minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800
    # The parsed arrays are byte-exact: md5 of the decompressed files (README of shared/data).
    images = _idx_header(0x08, 10000, 28, 28) + ds.data.numpy().tobytes()
    labels = _idx_header(0x08, 10000) + ds.labels.to(torch.uint8).numpy().tobytes()
    assert hashlib.md5(images).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert hashlib.md5(labels).hexdigest() == "27ae3e4e09519cfbb04c329615203637"


def test_mnist_train_split_missing_suggests_test(shared_data: Path) -> None:
    with pytest.raises(DataError, match="data.split=test") as info:
        make("mnist", root=str(shared_data / "mnist"), split="train")
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_mnist_raw_files_in_torchvision_layout(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    (raw / "train-images-idx3-ubyte").write_bytes(_idx_header(0x08, 3, 28, 28) + images.tobytes())
    (raw / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x08, 3) + bytes([9, 0, 4]))
    ds = make("fashion-mnist", root=str(tmp_path), resolution=14, channels=3)
    assert ds.data.shape == (3, 3, 14, 14) and ds.labels.tolist() == [9, 0, 4]
    assert ds.class_names[9] == "Ankle boot"
    native = make("fashion-mnist", root=str(tmp_path))
    assert np.array_equal(native.data[:, 0].numpy(), images)


def test_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"data root '{tmp_path / 'missing'}' does not exist"):
        make("mnist", root=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="no MNIST IDX files"):
        make("mnist", root=str(tmp_path))
    with pytest.raises(DataError, match="data.download is false"):
        make("mnist", download=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x08, 1) + b"\x00")
    with pytest.raises(DataError, match="truncated"):
        make("mnist", root=str(tmp_path))


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_image_folders(shared_data: Path) -> None:
    root = shared_data / "cifar10"
    ds = make("cifar10", root=str(root), split="test")  # decodes 10,000 JPEGs (a few seconds)
    assert ds.data.shape == (10000, 3, 32, 32) and ds.data.dtype == torch.uint8
    assert ds.class_names == CLASSES
    assert ds.labels.bincount().tolist() == [1000] * 10
    # Class folders are stored shuffled, so a prefix (data.max_samples) holds every class.
    assert len(ds.labels[:200].unique()) == 10
    again = make("cifar10", root=str(root), split="test")  # from the decode cache
    assert torch.equal(ds.data, again.data) and torch.equal(ds.labels, again.labels)


def test_cifar10_binary_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = np.array([3, 0, 9, 1, 1], np.uint8)
    pixels = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([labels[:, None], pixels.reshape(5, -1)], axis=1)
    (folder / "test_batch.bin").write_bytes(records.tobytes())
    ds = make("cifar10", root=str(tmp_path), split="test")
    assert ds.data.shape == (5, 3, 32, 32) and ds.labels.tolist() == [3, 0, 9, 1, 1]
    assert np.array_equal(ds.data.numpy(), pixels)  # CHW order, byte for byte
    assert ds.class_names == CLASSES
    assert make("cifar10", root=str(tmp_path), split="test", resolution=16, channels=1).data.shape == (5, 1, 16, 16)
    with pytest.raises(DataError, match="data.split=test"):
        make("cifar10", root=str(tmp_path), split="train")


def test_cifar10_refuses_pickles(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="pickled Python version"):
        make("cifar10", root=str(tmp_path), split="test")


# --------------------------------------------------------------------------- toy 2-D


@pytest.mark.parametrize("name, modes, std", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_toy_mixtures(name: str, modes: int, std: float) -> None:
    ds = make(name)
    assert ds.data.shape == (100_000, 2) and ds.data.dtype == torch.float32
    centers = ds.info["centers"]
    assert centers.shape == (modes, 2) and ds.info["std"] == std and ds.class_names is None
    dist = torch.cdist(ds.data, centers)
    nearest = dist.argmin(dim=1)
    assert torch.equal(nearest, ds.labels)  # modes are far apart compared with the std
    assert ds.labels.bincount(minlength=modes).min() > 0.8 * 100_000 / modes  # all modes, about equal
    # The distance to the centre of an isotropic 2-D Gaussian is Rayleigh: mean std*sqrt(pi/2).
    mean_dist = dist.min(dim=1).values.mean().item()
    assert mean_dist == pytest.approx(std * math.sqrt(math.pi / 2), rel=0.02)
    assert torch.equal(make(name).data, ds.data)  # deterministic
    assert not torch.equal(make(name, split="test").data, ds.data)


def test_toy_rejects_image_options() -> None:
    with pytest.raises(DataError, match="resolution and data.channels must be null"):
        make("ring8", resolution=32)
    assert "ring8" in DATASETS and DATASETS.describe("grid25").startswith("25 Gaussians")


def test_no_stray_warnings_for_clean_data(class_folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make("image-folder", root=str(class_folder), resolution=8)
