"""Audio data and signal processing: ``audio-folder``, ``fsdd``, resampling, fixed lengths, Griffin-Lim.

Folders are written by the tests (sine tones through ``soundfile``); the FSDD test reads the
shared copy (``shared_data``) and skips without it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ganforge.audio import STFTConfig, griffin_lim, log_magnitude, stft
from ganforge.config import DataConfig
from ganforge.data import create
from ganforge.errors import DataError

RATE = 8000


def tone(hz: float, length: int, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(length) / rate)).astype(np.float32)


def write(path: Path, wave: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, wave, rate, subtype="PCM_16")
    return path


def load(root: Path, **options) -> object:
    return create(DataConfig(name="audio-folder", root=str(root), **options))


def peak_hz(wave: np.ndarray, rate: int) -> float:
    """The frequency of the loudest bin of ``wave``'s spectrum."""
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


# --------------------------------------------------------------------------- audio-folder


def test_class_sub_folders_are_the_labels(tone_folder):
    data = load(tone_folder, sample_rate=RATE, length=2048)
    assert data.modality == "audio" and data.class_names == ["high", "low", "mid"]
    assert data.data.shape == (72, 1, 2048) and data.data.dtype == torch.float32
    assert torch.bincount(data.labels).tolist() == [24, 24, 24]
    assert data.info["sample_rate"] == RATE and data.info["length"] == 2048
    assert float(data.data.abs().max()) <= 1.0
    expected = {0: 1980.0, 1: 220.0, 2: 660.0}  # conftest's TONES: each clip is its folder's tone
    for clip, label in zip(data.data[:12], data.labels[:12]):
        assert abs(peak_hz(clip[0].numpy(), RATE) - expected[int(label)]) < 8


def test_label_pattern_names_the_classes(tmp_path):
    for digit in (3, 7):
        for speaker in ("jackson", "theo"):
            write(tmp_path / "flat" / f"{digit}_{speaker}_0.wav", tone(300 * digit, 1000))
    data = load(tmp_path / "flat", label_pattern=r"^(\d)_", length=1024)
    assert data.class_names == ["3", "7"] and torch.bincount(data.labels).tolist() == [2, 2]
    for clip, label in zip(data.data, data.labels):
        assert abs(peak_hz(clip[0].numpy()[:1000], RATE) - 300 * int(data.class_names[int(label)])) < 10
    write(tmp_path / "flat" / "noise.wav", tone(100, 1000))
    with pytest.raises(DataError, match=r"file 'noise.wav' does not match data.label_pattern"):
        load(tmp_path / "flat", label_pattern=r"^(\d)_", length=1024)
    with pytest.raises(DataError, match="needs a group"):
        load(tmp_path / "flat", label_pattern=r"^\d_", length=1024)


