"""SNGAN (Miyato et al., 2018): ResNet generator, spectrally normalized ResNet discriminator.

At 32x32 with the defaults this is the paper's CIFAR-10 ResNet: G = dense ``z -> 4x4x256``,
three upsampling residual blocks to 32x32, BN-ReLU-conv3x3-tanh; D = the "optimized"
downsampling block, one more downsampling block, two blocks at 8x8 (all 128 channels),
ReLU, global sum pooling and a dense layer to one logit, with spectral normalization on
every layer. Other power-of-two resolutions (8 ... 128) add or remove one block per octave
at the same width.

Class-conditional variants (Miyato & Koyama, 2018) use conditional batch norm in the
generator's blocks and a projection discriminator: ``D(x, y) = psi(h) + <embed(y), h>``
with ``h`` the pooled features.

The networks take ``attention_resolution`` to insert a :class:`SelfAttention` block at
that feature-map size; the ``sagan`` family (``models/sagan.py``) builds them that way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers.attention import SelfAttention
from ..layers.conditioning import LabelProjection
from ..layers.normalization import spectral_norm
from ..layers.resblocks import DiscriminatorBlock, GeneratorBlock, conv
from . import MODELS, image_resolutions, smallest_config
from .base import Discriminator, Generator, configurable, square_image_shape


def up_blocks(resolution: int) -> int:
    """Number of upsampling blocks from 4x4 to ``resolution``."""
    n = int(math.log2(resolution)) - 2 if resolution > 0 else -1
    if n < 1 or 4 * 2**n != resolution or resolution > 128:
        raise ConfigError(f"sngan/sagan support square power-of-two resolutions 8..128, got {resolution}")
    return n


def _discriminator_sizes(resolution: int) -> list[int]:
    """Output side of each D block: halve down to 8x8 (at least once), then two more blocks."""
    sizes = [resolution // 2]
    while sizes[-1] > 8:
        sizes.append(sizes[-1] // 2)
    return sizes + [sizes[-1]] * 2


def check_attention_resolution(resolution: int, attention_resolution: int | None) -> None:
    """Raise unless both networks have a feature map of side ``attention_resolution``."""
    if attention_resolution is None:
        return
    g_sizes = {4 * 2 ** (i + 1) for i in range(up_blocks(resolution))}
    valid = sorted(g_sizes & set(_discriminator_sizes(resolution)))
    if attention_resolution not in valid:
        raise ConfigError(
            f"attention_resolution must be one of {valid or 'none (image too small)'} "
            f"for {resolution}x{resolution} images, got {attention_resolution}"
        )


def _dense(cin: int, cout: int, use_spectral_norm: bool) -> nn.Linear:
    layer = nn.Linear(cin, cout)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return spectral_norm(layer, use_spectral_norm)


@configurable
class SNGANGenerator(Generator):
    """ResNet generator: dense to 4x4, upsampling residual blocks, BN-ReLU-conv3-tanh.

    All blocks are ``base_channels`` wide. ``attention_resolution`` inserts self-attention
    after the block that outputs that size; ``use_spectral_norm`` wraps every layer.
    """

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 32,
        latent_dim: int = 128,
        base_channels: int = 256,
        num_classes: int = 0,
        use_spectral_norm: bool = False,
        attention_resolution: int | None = None,
    ) -> None:
        super().__init__()
        n = up_blocks(resolution)
        check_attention_resolution(resolution, attention_resolution)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (channels, resolution, resolution)
        width = base_channels
        self.dense = _dense(latent_dim, 4 * 4 * width, use_spectral_norm)
        self.blocks = nn.ModuleList(GeneratorBlock(width, width, num_classes, use_spectral_norm) for _ in range(n))
        # index of the block after which attention runs (block i outputs side 8 * 2^i)
        self.attention_after = -1 if attention_resolution is None else int(math.log2(attention_resolution)) - 3
        self.attention = (
            SelfAttention(width, use_spectral_norm=use_spectral_norm) if attention_resolution is not None else None
        )
        self.bn = nn.BatchNorm2d(width)  # unconditional, as in the paper's conditional G too
        self.out = conv(width, channels, 3, 1.0, use_spectral_norm)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dense(z).view(len(z), -1, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, labels)
            if i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))  # [N, C, R, R]


@configurable
class SNGANDiscriminator(Discriminator):
    """ResNet discriminator: optimized block, blocks down to 8x8, two more, ReLU, sum pooling, dense.

    All blocks are ``base_channels`` wide. With ``num_classes > 0`` a projection term
    ``<embed(y), h>`` is added to the logit. ``use_spectral_norm`` wraps every layer,
    the class embedding included (as Miyato & Koyama do).
    """

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 32,
        base_channels: int = 128,
        num_classes: int = 0,
        use_spectral_norm: bool = True,
        attention_resolution: int | None = None,
    ) -> None:
        super().__init__()
        up_blocks(resolution)
        check_attention_resolution(resolution, attention_resolution)
        self.num_classes = num_classes
        sizes = _discriminator_sizes(resolution)
        width = base_channels
        blocks = []
        for i, size in enumerate(sizes):
            downsample = i == 0 or size < sizes[i - 1]
            blocks.append(DiscriminatorBlock(channels if i == 0 else width, width, downsample, i == 0, use_spectral_norm))
        self.blocks = nn.ModuleList(blocks)
        self.attention_after = -1 if attention_resolution is None else sizes.index(attention_resolution)
        self.attention = (
            SelfAttention(width, use_spectral_norm=use_spectral_norm) if attention_resolution is not None else None
        )
        self.head = _dense(width, 1, use_spectral_norm)
        self.projection = LabelProjection(num_classes, width) if num_classes else None
        if self.projection is not None:
            spectral_norm(self.projection.embed, use_spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_after:
                h = self.attention(h)
        h = F.relu(h).sum(dim=(2, 3))  # global sum pooling: [N, C]
        logits = self.head(h).squeeze(1)
        if self.projection is not None:
            logits = logits + self.projection(h, labels)
        return logits


def build_resnet_gan(
    family: str,
    data_shape: tuple[int, ...],
    num_classes: int,
    *,
    latent_dim: int,
    g_channels: int,
    d_channels: int,
    g_spectral_norm: bool,
    d_spectral_norm: bool,
    attention_resolution: int | None = None,
) -> tuple[SNGANGenerator, SNGANDiscriminator]:
    """The ``(generator, discriminator)`` of the ResNet families for square images ``(C, R, R)``."""
    channels, resolution = square_image_shape(family, data_shape)
    for name, value in (("latent_dim", latent_dim), ("g_channels", g_channels), ("d_channels", d_channels)):
        if value < 1:
            raise ConfigError(f"model.{name} must be >= 1, got {value}")
    generator = SNGANGenerator(
        channels, resolution, latent_dim, g_channels, num_classes, g_spectral_norm, attention_resolution
    )
    discriminator = SNGANDiscriminator(
        channels, resolution, d_channels, num_classes, d_spectral_norm, attention_resolution
    )
    return generator, discriminator


@MODELS.register("sngan", help="SNGAN: ResNet generator, spectrally normalized ResNet discriminator")
@image_resolutions(up_blocks)
@smallest_config(
    ((1, 8, 8), {"g_channels": 4, "d_channels": 4, "latent_dim": 8}),
    ((3, 16, 16), {"g_channels": 4, "d_channels": 4, "latent_dim": 8, "g_spectral_norm": True}),
)
def build_sngan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 128,
    g_channels: int = 256,
    d_channels: int = 128,
    g_spectral_norm: bool = False,
    d_spectral_norm: bool = True,
) -> tuple[SNGANGenerator, SNGANDiscriminator]:
    """SNGAN ResNets; ``*_channels`` is the width of every block of that network."""
    return build_resnet_gan(
        "sngan", data_shape, num_classes, latent_dim=latent_dim, g_channels=g_channels, d_channels=d_channels,
        g_spectral_norm=g_spectral_norm, d_spectral_norm=d_spectral_norm,
    )
