"""Build a :class:`Dataset` from a :class:`~ganforge.config.DataConfig`."""

from __future__ import annotations

import dataclasses
import inspect
import os

from ..config import DataConfig
from ..errors import DataError
from .base import DATASETS, Dataset


def create(cfg: DataConfig) -> Dataset:
    """Build the data set that ``cfg`` describes.

    Looks the name up in :data:`DATASETS` (an unknown name raises with a suggestion), calls
    the factory with the config's fields (``~`` in ``root`` expanded; ``direction`` only for
    factories that take it), drops the pairing of image-to-image data with ``unpaired``, then
    keeps the first ``max_samples`` samples.

    Raises:
        DataError: the data cannot be found or read, or an option does not apply.
    """
    factory = DATASETS.get(cfg.name)
    root = os.path.expanduser(cfg.root) if cfg.root else None
    extra = {}
    if "direction" in inspect.signature(factory).parameters:  # image-to-image data sets
        extra["direction"] = cfg.direction
    elif cfg.direction != "AtoB":
        raise DataError(f"data.direction applies to image-to-image data sets (paired-folder, ...), not '{cfg.name}'")
    dataset = factory(
        root=root,
        split=cfg.split,
        resolution=cfg.resolution,
        channels=cfg.channels,
        download=cfg.download,
        **extra,
    )
    if cfg.unpaired:  # the two sides become independent sets (their own shuffles, crops and flips)
        if dataset.sources is None:
            raise DataError(f"data.unpaired applies to image-to-image data sets with inputs, not '{cfg.name}'")
        dataset = dataclasses.replace(dataset, paired=False)
    if cfg.max_samples is not None:
        if cfg.max_samples < 1:
            raise DataError(f"data.max_samples must be >= 1 or null, got {cfg.max_samples}")
        dataset = dataset.subset(cfg.max_samples)
    return dataset
