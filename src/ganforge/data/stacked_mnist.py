"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image (1,000 modes).

The mode-collapse benchmark of the unrolled-GAN, VEEGAN and PacGAN papers: a sample's
class is the digit triple ``(d_R, d_G, d_B)``, label ``100 * d_R + 10 * d_G + d_B``, and a
generator is judged by how many of the 1,000 classes it produces (``ganforge.metrics.modes.
class_mode_stats`` with the ``mnist`` classifier, see
``ganforge.extractors.classifier.stacked_mnist_labels``).

Construction, deterministic for a given seed: the ``count`` labels are the 1,000 triples
repeated in turn (so every class is equally frequent, up to one image, and the real data
sit exactly on the uniform distribution the KL divergence is measured against), shuffled;
each channel then takes a randomly chosen MNIST image of its digit from the chosen split.
Keeping the first N images (``data.max_samples``) keeps a random, nearly balanced subset.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .base import DATASETS, Dataset
from .images import array_dataset
from .mnist import mnist

NUM_CLASSES = 1000
DEFAULT_COUNT = 25_600  # images built by default; data.max_samples keeps fewer
DEFAULT_SEED = 0


def stack_digits(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build ``count`` stacked images from grey digits ``images [M, 1, H, W]`` with ``labels [M]``.

    Returns ``uint8 [count, 3, H, W]`` and ``int64 [count]`` labels in 0..999.
    """
    if count < 1:
        raise DataError(f"Stacked MNIST needs count >= 1, got {count}")
    labels_np = labels.numpy()
    pools = [np.flatnonzero(labels_np == d) for d in range(10)]  # indices of each digit
    missing = [d for d, pool in enumerate(pools) if len(pool) == 0]
    if missing:
        raise DataError(f"Stacked MNIST needs every digit 0-9, the MNIST files have none of {missing}")
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.arange(count) % NUM_CLASSES)  # balanced, in random order
    triples = np.stack([classes // 100, classes // 10 % 10, classes % 10], axis=1)  # [count, 3]: d_R, d_G, d_B
    picks = np.empty((count, 3), dtype=np.int64)
    for d in range(10):
        where = triples == d
        picks[where] = pools[d][rng.integers(0, len(pools[d]), size=int(where.sum()))]
    # [count, 3] source indices -> [count, 3, 1, H, W] -> [count, 3, H, W]
    stacked = images[torch.from_numpy(picks)].reshape(count, 3, *images.shape[-2:])
    return stacked.contiguous(), torch.from_numpy(classes.astype(np.int64))


@DATASETS.register(
    "stacked-mnist", help="Stacked MNIST: 3 MNIST digits as R, G, B, 1,000 classes (mode-collapse benchmark)"
)
def stacked_mnist(
    *,
    root: str | None,
    split: str,
    resolution: int | None,
    channels: int | None,
    download: bool,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
) -> Dataset:
    """Stacked MNIST: ``count`` 28x28 RGB images whose channels are MNIST digits, 1,000 classes.

    Built from the same IDX files as the ``mnist`` data set (same ``root``, default root
    and download rules), using the digits of ``split``. Label ``100 * d_R + 10 * d_G + d_B``.

    Args:
        root: folder with the MNIST IDX files, or None for the cache (and a download).
        split: ``'train'`` or ``'test'``: which MNIST digits to stack.
        resolution: square side; None keeps the native 28x28.
        channels: 3 (native); 1 is refused (it would mix the three digits).
        download: allow downloading when ``root`` is None.
        count: how many images to build (default 25,600; ``data.max_samples`` keeps fewer).
        seed: seed of the random construction.
    """
    if channels not in (None, 3):
        raise DataError(f"stacked-mnist images have 3 channels (one digit each), got data.channels={channels}")
    source = mnist(root=root, split=split, resolution=None, channels=1, download=download)
    data, labels = stack_digits(source.data, source.labels, count, seed)
    class_names = [f"{c:03d}" for c in range(NUM_CLASSES)]
    info = {**source.info, "count": count, "seed": seed, "source": "mnist"}
    return array_dataset("stacked-mnist", data, labels, class_names, resolution=resolution, channels=None, info=info)
