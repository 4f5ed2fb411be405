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


def class_mode_stats(labels: torch.Tensor, num_modes: int) -> dict[str, float | int]:
    """Mode coverage of class-labelled samples (Stacked MNIST: 1,000 digit triples).

    With ``n_k`` samples of class ``k`` out of ``N`` and ``p_k = n_k / N``:

    * ``modes``: the number of classes hit at least once, ``#{k : n_k > 0}``;
    * ``kl``: ``KL(p || uniform) = sum_k p_k log(p_k / (1 / K)) = sum_k p_k log(K p_k)``
      in nats (empty classes add 0, since ``p log p -> 0``). It is 0 for a perfectly
      balanced sample and ``log K`` when every sample falls in one class. A finite sample
      from the uniform distribution itself scores about ``(K - 1) / (2 N)`` (half a
      chi-square with ``K - 1`` degrees of freedom over ``N``).

    Args:
        labels: integer class labels ``[N]`` in ``0 .. num_modes - 1``.
        num_modes: the number of classes ``K``.

    Returns:
        ``{"modes": int, "kl": float}`` (the KL divergence computed in float64).
    """
    labels = torch.as_tensor(labels).reshape(-1)
    if num_modes < 1:
        raise ValueError(f"num_modes must be >= 1, got {num_modes}")
    if labels.numel() == 0:
        raise ValueError("class_mode_stats needs at least one label")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    labels = labels.long().cpu()
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_modes:
        raise ValueError(f"labels must lie in 0..{num_modes - 1}, got values from {low} to {high}")
    counts = torch.bincount(labels, minlength=num_modes).double()
    p = counts[counts > 0] / labels.numel()
    kl = float((p * torch.log(p * num_modes)).sum())
    return {"modes": int((counts > 0).sum()), "kl": max(kl, 0.0)}
