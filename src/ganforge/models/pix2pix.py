"""pix2pix (Isola et al., 2017): U-Net generator and conditional PatchGAN discriminator.

The generator is an encoder-decoder whose decoder level ``i`` also receives the encoder's
level-``i`` features (skip connections), so low-level structure (edges, layout) shared by
input and output flows straight across. With ``depth = d`` it halves the size ``d`` times
(4x4 convolutions of stride 2): image sides must be multiples of ``2^d``. The paper's
``unet_256`` is ``depth=8, base_channels=64, max_channels=512`` on 256x256 images.

Encoder level ``i``: ``LeakyReLU(0.2) -> conv(s2) -> norm`` (no activation before level 0,
no norm at level 0 nor at the innermost level). Decoder level ``i``: ``ReLU -> convT(s2) ->
norm`` (+ dropout 0.5 on the ``dropout_blocks`` levels just outside the innermost one, the
paper's noise source), the outermost ending in ``tanh``.

Normalisation: the paper trains with batch norm at batch size 1 and keeps it in training
mode at test time, i.e. each image is normalised by its own statistics: that is instance
norm, the default here (``norm: instance``), which behaves the same in training and
evaluation at any batch size. ``norm: batch`` uses ordinary eval-mode batch norm, whose
running statistics the trainer re-estimates for the exported generator. Dropout is off in
evaluation (outputs are deterministic).

The discriminator is the 70x70 :class:`~ganforge.layers.patchgan.PatchDiscriminator`,
conditioned on the input: it judges ``(input, output)`` pairs concatenated on channels.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers.normalization import IMAGE_NORMS, image_norm
from ..layers.patchgan import PatchDiscriminator
from . import MODELS, smallest_config, translator_family
from .base import Translator, configurable, init_weights


@configurable
class UNetGenerator(Translator):
    """U-Net translator; encoder channels ``min(base * 2^i, max_channels)`` at level ``i``."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        depth: int = 8,
        max_channels: int = 512,
        norm: str = "instance",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"model.depth must be >= 1, got {depth}")
        if norm not in IMAGE_NORMS:
            raise ConfigError(f"model.norm must be one of {', '.join(IMAGE_NORMS)}, got '{norm}'")
        if not 0.0 <= dropout < 1.0 or dropout_blocks < 0:
            raise ConfigError(f"model.dropout must be in [0, 1) and dropout_blocks >= 0, got {dropout}, {dropout_blocks}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.size_multiple = 2**depth
        bias = norm != "batch"  # a norm with its own shift makes a conv bias redundant
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth)]
        innermost = depth - 1

        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=bias))
            if 0 < i < innermost:
                layers.append(image_norm(norm, width))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i, width in enumerate(widths):
            inputs = width if i == innermost else 2 * width  # the skip doubles the input
            if i == 0:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(inputs, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(True), nn.ConvTranspose2d(inputs, widths[i - 1], 4, 2, 1, bias=bias),
                          image_norm(norm, widths[i - 1])]
                if dropout > 0 and innermost - dropout_blocks <= i < innermost:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.apply(init_weights())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.up[-1](skips[-1])
        for i in range(len(self.up) - 2, -1, -1):
            h = self.up[i](torch.cat([skips[i], h], dim=1))
        return h  # [N, out_channels, H, W]


@MODELS.register(
    "pix2pix", help="pix2pix: U-Net generator (skips, dropout), PatchGAN discriminator on (input, output) pairs"
)
@translator_family
@smallest_config(
    ((3, 16, 16), {"base_channels": 4, "depth": 4, "d_base_channels": 4, "d_layers": 2}),
    ((1, 32, 32), {"base_channels": 4, "depth": 5, "norm": "batch", "d_base_channels": 4, "d_layers": 3, "d_norm": "batch"}),
)
def build_pix2pix(
    in_channels: int,
    out_channels: int,
    *,
    base_channels: int = 64,
    depth: int = 8,
    max_channels: int = 512,
    norm: str = "instance",
    dropout: float = 0.5,
    dropout_blocks: int = 3,
    d_base_channels: int = 64,
    d_layers: int = 3,
    d_norm: str = "instance",
) -> tuple[UNetGenerator, PatchDiscriminator]:
    """pix2pix networks translating ``in_channels`` images to ``out_channels`` ones.

    ``depth``: U-Net levels (sides must be multiples of ``2^depth``); ``norm``/``d_norm``:
    instance | batch | none; ``dropout_blocks``: decoder levels with dropout; ``d_layers``:
    stride-2 layers of the PatchGAN (3 = 70x70 patches).
    """
    if d_norm not in IMAGE_NORMS:
        raise ConfigError(f"model.d_norm must be one of {', '.join(IMAGE_NORMS)}, got '{d_norm}'")
    if d_layers < 1:
        raise ConfigError(f"model.d_layers must be >= 1, got {d_layers}")
    generator = UNetGenerator(in_channels, out_channels, base_channels, depth, max_channels, norm, dropout, dropout_blocks)
    discriminator = PatchDiscriminator(out_channels, d_base_channels, d_layers, d_norm, condition_channels=in_channels)
    discriminator.apply(init_weights())
    return generator, discriminator
