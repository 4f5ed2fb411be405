"""Sources: anything evaluable, resolved to samples (uint8 images, float clips or float points).

A *source* resolves to samples: uint8 images ``[N, C, H, W]``, float audio clips
``[N, 1, L]`` in [-1, 1], or float points ``[N, D]`` for the 2-D toy data sets. A source
given as a string is, in this order:

* a run directory or a ``generator/`` folder: its generator is sampled (fixed seed,
  class-balanced labels for conditional generators);
* a ``.npy`` / ``.npz`` array: uint8 images ``[N, C, H, W]``, ``[N, H, W, C]`` or
  ``[N, H, W]``; float images in ``[-1, 1]`` (what ``ganforge sample --out x.npy`` writes);
  or points ``[N, D]``;
* a folder of audio files (WAV/FLAC/OGG, every one below it; images beside them, such as
  the ``spectrograms.png`` of ``ganforge sample --out DIR/``, are ignored): clips at the
  files' most common sample rate, all as long as the longest, labelled by their class
  sub-folders when every file lies in one (``ganforge synthesize``); unreadable files are
  skipped with a warning;
* an image folder (every image below it);
* a built-in data set name, optionally with a split: ``digits``, ``cifar10:test``.

Python callers may also pass a tensor / array, a :class:`~ganforge.data.Dataset`, a
:class:`~ganforge.models.Generator` or a :class:`Source`.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch

from .. import data as data_module
from .. import modality as modalities
from ..audio.wav import soundfile
from ..config import DataConfig
from ..core import IMAGE_SUFFIXES, to_uint8
from ..data import Dataset
from ..data.audio import AUDIO_SUFFIXES, load_audio_folder
from ..data.images import load_folder, relative_files
from ..errors import UserError
from ..models import Generator
from ..models.base import GENERATOR_CONFIG, seeded_latents
from ..models.base import generate as generate_batched
from ..registry import did_you_mean
from ..rundir import RunDir, load_generator
from .statistics import is_statistics_file, read_statistics

DEFAULT_N = 5000  # samples drawn from a generator when ``n`` is not given
DEFAULT_BATCH_SIZE = 100
SUBSET_SEED = 0  # which rows a set larger than ``n`` keeps
ARRAY_SUFFIXES = (".npy", ".npz")


@dataclass
class Source:
    """Samples to evaluate, and what else metrics may need about them.

    Attributes:
        data: uint8 images ``[N, C, H, W]``, float32 clips ``[N, 1, L]`` or float32 points
            ``[N, D]``, on the CPU.
        description: where the samples came from, for reports.
        info: ``data`` (the data set's name), ``centers`` and ``std`` of Gaussian
            mixtures, ``generated`` (sampled from a generator), ``labels`` and
            ``class_names`` of labelled samples, ``sample_rate`` of clips.
        cache_key: what identifies the features of a built-in data set in the cache;
            None for samples that are not cached.
        modality: what a sample is (:mod:`ganforge.modality`); inferred from the shape when
            not given (``image`` for ``[N, C, H, W]``, else ``points``).
    """

    data: torch.Tensor
    description: str
    info: dict[str, Any] = field(default_factory=dict)
    cache_key: dict[str, Any] | None = None
    modality: str = ""

    def __post_init__(self) -> None:
        self.modality = self.modality or modalities.infer(tuple(self.data.shape[1:]))

    @property
    def kind(self) -> modalities.Modality:
        return modalities.get(self.modality).bind(self.info)

    @property
    def is_image(self) -> bool:
        return self.modality == "image"

    def __len__(self) -> int:
        return len(self.data)

    def replace(self, data: torch.Tensor, **info: Any) -> "Source":
        """The same source holding ``data`` instead (``info`` updated; not cached)."""
        return Source(data, self.description, {**self.info, **info}, modality=self.modality)


@dataclass(frozen=True)
class SourceOptions:
    """How sources are read: sample count, image size (folders, data sets), sampling."""

    n: int | None = None  # at most this many samples (a fixed-seed subset); generators: exactly n
    resolution: int | None = None  # data sets and folders: square side; None = native
    channels: int | None = None  # data sets and folders: 1 or 3; None = native
    seed: int = 0  # generator latents
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str | torch.device = "cpu"


SourceLike = Union[str, Path, torch.Tensor, np.ndarray, Dataset, Generator, Source]


def take(x: torch.Tensor, n: int | None) -> torch.Tensor:
    """``x``, or a fixed-seed random subset of ``n`` of its rows (kept in order) when it has more."""
    if n is None or n >= len(x):
        return x
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SUBSET_SEED))
    return x[order[:n].sort().values]


def digest(x: torch.Tensor) -> str:
    """SHA-256 of a CPU tensor's bytes (identifies the exact samples in cache keys)."""
    return hashlib.sha256(np.ascontiguousarray(x.numpy())).hexdigest()


def other_split(cfg: DataConfig, split: str, metric: str) -> Dataset:
    """Split ``split`` of the data set ``cfg`` names, whole (a reference set's ``info["data_config"]``: where its other
    splits live); a one-line error naming ``metric`` when it cannot be read."""
    try:
        return data_module.create(replace(cfg, split=split, max_samples=None))
    except UserError as err:
        raise UserError(f"{metric} needs the {split} split of '{cfg.name}': {err}") from None


def image_key(images: torch.Tensor) -> dict[str, Any]:
    """What identifies a set of images in the feature cache besides where it came from: size, channels, count,
    and a digest of the exact pixels."""
    return {"resolution": int(images.shape[-1]), "channels": int(images.shape[1]), "count": len(images),
            "digest": digest(images)}


def dataset_source(dataset: Dataset, cfg: DataConfig | None = None, n: int | None = None) -> Source:
    """A :class:`Source` of (a fixed subset of) ``dataset``; cached features when ``cfg`` is given."""
    data = take(dataset.data, n)
    info: dict[str, Any] = {"data": dataset.name}
    kind = modalities.of(dataset)
    meta = kind.generator_meta(dataset)  # what a generator of this data would record (audio: sample rate; text: vocabulary)
    info.update({k: dataset.info[k] for k in ("centers", "std") if k in dataset.info})
    info.update(kind.source_info(meta))
    if dataset.labels is not None:
        info["labels"] = take(dataset.labels, n)  # the same rows as ``data`` (cas, accuracy)
        info["class_names"] = dataset.class_names
    if cfg is not None:
        info["data_config"] = cfg  # where its other splits live (cas tests on the test split)
    key = None
    if cfg is not None and data.dim() == 4:
        key = {"data": cfg.name, "split": cfg.split, **image_key(data)}  # a changed root or folder is a new entry
    elif cfg is not None and kind.extractor is not None:  # other modalities scored by an extractor (audio)
        key = {
            "data": cfg.name,
            "split": cfg.split,
            "shape": [int(s) for s in data.shape[1:]],
            **{k: str(v) for k, v in kind.output_fields(meta).items()},  # audio: the sample rate
            "count": len(data),
            "digest": digest(data),  # the exact samples
        }
    description = f"{dataset.name}:{cfg.split}" if cfg is not None else dataset.name
    return Source(data, description, info, key, dataset.modality)


@torch.no_grad()
def generate(generator: Generator, n: int, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """``n`` samples of ``generator`` as stored data: uint8 images or float32 points, on the CPU.

    The latents are those of ``generator.sample(n, seed)`` and conditional generators get
    labels ``0, 1, ..., K-1, 0, ...`` (class-balanced), so these are the same samples;
    they are converted batch by batch, so only the uint8 copies are ever held.
    """
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    z = seeded_latents(n, generator.latent_dim, seed)
    return generate_batched(generator, z, labels, batch_size=batch_size, convert=modalities.of(generator).to_stored)


def generated_source(generator: Generator, opts: SourceOptions, description: str = "generator") -> Source:
    """``opts.n`` (default :data:`DEFAULT_N`) samples of ``generator`` with seed ``opts.seed``."""
    n = opts.n or DEFAULT_N
    meta = getattr(generator, "meta", None) or {}
    kind = modalities.of(generator)
    info: dict[str, Any] = {"generated": True, "data": meta.get("data"), "generator": generator, **kind.source_info(meta)}
    if "centers" in meta:
        info.update(centers=torch.tensor(meta["centers"]), std=float(meta["std"]))
    if generator.num_classes:
        info["labels"] = torch.arange(n) % generator.num_classes  # the labels generate() draws (cas, accuracy)
        info["class_names"] = meta.get("class_names")
    samples = generate(generator, n, seed=opts.seed, batch_size=opts.batch_size)
    return Source(samples, f"{description} ({n} samples, seed {opts.seed})", info, modality=kind.name)


def require_modality(source: "Source | None", modality: str, metric: str, what: str) -> "Source":
    """``source`` when it holds ``modality`` samples, else a one-line error: ``{metric} scores {what}, got ...``."""
    if source is None or source.modality != modality:
        kind = "nothing" if source is None else source.kind.plural
        raise UserError(f"{metric} scores {what}, got {kind}")
    return source


def array_samples(array: Any, name: str = "array") -> torch.Tensor:
    """Convert an image, clip or point array to stored form: uint8 ``[N, C, H, W]`` or ``[N, T, C, H, W]``,
    float32 ``[N, 1, L]`` or ``[N, D]``.

    Accepts uint8 (or 0-255 integer) images ``[N, C, H, W]``, ``[N, H, W, C]`` or
    ``[N, H, W]``, float images in ``[-1, 1]``, video clips ``[N, T, C, H, W]`` or
    ``[N, T, H, W, C]`` (uint8, or float in [-1, 1] as ``ganforge sample --out x.npy`` writes),
    float mono clips ``[N, 1, L]`` (what ``ganforge sample --out x.npy`` writes for audio),
    and numeric points ``[N, D]``.
    """
    x = array.detach().cpu() if isinstance(array, torch.Tensor) else torch.from_numpy(np.asarray(array))
    if x.numel() == 0 or x.dim() == 0:
        raise UserError(f"{name} holds no samples (shape {tuple(x.shape)})")
    if x.dtype == torch.bool or x.is_complex():
        raise UserError(f"{name} must hold numbers, got {x.dtype}")
    if x.dim() == 2:
        return x.float()
    if x.dim() == 3 and x.shape[1] == 1 and x.is_floating_point():  # mono clips [N, 1, L] (no image is 1 pixel tall)
        return x.float().clamp(-1.0, 1.0).contiguous()
    if x.dim() == 5:  # video clips [N, T, C, H, W] or [N, T, H, W, C]
        if x.shape[2] not in (1, 3) and x.shape[-1] in (1, 3):
            x = x.permute(0, 1, 4, 2, 3)
        if x.shape[2] not in (1, 3):
            raise UserError(f"{name}: video frames need 1 or 3 channels, got shape {tuple(x.shape)}")
        return _pixels(x, name, "clips")
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise UserError(
            f"{name} must be images [N, C, H, W], [N, H, W, C] or [N, H, W], clips [N, T, C, H, W], or points [N, D]; "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise UserError(f"{name}: images need 1 or 3 channels, got shape {tuple(x.shape)}")
    return _pixels(x, name, "images")


def _pixels(x: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """Float pixels in [-1, 1] or integer pixels in 0..255 -> uint8 (a one-line error for others)."""
    if x.is_floating_point():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.001 or hi > 1.001:
            raise UserError(
                f"{name}: float {what} must lie in [-1, 1] (what ganforge sample writes), got values in "
                f"[{lo:.3g}, {hi:.3g}]; store 0-255 {what} as uint8"
            )
        return to_uint8(x).contiguous()
    if x.dtype != torch.uint8 and (int(x.min()) < 0 or int(x.max()) > 255):
        raise UserError(f"{name}: integer {what} must lie in 0..255, got {int(x.min())}..{int(x.max())}")
    return x.to(torch.uint8).contiguous()


def read_array(path: Path) -> np.ndarray:
    """The array in a ``.npy`` file, or the one array (or ``images``/``samples``) of a ``.npz``."""
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            key = next((k for k in ("images", "samples") if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise UserError(
                    f"'{path}' holds {len(names)} arrays ({', '.join(names) or 'none'}); name the one to use 'images'"
                )
            return archive[key]
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot read array file '{path}': {reason}") from None


def _is_run(path: Path) -> bool:
    return RunDir(path).is_run() or (path / GENERATOR_CONFIG).is_file()


def _run_source(path: Path, opts: SourceOptions) -> Source:
    generator = load_generator(path, opts.device)
    if not isinstance(generator, Generator):  # a Translator needs inputs, not latents
        raise UserError(
            f"'{path}' holds an image-to-image generator: score it on its test pairs with `ganforge eval RUN_DIR`"
        )
    return generated_source(generator, opts, str(path))


def _statistics_source(path: Path, opts: SourceOptions) -> Source:
    """A reference set known only by its feature statistics: no samples, ``info["statistics"]`` (FID reads it)."""
    stats = read_statistics(path)
    return Source(torch.zeros(0, 3, 1, 1, dtype=torch.uint8), f"{path} (feature statistics)", {"statistics": stats},
                  modality="image")


def _array_source(path: Path, opts: SourceOptions) -> Source:
    return Source(take(array_samples(read_array(path), f"'{path}'"), opts.n), str(path))


def _audio_files(path: Path) -> list[str]:
    return [os.path.join(path, *parts) for parts in relative_files(path, AUDIO_SUFFIXES)]


def _clip_format(files: list[str]) -> tuple[int, int]:
    """The most common sample rate of ``files`` and the length (at that rate) of the longest; unreadable headers are skipped."""
    sf = soundfile()
    headers = []
    for file in files:
        try:
            info = sf.info(file)
        except Exception:  # noqa: BLE001 - unreadable files are reported (and skipped) when decoded
            continue
        if info.samplerate > 0:
            headers.append((int(info.samplerate), int(info.frames)))
    if not headers:
        return 16000, 1  # nothing readable: decoding reports it
    rates = [rate for rate, _ in headers]
    rate = max(set(rates), key=lambda r: (rates.count(r), r))
    return rate, max(1, max(math.ceil(frames * rate / r) for r, frames in headers))


def _audio_folder_source(path: Path, opts: SourceOptions) -> Source:
    files = _audio_files(path)
    rate, length = _clip_format(files)
    loaded = load_audio_folder(path, sample_rate=rate, length=length, label_pattern=None, cache=False)
    data = take(loaded["data"], opts.n)
    info: dict[str, Any] = {"sample_rate": rate}
    if loaded["labels"] is not None:
        info.update(labels=take(loaded["labels"], opts.n), class_names=loaded["class_names"])
    return Source(data, f"{path} ({len(data)} clips, {rate} Hz)", info, modality="audio")


def _folder_source(path: Path, opts: SourceOptions) -> Source:
    """An image folder; its features are cached by the exact pixels read (a changed or added image is a new entry)."""
    data, _, _ = load_folder(path, opts.resolution, opts.channels, labels_from_subfolders=False)
    data = take(data, opts.n)
    key = {"folder": str(path.resolve()), **image_key(data)} if data.dim() == 4 and len(data) else None
    return Source(data, str(path), cache_key=key)


@dataclass(frozen=True)
class SourceKind:
    """A kind of path a source spec may name: a test on the path and its loader."""

    name: str
    matches: Callable[[Path], bool]
    load: Callable[[Path, SourceOptions], Source]


#: Path kinds, in the order they are tried (a run directory is also a folder).
SOURCE_KINDS: list[SourceKind] = [
    SourceKind("run", _is_run, _run_source),
    SourceKind("statistics", is_statistics_file, _statistics_source),  # before array: an .npz of mu and sigma
    SourceKind("array", lambda p: p.is_file() and p.suffix.lower() in ARRAY_SUFFIXES, _array_source),
    SourceKind("audio-folder", lambda p: p.is_dir() and bool(_audio_files(p)), _audio_folder_source),
    SourceKind("folder", lambda p: p.is_dir(), _folder_source),
]


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.startswith((".", "~")) or Path(spec).suffix.lower() in (
        *ARRAY_SUFFIXES, *IMAGE_SUFFIXES,
    )


def _spec_source(spec: str, opts: SourceOptions) -> Source:
    path = Path(spec).expanduser()
    if path.exists():
        for kind in SOURCE_KINDS:
            if kind.matches(path):
                return kind.load(path, opts)
        raise UserError(
            f"'{spec}' is a file but not a .npy/.npz array (give the folder of an image or audio set, a run directory, "
            "an array file or a data set name)"
        )
    name, _, split = spec.partition(":")
    if name in data_module.DATASETS and not _looks_like_path(spec):
        cfg = DataConfig(name=name, split=split or "train", resolution=opts.resolution, channels=opts.channels)
        return dataset_source(data_module.create(cfg), cfg, opts.n)
    if _looks_like_path(spec):
        raise UserError(f"'{spec}' does not exist (expected an image or audio folder, a run directory or a .npy/.npz file)")
    names = data_module.DATASETS.names()
    raise UserError(
        f"unknown source '{spec}': no such file or folder, nor a data set name{did_you_mean(name, names)} "
        f"(data sets: {', '.join(names)})"
    )


def load_source(source: SourceLike, opts: SourceOptions = SourceOptions()) -> Source:
    """Resolve anything evaluable to a :class:`Source` (see the module docstring)."""
    if isinstance(source, Source):
        if opts.n is None or opts.n >= len(source):
            return source
        info = {**source.info, **({"labels": take(source.info["labels"], opts.n)} if "labels" in source.info else {})}
        return Source(take(source.data, opts.n), source.description, info, modality=source.modality)  # new cache key
    if isinstance(source, Generator):
        return generated_source(source, opts)
    if isinstance(source, Dataset):
        return dataset_source(source, None, opts.n)
    if isinstance(source, (torch.Tensor, np.ndarray)):
        return Source(take(array_samples(source), opts.n), f"array {tuple(source.shape)}")
    if isinstance(source, (str, Path)):
        return _spec_source(str(source), opts)
    raise TypeError(f"cannot evaluate a {type(source).__name__}: give a path, a data set name, an array or a generator")


__all__ = [
    "ARRAY_SUFFIXES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_N",
    "SOURCE_KINDS",
    "Source",
    "SourceKind",
    "SourceLike",
    "SourceOptions",
    "array_samples",
    "dataset_source",
    "digest",
    "generate",
    "generated_source",
    "load_source",
    "read_array",
    "take",
]
