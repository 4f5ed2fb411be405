"""Reference statistics files: the mean and covariance of a set's features, as ``.npz`` (pytorch-fid's format).

A statistics file holds ``mu [D]`` and ``sigma [D, D]`` (float64): all FID needs of a reference set,
so published statistics can be compared against without their images. ganforge writes them
(``ganforge eval --real SET --save-stats FILE.npz``) with one more array, ``extractor``: the key of
the extractor and weights they were computed with, checked when they are read. A file without it
(pytorch-fid's ``--save-stats``) is taken to come from pytorch-fid, whose preprocessing is the
``inception-torch`` extractor's (the default when such a file is the reference).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import atomic_write_bytes
from ..errors import UserError
from ..metrics import feature_statistics

#: The extractor a statistics file without an ``extractor`` entry is read with (pytorch-fid's preprocessing).
PYTORCH_FID_EXTRACTOR = "inception-torch"


def is_statistics_file(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` holding ``mu`` and ``sigma``."""
    if not (path.is_file() and path.suffix.lower() == ".npz"):
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {"mu", "sigma"} <= set(archive.files)
    except (OSError, ValueError, EOFError):
        return False


def read_statistics(path: Path) -> dict[str, Any]:
    """``{"mu", "sigma", "extractor" (a key, or None for pytorch-fid's files)}`` of a statistics file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            mu, sigma = archive["mu"].astype(np.float64), archive["sigma"].astype(np.float64)
            extractor = str(archive["extractor"]) if "extractor" in archive.files else None
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read statistics file '{path}': {(str(err).splitlines() or [type(err).__name__])[0]}") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(f"'{path}': mu must be [D] and sigma [D, D], got {list(mu.shape)} and {list(sigma.shape)}")
    return {"mu": mu, "sigma": sigma, "extractor": extractor}


def write_statistics(path: str | Path, features: torch.Tensor, extractor_key: str) -> Path:
    """Write the mean and covariance of ``features [N, D]`` (and the extractor's key) to ``path`` atomically."""
    mu, sigma = feature_statistics(features)
    buffer = io.BytesIO()
    np.savez(buffer, mu=mu, sigma=sigma, extractor=np.array(extractor_key))
    return atomic_write_bytes(Path(path), buffer.getvalue())
