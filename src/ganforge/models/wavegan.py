"""WaveGAN (Donahue, McAuley & Puckette, 2019): DCGAN flattened to one dimension, straight to the waveform.

The generator maps latents to a ``[16 d, L / 4^5]`` feature sequence and upsamples it 4x five
times with length-25 transposed convolutions (ReLU between, tanh at the end): ``L = 16,384``
in the paper, any ``L`` divisible by 1,024 here. The discriminator mirrors it with stride-4
length-25 convolutions and LeakyReLU(0.2), and shifts the phase of every layer's output by a
random ``-n..n`` samples (*phase shuffle*): transposed convolutions leave periodic artefacts
at fixed phases that a discriminator could otherwise tell fakes by.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..layers import LabelConcat, LabelProjection
from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable, init_weights
from .specgan import audio_length

STAGES = 5
STRIDE = 4


def _start_length(length: int) -> int:
    unit = STRIDE**STAGES
    if length % unit or length < unit:
        raise ConfigError(f"wavegan needs a clip length (data.length) that is a multiple of {unit}, got {length}")
    return length // unit


def phase_shuffle(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Shift each sequence of ``x [N, C, L]`` by its own random ``-radius..radius`` samples, reflecting at the ends.

    ``y[n, :, t] = x[n, :, t - s_n]`` with the out-of-range samples mirrored, as in the paper.
    """
    if radius == 0:
        return x
    shifts = torch.randint(-radius, radius + 1, (x.shape[0], 1, 1), device=x.device)
    padded = F.pad(x, (radius, radius), mode="reflect")
    index = torch.arange(x.shape[-1], device=x.device).view(1, 1, -1) + radius - shifts
    return padded.gather(2, index.expand(-1, x.shape[1], -1))


class PhaseShuffle(nn.Module):
    """:func:`phase_shuffle` while training; the identity in eval mode."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return phase_shuffle(x, self.radius) if self.training else x


@configurable
class WaveGANGenerator(Generator):
    """Latents (and labels) -> clips ``[N, 1, L]`` in [-1, 1]."""

    modality = "audio"

    def __init__(self, length: int = 16384, latent_dim: int = 100, base_channels: int = 64, num_classes: int = 0,
                 label_dim: int = 0, kernel: int = 25) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (1, length)
        self.label = LabelConcat(num_classes, label_dim)
        width = base_channels * 2 ** (STAGES - 1)
        self.start = (width, _start_length(length))
        self.fc = nn.Linear(latent_dim + self.label.out_extra, width * self.start[1])
        # (L - 1) * 4 - 2 pad + kernel + output_padding = 4 L: kernel 25, padding 11, output padding 1.
        pad = (kernel - STRIDE + 1) // 2
        layers: list[nn.Module] = [nn.ReLU(True)]
        for stage in range(STAGES):
            out = 1 if stage == STAGES - 1 else width // 2
            layers.append(nn.ConvTranspose1d(width, out, kernel, STRIDE, pad, output_padding=STRIDE + 2 * pad - kernel))
            layers.append(nn.Tanh() if stage == STAGES - 1 else nn.ReLU(True))
            width = out
        self.net = nn.Sequential(*layers)
        self.apply(init_weights())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.fc(self.label(z, labels)).view(len(z), *self.start))


@configurable
class WaveGANDiscriminator(Discriminator):
    """Clips ``[N, 1, L]`` -> logits ``[N]``: five stride-4 convs, phase shuffle between them."""

    def __init__(self, length: int = 16384, base_channels: int = 64, num_classes: int = 0, kernel: int = 25,
                 shuffle: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        start = _start_length(length)
        pad = (kernel - STRIDE + 1) // 2
        layers: list[nn.Module] = []
        c_in, width = 1, base_channels
        for stage in range(STAGES):
            layers += [nn.Conv1d(c_in, width, kernel, STRIDE, pad), nn.LeakyReLU(0.2, True)]
            if stage < STAGES - 1:
                layers.append(PhaseShuffle(shuffle))
            c_in, width = width, width * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * start, 1)
        self.projection = LabelProjection(num_classes, c_in) if num_classes else None
        self.apply(init_weights())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logits = self.head(h.flatten(1)).flatten()
        if self.projection is not None:
            logits = logits + self.projection(h.sum(dim=2), labels)
        return logits


@MODELS.register("wavegan", help="WaveGAN: 1-D transposed convs straight to the waveform, phase shuffle in D")
@smallest_config(((1, 1024), {"base_channels": 2, "latent_dim": 8}))
def build_wavegan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 100,
    base_channels: int = 64,
    d_base_channels: int | None = None,
    label_dim: int = 0,
    kernel: int = 25,
    phase_shuffle: int = 2,
) -> tuple[WaveGANGenerator, WaveGANDiscriminator]:
    """WaveGAN for mono clips ``(1, L)``, ``L`` a multiple of 1,024 (16,384 in the paper).

    ``base_channels`` is the paper's ``d`` (64); ``phase_shuffle`` its ``n`` (2; 0 turns it off).
    """
    length = audio_length("wavegan", data_shape)
    generator = WaveGANGenerator(length, latent_dim, base_channels, num_classes, label_dim, kernel)
    discriminator = WaveGANDiscriminator(length, d_base_channels or base_channels, num_classes, kernel, phase_shuffle)
    return generator, discriminator
