"""Checks of what a digits generator learned: an independent classifier of its samples and their
distance to the real digits (importable: tests/ has no __init__.py)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


@lru_cache(maxsize=1)
def digit_classifier():
    """An independent digit classifier: an RBF SVM on scikit-learn's real 8x8 digits (~99%)."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    digits = load_digits()
    return SVC(gamma=0.001, C=10.0).fit(digits.data, digits.target)


def classify_digits(images: torch.Tensor) -> np.ndarray:
    """Predicted class of generated digit images ``[N, 1, R, R]`` in [-1, 1] (R a multiple of 8)."""
    x = images.float().clamp(-1, 1)
    x = F.adaptive_avg_pool2d(x, 8)  # back to the 8x8 grid of the real data
    x = (x + 1.0) / 2.0 * 16.0  # the real data's 0..16 range
    return digit_classifier().predict(x.reshape(len(x), 64).numpy())


def nearest_real_distance(images: torch.Tensor) -> float:
    """Mean L2 distance (8x8 grid, 0..16 scale) from each sample to its nearest real digit."""
    from sklearn.datasets import load_digits

    real = torch.as_tensor(load_digits().data, dtype=torch.float32)
    fake = (F.adaptive_avg_pool2d(images.clamp(-1, 1), 8) + 1) * 8
    return torch.cdist(fake.reshape(len(fake), 64), real).min(dim=1).values.mean().item()
