"""Adversarial losses (a registry of pure-function pairs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry
from . import adversarial as adv

DLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GLoss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AdversarialLoss:
    """A discriminator loss and its matching generator loss."""

    name: str
    d_loss: DLoss
    g_loss: GLoss
    description: str


LOSSES: Registry = Registry("loss")


def _add(name: str, d_loss: DLoss, g_loss: GLoss, description: str, aliases: tuple[str, ...] = ()) -> None:
    LOSSES.add(name, AdversarialLoss(name, d_loss, g_loss, description), aliases=aliases, help=description)


_add("minimax", adv.bce_d_loss, adv.minimax_g_loss, "original saturating minimax loss", ("saturating",))
_add(
    "nonsaturating",
    adv.bce_d_loss,
    adv.nonsaturating_g_loss,
    "non-saturating (standard) GAN loss",
    ("non-saturating", "ns", "bce", "vanilla"),
)
_add("wasserstein", adv.wasserstein_d_loss, adv.wasserstein_g_loss, "Wasserstein critic loss (WGAN)", ("wgan",))
_add("hinge", adv.hinge_d_loss, adv.wasserstein_g_loss, "hinge loss (SNGAN, SAGAN, BigGAN)")
_add(
    "least-squares",
    adv.least_squares_d_loss,
    adv.least_squares_g_loss,
    "least-squares loss (LSGAN)",
    ("lsgan", "least_squares"),
)


def get(name: str) -> AdversarialLoss:
    """The registered loss ``name`` (aliases accepted)."""
    return LOSSES.get(name)


__all__ = ["LOSSES", "AdversarialLoss", "get"]
