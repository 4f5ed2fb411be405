"""Audio: signal processing, WAV files with provenance, and the ``audio`` modality (registered on import)."""

from .dsp import STFTConfig, fix_length, griffin_lim, istft, log_magnitude, resample, stft, to_mono
from .modality import AUDIO, WAV, AudioModality, spectrogram_images
from .wav import AUDIO_SUFFIXES, GAP_SECONDS, concatenate, read_provenance, read_wav, wav_bytes, write_wav

__all__ = [
    "AUDIO", "AUDIO_SUFFIXES", "AudioModality", "GAP_SECONDS", "STFTConfig", "WAV", "concatenate", "fix_length", "griffin_lim", "istft",
    "log_magnitude", "read_provenance", "read_wav", "resample", "spectrogram_images", "stft", "to_mono", "wav_bytes", "write_wav",
]
