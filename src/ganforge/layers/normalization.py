"""Normalization layers: spectral normalization and class-conditional batch norm."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrizations

M = TypeVar("M", bound=nn.Module)


def spectral_norm(module: M, enabled: bool = True) -> M:
    """Reparametrize ``module.weight`` as ``W / sigma(W)`` (Miyato et al., 2018); no-op if disabled.

    ``sigma(W)`` is the largest singular value of the weight viewed as a matrix
    ``[out, in * k * k]``, estimated by one step of power iteration per forward pass in
    training mode (the vectors ``u``, ``v`` are buffers, so they are checkpointed and kept
    from step to step). Every layer then is at most 1-Lipschitz in that matrix sense, which
    bounds the discriminator's gradient without a penalty term. Initialise the weight
    *before* wrapping: afterwards ``module.weight`` is computed, not stored.
    """
    if not enabled:
        return module
    return parametrizations.spectral_norm(module)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-class affine transform comes from embeddings (de Vries et al., 2017).

    ``y = gamma[c] * (x - mu) / sigma + beta[c]``: the statistics are the batch's (running
    ones in eval mode), the gain ``gamma`` and bias ``beta`` are looked up for each sample's
    class ``c``. Gains start at 1 and biases at 0, i.e. as plain batch norm.
    """

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma = self.gain(labels)[:, :, None, None]  # [N, C, 1, 1]
        beta = self.bias(labels)[:, :, None, None]
        return gamma * self.bn(x) + beta
