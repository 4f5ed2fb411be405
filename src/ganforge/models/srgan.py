"""Super-resolution networks: SRResNet / SRGAN (Ledig et al., 2017) and RRDB / ESRGAN (Wang et al., 2018).

Both generators are :class:`~ganforge.models.Translator` s with ``scale`` 2 or 4: a low-resolution
image ``x [N, C, H, W]`` in [-1, 1] becomes ``[N, C, sH, sW]``. Every layer is a local
convolution, so they take any image size (``size_multiple = 1``) and can be tiled
(:func:`ganforge.tiling.apply_tiled`).

* :class:`SRResNet`: ``conv9 -> B residual blocks (conv3 [BN] PReLU conv3 [BN] + skip) ->
  conv3 [BN] + long skip -> log2(s) x (conv3 to 4c, pixel shuffle x2, PReLU) -> conv9``.
  ``norm: batch`` is the paper's; ``norm: none`` is EDSR's choice (Lim et al., 2017),
  better for PSNR and equal in training and evaluation.
* :class:`RRDBNet`: ``conv3 -> B residual-in-residual dense blocks -> conv3 + long skip ->
  log2(s) x (nearest x2, conv3, LeakyReLU) -> conv3, LeakyReLU, conv3``; no BN. A dense block
  has five convolutions, conv ``k`` seeing the input and all ``k - 1`` earlier outputs
  (``growth`` channels each); blocks and RRDBs add their residual scaled by 0.2.

``bicubic_skip: true`` makes either network predict the *residual* over bicubic upsampling,
``G(x) = bicubic_s(x) + f(x)`` (VDSR's global residual): the untrained network already
equals bicubic, which a small CPU budget then improves on.

The discriminator (:class:`SRDiscriminator`) is SRGAN's VGG-style one: pairs of
``conv3 (stride 1) + conv3 (stride 2)`` with LeakyReLU(0.2) (BN after all but the first),
doubling the channels, then global average pooling (so any crop size works), a hidden
dense layer and one logit per image ``[N]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers.normalization import IMAGE_NORMS, image_norm
from . import MODELS, smallest_config, translator_family
from .base import Discriminator, Translator, configurable

SCALES = (2, 4)


def _check(scale: int, norm: str | None = None) -> None:
    if scale not in SCALES:
        raise ConfigError(f"model.scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if norm is not None and norm not in ("batch", "none"):
        raise ConfigError(f"model.norm must be batch or none for super-resolution, got '{norm}'")


def scaled_kaiming_(module: nn.Module, factor: float = 0.1) -> None:
    """Kaiming-normal conv weights scaled by ``factor`` (BasicSR's init: deep residual nets start near identity)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(factor)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SRTranslator(Translator):
    """A super-resolution translator: ``G(x) = clamp(body(x) [+ bicubic_s(x)], -1, 1)``.

    The clamp keeps outputs in the model range but passes gradients straight through
    (``y + (clamp(y) - y).detach()``), so pixels past the range are still pulled back.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, bicubic_skip: bool, norm: str | None = None) -> None:
        super().__init__()
        _check(scale, norm)
        if bicubic_skip and in_channels not in (1, out_channels):
            raise ConfigError(
                f"model.bicubic_skip needs as many input as output channels (or grey input), got {in_channels} -> {out_channels}"
            )
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.bicubic_skip = bicubic_skip

    def body(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)  # [N, C', sH, sW]
        if self.bicubic_skip:  # a grey input broadcasts over the output channels
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out + (out.clamp(-1.0, 1.0) - out).detach()


class ResidualBlock(nn.Module):
    """``x + res_scale * (conv3 [BN] act conv3 [BN])(x)`` (SRGAN with BN + PReLU, EDSR without BN + ReLU)."""

    def __init__(self, channels: int, norm: str, res_scale: float = 1.0) -> None:
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), image_norm(norm, channels),
            nn.PReLU(channels) if norm == "batch" else nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), image_norm(norm, channels),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


@configurable
class SRResNet(SRTranslator):
    """SRResNet (the SRGAN generator): ``blocks`` residual blocks of ``channels`` features at LR resolution."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        channels: int = 64,
        blocks: int = 16,
        norm: str = "batch",
        res_scale: float = 1.0,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, scale, bicubic_skip, norm)
        if channels < 1 or blocks < 0:
            raise ConfigError(f"model.channels must be >= 1 and model.blocks >= 0, got {channels}, {blocks}")
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, 1, 4), nn.PReLU(channels))
        self.blocks = nn.Sequential(*[ResidualBlock(channels, norm, res_scale) for _ in range(blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=norm != "batch"), image_norm(norm, channels))
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):  # sub-pixel convolution: c -> 4c features, then 2x2 pixels of c
            up += [nn.Conv2d(channels, 4 * channels, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(channels)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(channels, out_channels, 9, 1, 4)
        scaled_kaiming_(self)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)  # [N, c, H, W]
        h = h + self.fuse(self.blocks(h))  # long skip over the residual blocks
        return self.tail(self.upsample(h))  # [N, C', sH, sW]


class DenseBlock(nn.Module):
    """Five 3x3 convs, each on the concatenation of the input and all earlier outputs; ``x + 0.2 * out``."""

    def __init__(self, channels: int, growth: int, res_scale: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth if i < 4 else channels, 3, 1, 1) for i in range(5)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, 1))
            if i < 4:
                features.append(F.leaky_relu(out, 0.2))
        return x + self.res_scale * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, ``x + 0.2 * DB3(DB2(DB1(x)))``."""

    def __init__(self, channels: int, growth: int, res_scale: float) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[DenseBlock(channels, growth, res_scale) for _ in range(3)])
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.blocks(x)


@configurable
class RRDBNet(SRTranslator):
    """The ESRGAN generator: ``blocks`` RRDBs (23 in the paper, 64 channels, growth 32), no BN."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        channels: int = 64,
        blocks: int = 23,
        growth: int = 32,
        res_scale: float = 0.2,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, scale, bicubic_skip)
        if channels < 1 or blocks < 0 or growth < 1:
            raise ConfigError(f"model.channels, model.growth must be >= 1 and model.blocks >= 0, got {channels}, {growth}, {blocks}")
        self.head = nn.Conv2d(in_channels, channels, 3, 1, 1)
        self.blocks = nn.Sequential(*[RRDB(channels, growth, res_scale) for _ in range(blocks)])
        self.fuse = nn.Conv2d(channels, channels, 3, 1, 1)
        self.up = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, 1) for _ in range(int(math.log2(scale))))
        self.hr = nn.Conv2d(channels, channels, 3, 1, 1)
        self.tail = nn.Conv2d(channels, out_channels, 3, 1, 1)
        scaled_kaiming_(self)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.fuse(self.blocks(h))
        for conv in self.up:  # ESRGAN upsamples by nearest neighbour + conv (no checkerboard artefacts)
            h = F.leaky_relu(conv(F.interpolate(h, scale_factor=2, mode="nearest")), 0.2)
        return self.tail(F.leaky_relu(self.hr(h), 0.2))


