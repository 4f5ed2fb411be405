"""scikit-learn's handwritten digits: 1,797 8x8 grey images, shipped offline with sklearn."""

from __future__ import annotations

import numpy as np
import torch

from .base import DATASETS, Dataset
from .images import array_dataset, check_no_root, check_split

TEST_FRACTION = 0.2


@DATASETS.register("digits", help="scikit-learn's 1,797 8x8 grey handwritten digits (offline), 10 classes")
def digits(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool
) -> Dataset:
    """scikit-learn's ``load_digits``: 1,797 8x8 grey digits, labels 0-9, no download.

    Pixel values 0..16 are scaled to 0..255. The set has no official split: ``'train'``
    and ``'all'`` give all 1,797 samples (the usual choice for GAN training), ``'test'``
    gives the last 20% (360 samples, which ``'train'`` also contains), for quick
    evaluation only. ``download`` is ignored (nothing to download); ``root`` must be unset.

    Args:
        root: must be None.
        split: ``'train'``, ``'all'`` or ``'test'``.
        resolution: square side; None keeps the native 8x8.
        channels: 1 (native) or 3.
        download: ignored.
    """
    check_no_root("digits", root, "it ships with scikit-learn")
    check_split("digits", split, ("train", "all", "test"))
    from sklearn.datasets import load_digits  # import lazily: sklearn is slow to import

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8))[:, None]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    if split == "test":
        start = int((1.0 - TEST_FRACTION) * len(images))  # 1437: the last 360 samples
        images, labels = images[start:], labels[start:]
    return array_dataset(
        "digits",
        images,
        labels,
        [str(d) for d in range(10)],
        resolution=resolution,
        channels=channels,
        info={"source": "sklearn.datasets.load_digits", "split": split},
    )
