"""Inception Score (Salimans et al. 2016) from classifier logits, in float64.

IS = exp(E_x KL(p(y|x) || p(y))), computed per split with p(y) the split's mean prediction,
reported as mean and std over splits. Conventions follow
``torch_fidelity.metric_isc.isc_features_to_metric``: rows are shuffled with
``np.random.RandomState(seed).permutation(N)`` first, split ``i`` is rows
``[i*N//splits, (i+1)*N//splits)``, and std is the population std (ddof=0).
Intended difference: terms with ``p(y|x) == 0`` (float64 underflow) count as 0 instead of
possibly giving NaN; otherwise results agree with torch-fidelity to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_softmax

from .fid import as_feature_matrix


def inception_score(
    logits: Any, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """Inception Score (mean, std over ``splits``) from unnormalised logits ``[N, C]``.

    Args:
        logits: classifier logits, one row per sample (softmax is applied here).
        splits: number of disjoint splits; needs ``N >= splits``.
        shuffle: permute rows before splitting (torch-fidelity's default ``samples_shuffle``).
        seed: seed of the permutation (torch-fidelity's default ``rng_seed`` is 2020).

    Raises:
        ValueError: when ``splits < 1`` or there are fewer samples than splits.
    """
    x = as_feature_matrix(logits, "logits", min_samples=1)
    n = len(x)
    if splits < 1:
        raise ValueError(f"splits must be at least 1, got {splits}")
    if n < splits:
        raise ValueError(f"inception_score needs at least one sample per split: {n} samples, {splits} splits")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]

    log_p = log_softmax(x, axis=1)  # log p(y|x), stable in float64
    p = np.exp(log_p)
    scores = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, log_p_chunk = p[lo:hi], log_p[lo:hi]
        log_q = np.log(p_chunk.mean(axis=0, keepdims=True))  # log of marginal p(y) of the split
        # KL(p(y|x) || p(y)) per sample; terms with p(y|x) == 0 contribute 0 (0 log 0 = 0),
        # which also avoids 0 * inf when a class has underflowed to 0 in the whole split.
        terms = np.where(p_chunk > 0, p_chunk * (log_p_chunk - log_q), 0.0)
        kl = terms.sum(axis=1)
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std())
