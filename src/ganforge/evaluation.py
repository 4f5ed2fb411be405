"""The evaluation pipeline: samples from anywhere -> features (cached) -> metrics.

::

    ganforge.evaluate("cifar10:test", "runs/dcgan-cifar10", metrics=["fid", "kid"])
    ganforge.evaluate_run("runs/dcgan-digits")    # the run's data set and its eval config

A *source* resolves to samples: uint8 images ``[N, C, H, W]``, or float points ``[N, D]``
for the 2-D toy data sets. A source given as a string is, in this order:

* a run directory or a ``generator/`` folder: its generator is sampled (fixed seed,
  class-balanced labels for conditional generators);
* a ``.npy`` / ``.npz`` array: uint8 images ``[N, C, H, W]``, ``[N, H, W, C]`` or
  ``[N, H, W]``; float images in ``[-1, 1]`` (what ``ganforge sample --out x.npy`` writes);
  or points ``[N, D]``;
* an image folder (every image below it);
* a built-in data set name, optionally with a split: ``digits``, ``cifar10:test``.

Python callers may also pass a tensor / array, a :class:`~ganforge.data.Dataset`, a
:class:`~ganforge.models.Generator` or a :class:`Source`. Images go through a registered
feature extractor (``ganforge.extractors``); points are their own features. Features of
built-in data sets are cached under ``$GANFORGE_CACHE/features``. Metrics are registered
in :data:`METRICS` and return values under fixed keys (``fid``, ``kid_mean``, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch

from . import data as data_module
from .config import Config, DataConfig, from_dict, read_yaml
from .core import cached_tensors, resolve_device, to_uint8
from .data import Dataset
from .data.images import load_folder
from .errors import UserError
from .extractors import FeatureExtractor, Features, create as create_extractor, extract_features
from .models import Generator
from .rundir import load_generator
from .models.base import GENERATOR_CONFIG, seeded_latents
from .models.base import generate as generate_batched
from .registry import Registry, did_you_mean

DEFAULT_N = 5000  # samples drawn from a generator when ``n`` is not given
DEFAULT_BATCH_SIZE = 100
SUBSET_SEED = 0  # which rows a set larger than ``n`` keeps
KID_SUBSET_SIZE = 1000  # torch-fidelity's default; smaller sets use all their samples per subset
KID_SUBSETS = 100
PR_K = 3  # Kynkäänniemi et al.
DC_K = 5  # Naeem et al.
IS_SPLITS = 10
FEATURE_CACHE_VERSION = 1
ARRAY_SUFFIXES = (".npy", ".npz")

# --------------------------------------------------------------------------- sources


@dataclass
class Source:
    """Samples to evaluate, and what else metrics may need about them.

    Attributes:
        data: uint8 images ``[N, C, H, W]`` or float32 points ``[N, D]``, on the CPU.
        description: where the samples came from, for reports.
        info: ``data`` (the data set's name), ``centers`` and ``std`` of Gaussian
            mixtures, ``generated`` (sampled from a generator).
        cache_key: what identifies the features of a built-in data set in the cache;
            None for samples that are not cached.
    """

    data: torch.Tensor
    description: str
    info: dict[str, Any] = field(default_factory=dict)
    cache_key: dict[str, Any] | None = None

    @property
    def is_image(self) -> bool:
        return self.data.dim() == 4

    def __len__(self) -> int:
        return len(self.data)


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


def dataset_source(dataset: Dataset, cfg: DataConfig | None = None, n: int | None = None) -> Source:
    """A :class:`Source` of (a fixed subset of) ``dataset``; cached features when ``cfg`` is given."""
    data = take(dataset.data, n)
    info: dict[str, Any] = {"data": dataset.name}
    info.update({k: dataset.info[k] for k in ("centers", "std") if k in dataset.info})
    if dataset.labels is not None:
        info["labels"] = take(dataset.labels, n)  # the same rows as ``data`` (cas)
    if cfg is not None:
        info["data_config"] = cfg  # where its other splits live (cas tests on the test split)
    key = None
    if cfg is not None and data.dim() == 4:
        key = {
            "data": cfg.name,
            "split": cfg.split,
            "resolution": int(data.shape[-1]),
            "channels": int(data.shape[1]),
            "count": len(data),
            "digest": digest(data),  # the exact pixels: a changed root or folder is a new entry
        }
    description = f"{dataset.name}:{cfg.split}" if cfg is not None else dataset.name
    return Source(data, description, info, key)


@torch.no_grad()
def generate(generator: Generator, n: int, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """``n`` samples of ``generator`` as stored data: uint8 images or float32 points, on the CPU.

    The latents are those of ``generator.sample(n, seed)`` and conditional generators get
    labels ``0, 1, ..., K-1, 0, ...`` (class-balanced), so these are the same samples;
    they are converted batch by batch, so only the uint8 copies are ever held.
    """
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    z = seeded_latents(n, generator.latent_dim, seed)
    return generate_batched(generator, z, labels, batch_size=batch_size, convert=to_uint8 if generator.is_image else None)


def generated_source(generator: Generator, opts: SourceOptions, description: str = "generator") -> Source:
    """``opts.n`` (default :data:`DEFAULT_N`) samples of ``generator`` with seed ``opts.seed``."""
    n = opts.n or DEFAULT_N
    meta = getattr(generator, "meta", None) or {}
    info: dict[str, Any] = {"generated": True, "data": meta.get("data")}
    if "centers" in meta:
        info.update(centers=torch.tensor(meta["centers"]), std=float(meta["std"]))
    if generator.num_classes:
        info["labels"] = torch.arange(n) % generator.num_classes  # the labels generate() draws (cas)
    samples = generate(generator, n, seed=opts.seed, batch_size=opts.batch_size)
    return Source(samples, f"{description} ({n} samples, seed {opts.seed})", info)


def array_samples(array: Any, name: str = "array") -> torch.Tensor:
    """Convert an image or point array to stored form: uint8 ``[N, C, H, W]`` or float32 ``[N, D]``.

    Accepts uint8 (or 0-255 integer) images ``[N, C, H, W]``, ``[N, H, W, C]`` or
    ``[N, H, W]``, float images in ``[-1, 1]``, and numeric points ``[N, D]``.
    """
    x = array.detach().cpu() if isinstance(array, torch.Tensor) else torch.from_numpy(np.asarray(array))
    if x.numel() == 0 or x.dim() == 0:
        raise UserError(f"{name} holds no samples (shape {tuple(x.shape)})")
    if x.dtype == torch.bool or x.is_complex():
        raise UserError(f"{name} must hold numbers, got {x.dtype}")
    if x.dim() == 2:
        return x.float()
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise UserError(
            f"{name} must be images [N, C, H, W], [N, H, W, C] or [N, H, W], or points [N, D]; got shape {tuple(x.shape)}"
        )
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise UserError(f"{name}: images need 1 or 3 channels, got shape {tuple(x.shape)}")
    if x.is_floating_point():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.001 or hi > 1.001:
            raise UserError(
                f"{name}: float images must lie in [-1, 1] (what ganforge sample writes), got values in "
                f"[{lo:.3g}, {hi:.3g}]; store 0-255 images as uint8"
            )
        return to_uint8(x).contiguous()
    if x.dtype != torch.uint8 and (int(x.min()) < 0 or int(x.max()) > 255):
        raise UserError(f"{name}: integer images must lie in 0..255, got {int(x.min())}..{int(x.max())}")
    return x.to(torch.uint8).contiguous()


def _read_array(path: Path) -> np.ndarray:
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
    return path.is_dir() and any(
        (path / name).is_file() for name in ("config.yaml", GENERATOR_CONFIG, f"generator/{GENERATOR_CONFIG}")
    )


def _run_source(path: Path, opts: SourceOptions) -> Source:
    generator = load_generator(path, opts.device)
    if not isinstance(generator, Generator):  # a Translator needs inputs, not latents
        raise UserError(
            f"'{path}' holds an image-to-image generator: score it on its test pairs with `ganforge eval RUN_DIR`"
        )
    return generated_source(generator, opts, str(path))


def _array_source(path: Path, opts: SourceOptions) -> Source:
    return Source(take(array_samples(_read_array(path), f"'{path}'"), opts.n), str(path))


def _folder_source(path: Path, opts: SourceOptions) -> Source:
    data, _, _ = load_folder(path, opts.resolution, opts.channels, labels_from_subfolders=False)
    return Source(take(data, opts.n), str(path))


@dataclass(frozen=True)
class SourceKind:
    """A kind of path a source spec may name: a test on the path and its loader."""

    name: str
    matches: Callable[[Path], bool]
    load: Callable[[Path, SourceOptions], Source]


#: Path kinds, in the order they are tried (a run directory is also a folder).
SOURCE_KINDS: list[SourceKind] = [
    SourceKind("run", _is_run, _run_source),
    SourceKind("array", lambda p: p.is_file() and p.suffix.lower() in ARRAY_SUFFIXES, _array_source),
    SourceKind("folder", lambda p: p.is_dir(), _folder_source),
]


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.startswith((".", "~")) or Path(spec).suffix.lower() in (
        *ARRAY_SUFFIXES, ".png", ".jpg", ".jpeg",
    )


def _spec_source(spec: str, opts: SourceOptions) -> Source:
    path = Path(spec).expanduser()
    if path.exists():
        for kind in SOURCE_KINDS:
            if kind.matches(path):
                return kind.load(path, opts)
        raise UserError(
            f"'{spec}' is a file but not a .npy/.npz array (give the folder of an image set, a run directory, "
            "an array file or a data set name)"
        )
    name, _, split = spec.partition(":")
    if name in data_module.DATASETS and not _looks_like_path(spec):
        cfg = DataConfig(name=name, split=split or "train", resolution=opts.resolution, channels=opts.channels)
        return dataset_source(data_module.create(cfg), cfg, opts.n)
    if _looks_like_path(spec):
        raise UserError(f"'{spec}' does not exist (expected an image folder, a run directory or a .npy/.npz file)")
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
        return Source(take(source.data, opts.n), source.description, info)  # another subset: new cache key
    if isinstance(source, Generator):
        return generated_source(source, opts)
    if isinstance(source, Dataset):
        return dataset_source(source, None, opts.n)
    if isinstance(source, (torch.Tensor, np.ndarray)):
        return Source(take(array_samples(source), opts.n), f"array {tuple(source.shape)}")
    if isinstance(source, (str, Path)):
        return _spec_source(str(source), opts)
    raise TypeError(f"cannot evaluate a {type(source).__name__}: give a path, a data set name, an array or a generator")


# --------------------------------------------------------------------------- feature cache


def cached_features(key: dict[str, Any], compute: Callable[[], Features]) -> Features:
    """``compute()``, memoised under ``$GANFORGE_CACHE/features`` (see :func:`ganforge.core.cached`).

    ``key`` names the data set, split, resolution, count, extractor key and a digest of the
    samples; the full key is stored in the entry and checked on load. A corrupt or
    unreadable entry is recomputed; an unwritable cache only costs the speed-up.
    """
    label = f"{key['data']}-{key['split']}-{key['resolution']}px-{key['count']}-{key['extractor']}"

    def build() -> dict[str, torch.Tensor]:
        features = compute()
        tensors = {"features": features.features}
        if features.logits is not None:
            tensors["logits"] = features.logits
        return tensors

    entry = cached_tensors({"features": FEATURE_CACHE_VERSION, **key}, build, namespace="features", label=label)
    return Features(entry["features"], entry.get("logits"))


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``compute(inputs) -> {key: value}``.

    Attributes:
        primary: the key that ranks checkpoints when this metric comes first in a list.
        higher_is_better: direction of ``primary``.
        needs_real: compares against the real set (``is`` and ``modes`` do not).
        uses_features: runs the feature extractor on images (``modes`` does not).
    """

    compute: Callable[["EvalInputs"], dict[str, Any]]
    primary: str
    higher_is_better: bool
    needs_real: bool = True
    uses_features: bool = True


METRICS: Registry[Metric] = Registry("metric")


def register_metric(
    name: str,
    *,
    primary: str,
    higher_is_better: bool,
    needs_real: bool = True,
    uses_features: bool = True,
    aliases: tuple[str, ...] = (),
) -> Callable[[Callable[["EvalInputs"], dict[str, Any]]], Callable[["EvalInputs"], dict[str, Any]]]:
    """Decorator: register ``fn(inputs) -> dict`` as metric ``name``."""

    def decorator(fn: Callable[["EvalInputs"], dict[str, Any]]) -> Callable[["EvalInputs"], dict[str, Any]]:
        metric = Metric(fn, primary, higher_is_better, needs_real, uses_features)
        METRICS.add(name, metric, aliases=aliases, help=fn.__doc__ or "")
        return fn

    return decorator


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """The names in ``"fid,kid"`` / ``"fid kid"`` or a list (items may hold commas too)."""
    items = [metrics] if isinstance(metrics, str) else [str(m) for m in metrics]
    return [name for item in items for name in re.split(r"[,\s]+", item) if name]


def resolve_metrics(metrics: str | Sequence[str]) -> list[str]:
    """Canonical metric names, in order, without repeats (``"fid,kid"`` or a list).

    Raises:
        UserError: an unknown name (with a suggestion) or an empty list.
    """
    names = metric_names(metrics)
    if not names:
        raise UserError(f"no metric given (available: {', '.join(METRICS.names())})")
    out: list[str] = []
    for name in names:
        canonical = METRICS.canonical(str(name))
        if canonical not in out:
            out.append(canonical)
    return out


def check_real_given(metrics: Sequence[str], has_real: bool) -> None:
    """Raise when a metric that compares against real samples has none."""
    needing = [m for m in metrics if METRICS.get(m).needs_real]
    if needing and not has_real:
        raise UserError(f"{', '.join(needing)} compare(s) against real samples: give a real set (--real)")


class EvalInputs:
    """What a metric reads: the real (optional) and fake sources and their features (lazily)."""

    def __init__(self, real: Source | None, fake: Source, features: Callable[[Source, str], Features], kid_subset_size: int | None) -> None:
        self.real, self.fake = real, fake
        self.kid_subset_size = kid_subset_size
        self._features_of = features
        self._memo: dict[str, Features] = {}

    def features(self, side: str) -> Features:
        """Features (and logits) of ``"real"`` or ``"fake"``, computed on first use."""
        if side not in self._memo:
            source = self.real if side == "real" else self.fake
            assert source is not None, "check_real_given runs first"
            self._memo[side] = self._features_of(source, side)
        return self._memo[side]

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and fake feature matrices."""
        return self.features("real").features, self.features("fake").features

    def reference_info(self, key: str) -> Any:
        """``info[key]`` of the real set, else of the fake set (e.g. a generator's metadata)."""
        for source in (self.real, self.fake):
            if source is not None and source.info.get(key) is not None:
                return source.info[key]
        return None


@register_metric("fid", primary="fid", higher_is_better=False)
def _fid(inputs: EvalInputs) -> dict[str, Any]:
    """Fréchet distance between Gaussian fits of real and fake features (Heusel et al. 2017)."""
    from .metrics import fid_from_features

    real, fake = inputs.pair()
    n, dim = min(len(real), len(fake)), real.shape[1]
    if 2 <= n < dim:
        warnings.warn(
            f"FID from {n} samples of {dim}-d features is biased upwards (rank-deficient covariance); "
            f"use at least {dim} samples (10,000-50,000 for published numbers)",
            stacklevel=4,
        )
    return {"fid": fid_from_features(real, fake)}


@register_metric("kid", primary="kid_mean", higher_is_better=False)
def _kid(inputs: EvalInputs) -> dict[str, Any]:
    """Kernel Inception Distance: unbiased MMD^2, cubic kernel, mean and std over 100 subsets."""
    from .metrics import kernel_inception_distance

    real, fake = inputs.pair()
    size = inputs.kid_subset_size or min(KID_SUBSET_SIZE, len(real), len(fake))
    mean, std = kernel_inception_distance(real, fake, num_subsets=KID_SUBSETS, subset_size=size)
    return {"kid_mean": mean, "kid_std": std}


@register_metric("is", primary="is_mean", higher_is_better=True, needs_real=False, aliases=("inception-score",))
def _is(inputs: EvalInputs) -> dict[str, Any]:
    """Inception Score of the fake set from the extractor's logits (10 splits)."""
    from .metrics import inception_score

    logits = inputs.features("fake").logits
    if logits is None:
        raise UserError("is needs class logits: use images and an extractor with a classifier head")
    mean, std = inception_score(logits, splits=IS_SPLITS)
    return {"is_mean": mean, "is_std": std}


@register_metric("pr", primary="precision", higher_is_better=True, aliases=("precision-recall",))
def _pr(inputs: EvalInputs) -> dict[str, Any]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3."""
    from .metrics import precision_recall

    precision, recall = precision_recall(*inputs.pair(), k=PR_K)
    return {"precision": precision, "recall": recall}


@register_metric("dc", primary="density", higher_is_better=True, aliases=("density-coverage",))
def _dc(inputs: EvalInputs) -> dict[str, Any]:
    """Density and coverage (Naeem et al. 2020), k = 5."""
    from .metrics import density_coverage

    density, coverage = density_coverage(*inputs.pair(), k=DC_K)
    return {"density": density, "coverage": coverage}


def _mixture_modes(inputs: EvalInputs) -> dict[str, Any]:
    from .metrics import mode_stats

    centers, std = inputs.reference_info("centers"), inputs.reference_info("std")
    if inputs.fake.is_image or centers is None:
        raise UserError("modes on a Gaussian mixture needs 2-D points and the mixture's centres")
    stats = mode_stats(inputs.fake.data, centers, std)
    return {"modes": stats["modes_covered"], "high_quality": stats["high_quality"]}


def _stacked_mnist_modes(inputs: EvalInputs) -> dict[str, Any]:
    try:
        from .extractors.classifier import stacked_mnist_labels
        from .metrics.modes import class_mode_stats
    except ImportError:
        raise UserError("modes on stacked-mnist needs the MNIST classifier (ganforge.extractors.classifier)") from None
    stats = class_mode_stats(stacked_mnist_labels(inputs.fake.data), 1000)
    return {"modes": stats["modes"], "kl": stats["kl"]}


#: How ``modes`` counts modes, by the data set the samples come from.
MODE_COUNTERS: dict[str, Callable[[EvalInputs], dict[str, Any]]] = {
    "ring8": _mixture_modes,
    "grid25": _mixture_modes,
    "stacked-mnist": _stacked_mnist_modes,
}


@register_metric("modes", primary="modes", higher_is_better=True, needs_real=False, uses_features=False)
def _modes(inputs: EvalInputs) -> dict[str, Any]:
    """Modes covered: ring8/grid25 (and high-quality share), stacked-mnist (and KL to uniform)."""
    name = inputs.reference_info("data")
    if name not in MODE_COUNTERS:
        raise UserError(
            f"modes is defined for {', '.join(MODE_COUNTERS)} samples, not for "
            f"{repr(name) if name else 'these samples'}"
        )
    return MODE_COUNTERS[name](inputs)


@register_metric("cas", primary="cas", higher_is_better=True, uses_features=False,
                 aliases=("classification-accuracy-score",))
def _cas(inputs: EvalInputs) -> dict[str, Any]:
    """Classification Accuracy Score: a small CNN trained on the labelled fakes, tested on the real test split."""
    from .metrics.cas import cas_scores

    fake, real = inputs.fake, inputs.real
    assert real is not None, "check_real_given runs first"
    if not fake.is_image or fake.info.get("labels") is None:
        raise UserError("cas trains a classifier on labelled images: give a conditional generator (a run directory)")
    cfg = real.info.get("data_config")
    if cfg is None or real.info.get("labels") is None:
        raise UserError(
            "cas tests on the real test split of a labelled data set: evaluate a run on its own data set "
            "(no --real), or give --real NAME (e.g. mnist, digits)"
        )
    try:
        test = data_module.create(replace(cfg, split="test", max_samples=None))
    except UserError as err:
        raise UserError(f"cas needs the test split of '{cfg.name}': {err}") from None
    if test.labels is None:
        raise UserError(f"cas needs class labels, and '{cfg.name}' has none")
    return cas_scores(fake.data, fake.info["labels"], real.data, real.info["labels"], test.data, test.labels,
                      test.num_classes)


# --------------------------------------------------------------------------- evaluator


class Evaluator:
    """Scores fake sets against one real set with one extractor.

    The extractor is built on first use, and the real features are computed (or read from
    the cache) once, so the trainer scores each new generator at the cost of its samples.

    Args:
        real: the reference set (any source, see :func:`load_source`), or None for
            metrics that need none.
        metrics: names; the first is the primary one (see :attr:`primary`).
        extractor, extractor_weights: registered extractor name and optional weights file.
        device: where the extractor runs.
        batch_size: images per extractor batch.
        progress: show progress bars while extracting.
        kid_subset_size: KID subset size; default ``min(1000, n_real, n_fake)``.
    """

    def __init__(
        self,
        real: SourceLike | None,
        metrics: str | Sequence[str] = ("fid",),
        *,
        extractor: str = "inception",
        extractor_weights: str | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        kid_subset_size: int | None = None,
    ) -> None:
        self.metrics = resolve_metrics(metrics)
        check_real_given(self.metrics, real is not None)
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        self.real = None if real is None else load_source(real)
        self.extractor_name, self.extractor_weights = extractor, extractor_weights
        self.device = resolve_device(device)
        self.batch_size, self.progress, self.kid_subset_size = batch_size, progress, kid_subset_size
        self._extractor: FeatureExtractor | None = None
        self._real_features: Features | None = None

    @property
    def primary(self) -> tuple[str, bool]:
        """``(result key, higher_is_better)`` of the first metric."""
        metric = METRICS.get(self.metrics[0])
        return metric.primary, metric.higher_is_better

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = create_extractor(self.extractor_name, self.extractor_weights, self.device)
        return self._extractor

    def features(self, source: Source, side: str) -> Features:
        """Features of ``source``: points as they are, images through the extractor (cached)."""
        if side == "real" and self._real_features is not None:
            return self._real_features
        if not source.is_image:
            features = Features(source.data.float())
        else:
            extractor = self.extractor

            def compute() -> Features:
                return extract_features(
                    extractor, source.data, batch_size=self.batch_size, progress=self.progress, desc=f"{side} features"
                )

            key = source.cache_key
            features = cached_features({**key, "extractor": extractor.key}, compute) if key else compute()
        if side == "real":
            self._real_features = features
        return features

    def __call__(self, fake: SourceLike) -> dict[str, Any]:
        """Every metric of ``fake`` against the real set, plus ``n_real``, ``n_fake``, ``extractor``."""
        fake = load_source(fake)
        real = self.real
        if real is not None and real.is_image != fake.is_image:
            kinds = {True: "images", False: "points"}
            raise UserError(
                f"cannot compare {kinds[real.is_image]} (real, shape {tuple(real.data.shape[1:])}) with "
                f"{kinds[fake.is_image]} (fake, shape {tuple(fake.data.shape[1:])})"
            )
        inputs = EvalInputs(real, fake, self.features, self.kid_subset_size)
        results: dict[str, Any] = {}
        for name in self.metrics:
            try:
                results.update(METRICS.get(name).compute(inputs))
            except UserError:
                raise
            except ValueError as err:  # the metric functions' own checks: too few samples, sizes differ
                raise UserError(f"{name}: {str(err).splitlines()[0]}") from None
        used = any(METRICS.get(m).uses_features for m in self.metrics)
        results["n_real"] = len(real) if real is not None else None
        results["n_fake"] = len(fake)
        results["extractor"] = None if not used else (self.extractor.key if fake.is_image else "identity")
        return results


def evaluate(
    real: SourceLike | None,
    fake: SourceLike,
    metrics: str | Sequence[str] = ("fid",),
    n: int | None = None,
    extractor: str = "inception",
    extractor_weights: str | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    *,
    seed: int = 0,
    resolution: int | None = None,
    kid_subset_size: int | None = None,
) -> dict[str, Any]:
    """Compare ``fake`` samples with ``real`` ones.

    Args:
        real: the reference set (a source, see the module docstring), or None when only
            ``is``/``modes`` are asked for.
        fake: the set to score (a run directory, a generator, a folder, an array, ...).
        metrics: ``fid``, ``kid``, ``is``, ``pr``, ``dc``, ``modes`` (list or ``"fid,kid"``).
        n: at most ``n`` samples per set (a fixed-seed subset of larger sets); generators
            are sampled ``n`` times (default :data:`DEFAULT_N`).
        extractor, extractor_weights: registered feature extractor and optional weights.
        device: ``cpu``, ``cuda``, ``auto``.
        batch_size: images per batch (sampling and features).
        progress: show progress bars.
        seed: generator latents seed.
        resolution: square side for data sets and folders; by default the generator's
            when the other side is generated, else the native size.
        kid_subset_size: KID subset size (default ``min(1000, n_real, n_fake)``).

    Returns:
        ``{fid, kid_mean, kid_std, is_mean, is_std, precision, recall, density, coverage,
        modes, high_quality | kl}`` (those asked for) plus ``n_real``, ``n_fake`` and
        ``extractor`` (the extractor key; ``identity`` for points).

    Raises:
        UserError: a bad source, name or sample count (one line).
    """
    names = resolve_metrics(metrics)
    check_real_given(names, real is not None)
    if n is not None and n < 1:
        raise UserError(f"n must be >= 1, got {n}")
    opts = SourceOptions(n=n, resolution=resolution, seed=seed, batch_size=batch_size, device=resolve_device(device))
    fake_source = load_source(fake, opts)
    if fake_source.info.get("generated") and fake_source.is_image and resolution is None:
        # Read the reference at the generator's size, as the run's training data was.
        opts = replace(opts, resolution=int(fake_source.data.shape[-1]), channels=int(fake_source.data.shape[1]))
    real_source = None if real is None else load_source(real, opts)
    evaluator = Evaluator(
        real_source, names, extractor=extractor, extractor_weights=extractor_weights, device=opts.device,
        batch_size=batch_size, progress=progress, kid_subset_size=kid_subset_size,
    )
    return evaluator(fake_source)


def run_config(run_dir: str | Path) -> Config:
    """The saved config of a run directory."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml)")
    return from_dict(read_yaml(path))


def evaluate_run(
    run_dir: str | Path,
    metrics: str | Sequence[str] | None = None,
    n: int | None = None,
    extractor: str | None = None,
    extractor_weights: str | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    progress: bool = False,
    *,
    real: SourceLike | None = None,
    seed: int = 0,
    kid_subset_size: int | None = None,
) -> dict[str, Any]:
    """Evaluate a run's generator against its training data set, with its ``eval`` config.

    Arguments left as None come from the run's ``eval`` section (``metrics``, ``n``,
    ``extractor`` and its weights, ``batch_size``); ``real`` defaults to the run's data set
    (its features are cached). Returns what :func:`evaluate` returns.

    Runs of recipes with their own scoring (image-to-image: L1 and FID on the test split,
    see :meth:`~ganforge.training.recipes.Recipe.run_evaluator`) are handed to it.
    """
    from .training.recipes import RECIPES

    cfg = run_config(run_dir)
    custom = RECIPES.get(cfg.recipe).run_evaluator()
    if custom is not None:
        return custom(run_dir, metrics, n, extractor, extractor_weights, device, batch_size, progress,
                      real=real, seed=seed, kid_subset_size=kid_subset_size)
    e = cfg.eval
    if extractor is None:
        extractor, extractor_weights = e.extractor, extractor_weights or e.extractor_weights
    n = n if n is not None else e.n
    if real is None:
        real = dataset_source(data_module.create(cfg.data), cfg.data, n)
    return evaluate(
        real, run_dir, metrics if metrics is not None else e.metrics, n, extractor, extractor_weights, device,
        batch_size or e.batch_size, progress, seed=seed, kid_subset_size=kid_subset_size,
    )


def format_results(results: dict[str, Any]) -> str:
    """A two-column table of a result dict (6 significant digits)."""
    width = max(len(k) for k in results)
    lines = []
    for key, value in results.items():
        text = f"{value:.6g}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)


__all__ = [
    "METRICS",
    "Evaluator",
    "Metric",
    "Source",
    "SourceOptions",
    "cached_features",
    "dataset_source",
    "evaluate",
    "evaluate_run",
    "format_results",
    "generate",
    "load_source",
    "register_metric",
    "resolve_metrics",
]
