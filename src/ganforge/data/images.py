"""Shared helpers of the data sets: image decoding, resizing, folders and the decode cache.

Every image data set ends up as one ``uint8 [N, C, H, W]`` tensor. Files are decoded with
PIL (in threads: PIL releases the GIL while decoding), arrays (digits, MNIST, CIFAR-10
binaries) are resized with :func:`resize_batch`. Decoding a large folder is slow, so
:func:`load_folder` keeps the result in a cache under ``$GANFORGE_CACHE/decoded`` (default
``~/.cache/ganforge/decoded``), keyed by the folder's contents and the options.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..core import IMAGE_SUFFIXES, cached
from ..errors import DataError
from .base import Dataset

# Bump when decoding changes (resampling filter, crop, ...) so stale caches are not reused.
DECODE_VERSION = 1

# Above this many files a progress bar is worth its line in the terminal.
PROGRESS_MIN_FILES = 2000

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


# --------------------------------------------------------------------------- option checks


def check_resolution(resolution: int | None) -> None:
    """Raise :class:`DataError` unless ``resolution`` is None or a positive int."""
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1):
        raise DataError(f"data.resolution must be a positive integer or null, got {resolution!r}")


def check_channels(channels: int | None) -> None:
    """Raise :class:`DataError` unless ``channels`` is None, 1 or 3."""
    if channels not in (None, 1, 3):
        raise DataError(f"data.channels must be 1 (grey) or 3 (RGB) or null, got {channels!r}")


def check_split(name: str, split: str, allowed: tuple[str, ...]) -> None:
    """Raise :class:`DataError` unless ``split`` is one of ``allowed``."""
    if split not in allowed:
        choices = ", ".join(repr(s) for s in allowed)
        raise DataError(f"data set '{name}' has no split {split!r} (available: {choices})")


def check_no_root(name: str, root: str | None, why: str) -> None:
    """Raise :class:`DataError` when a root is given to a data set that has no files."""
    if root is not None:
        raise DataError(f"data set '{name}' takes no data.root ({why}); got data.root='{root}'")


# --------------------------------------------------------------------------- tensors


def to_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Convert uint8 images ``[..., C, H, W]`` between 1 (grey) and 3 (RGB) channels.

    RGB -> grey uses the ITU-R 601 luma weights, the same as PIL's ``convert("L")``.
    ``channels=None`` returns ``x`` unchanged.
    """
    check_channels(channels)
    have = x.shape[-3]
    if channels is None or have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        grey = (x.float() * weights).sum(dim=-3, keepdim=True)
        return grey.round_().clamp_(0, 255).to(torch.uint8)
    raise DataError(f"cannot convert images with {have} channels to {channels}")


