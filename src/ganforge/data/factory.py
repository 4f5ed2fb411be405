"""Build a :class:`Dataset` from a :class:`~ganforge.config.DataConfig`."""

from __future__ import annotations

import dataclasses
import inspect
import os

from ..config import DataConfig
from ..errors import DataError
from .base import DATASETS, Dataset

#: Config keys passed only to the factories whose signature names them (and refused for the others).
OPTIONAL_KEYS = {
    "direction": "image-to-image data sets (paired-folder, ...)",
    "sample_rate": "audio data sets (audio-folder, fsdd)",
    "length": "audio data sets (audio-folder, fsdd)",
    "label_pattern": "folders of audio files (audio-folder)",
    "max_length": "text data sets (text-lines, coco-captions)",
    "vocab_size": "text data sets (text-lines, coco-captions)",
    "frames": "video data sets (moving-digits, video-folder)",
    "num_digits": "moving-digits",
    "frame_stride": "folders of clips (video-folder)",
    "columns": "tables (table, breast_cancer, wine, diabetes)",
    "target": "tables (table, breast_cancer, wine, diabetes)",
}


def create(cfg: DataConfig) -> Dataset:
    """Build the data set that ``cfg`` describes.

    Looks the name up in :data:`DATASETS` (an unknown name raises with a suggestion), calls
    the factory with the config's fields (``~`` in ``root`` expanded; the :data:`OPTIONAL_KEYS` only
    for factories that take them), drops the pairing of image-to-image data with ``unpaired``, then
    keeps the first ``max_samples`` samples.

    Raises:
        DataError: the data cannot be found or read, or an option does not apply.
    """
    factory = DATASETS.get(cfg.name)
    root = os.path.expanduser(cfg.root) if cfg.root else None
    extra = {}
    accepted = inspect.signature(factory).parameters
    defaults = DataConfig()
    for key, kind in OPTIONAL_KEYS.items():  # options only some data sets take
        if key in accepted:
            extra[key] = getattr(cfg, key)
        elif getattr(cfg, key) != getattr(defaults, key):
            raise DataError(f"data.{key} applies to {kind}, not '{cfg.name}'")
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
