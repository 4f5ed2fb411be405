"""Image-to-image data sets: paired folders (pix2pix), unpaired folders (CycleGAN), SR images.

Every one returns a :class:`~ganforge.data.Dataset` whose ``data`` are the *targets* and
whose ``sources`` are the translation inputs (none for ``sr-folder``, whose low-resolution
inputs the super-resolution recipe makes from the targets). ``data.direction`` picks which
side is the input: ``AtoB`` (source A, target B) or ``BtoA``.

Layouts, for ``data.split = S`` (``train`` by default):

* ``paired-folder``: ``root/S/`` (or ``root/`` itself for ``train``) holds side-by-side
  images, A on the left half and B on the right (the pix2pix distribution's format), or
  two folders ``A/`` and ``B/`` whose images are matched by file name (extension aside);
  ``root/A/S/`` + ``root/B/S/`` (pix2pix's ``combine_A_and_B`` input) works too.
* ``unpaired-folders``: ``root/SA/`` and ``root/SB/`` (``trainA``, ``testB``, ...).
* ``sr-folder``: high-resolution images in ``root/S/`` (or ``root/``).

Decoded folders are cached like :func:`~ganforge.data.images.load_folder`'s, and
unreadable files are skipped with one warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..core import cached
from ..errors import DataError
from .base import DATASETS, Dataset
from .images import (
    _decode_files,
    _stack,
    _to_pil_mode,
    check_channels,
    check_resolution,
    decode_image,
    fingerprint,
    fit_square,
    load_folder,
    pil_to_tensor,
    relative_files,
    warn_skipped,
)

DIRECTIONS = ("AtoB", "BtoA")

#: Reason recorded for a side-by-side file of odd width (a layout mistake, not a bad file).
_ODD_WIDTH = "odd width, cannot split into halves"


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise DataError(f"data.direction must be AtoB or BtoA, got {direction!r}")


def _root(name: str, root: str | None, what: str) -> Path:
    if root is None:
        raise DataError(f"data set '{name}' needs data.root=DIR ({what})")
    base = Path(root).expanduser()
    if not base.exists():
        raise DataError(f"data root '{base}' does not exist")
    if not base.is_dir():
        raise DataError(f"data root '{base}' is not a folder")
    return base


def split_folder(name: str, base: Path, split: str) -> Path:
    """``base/<split>/`` when it exists; ``base`` itself for the default split ``train``."""
    if (base / split).is_dir():
        return base / split
    if split == "train":
        return base
    raise DataError(f"data set '{name}': no folder '{base / split}' for data.split={split!r}")


def _orient(a: torch.Tensor, b: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sources, targets)`` of A/B images for ``direction``."""
    _check_direction(direction)
    return (a, b) if direction == "AtoB" else (b, a)


# --------------------------------------------------------------------------- paired-folder


def decode_halves(path: str | Path, resolution: int | None, channels: int | None) -> torch.Tensor:
    """Decode a side-by-side pair into ``uint8 [2, C, H, W]``: (left half A, right half B).

    Each half goes through what :func:`~ganforge.data.images.decode_image` does to a file
    (mode conversion, then the centred square resized to ``resolution`` when given).

    Raises:
        ValueError: the width is odd (recorded as a layout error, see :func:`paired_folder`).
    """
    with Image.open(path) as im:
        width, height = im.size
        if width % 2:
            raise ValueError(_ODD_WIDTH)
        im = _to_pil_mode(im, channels)
        half = width // 2
        left = fit_square(im.crop((0, 0, half, height)), resolution)
        right = fit_square(im.crop((half, 0, width, height)), resolution)
        return torch.stack([pil_to_tensor(left), pil_to_tensor(right)])


def _stem(parts: tuple[str, ...]) -> str:
    """The matching key of a file: its relative path without the extension."""
    return os.path.splitext("/".join(parts))[0]


def _ab_folders(folder: Path, base: Path, split: str) -> tuple[Path, Path] | None:
    """The ``(A, B)`` folders of the split, if the data set uses that layout."""
    for a, b in ((folder / "A", folder / "B"), (base / "A" / split, base / "B" / split)):
        if a.is_dir() and b.is_dir():
            return a, b
    return None


