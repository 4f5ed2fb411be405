"""DCGAN (Radford et al., 2016): transposed-conv generator, strided-conv discriminator.

At 64x64 with ``latent_dim=100`` and ``base_channels=64`` this is exactly the classic
network: G = ConvT(100->512, 4x4 from 1x1) then four stride-2 ConvT blocks with batch norm
and ReLU down to 3 channels and tanh; D = five 4x4 stride-2 convs with LeakyReLU(0.2),
batch norm on all but the first, ending in a 4x4 valid conv to one logit. Other powers of
two (8 ... 256) add or remove one block per octave.

Class-conditional variants: the generator concatenates a label embedding to ``z``; the
discriminator uses a projection head (default) or one-hot label planes concatenated to
its input.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import LabelProjection, label_maps
from . import MODELS, image_resolutions, smallest_config
from .base import Discriminator, Generator, configurable, init_weights, square_image_shape


def octaves(resolution: int) -> int:
    """Number of stride-2 stages between 4x4 and ``resolution``."""
    n = int(math.log2(resolution)) - 2 if resolution > 0 else -1
    if n < 1 or 4 * 2**n != resolution or resolution > 256:
        raise ConfigError(f"dcgan supports square power-of-two resolutions 8..256, got {resolution}")
    return n


@configurable
class DCGANGenerator(Generator):
    """DCGAN generator; channels halve at each upsampling: ``base * 2^(n-1)`` at 4x4."""

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 64,
        latent_dim: int = 100,
        base_channels: int = 64,
        num_classes: int = 0,
        label_dim: int = 0,
    ) -> None:
        super().__init__()
        n = octaves(resolution)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (channels, resolution, resolution)
        label_dim = label_dim or num_classes
        self.embed = nn.Embedding(num_classes, label_dim) if num_classes else None
        in_dim = latent_dim + (label_dim if num_classes else 0)

        width = base_channels * 2 ** (n - 1)
        # 1x1 -> 4x4: a transposed conv on z viewed as [N, z, 1, 1] is a dense layer.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])  # [N, C, H, W]


#: Normalisation inside the discriminator. Batch norm couples the samples of a batch, which
#: breaks the per-sample gradient penalty of WGAN-GP; its authors use layer norm instead
#: (GroupNorm with one group normalises over C, H, W of each sample).
D_NORMS = {
    "batch": nn.BatchNorm2d,
    "layer": lambda channels: nn.GroupNorm(1, channels),
    "none": lambda channels: nn.Identity(),
}


@configurable
class DCGANDiscriminator(Discriminator):
    """DCGAN discriminator; channels double at each downsampling from ``base``."""

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 64,
        base_channels: int = 64,
        num_classes: int = 0,
        conditioning: str = "projection",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        n = octaves(resolution)
        if conditioning not in ("projection", "concat"):
            raise ConfigError(f"d_conditioning must be 'projection' or 'concat', got '{conditioning}'")
        if norm not in D_NORMS:
            raise ConfigError(f"d_norm must be one of {', '.join(D_NORMS)}, got '{norm}'")
        self.num_classes = num_classes
        self.concat = bool(num_classes) and conditioning == "concat"
        in_channels = channels + (num_classes if self.concat else 0)
        width = base_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"),
                D_NORMS[norm](width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        self.features = nn.Sequential(*layers)  # [N, width, 4, 4]
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)
        self.projection = LabelProjection(num_classes, width) if num_classes and not self.concat else None
        self.apply(init_weights())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.concat:
            x = torch.cat([x, label_maps(labels, self.num_classes, x.shape[2], x.shape[3], x.dtype)], dim=1)
        h = self.features(x)
        logits = self.head(h).flatten()
        if self.projection is not None:
            logits = logits + self.projection(h.sum(dim=(2, 3)), labels)
        return logits


@MODELS.register("dcgan", help="DCGAN: transposed-conv generator with batch norm, conv discriminator")
@image_resolutions(octaves)
@smallest_config(((1, 8, 8), {"base_channels": 4, "latent_dim": 8}), ((3, 16, 16), {"base_channels": 4, "latent_dim": 8}),
                 ((3, 8, 8), {"base_channels": 4, "latent_dim": 8, "d_norm": "layer"}))
def build_dcgan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 100,
    base_channels: int = 64,
    d_base_channels: int | None = None,
    label_dim: int = 0,
    d_conditioning: str = "projection",
    d_norm: str = "batch",
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """DCGAN for square images ``(C, R, R)``.

    ``d_conditioning``: projection | concat. ``d_norm``: batch | layer | none (use layer or
    none with a gradient penalty).
    """
    channels, resolution = square_image_shape("dcgan", data_shape)
    generator = DCGANGenerator(channels, resolution, latent_dim, base_channels, num_classes, label_dim)
    discriminator = DCGANDiscriminator(
        channels, resolution, d_base_channels or base_channels, num_classes, d_conditioning, d_norm
    )
    return generator, discriminator
