"""The spoken-digit classifier ``fsdd``: a small CNN on log-magnitude spectrograms of 8 kHz clips.

The audio analogue of the ``mnist`` classifier (WaveGAN's SC09 classifier plays this role in
Donahue et al. 2019): its penultimate embedding gives the Fréchet distance and KID of audio
GANs, its logits the Inception Score and the per-label accuracy of conditional runs.

Input: float clips ``[N, 1, L]`` in [-1, 1] at :attr:`AudioClassifierConfig.sample_rate`
(8 kHz). Preprocessing (:func:`preprocess_clips`), the same in training and evaluation:

1. crop or zero-pad each clip at its end to ``length`` samples (6,144: 0.77 s; FSDD's
   recordings start at the word, so the start is kept);
2. ``log |STFT|`` with a Hann window of ``n_fft`` samples and a hop of ``hop``
   (:func:`ganforge.audio.dsp.log_magnitude`, on ``torch.stft``): ``[F, T]`` = ``[n_fft / 2,
   length / hop]``, floored at -100 dB;
3. normalise with the fixed ``mean`` and ``std`` of the config (measured once on FSDD's
   training split and written into :data:`FSDD_ARCHITECTURE`, not re-measured, so the CAS
   classifiers of :mod:`ganforge.metrics.cas` read clips exactly as the shipped one does).

The network is :class:`~ganforge.extractors.classifier.ClassifierNet` (conv-BN-ReLU stages,
global average pooling, embedding, class head) reading the spectrogram as a one-channel
image. Clips at another sample rate are resampled by the evaluation (the audio modality's
:meth:`~ganforge.audio.modality.AudioModality.extractor_input`) before they get here.

Weights ship as ``weights/fsdd.safetensors`` (``scripts/train_extractors.py fsdd``), with the
test-split accuracy and the training record in the file's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..audio.dsp import MAG_FLOOR, STFTConfig, log_magnitude
from .base import EXTRACTORS, INPUT_MODALITY, OWN_DATA, WEIGHT_CHECKS
from .classifier import CLASSIFIER_TYPES, ClassifierConfig, ClassifierExtractor, load_classifier, weights_path


@dataclass(frozen=True)
class AudioClassifierConfig(ClassifierConfig):
    """A :class:`ClassifierConfig` of a classifier of clips (``resolution`` is unused: 0).

    Attributes:
        sample_rate: Hz of the clips it reads.
        length: samples per clip; longer clips are cropped at the end, shorter zero-padded.
        n_fft: STFT window (Hann) in samples; the spectrogram has ``n_fft / 2`` bins.
        hop: STFT hop in samples; the spectrogram has ``length / hop`` frames.
    """

    sample_rate: int = 8000
    length: int = 6144
    n_fft: int = 256
    hop: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels != 1:
            raise ValueError(f"an audio classifier reads one spectrogram channel, got channels={self.channels}")
        self.stft.check(self.length)

    @property
    def stft(self) -> STFTConfig:
        return STFTConfig(n_fft=self.n_fft, hop=self.hop)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``[1, F, T]``: the spectrogram the network reads."""
        return (1, self.stft.bins, self.stft.frames(self.length))


def fit_length(clips: torch.Tensor, length: int) -> torch.Tensor:
    """Clips ``[N, 1, L]`` cropped (at the end) or zero-padded (at the end) to ``[N, 1, length]``."""
    have = clips.shape[-1]
    if have >= length:
        return clips[..., :length]
    return F.pad(clips, (0, length - have))


def preprocess_clips(clips: torch.Tensor, config: AudioClassifierConfig) -> torch.Tensor:
    """Float clips ``[N, 1, L]`` -> normalised log-magnitude spectrograms ``[N, 1, F, T]`` (channels-last)."""
    x = log_magnitude(fit_length(clips.float(), config.length)[:, 0], config.stft)  # [N, F, T]
    x = (x - config.mean[0]) / config.std[0]
    return x[:, None].contiguous(memory_format=torch.channels_last)


def check_clips(clips: torch.Tensor, name: str = "audio") -> None:
    """Raise ValueError unless ``clips`` are float mono clips ``[N, 1, L]``."""
    if not clips.is_floating_point() or clips.dim() != 3 or clips.shape[1] != 1:
        raise ValueError(f"{name} extractor expects float mono clips [N, 1, L] in [-1, 1], got {clips.dtype} "
                         f"{tuple(clips.shape)}")


class AudioClassifierExtractor(ClassifierExtractor):
    """A :class:`ClassifierNet` on spectrograms as a feature extractor: float clips ``[N, 1, L]`` in, features out."""

    config_type = AudioClassifierConfig
    config: AudioClassifierConfig

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the clips must have (evaluation resamples others to it)."""
        return self.config.sample_rate

    def check_input(self, clips: torch.Tensor) -> None:
        check_clips(clips, self.name)

    def preprocess(self, clips: torch.Tensor) -> torch.Tensor:
        """See :func:`preprocess_clips`."""
        return preprocess_clips(clips, self.config)

    def background(self) -> float:
        """The network input of silence (the magnitude floor, normalised)."""
        return (float(torch.tensor(MAG_FLOOR).log()) - self.config.mean[0]) / self.config.std[0]


#: The ``fsdd`` classifier: 128 bins x 48 frames (32 ms windows, 16 ms hops) read by four stages.
#: ``mean``/``std``: of the log magnitudes of FSDD's training split (2,700 clips), rounded and fixed.
FSDD_ARCHITECTURE = AudioClassifierConfig(
    name="fsdd", channels=1, resolution=0, widths=(16, 32, 64, 128), depth=1, stem_stride=2, embed_dim=128,
    dropout=0.2, mean=(-7.0,), std=(4.0,), sample_rate=8000, length=6144, n_fft=256, hop=128,
)


def cas_config(
    num_classes: int, class_names: tuple[str, ...] | list[str] | None = None, length: int | None = None
) -> AudioClassifierConfig:
    """The CAS network for clips: the ``fsdd`` architecture (and normalisation) with ``num_classes`` outputs.

    It reads ``length`` samples (rounded up to whole hops, at least the 16 frames its four
    stages halve down to one), default the ``fsdd`` classifier's 6,144.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    names = tuple(class_names) if class_names and len(class_names) == num_classes else None
    names = names or tuple(str(k) for k in range(num_classes))
    hop = FSDD_ARCHITECTURE.hop
    length = FSDD_ARCHITECTURE.length if length is None else max(-(-length // hop), 16) * hop
    return replace(FSDD_ARCHITECTURE, name="cas", num_classes=num_classes, class_names=names, length=length)


CLASSIFIER_TYPES["fsdd"] = AudioClassifierExtractor
OWN_DATA["fsdd"] = ("fsdd",)
INPUT_MODALITY["fsdd"] = "audio"
WEIGHT_CHECKS["fsdd"] = lambda weights: weights_path("fsdd", weights)


@EXTRACTORS.register("fsdd", help="CNN classifier of spoken digits (FSDD, 8 kHz clips; 128-d features, 10 logits)")
def fsdd_classifier(weights: str | None = None) -> AudioClassifierExtractor:
    """Spoken-digit classifier for the ``fsdd`` data set (float clips at 8 kHz, read as 0.77 s spectrograms)."""
    extractor = load_classifier("fsdd", weights)
    assert isinstance(extractor, AudioClassifierExtractor)
    return extractor


__all__ = [
    "FSDD_ARCHITECTURE", "AudioClassifierConfig", "AudioClassifierExtractor", "cas_config", "check_clips", "fit_length",
    "fsdd_classifier", "preprocess_clips",
]