def _load_ab(a_dir: Path, b_dir: Path, resolution: int | None, channels: int | None) -> dict[str, Any]:
    """Decode the images of ``A/`` and ``B/`` that share a name (the uncached body)."""
    a_files = {_stem(p): p for p in relative_files(a_dir)}
    b_files = {_stem(p): p for p in relative_files(b_dir)}
    names = sorted(a_files.keys() & b_files.keys())
    if not names:
        raise DataError(
            f"no pairs in '{a_dir}' and '{b_dir}': no image of A/ has a namesake in B/ "
            f"({len(a_files)} and {len(b_files)} images; names are matched without the extension)"
        )
    paths = [os.path.join(a_dir, *a_files[n]) for n in names] + [os.path.join(b_dir, *b_files[n]) for n in names]
    images, failures = _decode_files(paths, resolution, channels, desc=f"decoding {a_dir.parent.name}", decode=decode_image)
    kept = [i for i in range(len(names)) if images[i] is not None and images[len(names) + i] is not None]
    if not kept:
        path, reason = failures[0]
        raise DataError(f"none of the {len(names)} pairs in '{a_dir.parent}' could be read, e.g. {path} ({reason})")
    a = _stack([images[i] for i in kept], a_dir, [paths[i] for i in kept])  # type: ignore[misc]
    b = _stack([images[len(names) + i] for i in kept], b_dir, [paths[len(names) + i] for i in kept])  # type: ignore[misc]
    unmatched = len(a_files) + len(b_files) - 2 * len(names)
    return {"a": a, "b": b, "skipped": [list(f) for f in failures], "unmatched": unmatched}


def _load_side_by_side(folder: Path, resolution: int | None, channels: int | None) -> dict[str, Any]:
    """Decode and split every side-by-side image of ``folder`` (the uncached body)."""
    rel = relative_files(folder)
    if not rel:
        raise DataError(f"no images found in '{folder}' (expected side-by-side pairs, or A/ and B/ folders)")
    paths = [os.path.join(folder, *parts) for parts in rel]
    pairs, failures = _decode_files(paths, resolution, channels, desc=f"decoding {folder.name}", decode=decode_halves)
    odd = [path for path, reason in failures if reason == _ODD_WIDTH]
    if odd:
        with Image.open(odd[0]) as im:
            width = im.size[0]
        raise DataError(
            f"'{odd[0]}' is {width} px wide: side-by-side pairs (A left, B right) need an even width"
            + (f" ({len(odd)} such files)" if len(odd) > 1 else "")
        )
    kept = [i for i, p in enumerate(pairs) if p is not None]
    if not kept:
        path, reason = failures[0]
        raise DataError(f"none of the {len(paths)} image files in '{folder}' could be read, e.g. {path} ({reason})")
    files = [paths[i] for i in kept]
    a = _stack([pairs[i][0] for i in kept], folder, files)  # type: ignore[index]
    b = _stack([pairs[i][1] for i in kept], folder, files)  # type: ignore[index]
    return {"a": a, "b": b, "skipped": [list(f) for f in failures], "unmatched": 0}


@DATASETS.register("paired-folder", help="image pairs (pix2pix): side-by-side files or A/ + B/ folders; needs data.root")
def paired_folder(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
    direction: str = "AtoB",
) -> Dataset:
    """Aligned image pairs for pix2pix-style translation.

    Args:
        root: the data set folder (required); ``root/<split>/`` is used when it exists.
        split: ``train`` (default), ``test``, ``val``, ... (a sub-folder name).
        resolution: square side of each image of a pair (centred square, bicubic resize);
            None keeps the native size, which must then be the same for all.
        channels: 1, 3 or None (grey only when all files are grey), for both sides.
        download: ignored (nothing to download).
        direction: ``AtoB`` (source = A = left half) or ``BtoA``.

    Raises:
        DataError: missing folders, no pair matched, an odd-width side-by-side file, sizes
            that differ with ``resolution`` None.
    """
    check_resolution(resolution)
    check_channels(channels)
    _check_direction(direction)
    base = _root("paired-folder", root, "side-by-side pairs, or A/ and B/ folders, optionally per split")
    ab = _ab_folders(base / split if (base / split).is_dir() else base, base, split)
    if ab is not None:
        a_dir, b_dir = ab
        layout = "folders"
        stamp = [*fingerprint(a_dir, relative_files(a_dir)), *fingerprint(b_dir, relative_files(b_dir))]
        key = ["paired-folder", "folders", str(a_dir.resolve()), str(b_dir.resolve()), resolution, channels, *stamp]
        result = cached(key, lambda: _load_ab(a_dir, b_dir, resolution, channels))
        folder = a_dir.parent
    else:
        folder = split_folder("paired-folder", base, split)
        layout = "side-by-side"
        key = ["paired-folder", "halves", str(folder.resolve()), resolution, channels,
               *fingerprint(folder, relative_files(folder))]
        result = cached(key, lambda: _load_side_by_side(folder, resolution, channels))
    warn_skipped(folder, result["skipped"], stacklevel=4)
    if result["unmatched"]:
        warnings.warn(f"ignored {result['unmatched']} image(s) in '{folder}' without a namesake on the other side", stacklevel=3)
    sources, targets = _orient(result["a"], result["b"], direction)
    info = {"root": str(folder), "layout": layout, "direction": direction}
    return Dataset("paired-folder", targets, info=info, sources=sources, paired=True)


