"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each sample's manifold ball has as radius the distance to its k-th nearest neighbour in
its own set, the point itself excluded (the (k+1)-th smallest distance including the
zero self-distance, as in the authors' ``prdc.compute_prdc``). With ``B(x, r)`` these balls:

* precision: fraction of fake samples inside at least one real ball;
* recall:    fraction of real samples inside at least one fake ball;
* density:   (1 / k) * mean over fakes of the number of real balls containing it;
* coverage:  fraction of real samples whose ball contains at least one fake sample
  (i.e. whose nearest fake is closer than its radius).

"Inside" is the strict ``distance < radius``, as in the reference. Distances are computed
in float64 with ``torch.cdist`` in row blocks, so only ``[batch_size, N]`` distance blocks are
ever held (10k x 10k samples of 2048 features need ~0.5 GB at the default batch size).
"""

from __future__ import annotations

from typing import Any

import torch

from .fid import as_feature_matrix, check_same_dim


def _to_tensor(features: Any, name: str, min_samples: int, device: torch.device | str | None) -> torch.Tensor:
    """Float64 ``[N, D]`` tensor on ``device`` (default: the input tensor's device, else CPU)."""
    if isinstance(features, torch.Tensor):
        x = features.detach().to(device=device or features.device, dtype=torch.float64)
    else:
        x = torch.from_numpy(as_feature_matrix(features, name, min_samples=0)).to(device or "cpu")
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D array [num_samples, feature_dim], got shape {tuple(x.shape)}")
    if x.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples (k + 1), got {x.shape[0]}")
    return x


def _kth_neighbour_radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row, ``[N]``."""
    radii = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for start in range(0, len(x), batch_size):
        stop = min(start + batch_size, len(x))
        d = torch.cdist(x[start:stop], x)  # [B, N]
        rows = torch.arange(stop - start, device=x.device)
        d[rows, rows + start] = 0.0  # exact zero self-distance (the matmul form leaves ~1e-7)
        # (k+1) smallest including the point itself -> the largest of them is the k-th neighbour.
        radii[start:stop] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
    return radii


def prdc(
    real: Any,
    fake: Any,
    k: int = 5,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake [M, D]`` against ``real [N, D]``.

    Args:
        real, fake: feature arrays (NumPy or torch); converted to float64.
        k: neighbourhood size (the prdc paper recommends 5; precision/recall papers use 3).
        batch_size: rows of ``real`` (and of each set for the radii) per distance block.
        device: where to compute; default: the input tensor's device, else CPU.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats.

    Raises:
        ValueError: for mismatched feature sizes, ``k < 1``, or a set with at most ``k`` samples.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x_real = _to_tensor(real, "real", k + 1, device)
    x_fake = _to_tensor(fake, "fake", k + 1, x_real.device)
    check_same_dim(x_real, x_fake)

    real_radii = _kth_neighbour_radii(x_real, k, batch_size)  # [N]
    fake_radii = _kth_neighbour_radii(x_fake, k, batch_size)  # [M]

    n_real, n_fake = len(x_real), len(x_fake)
    fake_in_some_real_ball = torch.zeros(n_fake, dtype=torch.bool, device=x_real.device)
    real_balls_per_fake = torch.zeros(n_fake, dtype=torch.float64, device=x_real.device)
    real_in_some_fake_ball = torch.empty(n_real, dtype=torch.bool, device=x_real.device)
    real_ball_has_fake = torch.empty(n_real, dtype=torch.bool, device=x_real.device)
    for start in range(0, n_real, batch_size):
        stop = min(start + batch_size, n_real)
        d = torch.cdist(x_real[start:stop], x_fake)  # [B, M] real-to-fake distances
        inside_real = d < real_radii[start:stop, None]  # fake j inside real ball i
        fake_in_some_real_ball |= inside_real.any(dim=0)
        real_balls_per_fake += inside_real.sum(dim=0, dtype=torch.float64)
        real_in_some_fake_ball[start:stop] = (d < fake_radii[None, :]).any(dim=1)
        real_ball_has_fake[start:stop] = d.min(dim=1).values < real_radii[start:stop]

    return {
        "precision": float(fake_in_some_real_ball.double().mean()),
        "recall": float(real_in_some_fake_ball.double().mean()),
        "density": float(real_balls_per_fake.mean() / k),
        "coverage": float(real_ball_has_fake.double().mean()),
    }


def precision_recall(real: Any, fake: Any, k: int = 3, **kwargs: Any) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with ``k`` neighbours."""
    out = prdc(real, fake, k, **kwargs)
    return out["precision"], out["recall"]


def density_coverage(real: Any, fake: Any, k: int = 5, **kwargs: Any) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with ``k`` neighbours."""
    out = prdc(real, fake, k, **kwargs)
    return out["density"], out["coverage"]
