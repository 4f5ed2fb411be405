"""The ``audio`` modality: mono clips ``[1, L]`` in [-1, 1], heard as WAV files and seen as spectrograms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..modality import Media, Modality, register, write_npy, write_png
from ..viz import image_grid
from .dsp import STFTConfig, log_magnitude, resample
from .wav import AUDIO_SUFFIXES, concatenate, wav_bytes, write_wav

#: One clip, and a batch of clips one after another: 16-bit PCM WAV with provenance in RIFF INFO.
WAV = Media("audio/wav", ".wav")

#: The STFT of the pictures (not of any model): 32 ms windows at 8 kHz, 75% overlap.
PREVIEW_STFT = STFTConfig(n_fft=256, hop=64)
#: Dynamic range of the pictures: the loudest bin of a batch is white-hot, 80 dB below it is black.
PREVIEW_DB_RANGE = 80.0

# A perceptually ordered dark-to-bright colour map (anchors of matplotlib's "magma"), interpolated.
_MAGMA = np.array([[0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122], [229, 80, 100],
                   [251, 135, 97], [254, 194, 135], [252, 253, 191]], dtype=np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """``values`` in [0, 1] ``[...]`` -> RGB uint8 ``[..., 3]``."""
    x = np.clip(values, 0.0, 1.0) * (len(_MAGMA) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_MAGMA) - 2)
    t = (x - lo)[..., None]
    return np.rint(_MAGMA[lo] * (1 - t) + _MAGMA[lo + 1] * t).astype(np.uint8)


def spectrogram_images(waves: torch.Tensor) -> torch.Tensor:
    """uint8 RGB pictures ``[N, 3, F, T]`` of clips ``[N, 1, L]``: low frequencies at the bottom, dB in colour."""
    flat = waves.detach().float().cpu().reshape(len(waves), -1)
    if flat.shape[-1] < PREVIEW_STFT.n_fft:
        raise UserError(f"clips of {flat.shape[-1]} samples are too short to draw (at least {PREVIEW_STFT.n_fft})")
    length = flat.shape[-1] - flat.shape[-1] % PREVIEW_STFT.hop
    db = log_magnitude(flat[:, :length], PREVIEW_STFT) * (20.0 / np.log(10.0))  # [N, F, T] in dB
    top = float(db.max()) if db.numel() else 0.0
    scaled = ((db - (top - PREVIEW_DB_RANGE)) / PREVIEW_DB_RANGE).flip(-2).numpy()
    return torch.from_numpy(colormap(scaled)).permute(0, 3, 1, 2).contiguous()


def resample_clips(clips: torch.Tensor, rate: int | None, target: int | None) -> torch.Tensor:
    """Clips ``[N, 1, L]`` at ``rate`` Hz resampled to ``target`` Hz (as they are when either is unknown)."""
    if not rate or not target or int(rate) == int(target):
        return clips
    waves = [resample(clip, int(rate), int(target)) for clip in clips.float().cpu().numpy()[:, 0]]
    return torch.from_numpy(np.stack(waves).astype(np.float32))[:, None]


def sample_rate_of(metadata: dict[str, Any] | None) -> int:
    """The ``sample_rate`` field of a generator's provenance (every audio output carries it)."""
    rate = (metadata or {}).get("sample_rate")
    if rate in (None, ""):
        raise UserError("this audio generator does not record its sample rate (metadata 'sample_rate'); retrain it")
    return int(rate)


