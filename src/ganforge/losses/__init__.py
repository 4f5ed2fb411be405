"""Adversarial losses (a registry of pure-function pairs), regularizers and paired losses.

Adversarial losses reduce their logits with ``mean()``, so patch discriminators'
``[N, 1, h, w]`` logits are averaged over every patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry
from . import adversarial as adv

DLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GLoss = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class AdversarialLoss:
    """A discriminator loss and its matching generator loss.

    ``g_loss(fake_logits)``, or ``g_loss(fake_logits, real_logits)`` when
    ``relativistic`` (the generator's loss then depends on real scores too).
    """

    name: str
    d_loss: DLoss
    g_loss: GLoss
    description: str
    relativistic: bool = False

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """``g_loss`` with the real logits passed only to losses that use them."""
        if self.relativistic:
            if real is None:
                raise ValueError(f"loss '{self.name}' needs the real logits for the generator loss")
            return self.g_loss(fake, real)
        return self.g_loss(fake)


LOSSES: Registry = Registry("loss")


def _add(name: str, d_loss: DLoss, g_loss: GLoss, description: str, aliases: tuple[str, ...] = (),
         relativistic: bool = False) -> None:
    LOSSES.add(name, AdversarialLoss(name, d_loss, g_loss, description, relativistic), aliases=aliases, help=description)


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

_add(
    "relativistic-average",
    adv.relativistic_average_d_loss,
    adv.relativistic_average_g_loss,
    "relativistic average standard GAN loss (RaSGAN)",
    ("rasgan", "relativistic"),
    relativistic=True,
)


def get(name: str) -> AdversarialLoss:
    """The registered loss ``name`` (aliases accepted)."""
    return LOSSES.get(name)


_add(
    "relativistic-pair",
    adv.relativistic_pair_d_loss,
    adv.relativistic_pair_g_loss,
    "relativistic standard GAN loss on real-fake pairs (RSGAN, RelGAN)",
    ("rsgan",),
    relativistic=True,
)

from . import paired  # noqa: E402
from .regularizers import REGULARIZERS, Regularizer, check_regularizers, resolve_regularizers  # noqa: E402

__all__ = ["LOSSES", "REGULARIZERS", "AdversarialLoss", "Regularizer", "check_regularizers", "get", "paired", "resolve_regularizers"]
