"""AC-GAN (Odena et al., 2017): a class-conditional generator and a discriminator that
classifies.

The generator is DCGAN's with a label embedding concatenated to ``z``
(:class:`~ganforge.models.dcgan.DCGANGenerator` with ``num_classes``). The discriminator
sees no label: it is DCGAN's convolutional body with two heads on its ``[N, width, 4, 4]``
features, the adversarial logit ``D(x)`` and ``K`` class logits for ``p(y | x)``. Train it
with ``recipe: acgan`` (see :mod:`ganforge.training.auxiliary`), which adds the
classification losses; the projection discriminator alternative is ``dcgan`` with
``model.conditional: true``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import MODELS, image_resolutions, smallest_config
from .base import configurable, init_weights, square_image_shape
from .dcgan import DCGANDiscriminator, DCGANGenerator, octaves


@configurable
class ACGANDiscriminator(DCGANDiscriminator):
    """DCGAN discriminator with an auxiliary classifier head (no label input).

    ``forward(x, labels)`` (DCGAN's, built without classes) returns the adversarial logits
    ``[N]`` and ignores ``labels``: AC-GAN's discriminator never sees a label.
    :meth:`forward_aux` also returns the class logits ``[N, K]`` of the same features.
    """

    def __init__(self, channels: int = 3, resolution: int = 64, base_channels: int = 64, num_classes: int = 0) -> None:
        super().__init__(channels, resolution, base_channels, num_classes=0)
        self.num_classes = num_classes
        width = self.head.in_channels
        # A 4x4 valid convolution on the 4x4 features = a dense layer on the flattened features,
        # the same form as the adversarial head.
        self.classifier = nn.Conv2d(width, num_classes, 4, 1, 0) if num_classes else None
        if self.classifier is not None:
            self.classifier.apply(init_weights())

    @property
    def classifies(self) -> bool:
        """Whether :meth:`forward_aux` returns class logits (what ``recipe: acgan`` needs)."""
        return self.classifier is not None

    def forward_aux(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Adversarial logits ``[N]`` and ``{"class_logits": [N, K]}`` (``{}`` without classes) in one pass."""
        h = self.features(x)
        heads = {"class_logits": self.classifier(h).flatten(1)} if self.classifier is not None else {}
        return self.head(h).flatten(), heads


@MODELS.register("acgan", help="AC-GAN: conditional DCGAN generator, discriminator with an auxiliary classifier")
@image_resolutions(octaves)
@smallest_config(((1, 8, 8), {"base_channels": 4, "latent_dim": 8}), ((3, 16, 16), {"base_channels": 4, "latent_dim": 8}))
def build_acgan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 100,
    base_channels: int = 64,
    d_base_channels: int | None = None,
    label_dim: int = 0,
) -> tuple[DCGANGenerator, ACGANDiscriminator]:
    """AC-GAN for square images ``(C, R, R)``; train with ``recipe: acgan`` and ``model.conditional: true``."""
    channels, resolution = square_image_shape("acgan", data_shape)
    generator = DCGANGenerator(channels, resolution, latent_dim, base_channels, num_classes, label_dim)
    discriminator = ACGANDiscriminator(channels, resolution, d_base_channels or base_channels, num_classes)
    return generator, discriminator
