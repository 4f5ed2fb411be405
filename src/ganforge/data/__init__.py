"""Built-in data sets (a registry) and the batch loader.

Each data set is a factory registered in :data:`DATASETS` that returns an in-memory
:class:`Dataset`; :func:`create` builds one from a :class:`~ganforge.config.DataConfig`.
"""

from __future__ import annotations

from ..core import to_uint8

# Importing the modules registers their data sets.
from . import audio, cifar10, digits, folder, mnist, paired, stacked_mnist, table, text, toy, video  # noqa: E402,F401
from .base import DATASETS, BatchLoader, Dataset, default_root
from .factory import create  # noqa: E402

__all__ = ["DATASETS", "BatchLoader", "Dataset", "create", "default_root", "to_uint8"]
