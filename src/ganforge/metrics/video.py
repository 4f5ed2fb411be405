"""Video metrics as pure functions: where a digit is in each frame, how it moves, and whether it stays itself.

* :func:`centres_of_mass`: the intensity-weighted centre of every frame (for one bright digit on
  black, the digit's centre);
* :func:`digit_crops`: a square window around that centre in every frame, the input of a
  single-digit classifier (the ``digits`` classifier reads centred digits);
* :func:`motion_stats`: mean speed (pixels a frame) and mean acceleration (the second difference
  of the centre: 0 for straight uniform motion, large for jitter) of a set of clips;
* :func:`identity_consistency`: the share of clips whose frames are all read as one class;
* :func:`confident_share`: the share of frames read with a top probability above a threshold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _grey(clips: torch.Tensor) -> torch.Tensor:
    """uint8 or float clips ``[N, T, C, H, W]`` -> float grey ``[N, T, H, W]`` in [0, 1]."""
    x = clips.float()
    if clips.dtype == torch.uint8:
        x = x / 255.0
    return x.mean(dim=2)


def centres_of_mass(clips: torch.Tensor) -> torch.Tensor:
    """``[N, T, 2]`` (x, y) intensity centres of every frame; the frame's centre where a frame is black."""
    grey = _grey(clips)
    n, t, h, w = grey.shape
    mass = grey.sum(dim=(2, 3))
    ys = torch.arange(h, dtype=grey.dtype) + 0.5
    xs = torch.arange(w, dtype=grey.dtype) + 0.5
    cx = (grey.sum(dim=2) * xs).sum(dim=2) / mass.clamp_min(1e-8)
    cy = (grey.sum(dim=3) * ys).sum(dim=2) / mass.clamp_min(1e-8)
    centre = torch.stack([cx, cy], dim=-1)
    empty = (mass <= 1e-8)[..., None]
    return torch.where(empty, torch.tensor([w / 2, h / 2], dtype=grey.dtype), centre)


def digit_crops(clips: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 crops ``[N * T, 1, size, size]`` of every frame, centred on its centre of mass (kept inside the frame)."""
    grey = _grey(clips)
    n, t, h, w = grey.shape
    if size > min(h, w):
        raise ValueError(f"crops of {size} pixels do not fit frames of {w}x{h}")
    centre = centres_of_mass(clips).reshape(n * t, 2)
    left = (centre[:, 0] - size / 2).round().long().clamp(0, w - size)
    top = (centre[:, 1] - size / 2).round().long().clamp(0, h - size)
    frames = grey.reshape(n * t, h, w)
    rows = (top[:, None] + torch.arange(size))[:, :, None]  # [M, size, 1]
    cols = (left[:, None] + torch.arange(size))[:, None, :]  # [M, 1, size]
    crops = frames[torch.arange(n * t)[:, None, None], rows, cols]
    return (crops * 255.0).round().clamp(0, 255).to(torch.uint8)[:, None]


def motion_stats(centres: torch.Tensor) -> dict[str, float]:
    """Mean speed ``|c(t+1) - c(t)|`` and mean acceleration ``|c(t+1) - 2 c(t) + c(t-1)|`` (pixels a frame) of centres ``[N, T, 2]``."""
    velocity = centres[:, 1:] - centres[:, :-1]
    acceleration = velocity[:, 1:] - velocity[:, :-1]
    return {"speed": float(velocity.norm(dim=-1).mean()), "acceleration": float(acceleration.norm(dim=-1).mean())}


def identity_consistency(predictions: torch.Tensor) -> float:
    """Share of clips whose frame predictions ``[N, T]`` are all one class."""
    return float((predictions == predictions[:, :1]).all(dim=1).double().mean())


def confident_share(logits: torch.Tensor, threshold: float = 0.9) -> float:
    """Share of rows of ``logits [M, K]`` whose softmax's top probability exceeds ``threshold``."""
    return float((F.softmax(logits.double(), dim=1).max(dim=1).values > threshold).double().mean())


__all__ = ["centres_of_mass", "confident_share", "digit_crops", "identity_consistency", "motion_stats"]
