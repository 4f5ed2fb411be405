"""Signal processing for audio GANs: spectrograms, Griffin-Lim, resampling, fixed lengths.

Everything runs on ``torch.stft`` / ``torch.istft`` (torchaudio has no build for every torch
release, so it is not required) and on SciPy's polyphase resampler. Shapes: waveforms are
``[..., L]`` floats in [-1, 1]; spectrograms are ``[..., F, T]`` with ``F = n_fft / 2``
frequency bins (the Nyquist bin is dropped, as SpecGAN does, so ``F`` is a power of two)
and ``T = L / hop`` frames (the frame centred past the end is dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: Floor of the magnitudes before the log: -100 dB, far below 16-bit quantisation noise.
MAG_FLOOR = 1e-5


@dataclass(frozen=True)
class STFTConfig:
    """One short-time Fourier transform: window ``n_fft`` (Hann), hop ``hop``."""

    n_fft: int = 128
    hop: int = 64

    @property
    def bins(self) -> int:
        return self.n_fft // 2

    def frames(self, length: int) -> int:
        return length // self.hop

    def check(self, length: int) -> None:
        """Raise ValueError unless ``length`` samples give a whole number of hops."""
        if self.n_fft < 4 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 4, got {self.n_fft}")
        if not 0 < self.hop <= self.n_fft:
            raise ValueError(f"hop must be in 1..n_fft ({self.n_fft}), got {self.hop}")
        if length % self.hop:
            raise ValueError(f"the clip length ({length}) must be a multiple of the hop ({self.hop})")


def _window(cfg: STFTConfig, like: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(cfg.n_fft, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


def stft(wave: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Complex STFT ``[..., F, T]`` of waveforms ``[..., L]`` (Nyquist bin and last frame dropped)."""
    lead = wave.shape[:-1]
    spec = torch.stft(wave.reshape(-1, wave.shape[-1]).float(), cfg.n_fft, cfg.hop, window=_window(cfg, wave.float()),
                      center=True, pad_mode="reflect", return_complex=True)
    spec = spec[:, : cfg.bins, : cfg.frames(wave.shape[-1])]
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """Waveforms ``[..., length]`` from complex spectrograms ``[..., F, T]`` (inverse of :func:`stft`)."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    # Restore what stft dropped: a zero Nyquist bin and a zero last frame.
    flat = torch.nn.functional.pad(flat, (0, cfg.frames(length) + 1 - flat.shape[-1], 0, 1))
    wave = torch.istft(flat, cfg.n_fft, cfg.hop, window=_window(cfg, flat.real), center=True, length=length)
    return wave.reshape(*lead, length)


def log_magnitude(wave: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """``log |STFT|`` ``[..., F, T]`` (natural log, floored at :data:`MAG_FLOOR`); differentiable."""
    return torch.log(stft(wave, cfg).abs().clamp_min(MAG_FLOOR))


def griffin_lim(log_mag: torch.Tensor, cfg: STFTConfig, length: int, iterations: int = 32, momentum: float = 0.99,
                seed: int = 0) -> torch.Tensor:
    """Waveforms ``[..., length]`` whose STFT magnitudes approach ``exp(log_mag)`` (Griffin & Lim 1984).

    Alternates between the target magnitudes with the current phases and the phases of the
    STFT of the signal they give, with the "fast" momentum of Perraudin et al. (2013). The
    first phases ``[F, T]`` are drawn from a generator seeded with ``seed`` and shared by every
    clip, so a clip's waveform is a pure function of its own spectrogram, whatever else is
    in the batch (the same spectrogram always gives the same bytes).
    """
    mag = log_mag.float().exp()
    g = torch.Generator(device="cpu").manual_seed(seed)
    angles = torch.exp(2j * math.pi * torch.rand(mag.shape[-2:], generator=g)).to(mag.device).expand(mag.shape)
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = stft(istft(mag * angles, cfg, length), cfg)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        angles = accelerated / accelerated.abs().clamp_min(1e-12)
        previous = rebuilt
    return istft(mag * angles, cfg, length).clamp(-1.0, 1.0)


def fix_length(wave: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples of ``wave [L]``, zero-padded at the end when shorter."""
    if len(wave) >= length:
        return wave[:length]
    return np.pad(wave, (0, length - len(wave)))


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave [L]`` at ``rate`` Hz resampled to ``target`` Hz (SciPy's polyphase filter, anti-aliased)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly  # SciPy comes with scikit-learn; imported here as it is slow to import

    g = math.gcd(rate, target)
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """``[L]`` or ``[L, channels]`` -> ``[L]`` float32 (the mean of the channels)."""
    return (wave.mean(axis=1) if wave.ndim == 2 else wave).astype(np.float32)