def test_an_unreadable_file_is_one_warning_naming_it_and_skipped(tmp_path):
    for name in ("a", "b"):
        for i in range(2):
            write(tmp_path / "set" / name / f"{i}.wav", tone(440, 512))
    bad = tmp_path / "set" / "a" / "broken.wav"
    bad.write_bytes(b"RIFF this is not audio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(tmp_path / "set", sample_rate=RATE, length=512)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "skipped 1 unreadable audio file(s)" in messages[0] and str(bad) in messages[0]
    assert len(data.data) == 4 and torch.bincount(data.labels).tolist() == [2, 2]


def test_an_empty_or_unreadable_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as empty:
        load(tmp_path / "empty", sample_rate=RATE)
    assert "no audio files found in" in str(empty.value) and "\n" not in str(empty.value)
    for i in range(3):
        (tmp_path / "junk" / "x").mkdir(parents=True, exist_ok=True)
        (tmp_path / "junk" / "x" / f"{i}.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(DataError) as junk:
        load(tmp_path / "junk", sample_rate=RATE)
    text = str(junk.value)
    assert "none of the 3 audio files" in text and "could be read" in text and "\n" not in text
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "missing")
    with pytest.raises(DataError, match="needs data.root"):
        create(DataConfig(name="audio-folder"))


def test_clips_are_resampled_to_data_sample_rate(tmp_path):
    write(tmp_path / "hi" / "a.wav", tone(440, 16000, rate=16000), rate=16000)  # 1 s at 16 kHz
    write(tmp_path / "hi" / "b.wav", tone(440, 16000, rate=16000), rate=16000)
    data = load(tmp_path / "hi", sample_rate=RATE, length=8000)
    assert data.info["sample_rate"] == RATE
    clip = data.data[0, 0].numpy()
    assert abs(peak_hz(clip, RATE) - 440) < 2  # the same pitch at the new rate
    assert 0.45 < np.abs(clip[1000:7000]).max() < 0.55 and np.abs(clip[7900:]).max() > 0.3  # 1 s fills the 8,000
    native = load(tmp_path / "hi", length=8000)  # no rate given: the files' own (16 kHz), only half of the second
    assert native.info["sample_rate"] == 16000 and abs(peak_hz(native.data[0, 0].numpy(), 16000) - 440) < 3


def test_clips_are_cropped_or_zero_padded_to_data_length(tmp_path):
    wave = tone(500, 3000)
    write(tmp_path / "c" / "a.wav", wave)
    stored = soundfile.read(tmp_path / "c" / "a.wav", dtype="float32")[0]  # (16-bit)
    short = load(tmp_path / "c", sample_rate=RATE, length=2048).data[0, 0].numpy()
    long = load(tmp_path / "c", sample_rate=RATE, length=4096).data[0, 0].numpy()
    assert short.shape == (2048,) and np.array_equal(short, stored[:2048])  # the start, cropped
    assert long.shape == (4096,) and np.array_equal(long[:3000], stored) and not long[3000:].any()  # zeros at the end


def test_data_sample_rate_on_an_image_data_set_is_refused(tmp_path):
    for key, value in (("sample_rate", 8000), ("length", 2048), ("label_pattern", "^(.)")):
        with pytest.raises(DataError) as err:
            create(DataConfig(name="digits", **{key: value}))
        text = str(err.value)
        assert text.startswith(f"data.{key} applies to ") and "not 'digits'" in text and "\n" not in text
    with pytest.raises(DataError, match=r"data.resolution applies to images, not to the audio data set 'audio-folder'"):
        create(DataConfig(name="audio-folder", root=str(tmp_path), resolution=32))


# --------------------------------------------------------------------------- fsdd


def test_fsdd_standard_split(shared_data):
    root = shared_data / "fsdd" / "recordings"
    if not root.is_dir():
        pytest.skip(f"no FSDD recordings at {root}")
    train = create(DataConfig(name="fsdd", root=str(root), split="train"))
    test = create(DataConfig(name="fsdd", root=str(root), split="test"))
    assert (len(train), len(test)) == (2700, 300)
    assert train.class_names == test.class_names == [str(d) for d in range(10)]
    assert torch.bincount(train.labels).tolist() == [270] * 10 and torch.bincount(test.labels).tolist() == [30] * 10
    assert train.data.shape[1:] == (1, 6144) and train.info["sample_rate"] == 8000
    assert len(create(DataConfig(name="fsdd", root=str(root), split="all"))) == 3000
    with pytest.raises(DataError, match="splits 'train', 'test' and 'all'"):
        create(DataConfig(name="fsdd", root=str(root), split="valid"))


# --------------------------------------------------------------------------- Griffin-Lim


def spectral_convergence(wave: torch.Tensor, log_mag: torch.Tensor, cfg: STFTConfig) -> float:
    """``|| |STFT(wave)| - target ||_F / || target ||_F``: 0 when the magnitudes match."""
    target = log_mag.exp()
    return float((stft(wave, cfg).abs() - target).norm() / target.norm())


def test_griffin_lim_reconstructs_a_magnitude_spectrogram():
    cfg, length = STFTConfig(n_fft=128, hop=64), 6144  # SpecGAN's at 8 kHz
    t = torch.arange(length) / RATE
    sweep = 300 + 1500 * t / t[-1]  # a chirp under a bell envelope, and a tone that starts at 0.2 s
    wave = 0.5 * torch.sin(2 * math.pi * torch.cumsum(sweep, 0) / RATE) * torch.exp(-(((t - 0.4) / 0.2) ** 2))
    wave = wave + 0.2 * torch.sin(2 * math.pi * 700 * t) * (t > 0.2)
    log_mag = log_magnitude(wave, cfg)
    rebuilt = griffin_lim(log_mag, cfg, length, iterations=32)
    random_phases = griffin_lim(log_mag, cfg, length, iterations=0)  # the first guess: the magnitudes, random phases
    assert rebuilt.shape == (length,) and float(rebuilt.abs().max()) <= 1.0
    assert spectral_convergence(rebuilt, log_mag, cfg) < 0.1
    assert spectral_convergence(random_phases, log_mag, cfg) > 0.3
    # a clip's result depends on its own spectrogram only (not on the batch it is decoded in)
    batch = griffin_lim(torch.stack([log_mag, log_magnitude(wave.flip(0), cfg)]), cfg, length, iterations=32)
    assert torch.allclose(batch[0], rebuilt, atol=1e-5)