def write_wav_file(modality: "AudioModality", samples: torch.Tensor, path: Path, *,
                   metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """All clips in one WAV, one after another with 0.25 s of silence between them."""
    rate = sample_rate_of(metadata)
    return write_wav(path, concatenate(samples, rate), rate, {**(metadata or {}), "clips": len(samples)})


def write_wav_folder(modality: "AudioModality", samples: torch.Tensor, path: Path, *, nrow: int | None = None,
                     metadata: dict[str, Any] | None = None, **_: Any) -> Path:
    """``DIR/000.wav``, ``DIR/001.wav``, ... (each with the batch's provenance and its index) and ``DIR/spectrograms.png``."""
    rate = sample_rate_of(metadata)
    path.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(samples) - 1)))
    for i, clip in enumerate(samples):
        write_wav(path / f"{i:0{width}d}.wav", clip, rate, {**(metadata or {}), "index": i})
    modality.write_preview(samples, path / "spectrograms.png", nrow=nrow, metadata=metadata)
    return path


class AudioModality(Modality):
    """Mono audio clips ``[1, L]``: float in [-1, 1] both stored and in the model; scored by the ``fsdd`` classifier."""

    name = "audio"
    rank = 2  # [1, L]
    plural = "clips"
    description = "mono audio clips [1, L] in [-1, 1] (WAV files; spectrogram pictures)"
    default_metrics = ("is", "fid", "kid")
    extractor = "fsdd"
    writers = {".wav": write_wav_file, "": write_wav_folder, ".png": write_png, ".npy": write_npy}
    preview_caption = "spectrograms"
    media = WAV
    playable = WAV
    data_suffixes = AUDIO_SUFFIXES

    def check(self, data: torch.Tensor, what: str) -> None:
        if data.dim() != 3 or data.shape[1] != 1 or not data.is_floating_point():
            raise UserError(f"{what}: audio must be float mono clips [N, 1, L], got {data.dtype} {tuple(data.shape)}")

    def to_stored(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.detach().float().clamp(-1.0, 1.0)

    def preview(self, samples: torch.Tensor, *, nrow: int | None = None, reference: torch.Tensor | None = None) -> Image.Image:
        return image_grid(spectrogram_images(samples), nrow)

    def encode(self, stored: torch.Tensor, metadata: dict[str, Any], *, scale: int = 1) -> bytes:
        """One clip ``[1, L]`` as WAV bytes at ``metadata["sample_rate"]`` (``scale`` does not apply to sound)."""
        return wav_bytes(stored, sample_rate_of(metadata), metadata)

    def encode_playable(self, samples: torch.Tensor, metadata: dict[str, Any]) -> bytes:
        """The clips one after another, 0.25 s of silence between them, in one WAV (as ``--out FILE.wav``)."""
        rate = sample_rate_of(metadata)
        return wav_bytes(concatenate(self.to_stored(samples), rate), rate, {**metadata, "clips": len(samples)})

    def size(self, shape: tuple[int, ...], count: int, scale: int = 1) -> tuple[int, str]:
        length = int(shape[-1])
        return count * length, f"{count} clips of {length} samples ({count * length} in all)"

    def generator_meta(self, dataset: Any) -> dict[str, Any]:
        return {"sample_rate": int(dataset.info["sample_rate"])}

    def output_fields(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"sample_rate": meta["sample_rate"]} if meta.get("sample_rate") else {}

    def extractor_input(self, stored: torch.Tensor, info: dict[str, Any], extractor: Any) -> torch.Tensor:
        """Clips resampled from their source's ``info["sample_rate"]`` to the extractor's ``sample_rate``.

        Clips of an unknown rate are taken to be at the extractor's rate already.
        """
        return resample_clips(stored, info.get("sample_rate"), getattr(extractor, "sample_rate", None))

    def conform(self, source: Any, reference: Any) -> Any:
        """Clips of a folder or a generator at the reference data's sample rate (where both are known)."""
        rate, target = source.info.get("sample_rate"), reference.info.get("sample_rate")
        if not rate or not target or int(rate) == int(target):
            return source
        return source.replace(resample_clips(source.data, rate, target), sample_rate=int(target))


AUDIO = register(AudioModality())

__all__ = ["AUDIO", "WAV", "AudioModality", "colormap", "sample_rate_of", "spectrogram_images", "write_wav_file",
           "write_wav_folder"]
