"""PacGAN (Lin et al., 2018): the discriminator judges packs of ``m`` samples at once.

A pack of ``m`` real samples is drawn from ``P^m`` and a pack of generated ones from
``Q^m``; distinguishing the product distributions is much easier when ``Q`` has dropped
modes (a collapsed generator produces packs of near-duplicates), so packing penalises
mode collapse without changing the networks beyond the discriminator's input width.

Any family becomes packed with ``model.pack: m``: its discriminator is built for ``m``
samples concatenated along the channel axis (images) or the feature axis (vectors), and
:class:`PackedDiscriminator` regroups ``[N, ...]`` batches into ``[N / m, m * ...]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import Discriminator


def packed_shape(shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """The discriminator's input shape for packs of ``pack`` samples of ``shape``."""
    if len(shape) == 3:
        return (shape[0] * pack, *shape[1:])
    if len(shape) == 1:
        return (shape[0] * pack,)
    raise ConfigError(f"model.pack needs image [C, H, W] or vector [D] data, got shape {shape}")


class PackedDiscriminator(Discriminator):
    """Wraps a discriminator built for packed input; takes ``[N, ...]``, returns ``[N / m]``."""

    def __init__(self, discriminator: nn.Module, pack: int) -> None:
        super().__init__()
        self.inner, self.pack = discriminator, pack
        self.num_classes = getattr(discriminator, "num_classes", 0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"a packed discriminator needs a batch that is a multiple of {self.pack}, got {n}")
        # consecutive samples form a pack: [N, C, H, W] -> [N/m, m*C, H, W] (or [N/m, m*D])
        return self.inner(x.reshape(n // self.pack, -1, *x.shape[2:]), None)
