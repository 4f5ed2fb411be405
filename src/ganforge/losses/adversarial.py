"""Adversarial losses as pure functions of discriminator logits.

Every loss is a pair ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``,
each returning a scalar to *minimise*. Logits are raw scores: where a loss needs
``D(x) = sigmoid(logit)``, it uses ``softplus`` identities, the numerically stable form:

    -log(sigmoid(t))     = softplus(-t)
    -log(1 - sigmoid(t)) = softplus(t)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Classifier loss: ``-log D(x) - log(1 - D(G(z)))`` (Goodfellow et al., 2014)."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Saturating generator loss: minimise ``log(1 - D(G(z)))`` (the original minimax game)."""
    return -F.softplus(fake).mean()


def nonsaturating_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: minimise ``-log D(G(z))`` (strong gradients early on)."""
    return F.softplus(-fake).mean()


def wasserstein_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss ``E[D(G(z))] - E[D(x)]`` (Arjovsky et al., 2017); needs a Lipschitz critic."""
    return fake.mean() - real.mean()


def wasserstein_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-E[D(G(z))]``; also the generator side of the hinge loss."""
    return -fake.mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]`` (Lim & Ye; Miyato et al.)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def least_squares_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN (Mao et al., 2017) with targets b=1 for real, a=0 for fake."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def least_squares_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss with target c=1."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def relativistic_pair_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic standard GAN (RSGAN; Jolicoeur-Martineau, 2019), the loss of RelGAN.

    Real and fake samples are paired: ``-E log sigmoid(C(x_i) - C(G(z_i)))``, the probability
    that the real sample is more realistic than its fake partner.
    """
    return F.softplus(-(real - fake)).mean()


def relativistic_pair_g_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """RSGAN's generator loss: ``-E log sigmoid(C(G(z_i)) - C(x_i))`` (its gradient flows through ``fake``)."""
    return F.softplus(-(fake - real)).mean()


def relativistic_average_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic average GAN (Jolicoeur-Martineau, 2019), standard-loss form (RaSGAN).

    D estimates how much more realistic a real sample is than the *average* fake one:
    ``D~(x) = sigmoid(C(x) - E[C(G(z))])`` and ``D~(G(z)) = sigmoid(C(G(z)) - E[C(x)])``;
    the loss is ``-E log D~(x) - E log(1 - D~(G(z)))``.
    """
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def relativistic_average_g_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The generator's side of RaSGAN: the same loss with the roles of real and fake swapped.

    Unlike the other losses it depends on the real logits too: the generator is rewarded
    for making real data look *less* real, which gives it gradients from both halves.
    """
    return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
