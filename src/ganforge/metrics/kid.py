"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic kernel.

Matches ``torch_fidelity.metric_kid.kid_features_to_metric`` (polynomial kernel, unbiased
estimator, subsets drawn with ``np.random.RandomState(seed).choice(n, size, replace=False)``
alternately from the real and fake sets, population std over subsets), computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .fid import as_feature_matrix, check_same_dim


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """``k(x, y) = (gamma <x, y> + coef0) ** degree`` for all row pairs, ``gamma = 1 / D`` by default."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    base = gamma * (x @ y.T) + coef0
    if isinstance(degree, int) and degree >= 1:
        # Repeated products: numpy's float ``**`` calls pow() per element, ~20x slower.
        out = base.copy()
        for _ in range(degree - 1):
            out *= base
        return out
    return base**degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 from kernel matrices of two samples of equal size ``m``.

    MMD^2_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1))
              - 2 sum_{i,j} k(x_i,y_j) / m^2
    (the within-sample terms drop the diagonal, the cross term keeps it, as in the KID paper).
    """
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real: Any,
    fake: Any,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,  # torch-fidelity's default rng_seed, so default KIDs agree
) -> tuple[float, float]:
    """KID as (mean, std) of unbiased MMD^2 over ``num_subsets`` random subsets.

    Each subset takes ``subset_size`` rows without replacement from each set (same RNG calls
    as torch-fidelity, so equal ``seed`` gives equal subsets). ``std`` is the population
    standard deviation over subsets (``np.std``, ddof=0), as in torch-fidelity.

    Raises:
        ValueError: for mismatched feature sizes, ``subset_size`` larger than either set or
            smaller than 2, or ``num_subsets < 1``.
    """
    real = as_feature_matrix(real, "real")
    fake = as_feature_matrix(fake, "fake")
    check_same_dim(real, fake)
    n_real, n_fake = len(real), len(fake)
    if subset_size < 2:
        raise ValueError(f"KID subset_size must be at least 2, got {subset_size}")
    if subset_size > n_real or subset_size > n_fake:
        raise ValueError(
            f"KID subset_size {subset_size} exceeds the number of samples (real: {n_real}, fake: {n_fake})"
        )
    if num_subsets < 1:
        raise ValueError(f"KID num_subsets must be at least 1, got {num_subsets}")

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return polynomial_kernel(a, b, degree, gamma, coef0)

    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        # Two draws per subset, real first, exactly as torch-fidelity consumes its RNG.
        x = real[rng.choice(n_real, subset_size, replace=False)]
        y = fake[rng.choice(n_fake, subset_size, replace=False)]
        mmds[i] = mmd2_unbiased(kernel(x, x), kernel(x, y), kernel(y, y))
    return float(mmds.mean()), float(mmds.std())
