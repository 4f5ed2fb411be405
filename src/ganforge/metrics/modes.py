"""Mode coverage for Gaussian-mixture benchmarks (``ring8``, ``grid25``).

The protocol of the unrolled-GAN, VEEGAN and PacGAN papers: each generated sample is
assigned to its nearest mode; it is *high quality* when it lies within ``threshold``
standard deviations of that mode; a mode is *covered* when at least ``min_count``
high-quality samples land on it (PacGAN: 2,500 samples, 3 std, 20 samples).
"""

from __future__ import annotations

import torch


def mode_stats(
    samples: torch.Tensor,
    centers: torch.Tensor,
    std: float,
    threshold: float = 3.0,
    min_count: int = 20,
) -> dict[str, float]:
    """Coverage statistics of ``samples [N, D]`` for mixture ``centers [K, D]``.

    Returns:
        ``modes_covered`` (count), ``num_modes``, ``high_quality`` (fraction of samples
        within ``threshold * std`` of their nearest mode), and ``counts`` per mode.
    """
    samples = samples.double()
    centers = torch.as_tensor(centers, dtype=torch.float64)
    distances = torch.cdist(samples, centers)  # [N, K]
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "num_modes": len(centers),
        "high_quality": float(good.double().mean()),
        "counts": counts.tolist(),
    }
