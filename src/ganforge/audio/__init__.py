"""Audio: signal processing, WAV files with provenance, and the ``audio`` modality (registered on import)."""

from .dsp import STFTConfig, fix_length, griffin_lim, istft, log_magnitude, resample, stft, to_mono
from .modality import AUDIO, AudioModality, spectrogram_images
from .wav import GAP_SECONDS, concatenate, read_provenance, read_wav, wav_bytes, write_wav

__all__ = [
    "AUDIO", "AudioModality", "GAP_SECONDS", "STFTConfig", "concatenate", "fix_length", "griffin_lim", "istft",
    "log_magnitude", "read_provenance", "read_wav", "resample", "spectrogram_images", "stft", "to_mono", "wav_bytes",
    "write_wav",
]
