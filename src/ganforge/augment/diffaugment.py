"""DiffAugment (Zhao et al., 2020): cheap differentiable augmentations for both D inputs.

With little data a discriminator memorises the training set and its feedback to the
generator degrades. Augmenting *real and generated* images alike, with operations that
gradients pass through, regularises it without leaking the augmentations into the
generator's output (augmenting only reals would teach G to produce augmented images).

Images are ``[N, C, H, W]`` in [-1, 1]; every op draws its parameters per sample from
the given ``torch.Generator``, so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import did_you_mean

Op = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _uniform(x: torch.Tensor, g: torch.Generator | None, low: float, high: float) -> torch.Tensor:
    """Per-sample uniform draws shaped ``[N, 1, 1, 1]``."""
    u = torch.rand(len(x), 1, 1, 1, generator=g, device=x.device, dtype=torch.float32)
    return (low + (high - low) * u).to(x.dtype)


def brightness(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Add a per-sample offset in [-0.5, 0.5]."""
    return x + _uniform(x, g, -0.5, 0.5)


def saturation(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Scale the distance to the per-pixel channel mean by [0, 2] (grey images are unchanged)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _uniform(x, g, 0.0, 2.0) + mean


def contrast(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Scale the distance to the image mean by [0.5, 1.5]."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, g, 0.5, 1.5) + mean


def translation(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift by up to ``ratio`` of the size in each direction (integer pixels, zero fill)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1), generator=g, device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1), generator=g, device=x.device)
    # out[i, j] = padded[i + sh - ty, j + sw - tx]: a gather from the zero-padded image.
    rows = torch.arange(h, device=x.device)[None] + sh - ty  # [N, H]
    cols = torch.arange(w, device=x.device)[None] + sw - tx  # [N, W]
    padded = F.pad(x, (sw, sw, sh, sh))
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size at a random centre (it may leave the image)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g, device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2  # the square spans [top, top + ch) x [left, left + cw)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # [N, H, W]
    return x * (~inside)[:, None].to(x.dtype)


#: DiffAugment policies: each name is a sequence of ops (the paper's three groups).
POLICIES: dict[str, tuple[Op, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> list[Op]:
    """``"color,translation,cutout"`` -> the list of ops (unknown names are an error)."""
    ops: list[Op] = []
    for name in (p.strip() for p in policy.split(",") if p.strip()):
        if name not in POLICIES:
            raise ConfigError(
                f"unknown DiffAugment policy '{name}'{did_you_mean(name, list(POLICIES))} "
                f"(available: {', '.join(POLICIES)})"
            )
        ops.extend(POLICIES[name])
    return ops


def diff_augment(x: torch.Tensor, ops: list[Op], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply every op in ``ops`` to ``x [N, C, H, W]`` (each with fresh per-sample parameters)."""
    for op in ops:
        x = op(x, generator)
    return x
