"""SAGAN (Zhang et al., 2019): the SNGAN ResNets with self-attention, spectral norm in both nets.

A :class:`~ganforge.layers.attention.SelfAttention` block at feature-map side
``attention_resolution`` lets each position draw on every other one, so distant parts
of an image can be made consistent (a convolution only sees its neighbourhood). As in
the paper, spectral normalization conditions the generator too, and training is meant
for the hinge loss with the two-timescale update rule (``d_lr = 4 * g_lr``, one D step
per G step). The networks are :mod:`~ganforge.models.sngan`'s, built with attention.
"""

from __future__ import annotations

from . import MODELS, image_resolutions, smallest_config
from .sngan import SNGANDiscriminator, SNGANGenerator, build_resnet_gan, up_blocks


@MODELS.register("sagan", help="SAGAN: SNGAN ResNets with self-attention, spectral norm in G and D")
@image_resolutions(up_blocks)
@smallest_config(
    ((1, 16, 16), {"g_channels": 8, "d_channels": 8, "latent_dim": 8, "attention_resolution": 8}),
    ((3, 32, 32), {"g_channels": 8, "d_channels": 8, "latent_dim": 8}),
)
def build_sagan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 128,
    g_channels: int = 256,
    d_channels: int = 128,
    attention_resolution: int | None = None,
    g_spectral_norm: bool = True,
    d_spectral_norm: bool = True,
) -> tuple[SNGANGenerator, SNGANDiscriminator]:
    """SNGAN ResNets with self-attention at side ``attention_resolution`` (None: half the image side)."""
    side = data_shape[-1] if len(data_shape) == 3 else 0
    return build_resnet_gan(
        "sagan", data_shape, num_classes, latent_dim=latent_dim, g_channels=g_channels, d_channels=d_channels,
        g_spectral_norm=g_spectral_norm, d_spectral_norm=d_spectral_norm,
        attention_resolution=attention_resolution if attention_resolution is not None else side // 2,
    )
