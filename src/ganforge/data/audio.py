"""Audio data sets: any folder of WAV/FLAC/OGG files, and the Free Spoken Digit Dataset.

Clips are decoded once (``soundfile``), mixed down to mono, resampled to ``data.sample_rate``
(SciPy's polyphase filter), cropped or zero-padded at the end to ``data.length`` samples and
held as float32 ``[N, 1, L]`` in [-1, 1] (the ``audio`` modality). Decoded sets are cached
like image folders: keyed by the folder, the options and the files' names, sizes and times.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.dsp import fix_length, resample, to_mono
from ..audio.wav import AUDIO_SUFFIXES, read_wav, soundfile
from ..core import cached
from ..errors import DataError, UserError
from .base import DATASETS, Dataset, default_root, refuse_image_options
from .images import class_labels, fingerprint, relative_files, warn_skipped

#: Bump when decoding changes, so cached clips are decoded again.
AUDIO_DECODE_VERSION = 1

#: The Free Spoken Digit Dataset: 8 kHz recordings named ``{digit}_{speaker}_{index}.wav``.
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FSDD_RATE = 8000
#: 6,144 samples (0.77 s) hold 97% of the FSDD recordings whole; it is 6 x 4^5, which the
#: WaveGAN generator reaches by five 4x upsamplings, and 96 hops of 64 samples (SpecGAN).
FSDD_LENGTH = 6144
FSDD_PATTERN = r"^(\d)_([a-z]+)_(\d+)\.wav$"
#: The standard split: recordings 0-4 of every speaker and digit are the test set.
FSDD_TEST_INDICES = range(5)

#: audio-folder's default clip length: WaveGAN's 16,384 samples (about 1 s at 16 kHz).
DEFAULT_LENGTH = 16384


def _refuse_image_options(name: str, resolution: int | None, channels: int | None) -> None:
    refuse_image_options(name, "audio", "data.length / data.sample_rate", resolution, channels)


def decode_clip(path: str, sample_rate: int, length: int) -> np.ndarray:
    """One file as float32 ``[length]`` at ``sample_rate``: mono, resampled, cropped or zero-padded."""
    wave, rate = read_wav(path)
    wave = to_mono(wave)
    if not np.isfinite(wave).all():
        raise UserError(f"'{path}' holds non-finite samples")
    return fix_length(resample(wave, rate, sample_rate), length)


def _most_common_rate(files: list[str]) -> int | None:
    sf = soundfile()
    rates: Counter[int] = Counter()
    for path in files[:200]:  # a sample of the headers is enough to pick the usual rate
        try:
            rates[int(sf.info(path).samplerate)] += 1
        except Exception:  # unreadable files are reported when decoded
            continue
    return rates.most_common(1)[0][0] if rates else None


def load_audio_folder(folder: Path, *, sample_rate: int, length: int, label_pattern: str | None,
                      name: str = "audio-folder", cache: bool = True) -> dict[str, Any]:
    """Decode every audio file under ``folder``: ``{"data", "labels", "class_names", "files", "skipped"}``.

    Labels come from ``label_pattern`` (its first group, matched against each file name) or,
    when every file lies in a sub-folder, from the sub-folder names; else there are none.
    """
    if not folder.is_dir():
        raise DataError(f"data root '{folder}' {'is not a folder' if folder.exists() else 'does not exist'}")
    rel = relative_files(folder, AUDIO_SUFFIXES)
    if not rel:
        raise DataError(f"no audio files found in '{folder}' (looked recursively for {', '.join(AUDIO_SUFFIXES)})")
    try:
        pattern = re.compile(label_pattern) if label_pattern else None
    except re.error as err:
        raise DataError(f"data.label_pattern is not a regular expression: {err}") from None
    if pattern is not None and pattern.groups < 1:
        raise DataError("data.label_pattern needs a group, e.g. '^(\\d)_' : its first group is the label")

    def build() -> dict[str, Any]:
        from tqdm.auto import tqdm

        clips, kept, skipped = [], [], []
        for parts in tqdm(rel, desc=f"decoding {folder.name}", unit="clip", leave=False, disable=len(rel) < 500):
            path = os.path.join(folder, *parts)
            try:
                clips.append(decode_clip(path, sample_rate, length))
                kept.append(parts)
            except UserError as err:
                skipped.append([path, str(err).split(": ", 1)[-1]])
        if not clips:
            raise DataError(f"none of the {len(rel)} audio files in '{folder}' could be read, e.g. {skipped[0][0]} ({skipped[0][1]})")
        return {"data": torch.from_numpy(np.stack(clips))[:, None], "files": ["/".join(p) for p in kept], "skipped": skipped}

    key = ["audio-folder", AUDIO_DECODE_VERSION, str(folder.resolve()), sample_rate, length, *fingerprint(folder, rel)]
    result = cached(key, build) if cache else build()
    warn_skipped(folder, result["skipped"], stacklevel=3, what="audio file")
    data, files = result["data"], result["files"]

    names: list[str] | None = None
    if pattern is not None:
        names = []
        for file in files:
            match = pattern.search(file.rsplit("/", 1)[-1])
            if match is None or match.group(1) is None:
                raise DataError(f"file '{file}' does not match data.label_pattern {label_pattern!r}")
            names.append(match.group(1))
    elif all("/" in file for file in files):
        names = [file.split("/", 1)[0] for file in files]
    labels = class_names = None
    if names is not None:
        class_names, index = class_labels(names)
        labels = torch.tensor([index[n] for n in names], dtype=torch.int64)
    return {"data": data, "labels": labels, "class_names": class_names, "files": files}


def _shuffled(name: str, loaded: dict[str, Any], info: dict[str, Any]) -> Dataset:
    """A :class:`Dataset` in a fixed shuffled order (seed 0), so any prefix mixes the classes."""
    order = torch.randperm(len(loaded["data"]), generator=torch.Generator().manual_seed(0))
    labels = None if loaded["labels"] is None else loaded["labels"][order]
    return Dataset(name, loaded["data"][order].contiguous(), labels, loaded["class_names"], info, modality="audio")


@DATASETS.register("audio-folder", help="any folder of WAV/FLAC/OGG clips (labels: class sub-folders or data.label_pattern); data.root")
def audio_folder(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
    sample_rate: int | None, length: int | None, label_pattern: str | None,
) -> Dataset:
    """Every audio file under ``root`` as mono clips of ``length`` samples at ``sample_rate``.

    Args:
        root: the folder (required).
        split: must be ``'train'`` (there are no splits).
        sample_rate: Hz; None takes the most common rate of the files (printed).
        length: samples per clip (cropped or zero-padded at the end); None: 16,384.
        label_pattern: a regular expression whose first group, searched in each file name,
            is its label (``'^(\\d)_'`` for ``7_jackson_32.wav``); None: sub-folders, if all
            files lie in one, are the classes.
        resolution, channels: must be None (images only).
        download: ignored.
    """
    if root is None:
        raise DataError("data set 'audio-folder' needs data.root=DIR, a folder of WAV/FLAC/OGG files "
                        "(on the command line: --set data.root=DIR)")
    _refuse_image_options("audio-folder", resolution, channels)
    if split != "train":
        raise DataError(f"data set 'audio-folder' has no splits (got data.split={split!r}); point data.root at the folder to use")
    folder = Path(root).expanduser()
    if sample_rate is None and folder.is_dir():
        sample_rate = _most_common_rate([os.path.join(folder, *p) for p in relative_files(folder, AUDIO_SUFFIXES)])
        if sample_rate is not None:
            print(f"audio-folder: {sample_rate} Hz, the most common rate of the files (data.sample_rate overrides)", file=sys.stderr)
    loaded = load_audio_folder(folder, sample_rate=sample_rate or 16000, length=length or DEFAULT_LENGTH,
                               label_pattern=label_pattern)
    info = {"root": str(folder), "sample_rate": sample_rate or 16000, "length": length or DEFAULT_LENGTH}
    return _shuffled("audio-folder", loaded, info)


def fsdd_folder(root: str | None) -> Path:
    """The folder of FSDD recordings: ``root`` (or its ``recordings/``), else the default root."""
    folder = Path(root).expanduser() if root else default_root("fsdd")
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    if not folder.is_dir():
        raise DataError(
            f"the Free Spoken Digit Dataset is not at '{folder}': ganforge does not download it; get it from {FSDD_URL} "
            "(git clone, or its release archive) and give its recordings/ folder with data.root=DIR"
        )
    return folder


@DATASETS.register("fsdd", help="Free Spoken Digit Dataset: 3,000 recordings of spoken digits, 8 kHz, 10 classes; data.root=DIR")
def fsdd(
    *, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
    sample_rate: int | None, length: int | None,
) -> Dataset:
    """FSDD (Jakobovski et al.): 6 speakers x 10 digits x 50 recordings, files ``{digit}_{speaker}_{index}.wav``.

    The standard split: recordings 0-4 of every speaker and digit are ``'test'`` (300 clips),
    the rest ``'train'`` (2,700); ``'all'`` is both.

    Args:
        root: the ``recordings/`` folder (or the repository holding it); default
            ``$GANFORGE_CACHE/data/fsdd``. ganforge does not download it.
        split: ``'train'``, ``'test'`` or ``'all'``.
        sample_rate: Hz, default 8,000 (the recordings' own rate).
        length: samples per clip, default 6,144 (0.77 s at 8 kHz).
        resolution, channels: must be None (images only).
        download: ignored.
    """
    _refuse_image_options("fsdd", resolution, channels)
    if split not in ("train", "test", "all"):
        raise DataError(f"data set 'fsdd' has splits 'train', 'test' and 'all', got {split!r}")
    folder = fsdd_folder(root)
    rate, length = sample_rate or FSDD_RATE, length or FSDD_LENGTH
    loaded = load_audio_folder(folder, sample_rate=rate, length=length, label_pattern=FSDD_PATTERN, name="fsdd")
    if loaded["class_names"] != [str(d) for d in range(10)]:
        raise DataError(f"'{folder}' does not hold FSDD's ten digits (found classes {loaded['class_names']})")
    index = torch.tensor([int(re.match(FSDD_PATTERN, f.rsplit("/", 1)[-1]).group(3)) for f in loaded["files"]])  # type: ignore[union-attr]
    test = (index < len(FSDD_TEST_INDICES))
    keep = {"train": ~test, "test": test, "all": torch.ones_like(test)}[split]
    chosen = {"data": loaded["data"][keep], "labels": loaded["labels"][keep], "class_names": loaded["class_names"]}
    info = {"root": str(folder), "sample_rate": rate, "length": length, "split": split}
    return _shuffled("fsdd", chosen, info)
