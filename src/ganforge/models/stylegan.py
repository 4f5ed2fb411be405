"""StyleGAN2-style networks (Karras et al., 2019; 2020) for small images (8..256 px).

Generator: a mapping network ``z -> w`` (pixel norm, equalized dense layers at a 100x
lower learning rate) and a synthesis network that starts from a learned 4x4 constant. Per
resolution it has two 3x3 modulated convolutions with weight demodulation (the first
one upsamples), each followed by noise injection, a bias and LeakyReLU(0.2) scaled by
``sqrt(2)``, and a toRGB layer (a modulated 1x1 conv without demodulation); the toRGB
outputs are summed across resolutions through upsampling (StyleGAN2's *skip* generator),
and ``tanh`` bounds the image. Every layer takes its own ``w``, so the recipe can mix
styles of two latents (style mixing regularization), and sampling supports the
truncation trick ``w' = w_avg + psi (w - w_avg)`` around the running mean ``w_avg``.

Discriminator: StyleGAN2's residual network: fromRGB, then per resolution two 3x3
convs and 2x average pooling with a pooled 1x1 skip path (the sum divided by ``sqrt(2)``),
then at 4x4 a minibatch standard deviation feature, a 3x3 conv and two dense layers.
Everything uses equalized learning rate.

Conditional variants concatenate a class embedding to ``z`` in the mapping network and
add a projection term on the discriminator's last features.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, UserError
from ..layers.conditioning import LabelProjection
from ..layers.equalized import EqualizedConv2d, EqualizedLinear
from ..layers.minibatch import MinibatchStdDev
from ..layers.style import ConstantInput, MappingNetwork, ModulatedConv2d, NoiseInjection
from . import MODELS, image_resolutions, smallest_config
from .base import Discriminator, Generator, configurable, square_image_shape
from .progan import growth_levels, level_channels


def _scaled_lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) times ``sqrt(2)``: keeps unit-variance activations at unit second moment."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


class StyledConv(nn.Module):
    """Modulated 3x3 conv (demodulated), noise, bias, scaled LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 fused: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up, fused=fused)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _scaled_lrelu(self.noise(self.conv(x, w)) + self.bias.to(x.dtype))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels (no demodulation) plus a bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, fused: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)