def center_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` box of the largest centred square."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resize_batch(x: torch.Tensor, resolution: int | None, *, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images ``[N, C, H, W]`` to ``[N, C, resolution, resolution]``.

    Non-square images are centre-cropped to a square first. Downscaling is antialiased
    (bilinear with a widened kernel, like PIL), upscaling is plain bilinear. Works in chunks
    so that e.g. MNIST at 64x64 never holds a float copy of the whole set.
    """
    check_resolution(resolution)
    if resolution is None:
        return x
    height, width = x.shape[-2:]
    if height != width:
        left, top, right, bottom = center_crop_box(width, height)
        x = x[..., top:bottom, left:right]
    if x.shape[-1] == resolution:
        return x.contiguous()
    out = torch.empty((*x.shape[:2], resolution, resolution), dtype=torch.uint8)
    for start in range(0, len(x), chunk):
        part = F.interpolate(
            x[start : start + chunk].float(),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def array_dataset(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    class_names: list[str] | None,
    *,
    resolution: int | None,
    channels: int | None,
    info: dict[str, Any],
) -> Dataset:
    """A :class:`Dataset` from native uint8 arrays, resized and converted as asked."""
    images = to_channels(resize_batch(images, resolution), channels)
    return Dataset(name, images.contiguous(), labels, class_names, info)


# --------------------------------------------------------------------------- files


def _to_pil_mode(im: Image.Image, channels: int | None) -> Image.Image:
    """Convert any PIL mode to ``L`` or ``RGB`` (``channels=None``: grey stays grey)."""
    if channels is None:
        channels = 1 if im.mode in _GREY_MODES else 3
    target = "L" if channels == 1 else "RGB"
    if im.mode == target:  # the common case: no conversion (convert() would copy)
        return im
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit and float images: convert("L") would clip at 255 instead of scaling.
        arr = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = arr / 257.0
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        # Palette images may carry transparency; RGBA lets us composite it below.
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        # Transparent pixels have arbitrary colours: put them on a white background.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return im if im.mode == target else im.convert(target)


def decode_image(path: str | Path, resolution: int | None, channels: int | None) -> torch.Tensor:
    """Decode one image file to a uint8 tensor ``[C, H, W]``.

    Args:
        path: the image file.
        resolution: side of the square output: the largest centred square is cropped and
            resized with antialiasing (bicubic), which equals resizing the shorter side to
            ``resolution`` and centre-cropping. None keeps the native size, uncropped.
        channels: 1 (grey), 3 (RGB), or None for the file's own (grey stays grey, all
            else becomes RGB). Transparency is composited on white.

    Raises:
        OSError, ValueError, ...: whatever PIL raises for an unreadable file.
    """
    check_resolution(resolution)
    check_channels(channels)
    with Image.open(path) as im:
        if resolution is not None:
            width, height = im.size
            side = min(width, height)
            if im.format == "JPEG" and side >= 4 * resolution:
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, much faster for large photos.
                # Like Image.thumbnail (reducing_gap=2), keep at least twice the target size:
                # resampling straight from the DCT-scaled image is visibly worse (measured:
                # mean error 6/255 vs 0.3/255 against a full decode).
                need = 2 * resolution
                im.draft(im.mode, (-(-width * need // side), -(-height * need // side)))
            im = fit_square(_to_pil_mode(im, channels), resolution)
        else:
            im = _to_pil_mode(im, channels)
        return pil_to_tensor(im)


def fit_square(im: Image.Image, resolution: int | None) -> Image.Image:
    """The largest centred square of ``im`` resized to ``resolution`` (bicubic); None: ``im``."""
    if resolution is None or im.size == (resolution, resolution):
        return im
    return im.resize((resolution, resolution), Image.Resampling.BICUBIC, box=center_crop_box(*im.size))


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """An ``L`` or ``RGB`` PIL image as a uint8 tensor ``[C, H, W]``."""
    tensor = torch.from_numpy(np.asarray(im).copy())
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursive, sorted, following symlinks).

    Extensions are matched case-insensitively against :data:`IMAGE_SUFFIXES`. Hidden
    files and folders (``.DS_Store``, ``._x.jpg`` from macOS, ``.ipynb_checkpoints``) are
    left out: they are never part of a data set and are often unreadable.
    """
    folder = Path(folder)
    return [folder.joinpath(*parts) for parts in relative_files(folder)]


def relative_files(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[tuple[str, ...]]:
    """The body of :func:`list_images`, as sorted relative path parts (files with one of ``suffixes``).

    Plain strings, not :class:`Path` objects: pathlib's parsing costs seconds for the
    50,000 files of CIFAR-10, more than loading their decoded cache.
    """
    base = os.fspath(folder)
    found: list[tuple[str, ...]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, base)
        prefix = () if rel == os.curdir else tuple(rel.split(os.sep))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                found.append((*prefix, name))
    found.sort()
    return found


def _reason(err: Exception, path: str) -> str:
    """A short, path-free description of why ``path`` could not be decoded."""
    if isinstance(err, UnidentifiedImageError):
        return "cannot identify image file"
    text = str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
    text = text.splitlines()[0] if text else ""
    return text or type(err).__name__


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(32, cpus))


def _progress(total: int, desc: str) -> Any:
    """A tqdm bar for long decodes, or None (short jobs, or tqdm missing)."""
    if total <= PROGRESS_MIN_FILES:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", leave=False)


def _decode_files(
    files: list[str],
    resolution: int | None,
    channels: int | None,
    desc: str,
    decode: Callable[[str, int | None, int | None], torch.Tensor] = decode_image,
) -> tuple[list[torch.Tensor | None], list[tuple[str, str]]]:
    """Decode ``files`` in threads with ``decode(path, resolution, channels)``; ``None`` marks
    a failure, listed with its reason."""

    def work(path: str) -> torch.Tensor | tuple[str, str]:
        try:
            return decode(path, resolution, channels)
        except Exception as err:  # PIL raises many types (OSError, SyntaxError, ...) for bad files
            return path, _reason(err, path)

    images: list[torch.Tensor | None] = []
    failures: list[tuple[str, str]] = []
    bar = _progress(len(files), desc)
    try:
        with ThreadPoolExecutor(max_workers=_workers()) as pool:
            # map() yields results in file order, whatever order the threads finish in.
            for result in pool.map(work, files):
                if isinstance(result, torch.Tensor):
                    images.append(result)
                else:
                    images.append(None)
                    failures.append(result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return images, failures


def _stack(images: list[torch.Tensor], folder: Path, files: list[str]) -> torch.Tensor:
    """Stack decoded images, unifying channels and checking that sizes agree."""
    if any(img.shape[0] == 3 for img in images):  # mixed grey/RGB with channels=None
        images = [to_channels(img, 3) for img in images]
    sizes = {tuple(img.shape[1:]) for img in images}
    if len(sizes) > 1:
        first = tuple(images[0].shape[1:])
        other_index = next(i for i, img in enumerate(images) if tuple(img.shape[1:]) != first)
        other = tuple(images[other_index].shape[1:])
        raise DataError(
            f"images in '{folder}' have different sizes ({first[1]}x{first[0]} and {other[1]}x{other[0]}, "
            f"e.g. '{files[other_index]}'); set data.resolution=N to resize them all to NxN"
        )
    return torch.stack(images)


def load_folder(
    folder: str | Path,
    resolution: int | None,
    channels: int | None,
    *,
    labels_from_subfolders: bool,
    cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, list[str] | None]:
    """Decode every image under ``folder`` into one uint8 tensor ``[N, C, H, W]``.

    Class labels: when ``labels_from_subfolders`` is set and *every* image lies in an
    immediate sub-folder (or deeper), the sub-folder names, sorted, are the classes
    ``0..K-1``. Such class-sorted data are then stored in a fixed shuffled order (seed 0), so
    that keeping the first N samples (``data.max_samples``) keeps every class. A flat
    folder (or any image at the top level) gives no labels.

    Unreadable files are skipped with one warning. Results are cached (see :func:`cached`),
    keyed by the folder, the options and the files' names, sizes and times.

    Args:
        folder: the root folder.
        resolution: square output side, or None to keep the native size (which must then
            be the same for all images).
        channels: 1, 3, or None (grey if all images are grey, else RGB).
        labels_from_subfolders: read class labels from sub-folder names.
        cache: use the decode cache.

    Returns:
        ``(data, labels or None, class_names or None)``.

    Raises:
        DataError: the folder is missing, holds no readable image, or sizes differ while
            ``resolution`` is None.
    """
    check_resolution(resolution)
    check_channels(channels)
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"data root '{folder}' does not exist")
    if not folder.is_dir():
        raise DataError(f"data root '{folder}' is not a folder of images")
    rel_parts = relative_files(folder)
    if not rel_parts:
        raise DataError(
            f"no images found in '{folder}' (looked recursively for {', '.join(IMAGE_SUFFIXES)})"
        )

    def build() -> dict[str, Any]:
        return _load_files(folder, rel_parts, resolution, channels, labels_from_subfolders)

    if cache:
        stamp = fingerprint(folder, rel_parts)
        key = ["folder", DECODE_VERSION, str(folder.resolve()), resolution, channels, labels_from_subfolders, *stamp]
        result = cached(key, build)
    else:
        result = build()
    # Warn on every load (also from the cache): the data set is smaller than the folder.
    warn_skipped(folder, result["skipped"], stacklevel=3)
    return result["data"], result["labels"], result["class_names"]


def class_labels(names: list[str]) -> tuple[list[str], dict[str, int]]:
    """Sorted class names (numerically when all are integers) and the name -> index map."""
    numeric = all(n.isascii() and n.isdigit() for n in names)
    ordered = sorted(set(names), key=(lambda n: (int(n), n)) if numeric else None)
    return ordered, {name: i for i, name in enumerate(ordered)}


def warn_skipped(folder: Path, skipped: list[list[str]], stacklevel: int = 2, what: str = "image") -> None:
    """One warning for the unreadable files ``[[path, reason], ...]`` left out of ``folder``'s data."""
    if skipped:
        first_path, first_reason = skipped[0]
        warnings.warn(
            f"skipped {len(skipped)} unreadable {what}(s) in '{folder}': {first_path} ({first_reason})",
            stacklevel=stacklevel,
        )


def _load_files(
    folder: Path,
    rel_parts: list[tuple[str, ...]],
    resolution: int | None,
    channels: int | None,
    labels_from_subfolders: bool,
) -> dict[str, Any]:
    """The uncached body of :func:`load_folder` (a dict that :func:`cached` can store)."""
    files = [os.path.join(folder, *parts) for parts in rel_parts]
    images, failures = _decode_files(files, resolution, channels, desc=f"decoding {folder.name}")
    kept = [i for i, img in enumerate(images) if img is not None]
    if not kept:
        path, reason = failures[0]
        raise DataError(f"none of the {len(files)} image files in '{folder}' could be read, e.g. {path} ({reason})")
    data = _stack([images[i] for i in kept], folder, [files[i] for i in kept])  # type: ignore[misc]
    del images

    labels = class_names = None
    rel_parts = [rel_parts[i] for i in kept]
    if labels_from_subfolders and all(len(parts) >= 2 for parts in rel_parts):
        class_names = sorted({parts[0] for parts in rel_parts})
        index = {name: i for i, name in enumerate(class_names)}
        labels = torch.tensor([index[parts[0]] for parts in rel_parts], dtype=torch.int64)
        # Files are sorted by class: shuffle once (fixed seed) so any prefix is class-mixed.
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
        data, labels = data[order], labels[order]
    return {
        "data": data,
        "labels": labels,
        "class_names": class_names,
        "skipped": [[path, reason] for path, reason in failures],
    }


# --------------------------------------------------------------------------- cache


def fingerprint(folder: Path, rel_parts: list[tuple[str, ...]]) -> list[Any]:
    """What invalidates a folder's cache: file names, count, total size, newest change."""
    names = hashlib.sha256("\n".join("/".join(parts) for parts in rel_parts).encode()).hexdigest()
    total, newest = 0, 0
    for parts in rel_parts:
        st = os.stat(os.path.join(folder, *parts))
        total += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return [len(rel_parts), total, newest, names]


