"""Data sets read from a local folder of images: any folder, and CelebA faces."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..errors import DataError
from .base import DATASETS, Dataset
from .images import load_folder


def _only_default_split(name: str, split: str) -> None:
    # Folder data sets have no splits: 'train' (the config default) means "the folder".
    if split != "train":
        raise DataError(
            f"data set '{name}' has no splits (got data.split={split!r}); point data.root at the folder to use"
        )


@DATASETS.register("image-folder", help="any folder of images (class sub-folders give labels); needs data.root")
def image_folder(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """Every image under ``root`` (recursive); sub-folders of ``root`` are classes.

    When all images lie in sub-folders, the sub-folder names (sorted) are the classes;
    otherwise there are no labels. Unreadable files are skipped with a warning. Decoded
    images are cached (see :func:`~ganforge.data.images.cached`).

    Args:
        root: the folder (required).
        split: must be ``'train'`` (the default; there are no splits).
        resolution: square side (centre crop + resize); None keeps the native size, which
            must then be the same for all images.
        channels: 1 or 3; None (the default) follows the images: 1 when every image is grey
            (a grey file mode, or RGB with three equal channels), else 3. The choice is printed.
        download: ignored (nothing to download).
    """
    if root is None:
        raise DataError(
            "data set 'image-folder' needs data.root=DIR, a folder of images, flat or in class sub-folders "
            "(on the command line: --set data.root=DIR)"
        )
    _only_default_split("image-folder", split)
    folder = Path(root).expanduser()
    data, labels, class_names = load_folder(folder, resolution, channels, labels_from_subfolders=True)
    if channels is None:
        data, why = follow_images(data)
        print(f"image-folder: {data.shape[1]} channel{'s' if data.shape[1] > 1 else ''} ({why}; "
              f"data.channels={4 - data.shape[1]} overrides)", file=sys.stderr)
    return Dataset("image-folder", data, labels, class_names, {"root": str(folder)})


def follow_images(data: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Images decoded with ``channels=None`` as one channel if all are grey, and why.

    Grey files already decode to one channel; RGB files whose three channels are equal
    everywhere (grey pictures saved as RGB) are grey too, so only a folder with colour
    in it trains an RGB model.
    """
    if data.shape[1] == 1:
        return data, "every image is grey"
    if bool((data[:, 0] == data[:, 1]).all() and (data[:, 1] == data[:, 2]).all()):
        return data[:, :1].contiguous(), "every image is grey (saved as RGB with equal channels)"
    return data, "the images are in colour"


@DATASETS.register("celeba", help="CelebA faces from a local folder of aligned images, 64x64 RGB by default")
def celeba(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """CelebA faces: every image under ``root``, centre-cropped to a square and resized.

    The aligned images (178x218, ``img_align_celeba``) are cropped to their largest
    centred square, then resized (the usual DCGAN preprocessing). No labels; ganforge does
    not download CelebA (its licence asks users to get it themselves).

    Args:
        root: the folder of images (required).
        split: must be ``'train'`` (the default: all images).
        resolution: square side, default 64.
        channels: 3 (default) or 1.
        download: ignored.
    """
    if root is None:
        raise DataError(
            "data set 'celeba' needs data.root=DIR: the folder of aligned CelebA images "
            "(img_align_celeba), which ganforge does not download"
        )
    _only_default_split("celeba", split)
    folder = Path(root).expanduser()
    data, _, _ = load_folder(folder, resolution or 64, channels or 3, labels_from_subfolders=False)
    return Dataset("celeba", data, None, None, {"root": str(folder)})
