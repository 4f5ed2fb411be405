"""SpecGAN (Donahue, McAuley & Puckette, 2019): a DCGAN of log-magnitude spectrograms, heard through Griffin-Lim.

The generator draws a spectrogram ``[1, F, T]`` (``F = n_fft / 2`` frequency bins, ``T`` hops)
in [-1, 1]; the discriminator reads real clips through the same STFT. Both work in the
*normalised* domain of the paper: each frequency bin of the log-magnitude spectrogram is
shifted and scaled by the mean and standard deviation of that bin over the training set,
clipped at 3 standard deviations and divided by 3, so every bin spans [-1, 1] and quiet high
frequencies weigh as much as loud low ones. The statistics are buffers set by
:meth:`fit_data` before training (saved with the weights).

:meth:`SpecGANGenerator.decode` undoes the normalisation and estimates phases with
Griffin-Lim, so sampling, evaluation and serving see waveforms like any audio generator.
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio.dsp import STFTConfig, griffin_lim, log_magnitude
from ..errors import ConfigError
from ..layers import ConditionalBatchNorm2d, LabelConcat, LabelProjection
from . import MODELS, smallest_config
from .base import Discriminator, Generator, configurable, init_weights
from .dcgan import D_NORMS

#: Normalised spectrograms are clipped at this many standard deviations (then scaled to [-1, 1]).
CLIP_STD = 3.0
#: The generator upsamples 2x this many times from its first feature map.
STAGES = 4


def audio_length(family: str, data_shape: tuple[int, ...]) -> int:
    """``L`` of mono audio data ``(1, L)``; a one-line error for any other shape."""
    if len(data_shape) != 2 or data_shape[0] != 1:
        raise ConfigError(f"{family} generates mono audio clips (1, L); got data of shape {tuple(data_shape)}")
    return int(data_shape[1])


def spectrogram_grid(length: int, n_fft: int, hop: int) -> tuple[STFTConfig, int, int]:
    """The STFT and its ``(bins, frames)``, checked to be multiples of ``2^STAGES``."""
    cfg = STFTConfig(n_fft, hop)
    try:
        cfg.check(length)
    except ValueError as err:
        raise ConfigError(f"specgan: {err}") from None
    bins, frames = cfg.bins, cfg.frames(length)
    unit = 2**STAGES
    if bins % unit or frames % unit:
        raise ConfigError(
            f"specgan needs frequency bins (n_fft/2 = {bins}) and frames (length/hop = {frames}) that are multiples of "
            f"{unit}; change data.length, model.n_fft or model.hop"
        )
    return cfg, bins, frames


class _Normaliser(nn.Module):
    """Per-frequency-bin statistics of the training set's log-magnitudes (buffers), and the maps to and from [-1, 1]."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.register_buffer("bin_mean", torch.zeros(bins, 1))
        self.register_buffer("bin_std", torch.ones(bins, 1))

    def fit(self, log_mag: torch.Tensor) -> None:
        """Set the statistics from log-magnitudes ``[N, F, T]`` (mean and std over clips and frames)."""
        per_bin = log_mag.transpose(0, 1).reshape(log_mag.shape[1], -1).double()
        self.bin_mean.copy_(per_bin.mean(dim=1, keepdim=True).float())
        self.bin_std.copy_(per_bin.std(dim=1, keepdim=True).clamp_min(1e-3).float())

    def normalise(self, log_mag: torch.Tensor) -> torch.Tensor:
        return ((log_mag - self.bin_mean) / self.bin_std).clamp(-CLIP_STD, CLIP_STD) / CLIP_STD

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * CLIP_STD * self.bin_std + self.bin_mean


