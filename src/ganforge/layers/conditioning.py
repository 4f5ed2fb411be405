"""Ways of feeding class labels to a network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LabelProjection(nn.Module):
    """The class term of a projection discriminator (Miyato & Koyama, 2018).

    With features ``h [N, F]`` the discriminator's logit is ``psi(h) + <embed(y), h>``: the
    inner product with a learned class embedding measures how well ``h`` matches class
    ``y``. This module returns only the inner-product term ``[N]``; ``psi`` is the
    network's own unconditional output layer.
    """

    def __init__(self, num_classes: int, features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (self.embed(labels) * h).sum(dim=1)


class LabelConcat(nn.Module):
    """Latents with a learned label embedding appended (the conditional generators' input).

    ``forward(z [N, D], labels [N]) -> [N, D + label_dim]``; with no classes it returns ``z``.
    """

    def __init__(self, num_classes: int, label_dim: int = 0) -> None:
        super().__init__()
        self.out_extra = (label_dim or num_classes) if num_classes else 0
        self.embed = nn.Embedding(num_classes, self.out_extra) if num_classes else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)


def label_maps(labels: torch.Tensor, num_classes: int, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot labels broadcast to ``[N, K, H, W]`` planes, for input concatenation."""
    one_hot = F.one_hot(labels, num_classes).to(dtype)  # [N, K]
    return one_hot[:, :, None, None].expand(-1, -1, height, width)
