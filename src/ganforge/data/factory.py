"""Build a :class:`Dataset` from a :class:`~ganforge.config.DataConfig`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from . import DATASETS
from .base import Dataset
from .images import cache_root

if TYPE_CHECKING:
    from ..config import DataConfig


def default_root(name: str) -> Path:
    """Where data set ``name`` is downloaded when no ``data.root`` is given.

    ``$GANFORGE_CACHE/data/<name>``, by default ``~/.cache/ganforge/data/<name>``.
    """
    return cache_root() / "data" / name


def create(cfg: DataConfig) -> Dataset:
    """Build the data set that ``cfg`` describes.

    Looks the name up in :data:`DATASETS` (an unknown name raises with a suggestion), calls
    the factory with the config's fields (``~`` in ``root`` expanded), then keeps the first
    ``max_samples`` samples.

    Raises:
        DataError: the data cannot be found or read, or an option does not apply.
    """
    factory = DATASETS.get(cfg.name)
    root = os.path.expanduser(cfg.root) if cfg.root else None
    dataset = factory(
        root=root,
        split=cfg.split,
        resolution=cfg.resolution,
        channels=cfg.channels,
        download=cfg.download,
    )
    if cfg.max_samples is not None:
        if cfg.max_samples < 1:
            raise DataError(f"data.max_samples must be >= 1 or null, got {cfg.max_samples}")
        dataset = dataset.subset(cfg.max_samples)
    return dataset