@configurable
class SpecGANGenerator(Generator):
    """Latents (and labels) -> normalised log-magnitude spectrograms ``[N, 1, F, T]`` in [-1, 1].

    A dense layer to a ``[8 * base, F / 16, T / 16]`` map, then four 2x transposed convs
    (5x5 in the paper; 4x4 here, as in DCGAN, which tiles the output without checkerboards
    at stride 2) with ReLU, ending in tanh. ``output_shape`` is the waveform's ``(1, L)``:
    :meth:`decode` returns clips.
    """

    modality = "audio"

    def __init__(self, length: int = 6144, latent_dim: int = 100, base_channels: int = 32, num_classes: int = 0,
                 label_dim: int = 0, n_fft: int = 128, hop: int = 64, griffin_lim_iters: int = 32,
                 conditional_bn: bool = False) -> None:
        super().__init__()
        self.stft, bins, frames = spectrogram_grid(length, n_fft, hop)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (1, length)
        self.griffin_lim_iters = griffin_lim_iters
        self.label = LabelConcat(num_classes, label_dim)
        width = base_channels * 2 ** (STAGES - 1)
        self.start = (width, bins // 2**STAGES, frames // 2**STAGES)
        self.fc = nn.Linear(latent_dim + self.label.out_extra, width * self.start[1] * self.start[2])
        # Batch norm before each upsampling; class-conditional (a gain and bias per class) with conditional_bn.
        norm = (lambda c: ConditionalBatchNorm2d(c, num_classes)) if conditional_bn and num_classes else nn.BatchNorm2d
        self.norms = nn.ModuleList()
        self.convs = nn.ModuleList()
        for stage in range(STAGES):
            out = 1 if stage == STAGES - 1 else width // 2
            self.norms.append(norm(width))
            self.convs.append(nn.ConvTranspose2d(width, out, 4, 2, 1, bias=stage == STAGES - 1))
            width = out
        self.norm = _Normaliser(bins)
        self.apply(init_weights())
        for module in self.norms:
            if isinstance(module, ConditionalBatchNorm2d):
                module.reset_parameters()  # init_weights drew the embeddings like any other

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(self.label(z, labels)).view(len(z), *self.start)
        for norm, conv in zip(self.norms, self.convs):
            h = conv(torch.relu(norm(h, labels) if isinstance(norm, ConditionalBatchNorm2d) else norm(h)))
        return torch.tanh(h)  # [N, 1, F, T]

    def fit_data(self, real: torch.Tensor) -> None:
        self.norm.fit(log_magnitude(real[:, 0], self.stft))

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Normalised spectrograms -> waveforms ``[N, 1, L]`` (un-normalised, then Griffin-Lim)."""
        log_mag = self.norm.denormalise(outputs[:, 0].float())
        return griffin_lim(log_mag, self.stft, self.output_shape[1], self.griffin_lim_iters)[:, None]


@configurable
class SpecGANDiscriminator(Discriminator):
    """Waveforms ``[N, 1, L]`` (through the normalised STFT) or spectrograms ``[N, 1, F, T]`` -> logits ``[N]``.

    Four 4x4 stride-2 convs with LeakyReLU(0.2), then a dense logit (plus a projection term
    for conditional models).
    """

    def __init__(self, length: int = 6144, base_channels: int = 32, num_classes: int = 0, n_fft: int = 128, hop: int = 64,
                 norm: str = "none", classifier: bool = False) -> None:
        super().__init__()
        if norm not in D_NORMS:
            raise ConfigError(f"d_norm must be one of {', '.join(D_NORMS)}, got '{norm}'")
        self.stft, bins, frames = spectrogram_grid(length, n_fft, hop)
        self.num_classes = num_classes
        self.norm = _Normaliser(bins)
        layers: list[nn.Module] = []
        width, c_in = base_channels, 1
        for stage in range(STAGES):
            layers += [nn.Conv2d(c_in, width, 4, 2, 1, bias=stage == 0 or norm == "none")]
            layers += [D_NORMS[norm](width)] if stage else []
            layers.append(nn.LeakyReLU(0.2, True))
            c_in, width = width, width * 2
        self.features = nn.Sequential(*layers)
        flat = c_in * (bins // 2**STAGES) * (frames // 2**STAGES)
        self.head = nn.Linear(flat, 1)
        self.projection = LabelProjection(num_classes, c_in) if num_classes else None
        # AC-GAN's auxiliary head (recipe: acgan): class logits from the same features.
        self.classifier = nn.Linear(flat, num_classes) if classifier and num_classes else None
        self.apply(init_weights())

    @property
    def classifies(self) -> bool:
        return self.classifier is not None

    def fit_data(self, real: torch.Tensor) -> None:
        self.norm.fit(log_magnitude(real[:, 0], self.stft))

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Model-domain input: clips ``[N, 1, L]`` go through the STFT and the normalisation; spectrograms pass."""
        if x.dim() == 3:
            return self.norm.normalise(log_magnitude(x[:, 0], self.stft))[:, None]
        return x

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_aux(x, labels)[0]

    def forward_aux(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits ``[N]`` and, with a classifier head, ``{"class_logits": [N, K]}`` from one pass."""
        h = self.features(self.spectrogram(x))
        logits = self.head(h.flatten(1)).flatten()
        if self.projection is not None:
            logits = logits + self.projection(h.sum(dim=(2, 3)), labels)
        heads = {"class_logits": self.classifier(h.flatten(1))} if self.classifier is not None else {}
        return logits, heads


@MODELS.register("specgan", help="SpecGAN: DCGAN of normalised log-magnitude spectrograms, Griffin-Lim to audio")
@smallest_config(((1, 1024), {"base_channels": 2, "latent_dim": 8, "griffin_lim_iters": 2}),
                 ((1, 2048), {"base_channels": 2, "latent_dim": 8, "griffin_lim_iters": 2, "d_norm": "batch", "d_classifier": True,
                              "conditional_bn": True}))
def build_specgan(
    data_shape: tuple[int, ...],
    num_classes: int = 0,
    *,
    latent_dim: int = 100,
    base_channels: int = 32,
    d_base_channels: int | None = None,
    label_dim: int = 0,
    n_fft: int = 128,
    hop: int = 64,
    griffin_lim_iters: int = 32,
    d_norm: str = "none",
    d_classifier: bool = False,
    conditional_bn: bool = False,
) -> tuple[SpecGANGenerator, SpecGANDiscriminator]:
    """SpecGAN for mono clips ``(1, L)``; ``L / hop`` and ``n_fft / 2`` must be multiples of 16.

    ``griffin_lim_iters``: phase-estimation iterations when decoding (more: cleaner, slower).
    ``d_norm``: none (the paper, with WGAN-GP) | batch | layer. ``d_classifier``: give D an
    auxiliary class head for ``recipe: acgan`` (conditional models; the projection term stays).
    ``conditional_bn``: class-conditional batch norm in G (a gain and bias per class, de Vries
    et al. 2017), on top of the label embedding at its input.
    """
    length = audio_length("specgan", data_shape)
    generator = SpecGANGenerator(length, latent_dim, base_channels, num_classes, label_dim, n_fft, hop, griffin_lim_iters,
                                 conditional_bn)
    discriminator = SpecGANDiscriminator(length, d_base_channels or base_channels, num_classes, n_fft, hop, d_norm, d_classifier)
    return generator, discriminator