@configurable
class StyleGANGenerator(Generator):
    """Mapping network + skip synthesis network; ``num_ws = 2 * log2(resolution) - 2`` styles.

    ``forward(z, labels, truncation)`` renders one ``w`` per sample (``truncation`` is psi;
    default :attr:`truncation_psi`, 1 = none). ``sample(..., truncation=psi)`` applies the
    truncation trick (in ``w`` space, not by clipping ``z`` as other families do). The
    ``mix_latents`` / ``mix_cutoff`` arguments implement style mixing: layers from index
    ``mix_cutoff[n]`` on take their ``w`` from the second latent.
    """

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 32,
        latent_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        base_channels: int = 64,
        max_channels: int = 512,
        num_classes: int = 0,
        mapping_lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
        fused: bool = True,
    ) -> None:
        super().__init__()
        levels = growth_levels(resolution, "stylegan")
        self.latent_dim, self.num_classes, self.w_dim = latent_dim, num_classes, w_dim
        self.output_shape = (channels, resolution, resolution)
        self.num_ws = 2 * levels + 2
        #: psi used by ``forward`` when no truncation is given (``sample`` sets it temporarily).
        self.truncation_psi = 1.0
        width = level_channels(base_channels, max_channels, levels)
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_layers, num_classes, mapping_lr_mul, w_avg_beta)
        self.const = ConstantInput(width[0])
        self.conv4 = StyledConv(width[0], width[0], w_dim, 4, fused=fused)
        self.rgb4 = ToRGB(width[0], channels, w_dim, fused)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "conv0": StyledConv(width[k - 1], width[k], w_dim, 4 * 2**k, up=True, fused=fused),
                "conv1": StyledConv(width[k], width[k], w_dim, 4 * 2**k, fused=fused),
                "rgb": ToRGB(width[k], channels, w_dim, fused),
            })
            for k in range(1, levels + 1)
        )

    def styles(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None,
               mix_latents: torch.Tensor | None = None, mix_cutoff: torch.Tensor | None = None) -> torch.Tensor:
        """Per-layer latents ``ws [N, num_ws, w_dim]`` (truncated, and mixed if asked)."""
        psi = self.truncation_psi if truncation is None else truncation
        w = self.mapping(z, labels, psi)
        ws = w[:, None].expand(-1, self.num_ws, -1)
        if mix_latents is not None:
            if mix_cutoff is None:
                raise ValueError("mix_latents needs mix_cutoff (first layer index taking the second latent)")
            w2 = self.mapping(mix_latents, labels, psi)
            layer = torch.arange(self.num_ws, device=w.device)
            second = (layer[None, :] >= mix_cutoff[:, None])[:, :, None]  # [N, num_ws, 1]
            ws = torch.where(second, w2[:, None], ws)
        return ws

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        """Images ``[N, C, R, R]`` from per-layer latents ``ws [N, num_ws, w_dim]``."""
        x = self.conv4(self.const(len(ws)), ws[:, 0])
        image = self.rgb4(x, ws[:, 1])
        for k, block in enumerate(self.blocks, start=1):
            x = block["conv0"](x, ws[:, 2 * k - 1])
            x = block["conv1"](x, ws[:, 2 * k])
            # Skip architecture: the image so far, upsampled, plus this resolution's contribution.
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
            image = image + block["rgb"](x, ws[:, 2 * k + 1])
        return torch.tanh(image)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None, *,
                mix_latents: torch.Tensor | None = None, mix_cutoff: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesize(self.styles(z, labels, truncation, mix_latents, mix_cutoff))

    def sample(
        self,
        n: int,
        seed: int = 0,
        labels: torch.Tensor | list[int] | int | None = None,
        truncation: float | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """As :meth:`Generator.sample`, but ``truncation`` is the truncation psi in ``w`` space.

        ``psi = 1`` (or None) is no truncation, ``psi = 0`` renders the average ``w`` for
        every seed; latents ``z`` are never clipped. Noise inputs are the fixed eval-mode maps.
        """
        if truncation is not None and truncation < 0:
            raise UserError(f"truncation psi must be >= 0 (1 = none), got {truncation}")
        previous = self.truncation_psi
        self.truncation_psi = 1.0 if truncation is None else float(truncation)
        try:
            return super().sample(n, seed, labels, None, batch_size)
        finally:
            self.truncation_psi = previous


class ResidualDown(nn.Module):
    """StyleGAN2's discriminator block: two 3x3 convs + pooling, plus a pooled 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            EqualizedConv2d(in_channels, in_channels, 3), nn.LeakyReLU(0.2),
            EqualizedConv2d(in_channels, out_channels, 3), nn.LeakyReLU(0.2),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dividing the sum by sqrt(2) keeps the variance of two roughly independent paths.
        return (self.main(x) + self.skip(x)) * (1.0 / math.sqrt(2.0))


@configurable
class StyleGANDiscriminator(Discriminator):
    """Residual discriminator with minibatch std; projection head for labels."""

    def __init__(
        self,
        channels: int = 3,
        resolution: int = 32,
        base_channels: int = 64,
        max_channels: int = 512,
        num_classes: int = 0,
        mbstd_group: int = 4,
    ) -> None:
        super().__init__()
        levels = growth_levels(resolution, "stylegan")
        self.num_classes = num_classes
        width = level_channels(base_channels, max_channels, levels)
        self.from_rgb = nn.Sequential(EqualizedConv2d(channels, width[levels], 1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*(ResidualDown(width[k], width[k - 1]) for k in range(levels, 0, -1)))
        self.final = nn.Sequential(
            MinibatchStdDev(mbstd_group),
            EqualizedConv2d(width[0] + 1, width[0], 3), nn.LeakyReLU(0.2),
            nn.Flatten(),
            EqualizedLinear(width[0] * 16, width[0]), nn.LeakyReLU(0.2),
        )
        self.head = EqualizedLinear(width[0], 1, gain=1.0)
        self.projection = LabelProjection(num_classes, width[0]) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.final(self.blocks(self.from_rgb(x)))  # [N, width[0]]
        logits = self.head(features).squeeze(1)
        if self.projection is not None:
            logits = logits + self.projection(features, labels)
        return logits


@MODELS.register("stylegan", help="StyleGAN2: mapping network, modulated convs, noise, residual D (use recipe stylegan)")
@image_resolutions(functools.partial(growth_levels, family="stylegan"))
@smallest_config(
    ((1, 8, 8), {"base_channels": 4, "max_channels": 8, "latent_dim": 8, "w_dim": 8, "mapping_layers": 1}),
    ((3, 16, 16), {"base_channels": 4, "max_channels": 4, "latent_dim": 8, "w_dim": 8, "mapping_layers": 2, "fused": False}),
)
def build_stylegan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 8,
    base_channels: int = 64,
    max_channels: int = 512,
    d_base_channels: int | None = None,
    d_max_channels: int | None = None,
    mapping_lr_mul: float = 0.01,
    w_avg_beta: float = 0.995,
    mbstd_group: int = 4,
    fused: bool = True,
) -> tuple[StyleGANGenerator, StyleGANDiscriminator]:
    """StyleGAN2 for square power-of-two images ``(C, R, R)``.

    ``base_channels``: channels at the full resolution, doubling per octave down to 4x4,
    capped at ``max_channels`` (``d_*`` size the discriminator separately).
    ``mapping_layers``/``mapping_lr_mul``: depth and learning-rate multiplier of the mapping
    network; ``w_avg_beta``: decay of the tracked mean ``w`` (truncation centre);
    ``fused``: grouped-convolution modulated convs (False: modulate activations instead).
    """
    channels, resolution = square_image_shape("stylegan", data_shape)
    if min(latent_dim, w_dim, mapping_layers, base_channels, max_channels, mbstd_group) < 1:
        raise ConfigError(
            "stylegan's latent_dim, w_dim, mapping_layers, base_channels, max_channels and mbstd_group must be >= 1"
        )
    if not 0.0 < mapping_lr_mul <= 1.0 or not 0.0 <= w_avg_beta < 1.0:
        raise ConfigError("stylegan needs 0 < mapping_lr_mul <= 1 and 0 <= w_avg_beta < 1")
    generator = StyleGANGenerator(channels, resolution, latent_dim, w_dim, mapping_layers, base_channels,
                                  max_channels, num_classes, mapping_lr_mul, w_avg_beta, fused)
    discriminator = StyleGANDiscriminator(channels, resolution, d_base_channels or base_channels,
                                          d_max_channels or max_channels, num_classes, mbstd_group)
    return generator, discriminator
