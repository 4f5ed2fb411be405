"""Adaptive discriminator augmentation (ADA; Karras et al., 2020).

Every augmentation is applied to each image with probability ``p``; ``p`` starts at 0 and
is steered by the discriminator's overfitting signal

    r_t = E[sign(D(x_real))]

(the share of real images it scores as real, mapped to [-1, 1]): above ``target`` (0.6 in
the paper) D is too sure of the training images, so ``p`` rises; below, it falls. ``p``
moves by ``sign(r_t - target) * images / (speed_kimg * 1000)`` every ``interval`` updates, so
it can go from 0 to 1 in ``speed_kimg`` thousand images.

The pipeline uses only invertible-in-distribution ("non-leaking") transformations, with
``p < 1``: x-flip, rotations by multiples of 90 degrees, integer translation, isotropic
scaling, arbitrary rotation (one affine resample with reflection padding), then
brightness, contrast and saturation. All are differentiable with respect to the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _bernoulli(n: int, p: float, g: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=g, device=device) < p).float()


def _affine(n: int, p: float, g: torch.Generator | None, device: torch.device, size: tuple[int, int]) -> torch.Tensor:
    """Per-sample 2x3 matrices (normalised coordinates) mapping output to input pixels."""
    eye = torch.eye(3, device=device).repeat(n, 1, 1)
    m = eye.clone()

    def compose(t: torch.Tensor) -> None:
        nonlocal m
        m = m @ t

    # x-flip: x -> -x with probability p
    flip = 1 - 2 * _bernoulli(n, p, g, device)
    t = eye.clone()
    t[:, 0, 0] = flip
    compose(t)
    # rotation by k * 90 degrees, k uniform in 0..3
    k = torch.randint(0, 4, (n,), generator=g, device=device).float() * _bernoulli(n, p, g, device)
    angle = k * (math.pi / 2)
    t = eye.clone()
    t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    compose(t)
    # integer translation up to 1/8 of the size (in normalised units: 2 * pixels / size)
    h, w = size
    on = _bernoulli(n, p, g, device)
    for axis, extent in ((0, w), (1, h)):
        shift = torch.round((torch.rand(n, generator=g, device=device) * 2 - 1) * 0.125 * extent) * 2 / extent
        t = eye.clone()
        t[:, axis, 2] = shift * on
        compose(t)
    # isotropic scaling, log2-normal with std 0.2
    s = torch.exp2(torch.randn(n, generator=g, device=device) * 0.2 * _bernoulli(n, p, g, device))
    t = eye.clone()
    t[:, 0, 0], t[:, 1, 1] = 1 / s, 1 / s
    compose(t)
    # arbitrary rotation, uniform in [-180, 180] degrees
    angle = (torch.rand(n, generator=g, device=device) * 2 - 1) * math.pi * _bernoulli(n, p, g, device)
    t = eye.clone()
    t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    compose(t)
    return m[:, :2, :]


def ada_augment(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment ``x [N, C, H, W]`` (in [-1, 1]) with ADA's geometric and colour ops at probability ``p``."""
    if p <= 0:
        return x
    n, c, h, w = x.shape
    dev = x.device
    theta = _affine(n, p, generator, dev, (h, w)).to(x.dtype)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # colour: brightness (additive), contrast (scale around the image mean), saturation
    b = torch.randn(n, 1, 1, 1, generator=generator, device=dev) * 0.2 * _bernoulli(n, p, generator, dev)[:, None, None, None]
    x = x + b.to(x.dtype)
    on = _bernoulli(n, p, generator, dev)[:, None, None, None]
    scale = torch.exp2(torch.randn(n, 1, 1, 1, generator=generator, device=dev) * 0.5 * on).to(x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * scale + mean
    if c == 3:
        on = _bernoulli(n, p, generator, dev)[:, None, None, None]
        scale = torch.exp2(torch.randn(n, 1, 1, 1, generator=generator, device=dev) * 1.0 * on).to(x.dtype)
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * scale + grey
    return x


class AdaptiveProbability:
    """The ADA controller: accumulates ``sign(D(real))`` and moves ``p`` toward the target."""

    def __init__(self, target: float = 0.6, speed_kimg: float = 100.0, interval: int = 4, p: float = 0.0) -> None:
        self.target, self.speed_kimg, self.interval = target, speed_kimg, interval
        self.p = p
        self._signs = 0.0
        self._count = 0
        self._updates = 0

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record one discriminator update's real logits; adjust ``p`` every ``interval`` updates.

        The one host sync this needs happens every ``interval`` updates, not every step.
        """
        self._signs = self._signs + torch.sign(real_logits.detach().float()).sum()
        self._count += len(real_logits)
        self._updates += 1
        if self._updates % self.interval == 0:
            r_t = float(self._signs) / max(self._count, 1)
            step = self._count / (self.speed_kimg * 1000)
            self.p = min(max(self.p + math.copysign(step, r_t - self.target), 0.0), 1.0)
            self._signs, self._count = 0.0, 0
            self.last_r_t = r_t

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p, "signs": float(self._signs), "count": self._count, "updates": self._updates}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p, self._signs = float(state["p"]), float(state["signs"])
        self._count, self._updates = int(state["count"]), int(state["updates"])
