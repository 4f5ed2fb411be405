"""CIFAR-10, from an image-folder copy or the official *binary* version.

Two layouts are accepted under ``root``:

* image folders ``root/{train,test}/<class>/*.{jpg,png}``; the class folders, sorted
  alphabetically, give the standard label order (airplane=0 ... truck=9);
* the official binary version ``root/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin``
  (or those files directly in ``root``): records of one label byte and 3,072 CHW pixels.

The *Python* version (pickles) is refused on purpose: unpickling runs arbitrary code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DATASETS, Dataset, default_root
from .images import array_dataset, check_split, load_folder

SPLITS = ("train", "test")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
BIN_FOLDER = "cifar-10-batches-bin"
_RECORD = 1 + 3 * 32 * 32


def _batch_names(split: str) -> list[str]:
    return [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]


def _binary_dir(root: Path) -> Path | None:
    """The folder holding the ``.bin`` batches (``root/cifar-10-batches-bin`` or ``root``)."""
    for folder in (root / BIN_FOLDER, root):
        if any((folder / name).is_file() for name in (*_batch_names("train"), *_batch_names("test"))):
            return folder
    return None


def read_binary_batches(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Parse the binary batches of ``split`` into ``uint8 [N, 3, 32, 32]`` and ``int64 [N]``.

    Class names come from ``batches.meta.txt`` when present, else the standard list.
    """
    paths = [folder / name for name in _batch_names(split)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        other = "test" if split == "train" else "train"
        hint = ""
        if all((folder / name).is_file() for name in _batch_names(other)):
            hint = f"; only the {other} split is there, use data.split={other}"
        raise DataError(f"CIFAR-10 {split} split incomplete in '{folder}': missing {', '.join(missing)}{hint}")
    records = []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % _RECORD:
            raise DataError(
                f"'{path}' is not a CIFAR-10 binary batch ({raw.size} bytes, expected a multiple of {_RECORD})"
            )
        records.append(raw.reshape(-1, _RECORD))
    table = np.concatenate(records)
    labels = table[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise DataError(f"CIFAR-10 batches in '{folder}' hold label {labels.max()}, expected 0-9")
    images = np.ascontiguousarray(table[:, 1:]).reshape(-1, 3, 32, 32)
    class_names = CLASSES
    meta = folder / "batches.meta.txt"
    if meta.is_file():
        names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
        if len(names) == len(CLASSES):
            class_names = names
    return torch.from_numpy(images), torch.from_numpy(labels), list(class_names)


def _download(folder: Path) -> None:
    try:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(URL, download_root=str(folder), md5=MD5)
    except Exception as err:  # URLError, RuntimeError (bad md5), OSError, ...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(
            f"could not download CIFAR-10 into '{folder}' ({reason}); pass data.root=DIR with "
            f"{BIN_FOLDER}/ or train/ and test/ image folders"
        ) from None


def _layout_error(root: Path, split: str) -> DataError:
    if (root / "cifar-10-batches-py").is_dir() or (root / "data_batch_1").is_file():
        return DataError(
            f"'{root}' holds the pickled Python version of CIFAR-10, which ganforge does not read "
            f"(unpickling runs code); use the binary version ({URL}) or image folders"
        )
    other = "test" if split == "train" else "train"
    if (root / other).is_dir():
        return DataError(f"CIFAR-10 folder '{root / split}' does not exist (only '{root / other}' does); use data.split={other}")
    return DataError(
        f"no CIFAR-10 found in '{root}': expected {split}/<class>/ image folders or {BIN_FOLDER}/*.bin"
    )


@DATASETS.register("cifar10", help="CIFAR-10, 32x32 RGB, 10 classes (image folders or binary batches; downloads)")
def cifar10(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images, 10 classes.

    Reads ``root/<split>/<class>/`` image folders (decoded once, then cached, see
    :func:`~ganforge.data.images.cached`) or the binary batches (see the module docstring).
    With ``root`` unset, uses ``$GANFORGE_CACHE/data/cifar10`` and downloads the binary
    version there when ``download`` is true; a given ``root`` is never downloaded into.

    Args:
        root: the data folder, or None for the cache (and a download).
        split: ``'train'`` or ``'test'``.
        resolution: square side; None keeps the native 32x32.
        channels: 3 (native) or 1.
        download: allow downloading when ``root`` is None.
    """
    check_split("cifar10", split, SPLITS)
    if root is None:
        folder = default_root("cifar10")
        if _binary_dir(folder) is None and not (folder / split).is_dir():
            if not download:
                raise DataError(
                    f"CIFAR-10 not found in '{folder}' and data.download is false; "
                    f"pass data.root=DIR or allow downloading"
                )
            _download(folder)
    else:
        folder = Path(root).expanduser()
        if not folder.exists():
            raise DataError(f"data root '{folder}' does not exist")

    info = {"root": str(folder), "split": split}
    if (folder / split).is_dir():
        data, labels, class_names = load_folder(
            folder / split, resolution, channels or 3, labels_from_subfolders=True
        )
        if labels is None or class_names is None:
            raise DataError(f"CIFAR-10 folder '{folder / split}' must hold one sub-folder per class, found loose images")
        if class_names != CLASSES:
            warnings.warn(
                f"CIFAR-10 class folders in '{folder / split}' are {class_names}, not the standard "
                f"{CLASSES}; labels follow the folders' sorted order",
                stacklevel=2,
            )
        return Dataset("cifar10", data, labels, class_names, {**info, "layout": "folders"})

    binary = _binary_dir(folder)
    if binary is None:
        raise _layout_error(folder, split)
    images, labels, class_names = read_binary_batches(binary, split)
    return array_dataset(
        "cifar10", images, labels, class_names, resolution=resolution, channels=channels, info={**info, "layout": "binary"}
    )