# --------------------------------------------------------------------------- unpaired-folders


@DATASETS.register("unpaired-folders", help="two unaligned image sets (CycleGAN): root/trainA, root/trainB; needs data.root")
def unpaired_folders(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
    direction: str = "AtoB",
) -> Dataset:
    """Two independent image sets, ``root/<split>A`` and ``root/<split>B`` (CycleGAN's layout).

    Args:
        root: the data set folder (required).
        split: ``train`` (``trainA``/``trainB``), ``test``, ...
        resolution: square side (centred square, bicubic resize); None keeps native sizes.
        channels: 1, 3 or None (each side keeps its own when None).
        download: ignored.
        direction: ``AtoB`` (sources = A, targets = B) or ``BtoA``.
    """
    _check_direction(direction)
    base = _root("unpaired-folders", root, f"with {split}A/ and {split}B/ sub-folders")
    a_dir, b_dir = base / f"{split}A", base / f"{split}B"
    missing = [str(d) for d in (a_dir, b_dir) if not d.is_dir()]
    if missing:
        raise DataError(
            f"data set 'unpaired-folders' needs folders {a_dir.name}/ and {b_dir.name}/ in '{base}'; "
            f"missing: {', '.join(missing)}"
        )
    a, _, _ = load_folder(a_dir, resolution, channels, labels_from_subfolders=False)
    b, _, _ = load_folder(b_dir, resolution, channels, labels_from_subfolders=False)
    sources, targets = _orient(a, b, direction)
    info = {"root": str(base), "direction": direction}
    return Dataset("unpaired-folders", targets, info=info, sources=sources, paired=False)


# --------------------------------------------------------------------------- sr-folder


def decode_center_patch(path: str | Path, size: int | None, channels: int | None) -> torch.Tensor:
    """The centred ``size`` x ``size`` patch of an image at its native scale (never resampled).

    Raises:
        ValueError: the image is smaller than ``size`` (it is then skipped).
    """
    with Image.open(path) as im:
        width, height = im.size
        if size is not None and (width < size or height < size):
            raise ValueError(f"{width}x{height} is smaller than {size}x{size}")
        im = _to_pil_mode(im, channels)
        if size is not None:
            left, top = (width - size) // 2, (height - size) // 2
            im = im.crop((left, top, left + size, top + size))
        return pil_to_tensor(im)


def _load_patches(folder: Path, rel: list[tuple[str, ...]], size: int | None, channels: int | None) -> dict[str, Any]:
    paths = [os.path.join(folder, *parts) for parts in rel]
    images, failures = _decode_files(paths, size, channels, desc=f"decoding {folder.name}", decode=decode_center_patch)
    kept = [i for i, img in enumerate(images) if img is not None]
    if not kept:
        path, reason = failures[0]
        raise DataError(f"none of the {len(paths)} image files in '{folder}' could be used, e.g. {path} ({reason})")
    sizes = {tuple(images[i].shape[1:]) for i in kept}  # type: ignore[union-attr]
    if len(sizes) > 1:
        raise DataError(
            f"images in '{folder}' have different sizes; set data.resolution=N to take their centred NxN "
            "patches (super-resolution targets are cropped, never resized)"
        )
    return {"data": _stack([images[i] for i in kept], folder, [paths[i] for i in kept]),  # type: ignore[misc]
            "skipped": [list(f) for f in failures]}


@DATASETS.register("sr-folder", help="high-resolution images for super-resolution (centred patches, no resizing); needs data.root")
def sr_folder(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """High-resolution targets for super-resolution; the recipe makes the low-resolution inputs.

    Args:
        root: a folder of images (required); ``root/<split>/`` when it exists.
        split: ``train`` (default: the folder itself) or a sub-folder name.
        resolution: side of the centred square patch kept from each image at its native
            scale (images smaller than that are skipped with a warning); None keeps whole
            images, which must then all have the same size.
        channels: 1, 3 or None.
        download: ignored.
    """
    check_resolution(resolution)
    check_channels(channels)
    base = _root("sr-folder", root, "a folder of high-resolution images")
    folder = split_folder("sr-folder", base, split)
    rel = relative_files(folder)
    if not rel:
        raise DataError(f"no images found in '{folder}'")
    key = ["sr-folder", str(folder.resolve()), resolution, channels, *fingerprint(folder, rel)]
    result = cached(key, lambda: _load_patches(folder, rel, resolution, channels))
    warn_skipped(folder, result["skipped"], stacklevel=4)
    return Dataset("sr-folder", result["data"], info={"root": str(folder)})
