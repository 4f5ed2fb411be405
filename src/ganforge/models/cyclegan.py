"""CycleGAN (Zhu et al., 2017): ResNet generators and unconditional PatchGAN discriminators.

The generator is Johnson et al.'s image-transformation network, as in the CycleGAN code's
``resnet_9blocks`` / ``resnet_6blocks``: with ``k = base_channels``,

    c7s1-k, d2k, d4k, R4k x n_blocks, u2k, uk, c7s1-C_out + tanh

where ``c7s1-k`` is a reflection-padded 7x7 convolution (stride 1) + norm + ReLU, ``dk``
a 3x3 convolution of stride 2 + norm + ReLU, ``Rk`` a residual block of two reflection-padded
3x3 convolutions (``x + norm(conv(relu(norm(conv(x)))))``) and ``uk`` a 3x3 transposed
convolution of stride 2 + norm + ReLU. It halves the size twice: image sides must be
multiples of 4. The paper uses 9 blocks at 256x256 and 6 at 128x128 (11.4 M and 7.8 M
parameters with ``k = 64``).

The discriminator is the 70x70 :class:`~ganforge.layers.patchgan.PatchDiscriminator`
judging single images (unconditional): ``D_B`` tells real B images from ``G_AB(a)``. The
factory builds one direction, ``(G_AB, D_B)``; the ``cyclegan`` recipe calls it twice.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..layers.normalization import IMAGE_NORMS, image_norm
from ..layers.patchgan import PatchDiscriminator
from . import MODELS, smallest_config, translator_family
from .base import Translator, configurable, init_weights

#: Stride-2 convolutions of the ResNet generator (each halves the image side).
DOWNSAMPLINGS = 2


class ReflectionResidualBlock(nn.Module):
    """``x + norm(conv3(pad(relu(norm(conv3(pad(x)))))))`` with reflection padding (no size change).

    Reflection padding instead of zeros avoids the border artefacts of style-transfer nets;
    ``dropout > 0`` adds dropout between the two convolutions (the reference's ``--no_dropout``
    off), which the CycleGAN paper does not use.
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        bias = norm != "batch"  # a norm with its own shift makes a conv bias redundant
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), image_norm(norm, channels), nn.ReLU(True)
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), image_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@configurable
class ResnetGenerator(Translator):
    """ResNet translator ``[N, in_channels, H, W] -> [N, out_channels, H, W]`` (see the module docstring)."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"model.n_blocks must be >= 0, got {n_blocks}")
        if base_channels < 1:
            raise ConfigError(f"model.base_channels must be >= 1, got {base_channels}")
        if norm not in IMAGE_NORMS:
            raise ConfigError(f"model.norm must be one of {', '.join(IMAGE_NORMS)}, got '{norm}'")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.size_multiple = 2**DOWNSAMPLINGS
        bias = norm != "batch"
        k = base_channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, k, 7, bias=bias), image_norm(norm, k), nn.ReLU(True)
        ]
        for i in range(DOWNSAMPLINGS):  # d2k, d4k
            cin, cout = k * 2**i, k * 2 ** (i + 1)
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=bias), image_norm(norm, cout), nn.ReLU(True)]
        width = k * 2**DOWNSAMPLINGS
        layers += [ReflectionResidualBlock(width, norm, dropout) for _ in range(n_blocks)]
        for i in range(DOWNSAMPLINGS, 0, -1):  # u2k, uk
            cin, cout = k * 2**i, k * 2 ** (i - 1)
            upsample = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=bias)  # exactly doubles H, W
            layers += [upsample, image_norm(norm, cout), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(k, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # [N, out_channels, H, W]


@MODELS.register(
    "cyclegan", help="CycleGAN: ResNet generator (reflection-padded residual blocks), unconditional 70x70 PatchGAN"
)
@translator_family
@smallest_config(
    ((3, 16, 16), {"base_channels": 4, "n_blocks": 1, "d_base_channels": 4, "d_layers": 2}),
    ((1, 16, 16), {"base_channels": 4, "n_blocks": 2, "norm": "batch", "dropout": 0.5, "d_base_channels": 4,
                   "d_layers": 1, "d_norm": "batch"}),
)
def build_cyclegan(
    in_channels: int,
    out_channels: int,
    *,
    base_channels: int = 64,
    n_blocks: int = 9,
    norm: str = "instance",
    dropout: float = 0.0,
    d_base_channels: int = 64,
    d_layers: int = 3,
    d_norm: str = "instance",
) -> tuple[ResnetGenerator, PatchDiscriminator]:
    """One direction of CycleGAN: ``G: in_channels -> out_channels`` and ``D`` on its outputs.

    ``n_blocks``: residual blocks (9 at 256x256, 6 at 128x128 in the paper); ``norm``/``d_norm``:
    instance | batch | none; ``d_layers``: stride-2 layers of the PatchGAN (3 = 70x70 patches).
    """
    if d_norm not in IMAGE_NORMS:
        raise ConfigError(f"model.d_norm must be one of {', '.join(IMAGE_NORMS)}, got '{d_norm}'")
    if d_layers < 1:
        raise ConfigError(f"model.d_layers must be >= 1, got {d_layers}")
    generator = ResnetGenerator(in_channels, out_channels, base_channels, n_blocks, norm, dropout)
    discriminator = PatchDiscriminator(out_channels, d_base_channels, d_layers, d_norm)
    discriminator.apply(init_weights())
    return generator, discriminator
