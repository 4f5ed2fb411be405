"""The feature cache: extractor features of built-in data sets and image folders, kept under ``$GANFORGE_CACHE/features``.

Each entry is one safetensors file with the tensors ``features`` (``[N, D]``) and, for
extractors with a classifier head, ``logits`` (``[N, K]``); its metadata holds the full
key, checked on load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..core import cached_tensors
from ..extractors import Features

FEATURE_CACHE_VERSION = 1


def cached_features(key: dict[str, Any], compute: Callable[[], Features]) -> Features:
    """``compute()``, memoised under ``$GANFORGE_CACHE/features`` (see :func:`ganforge.core.cached_tensors`).

    ``key`` names the data set, split, resolution (images) or length and sample rate (clips),
    count, extractor key and a digest of the samples; the full key is stored in the entry and
    checked on load. A corrupt or unreadable entry is recomputed; an unwritable cache only
    costs the speed-up.
    """
    size = f"{key['resolution']}px" if "resolution" in key else f"{key.get('length')}samples"
    where = f"{key['data']}-{key['split']}" if "data" in key else f"folder-{Path(key['folder']).name}"
    label = f"{where}-{size}-{key['count']}-{key['extractor']}"

    def build() -> dict[str, torch.Tensor]:
        features = compute()
        tensors = {"features": features.features}
        if features.logits is not None:
            tensors["logits"] = features.logits
        return tensors

    entry = cached_tensors({"features": FEATURE_CACHE_VERSION, **key}, build, namespace="features", label=label)
    return Features(entry["features"], entry.get("logits"))


__all__ = ["FEATURE_CACHE_VERSION", "cached_features"]
