"""Config overrides for tiny, fast training runs in the tests (importable: tests/ has no __init__.py)."""

from __future__ import annotations

#: A small, fast DCGAN on the digits (16x16, few channels): seconds per hundred steps.
TINY_DIGITS = {
    "data.resolution": 16,
    "model.base_channels": 8,
    "model.latent_dim": 16,
    "train.batch_size": 32,
    "train.log_every": 10,
    "train.sample_every": 20,
    "train.checkpoint_every": 20,
    "train.sample_count": 16,
    "train.progress": False,
    "train.threads": 2,
}
