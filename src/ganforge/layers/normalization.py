"""Normalization layers: spectral normalization, class-conditional batch norm, image-to-image norms."""

from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrizations

from ..errors import ConfigError

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
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gains 1 and biases 0 (call it again after a network-wide initialisation of embeddings)."""
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gamma = self.gain(labels)[:, :, None, None]  # [N, C, 1, 1]
        beta = self.bias(labels)[:, :, None, None]
        return gamma * self.bn(x) + beta


#: Per-layer normalisation of image-to-image networks by name (``norm``/``d_norm`` options).
#: ``instance`` normalises each sample's channels over its own pixels (no running statistics,
#: no learned affine, as in the pix2pix/CycleGAN code): a network then behaves the same in
#: training and at test time, whatever the batch; ``batch`` keeps running statistics.
IMAGE_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False),
    "batch": nn.BatchNorm2d,
    "none": lambda channels: nn.Identity(),
}


def image_norm(name: str, channels: int) -> nn.Module:
    """The :data:`IMAGE_NORMS` layer ``name`` for ``channels`` channels."""
    if name not in IMAGE_NORMS:
        raise ConfigError(f"unknown normalisation '{name}' (available: {', '.join(IMAGE_NORMS)})")
    return IMAGE_NORMS[name](channels)
