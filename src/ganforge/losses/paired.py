"""Paired (reconstruction) losses of image-to-image recipes, as pure functions of images.

Images are in the model range [-1, 1]; every loss is a scalar to minimise, averaged over
all elements (so its scale does not depend on the batch or image size).
"""

from __future__ import annotations

from typing import Callable

import torch


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``E|G(x) - y|``: pix2pix's reconstruction term (sharper than L2, Isola et al. 2017)."""
    return (output.float() - target.float()).abs().mean()


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """CycleGAN's cycle consistency ``E|F(G(a)) - a|``: ``reconstruction = F(G(a))`` (Zhu et al. 2017).

    Zero exactly when ``F`` inverts ``G`` on ``a``; the recipe sums it over both directions.
    """
    return l1_loss(reconstruction, original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """CycleGAN's identity term ``E|G(b) - b|``: ``mapped = G(b)`` for ``b`` already in ``G``'s output domain.

    It asks ``G`` to leave target-domain images unchanged (preserves colour composition).
    """
    return l1_loss(mapped, original)


def pixel_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """``E|G(x) - y|`` (``l1``, ESRGAN's) or ``E(G(x) - y)^2`` (``mse``, SRResNet's: maximises PSNR)."""
    diff = output.float() - target.float()
    if kind == "l1":
        return diff.abs().mean()
    if kind == "mse":
        return diff.square().mean()
    raise ValueError(f"pixel loss must be l1 or mse, got {kind!r}")


def content_loss(
    features: Callable[[torch.Tensor], torch.Tensor], output: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Perceptual loss ``E|phi(G(x)) - phi(y)|`` on the feature maps ``phi`` of a fixed network.

    ``phi`` is e.g. VGG-19 up to conv5_4 before activation (ESRGAN, L1; SRGAN used MSE after
    the ReLU). The target's features carry no gradient; the output's backpropagate into ``G``.
    """
    with torch.no_grad():
        reference = features(target)
    return (features(output) - reference).float().abs().mean()
