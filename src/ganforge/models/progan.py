"""Progressive growing of GANs (ProGAN; Karras et al., 2018).

Both networks grow from 4x4 to the data resolution: training starts at a low resolution
and new, higher-resolution blocks are faded in smoothly. ProGAN's other ingredients are
here too: equalized learning rate (every weight scaled at run time by He's constant),
pixelwise feature normalization in the generator and a minibatch standard-deviation
feature in the discriminator.

To fit a trainer that only knows full-resolution batches, the growth is internal:

* The generator always outputs the full data resolution. At stage ``s`` (resolution
  ``4 * 2^s``) it renders at the stage resolution and nearest-upsamples. During a fade-in
  (``alpha`` in [0, 1)) its image is ``lerp(up(toRGB_{s-1}(h_{s-1})), toRGB_s(h_s), alpha)``.
* The discriminator always takes full-resolution input and average-pools it to the stage
  resolution; during a fade-in its features are ``lerp(fromRGB_{s-1}(pool(x)), block_s(fromRGB_s(x)), alpha)``.

The stage and ``alpha`` live in buffers of both networks (``stage``, ``alpha``), so the
EMA copy, checkpoints and exported generators keep them: a generator exported mid-training
renders its current stage. Networks start at the final stage with ``alpha = 1`` (a plain,
non-growing GAN); the ``progan`` recipe (:mod:`ganforge.training.progressive`) moves them
through the schedule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers.conditioning import LabelProjection
from ..layers.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from ..layers.minibatch import MinibatchStdDev
from . import MODELS, image_resolutions, smallest_config
from .base import Discriminator, Generator, configurable, square_image_shape


def growth_levels(resolution: int, family: str = "progan") -> int:
    """Number of doublings from 4x4 to ``resolution`` (a power of two in 8..1024)."""
    levels = int(math.log2(resolution)) - 2 if resolution > 0 else -1
    if levels < 1 or 4 * 2**levels != resolution or resolution > 1024:
        raise ConfigError(f"{family} supports square power-of-two resolutions 8..1024, got {resolution}")
    return levels


def level_channels(base_channels: int, max_channels: int, levels: int) -> list[int]:
    """Feature channels at each level ``k = 0..levels`` (``4 * 2^k`` px).

    ``base_channels`` at the full resolution, doubling per octave down, at most ``max_channels``.
    """
    return [min(base_channels * 2 ** (levels - k), max_channels) for k in range(levels + 1)]


def fade_to_stage(x: torch.Tensor, stage: int, alpha: float, levels: int) -> torch.Tensor:
    """What a full-resolution batch looks like at ``(stage, alpha)``, still at full resolution.

    The images are average-pooled to the stage resolution; during a fade-in they are
    blended with the previous stage's version (pooled once more, nearest-upsampled) with
    weight ``alpha``; the result is nearest-upsampled back. This is the real-data
    counterpart of the generator's output at the same point of the schedule.
    """
    if stage == levels and alpha >= 1.0:
        return x
    factor = 2 ** (levels - stage)
    low = F.avg_pool2d(x, factor) if factor > 1 else x
    if alpha < 1.0:
        previous = F.interpolate(F.avg_pool2d(low, 2), scale_factor=2, mode="nearest")
        low = torch.lerp(previous, low, alpha)
    return F.interpolate(low, scale_factor=factor, mode="nearest") if factor > 1 else low


class Growing:
    """Mixin for a network that grows: ``stage`` and ``alpha`` buffers and their setter."""

    levels: int
    stage: torch.Tensor
    alpha: torch.Tensor

    def _init_growth(self, levels: int) -> None:
        self.levels = levels
        self.register_buffer("stage", torch.tensor(levels, dtype=torch.long))  # type: ignore[attr-defined]
        self.register_buffer("alpha", torch.tensor(1.0))  # type: ignore[attr-defined]

    def set_growth(self, stage: int, alpha: float) -> None:
        """Render/judge at level ``stage`` (``4 * 2^stage`` px), faded in by ``alpha``."""
        if not 0 <= stage <= self.levels:
            raise ValueError(f"stage must be in 0..{self.levels}, got {stage}")
        if not 0.0 <= alpha <= 1.0 or (stage == 0 and alpha < 1.0):
            raise ValueError(f"alpha must be in [0, 1] (1 at stage 0), got {alpha} at stage {stage}")
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    @property
    def growth(self) -> tuple[int, float]:
        """The current ``(stage, alpha)``."""
        return int(self.stage), float(self.alpha)

    @property
    def stage_resolution(self) -> int:
        """The resolution the network currently works at."""
        return 4 * 2 ** int(self.stage)


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


@configurable
class ProGANGenerator(Growing, Generator):
    """ProGAN generator: dense 4x4 head, then per level an upsample and two 3x3 convs.

    Every conv is equalized and followed by LeakyReLU(0.2) and pixel norm; each level has
    its own 1x1 toRGB. The output ends in ``tanh``.
    """

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 64,
        latent_dim: int = 256,
        base_channels: int = 64,
        max_channels: int = 256,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        levels = growth_levels(resolution)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (channels, resolution, resolution)
        width = level_channels(base_channels, max_channels, levels)
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        in_dim = latent_dim * (2 if num_classes else 1)
        self.norm = PixelNorm()
        # The 4x4 head is a dense layer (a 4x4 transposed conv of a 1x1 input); ProGAN's gain sqrt(2)/4.
        self.dense = EqualizedLinear(in_dim, width[0] * 16, gain=math.sqrt(2) / 4)
        self.head = nn.Sequential(_lrelu(), PixelNorm(), EqualizedConv2d(width[0], width[0], 3), _lrelu(), PixelNorm())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                EqualizedConv2d(width[k - 1], width[k], 3), _lrelu(), PixelNorm(),
                EqualizedConv2d(width[k], width[k], 3), _lrelu(), PixelNorm(),
            )
            for k in range(1, levels + 1)
        )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(width[k], channels, 1, gain=1.0) for k in range(levels + 1))
        self._init_growth(levels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        h = self.dense(self.norm(z)).view(len(z), -1, 4, 4)
        h = self.head(h)
        stage = int(self.stage)
        previous = h
        for block in self.blocks[:stage]:
            previous, h = h, block(h)
        image = self.to_rgb[stage](h)
        if stage > 0:
            # Fade-in: the previous level's image, upsampled, blended into the new one.
            # (lerp is exact at both ends: alpha = 1 gives the new level's image.)
            low = F.interpolate(self.to_rgb[stage - 1](previous), scale_factor=2, mode="nearest")
            image = torch.lerp(low, image, self.alpha.to(image.dtype))
        image = torch.tanh(image)
        factor = 2 ** (self.levels - stage)
        return F.interpolate(image, scale_factor=factor, mode="nearest") if factor > 1 else image


@configurable
class ProGANDiscriminator(Growing, Discriminator):
    """ProGAN discriminator: per level a 1x1 fromRGB, two 3x3 convs and 2x average pooling.

    At 4x4: minibatch standard deviation, a 3x3 conv, a 4x4 conv to a vector, one dense
    logit; conditional variants add a projection term on that vector.
    """

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 64,
        base_channels: int = 64,
        max_channels: int = 256,
        num_classes: int = 0,
        mbstd_group: int = 4,
    ) -> None:
        super().__init__()
        levels = growth_levels(resolution)
        self.num_classes = num_classes
        width = level_channels(base_channels, max_channels, levels)
        self.from_rgb = nn.ModuleList(nn.Sequential(EqualizedConv2d(channels, width[k], 1), _lrelu())
                                      for k in range(levels + 1))
        # blocks[k - 1] takes level k (4 * 2^k px) down to level k - 1.
        self.blocks = nn.ModuleList(
            nn.Sequential(
                EqualizedConv2d(width[k], width[k], 3), _lrelu(),
                EqualizedConv2d(width[k], width[k - 1], 3), _lrelu(),
                nn.AvgPool2d(2),
            )
            for k in range(1, levels + 1)
        )
        self.final = nn.Sequential(
            MinibatchStdDev(mbstd_group),
            EqualizedConv2d(width[0] + 1, width[0], 3), _lrelu(),
            EqualizedConv2d(width[0], width[0], 4, padding=0), _lrelu(),
            nn.Flatten(),
        )
        self.head = EqualizedLinear(width[0], 1, gain=1.0)
        self.projection = LabelProjection(num_classes, width[0]) if num_classes else None
        self._init_growth(levels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        stage = int(self.stage)
        factor = 2 ** (self.levels - stage)
        x = F.avg_pool2d(x, factor) if factor > 1 else x
        h = self.from_rgb[stage](x)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            # Fade-in: the previous level's fromRGB on the pooled image, blended with the new block.
            low = self.from_rgb[stage - 1](F.avg_pool2d(x, 2))
            h = torch.lerp(low, h, self.alpha.to(h.dtype))
            for k in range(stage - 1, 0, -1):
                h = self.blocks[k - 1](h)
        features = self.final(h)  # [N, width[0]]
        logits = self.head(features).squeeze(1)
        if self.projection is not None:
            logits = logits + self.projection(features, labels)
        return logits


@MODELS.register("progan", help="ProGAN: progressively grown networks, equalized lr, pixel norm, minibatch std")
@image_resolutions(growth_levels)
@smallest_config(((1, 8, 8), {"base_channels": 4, "max_channels": 8, "latent_dim": 8}),
                 ((3, 8, 8), {"base_channels": 4, "max_channels": 4, "latent_dim": 8, "d_base_channels": 8}))
def build_progan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 256,
    base_channels: int = 64,
    max_channels: int = 256,
    d_base_channels: int | None = None,
    d_max_channels: int | None = None,
    mbstd_group: int = 4,
) -> tuple[ProGANGenerator, ProGANDiscriminator]:
    """ProGAN for square power-of-two images ``(C, R, R)``, R in 8..1024.

    ``base_channels`` are the channels at the full resolution, doubling per octave down to
    4x4 and capped at ``max_channels``; ``d_*`` size the discriminator separately.
    ``mbstd_group``: group size of the minibatch standard deviation.
    """
    channels, resolution = square_image_shape("progan", data_shape)
    if min(base_channels, max_channels, latent_dim, mbstd_group) < 1:
        raise ConfigError("progan's latent_dim, base_channels, max_channels and mbstd_group must be >= 1")
    generator = ProGANGenerator(channels, resolution, latent_dim, base_channels, max_channels, num_classes)
    discriminator = ProGANDiscriminator(
        channels, resolution, d_base_channels or base_channels, d_max_channels or max_channels, num_classes, mbstd_group
    )
    return generator, discriminator
