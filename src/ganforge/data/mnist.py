"""MNIST and Fashion-MNIST, read from their IDX files (gzipped or not) with numpy.

torchvision is used only to download the files; parsing is ours, so any folder holding the
four IDX files works (as distributed, or as torchvision leaves them in ``MNIST/raw``).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DATASETS, Dataset, default_root
from .images import array_dataset, check_split

SPLITS = ("train", "test")

# IDX element types (third byte of the magic number) -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class _Spec:
    """What distinguishes MNIST from Fashion-MNIST."""

    name: str  # registry name
    title: str  # for messages
    subfolder: str  # torchvision's folder under root (``<root>/<subfolder>/raw``)
    class_names: tuple[str, ...]


_MNIST = _Spec("mnist", "MNIST", "MNIST", tuple(str(d) for d in range(10)))
_FASHION = _Spec(
    "fashion-mnist",
    "Fashion-MNIST",
    "FashionMNIST",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)


def _file_stems(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (``.gz`` or raw) into a numpy array of its declared shape.

    Raises:
        DataError: the file is not a valid IDX file or is truncated.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read IDX file '{path}' ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"'{path}' is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file '{path}' is truncated: its header declares {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)) if ndim else ()
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 0
    if len(raw) < header + count * dtype.itemsize:
        raise DataError(
            f"IDX file '{path}' is truncated: shape {dims} needs {header + count * dtype.itemsize} bytes, "
            f"it has {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(root: Path, spec: _Spec, stem: str) -> Path | None:
    """``stem`` or ``stem.gz`` in ``root``, ``root/raw`` or ``root/<subfolder>/raw``."""
    for folder in (root, root / "raw", root / spec.subfolder / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _split_files(root: Path, spec: _Spec, split: str) -> tuple[Path, Path] | None:
    images, labels = (_find(root, spec, stem) for stem in _file_stems(split))
    return (images, labels) if images and labels else None


def _download(root: Path, spec: _Spec) -> None:
    """Download all four IDX files into ``root/<subfolder>/raw`` with torchvision."""
    try:
        import torchvision.datasets as tvd

        getattr(tvd, spec.subfolder)(root=str(root), train=True, download=True)
    except Exception as err:  # network errors come as URLError, RuntimeError, OSError, ...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(
            f"could not download {spec.title} into '{root}' ({reason}); pass data.root=DIR with the IDX files"
        ) from None


def _missing_split_error(root: Path, spec: _Spec, split: str) -> DataError:
    wanted = " and ".join(f"{stem}[.gz]" for stem in _file_stems(split))
    where = f"'{root}' (also looked in raw/ and {spec.subfolder}/raw/)"
    other = "test" if split == "train" else "train"
    found = _split_files(root, spec, other)
    if found:
        names = ", ".join(p.name for p in found)
        return DataError(
            f"{spec.title} {split} split not found in {where}: expected {wanted}; "
            f"only the {other} split is there ({names}); use data.split={other}"
        )
    return DataError(f"no {spec.title} IDX files in {where}: expected {wanted}")


def _load(
    spec: _Spec, *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    check_split(spec.name, split, SPLITS)
    if root is None:
        folder = default_root(spec.name)
        if _split_files(folder, spec, split) is None:
            if not download:
                raise DataError(
                    f"{spec.title} not found in '{folder}' and data.download is false; "
                    f"pass data.root=DIR with the IDX files or allow downloading"
                )
            _download(folder, spec)
    else:
        folder = Path(root).expanduser()
        if not folder.exists():
            raise DataError(f"data root '{folder}' does not exist")
    files = _split_files(folder, spec, split)
    if files is None:
        raise _missing_split_error(folder, spec, split)

    images, labels = (read_idx(p) for p in files)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{spec.title} files do not match: images {images.shape} in '{files[0]}', labels {labels.shape} in '{files[1]}'"
        )
    return array_dataset(
        spec.name,
        torch.from_numpy(images.astype(np.uint8, copy=False))[:, None],
        torch.from_numpy(labels.astype(np.int64)),
        list(spec.class_names),
        resolution=resolution,
        channels=channels,
        info={"root": str(files[0].parent), "split": split},
    )


@DATASETS.register("mnist", help="MNIST handwritten digits, 28x28 grey, 10 classes (IDX files; downloads)")
def mnist(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """MNIST: 60,000 train / 10,000 test 28x28 grey digits, labels 0-9.

    Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` from ``root``,
    ``root/raw`` or ``root/MNIST/raw``. With ``root`` unset, uses
    ``$GANFORGE_CACHE/data/mnist`` and downloads there (torchvision) when ``download`` is
    true; a given ``root`` is never downloaded into.

    Args:
        root: folder with the IDX files, or None for the cache (and a download).
        split: ``'train'`` or ``'test'``.
        resolution: square side; None keeps the native 28x28.
        channels: 1 (native) or 3.
        download: allow downloading when ``root`` is None.
    """
    return _load(_MNIST, root=root, split=split, resolution=resolution, channels=channels, download=download)


@DATASETS.register("fashion-mnist", help="Fashion-MNIST clothing images, 28x28 grey, 10 classes (IDX files; downloads)")
def fashion_mnist(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """Fashion-MNIST: 60,000 train / 10,000 test 28x28 grey clothing images, 10 classes.

    Same files, options and rules as ``mnist`` (torchvision's folder is ``FashionMNIST/raw``).
    """
    return _load(_FASHION, root=root, split=split, resolution=resolution, channels=channels, download=download)
