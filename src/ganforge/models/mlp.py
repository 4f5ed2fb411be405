"""The basic GAN (Goodfellow et al., 2014): fully connected networks.

Used for 2-D toy mixtures (``ring8``, ``grid25``) and small flattened images. Vector
outputs are unbounded (data coordinates); image outputs end in ``tanh``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..layers import LabelProjection, MinibatchDiscrimination
from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable


def _mlp(sizes: list[int], activation: nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation]
    return layers


@configurable
class MLPGenerator(Generator):
    """``z (+ label embedding) -> [hidden x layers] -> sample``, ReLU activations."""

    def __init__(
        self,
        output_shape: tuple[int, ...] | list[int],
        latent_dim: int = 2,
        hidden_dim: int = 128,
        num_layers: int = 3,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        out_dim = math.prod(self.output_shape)
        body = _mlp([in_dim] + [hidden_dim] * num_layers, nn.ReLU())
        head: list[nn.Module] = [nn.Linear(hidden_dim, out_dim)]
        if self.is_image:
            head.append(nn.Tanh())
        self.net = nn.Sequential(*body, *head)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).view(len(z), *self.output_shape)


@configurable
class MLPDiscriminator(Discriminator):
    """``sample -> [hidden x layers] -> logit``, LeakyReLU(0.2); projection for labels.

    ``minibatch_discrimination=B > 0`` appends ``B`` minibatch-discrimination features
    (Salimans et al.) before the output layer.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...] | list[int],
        hidden_dim: int = 128,
        num_layers: int = 3,
        num_classes: int = 0,
        minibatch_discrimination: int = 0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        in_dim = math.prod(input_shape)
        self.body = nn.Sequential(*_mlp([in_dim] + [hidden_dim] * num_layers, nn.LeakyReLU(0.2)))
        self.mbd = MinibatchDiscrimination(hidden_dim, minibatch_discrimination) if minibatch_discrimination else None
        self.head = nn.Linear(hidden_dim + minibatch_discrimination, 1)
        self.projection = LabelProjection(num_classes, hidden_dim) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x.flatten(1))
        logits = self.head(self.mbd(h) if self.mbd is not None else h).squeeze(1)
        if self.projection is not None:
            logits = logits + self.projection(h, labels)
        return logits


@MODELS.register("mlp", aliases=("gan",), help="the basic GAN: fully connected generator and discriminator")
@smallest_config(((2,), {"hidden_dim": 8, "num_layers": 1}), ((1, 8, 8), {"hidden_dim": 8}),
                 ((2,), {"hidden_dim": 8, "minibatch_discrimination": 4}))
def build_mlp(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 2,
    hidden_dim: int = 128,
    num_layers: int = 3,
    d_hidden_dim: int | None = None,
    d_num_layers: int | None = None,
    minibatch_discrimination: int = 0,
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """Fully connected GAN; ``d_*`` options size the discriminator separately.

    ``minibatch_discrimination``: number of minibatch-discrimination kernels in D (0 = off).
    """
    generator = MLPGenerator(data_shape, latent_dim, hidden_dim, num_layers, num_classes)
    discriminator = MLPDiscriminator(
        data_shape, d_hidden_dim or hidden_dim, d_num_layers or num_layers, num_classes, minibatch_discrimination
    )
    return generator, discriminator
