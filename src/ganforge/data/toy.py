"""2-D Gaussian mixtures, the classic mode-collapse benchmarks (ring of 8, grid of 25).

Samples are in data coordinates (not normalised) and deterministic (fixed seeds). Labels
are the mode index, and ``info`` carries the centres and the std so that metrics can count
covered modes and high-quality samples.
"""

from __future__ import annotations

import math

import torch

from ..errors import DataError
from .base import DATASETS, Dataset
from .images import check_no_root, check_split

NUM_SAMPLES = 100_000
# One seed per split: 'test' is an independent draw from the same mixture.
_SEEDS = {"train": 0, "test": 1}


def ring8_centers(radius: float = 2.0) -> torch.Tensor:
    """8 points evenly spaced on a circle, ``float32 [8, 2]``."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid25_centers() -> torch.Tensor:
    """The 25 points of ``{-4, -2, 0, 2, 4}^2``, ``float32 [25, 2]``."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(axis, axis)


def mixture(name: str, centers: torch.Tensor, std: float, *, split: str, num_samples: int = NUM_SAMPLES) -> Dataset:
    """Sample an isotropic Gaussian mixture with equal weights (deterministic per split)."""
    g = torch.Generator().manual_seed(_SEEDS[split])
    labels = torch.randint(len(centers), (num_samples,), generator=g)
    data = centers[labels] + std * torch.randn(num_samples, 2, generator=g)
    return Dataset(name, data, labels, None, {"centers": centers.clone(), "std": float(std), "split": split})


def _check_options(name: str, root: str | None, split: str, resolution: int | None, channels: int | None) -> None:
    check_no_root(name, root, "it is generated")
    check_split(name, split, tuple(_SEEDS))
    if resolution is not None or channels is not None:
        raise DataError(
            f"data set '{name}' is 2-D points, not images: data.resolution and data.channels must be null "
            f"(got {resolution} and {channels})"
        )


@DATASETS.register("ring8", help="8 Gaussians on a circle of radius 2 (std 0.02), 2-D points")
def ring8(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool) -> Dataset:
    """100,000 points from 8 Gaussians (std 0.02) evenly spaced on a circle of radius 2.

    Args:
        root: must be None.
        split: ``'train'`` (seed 0) or ``'test'`` (an independent draw, seed 1).
        resolution: must be None.
        channels: must be None.
        download: ignored.
    """
    _check_options("ring8", root, split, resolution, channels)
    return mixture("ring8", ring8_centers(), 0.02, split=split)


@DATASETS.register("grid25", help="25 Gaussians on the grid {-4,-2,0,2,4}^2 (std 0.05), 2-D points")
def grid25(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool) -> Dataset:
    """100,000 points from 25 Gaussians (std 0.05) centred on ``{-4, -2, 0, 2, 4}^2``; options as ``ring8``."""
    _check_options("grid25", root, split, resolution, channels)
    return mixture("grid25", grid25_centers(), 0.05, split=split)