@configurable
class SRDiscriminator(Discriminator):
    """SRGAN's VGG-style discriminator with global average pooling; logits ``[N]`` for any size >= 2^stages.

    Stage ``i`` (``i = 0 .. stages-1``): ``conv3 s1 -> [BN] -> LReLU -> conv3 s2 -> [BN] -> LReLU``
    with ``min(base * 2^i, 512)`` channels (no BN on the very first conv); then
    ``mean over H, W -> dense(hidden) -> LReLU -> dense(1)``.
    """

    def __init__(self, channels: int = 3, base_channels: int = 64, stages: int = 4, norm: str = "batch",
                 hidden: int = 1024) -> None:
        super().__init__()
        if norm not in IMAGE_NORMS or stages < 1:
            raise ConfigError(f"model.d_norm must be one of {', '.join(IMAGE_NORMS)} and d_stages >= 1, got '{norm}', {stages}")
        self.num_classes = 0
        layers: list[nn.Module] = []
        width_in = channels
        for i in range(stages):
            width = min(base_channels * 2**i, 512)
            for stride in (1, 2):
                first = i == 0 and stride == 1
                layers += [nn.Conv2d(width_in, width, 3, stride, 1, bias=first or norm != "batch")]
                layers += [] if first else [image_norm(norm, width)]
                layers += [nn.LeakyReLU(0.2, inplace=True)]
                width_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(width_in, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))  # [N, c]: global average pooling
        return self.head(h).squeeze(1)  # [N] logits


def _discriminator(out_channels: int, d_base_channels: int, d_stages: int, d_norm: str, d_hidden: int) -> SRDiscriminator:
    return SRDiscriminator(out_channels, d_base_channels, d_stages, d_norm, d_hidden)


@MODELS.register("srresnet", help="SRResNet / SRGAN: residual blocks + pixel shuffle (x2, x4), VGG-style discriminator")
@translator_family
@smallest_config(
    ((3, 8, 8), {"channels": 4, "blocks": 1, "scale": 2, "d_base_channels": 4, "d_stages": 2, "d_hidden": 8}),
    ((1, 8, 8), {"channels": 4, "blocks": 2, "norm": "none", "bicubic_skip": True, "d_base_channels": 4,
                 "d_stages": 2, "d_norm": "none", "d_hidden": 8}),
)
def build_srresnet(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 4,
    channels: int = 64,
    blocks: int = 16,
    norm: str = "batch",
    res_scale: float = 1.0,
    bicubic_skip: bool = False,
    d_base_channels: int = 64,
    d_stages: int = 4,
    d_norm: str = "batch",
    d_hidden: int = 1024,
) -> tuple[SRResNet, SRDiscriminator]:
    """SRResNet ``x scale`` (2 or 4) and SRGAN's discriminator.

    ``norm``: batch (SRGAN) | none (EDSR); ``res_scale``: residual scaling of the blocks;
    ``bicubic_skip``: predict the residual over bicubic upsampling; ``d_stages``: stride-2
    stages of the discriminator (4 in SRGAN), ``d_norm``: batch | instance | none.
    """
    generator = SRResNet(in_channels, out_channels, scale, channels, blocks, norm, res_scale, bicubic_skip)
    return generator, _discriminator(out_channels, d_base_channels, d_stages, d_norm, d_hidden)


@MODELS.register("rrdb", help="ESRGAN's RRDB generator (residual-in-residual dense blocks, x2, x4), VGG-style discriminator")
@translator_family
@smallest_config(
    ((3, 8, 8), {"channels": 4, "blocks": 1, "growth": 4, "scale": 4, "d_base_channels": 4, "d_stages": 2, "d_hidden": 8}),
)
def build_rrdb(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 4,
    channels: int = 64,
    blocks: int = 23,
    growth: int = 32,
    res_scale: float = 0.2,
    bicubic_skip: bool = False,
    d_base_channels: int = 64,
    d_stages: int = 4,
    d_norm: str = "batch",
    d_hidden: int = 1024,
) -> tuple[RRDBNet, SRDiscriminator]:
    """ESRGAN's RRDBNet ``x scale`` and the VGG-style discriminator (options as for ``srresnet``)."""
    generator = RRDBNet(in_channels, out_channels, scale, channels, blocks, growth, res_scale, bicubic_skip)
    return generator, _discriminator(out_channels, d_base_channels, d_stages, d_norm, d_hidden)
