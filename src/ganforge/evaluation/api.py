"""The evaluation API: score samples (:func:`evaluate`, :class:`Evaluator`) and runs (:func:`evaluate_run`).

::

    ganforge.evaluate("cifar10:test", "runs/dcgan-cifar10", metrics=["fid", "kid"])
    ganforge.evaluate_run("runs/dcgan-digits")    # the run's data set and its eval config

Sources (see :mod:`ganforge.evaluation.sources`) go through a registered feature extractor
(``ganforge.extractors``) when they are images; points are their own features. Features of
built-in data sets are cached (:mod:`ganforge.evaluation.features`).

A run is scored by the evaluator registered for its recipe in :data:`RUN_EVALUATORS`
(image-to-image and super-resolution runs, see :mod:`ganforge.evaluation.translation` and
:mod:`ganforge.evaluation.superres`), else by :func:`evaluate_generator_run`. Every run
evaluator takes one :class:`EvalRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import torch

from .. import data as data_module
from .. import modality as modalities
from ..config import Config, EvalConfig
from ..core import resolve_device
from ..errors import UserError
from ..extractors import (
    EXTRACTORS,
    FeatureExtractor,
    Features,
    check_modality,
    check_weights,
    extract_features,
    input_modality,
    own_data_sets,
)
from ..extractors import create as create_extractor
from ..rundir import RunDir
from .features import cached_features
from .registry import METRICS, EvalInputs, check_real_given, resolve_metrics
from .sources import DEFAULT_BATCH_SIZE, Source, SourceLike, SourceOptions, dataset_source, load_source
from .statistics import PYTORCH_FID_EXTRACTOR, write_statistics

# --------------------------------------------------------------------------- samples


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

    def _class_names(self) -> tuple[str, ...] | None:
        return self.extractor.class_names

    def features(self, source: Source, side: str) -> Features:
        """Features of ``source``: through the extractor (cached) where its modality has one, else the samples."""
        if side == "real" and self._real_features is not None:
            return self._real_features
        if "statistics" in source.info:
            raise UserError(f"'{source.description}' holds only the mean and covariance of its features: it serves fid, "
                            "not metrics that need the features themselves")
        if source.kind.extractor is None:
            features = Features(source.kind.features(source.data))
        else:
            extractor = self.extractor

            def compute() -> Features:
                samples = source.kind.extractor_input(source.data, source.info, extractor)  # audio: at its rate
                return extract_features(
                    extractor, samples, batch_size=self.batch_size, progress=self.progress, desc=f"{side} features"
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
        if real is not None and real.modality != fake.modality:
            raise UserError(
                f"cannot compare {real.kind.plural} (real, shape {tuple(real.data.shape[1:])}) with "
                f"{fake.kind.plural} (fake, shape {tuple(fake.data.shape[1:])})"
            )
        if fake.kind.extractor is not None and any(METRICS.get(m).uses_features for m in self.metrics):
            check_modality(self.extractor_name, fake.modality, fake.kind.plural)  # before it is built
        inputs = EvalInputs(real, fake, self.features, self.kid_subset_size, class_names=self._class_names)
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
        results["extractor"] = None if not used else (self.extractor.key if fake.kind.extractor else "identity")
        return results


def evaluate(
    real: SourceLike | None,
    fake: SourceLike,
    metrics: str | Sequence[str] | None = None,
    n: int | None = None,
    extractor: str | None = None,
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
        real: the reference set (a source, see :mod:`ganforge.evaluation.sources`), or None when only
            ``is``/``modes`` are asked for.
        fake: the set to score (a run directory, a generator, a folder, an array, ...).
        metrics: ``fid``, ``kid``, ``is``, ``pr``, ``dc``, ``modes`` (list or ``"fid,kid"``); by
            default the fake samples' modality's (``fid`` for images and points).
        n: at most ``n`` samples per set (a fixed-seed subset of larger sets); generators
            are sampled ``n`` times (default :data:`~ganforge.evaluation.sources.DEFAULT_N`).
        extractor, extractor_weights: registered feature extractor and optional weights; by
            default the modality's (``inception`` for images; points are their own features).
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
    names = None if metrics is None else resolve_metrics(metrics)
    if names is not None:
        check_real_given(names, real is not None)  # before any sampling
    if n is not None and n < 1:
        raise UserError(f"n must be >= 1, got {n}")
    opts = SourceOptions(n=n, resolution=resolution, seed=seed, batch_size=batch_size, device=resolve_device(device))
    fake_source = load_source(fake, opts)
    if names is None:  # the fake samples' modality decides
        names = resolve_metrics(fake_source.kind.default_metrics)
        check_real_given(names, real is not None)
    extractor_given = extractor
    extractor = extractor or fake_source.kind.extractor or "inception"
    if fake_source.kind.extractor is not None and uses_features(names):
        check_modality(extractor, fake_source.modality, fake_source.kind.plural)  # inception does not read clips
        check_weights(extractor, extractor_weights)  # before the reference set is read and its features computed
    if fake_source.info.get("generated") and fake_source.is_image and resolution is None:
        # Read the reference at the generator's size, as the run's training data was.
        opts = replace(opts, resolution=int(fake_source.data.shape[-1]), channels=int(fake_source.data.shape[1]))
    real_source = None if real is None else load_source(real, opts)
    stats = None if real_source is None else real_source.info.get("statistics")
    if stats is not None:  # the statistics' own extractor (its key is NAME-WEIGHTSID), pytorch-fid's when untagged
        tag = stats["extractor"]
        theirs = tag.rsplit("-", 1)[0] if tag else PYTORCH_FID_EXTRACTOR
        extractor = extractor_given or theirs
        if tag and EXTRACTORS.canonical(extractor) != theirs:
            raise UserError(f"the statistics were computed with the {tag} extractor, not {extractor}: evaluate with "
                            f"--extractor {theirs}")
    if real_source is not None and real_source.modality == fake_source.modality:
        fake_source = fake_source.kind.conform(fake_source, real_source)  # audio: at the reference's sample rate
    evaluator = Evaluator(
        real_source, names, extractor=extractor, extractor_weights=extractor_weights, device=opts.device,
        batch_size=batch_size, progress=progress, kid_subset_size=kid_subset_size,
    )
    return evaluator(fake_source)


def save_statistics(real: SourceLike, path: str | Path, *, n: int | None = None, extractor: str | None = None,
                    extractor_weights: str | None = None, device: str | torch.device = "cpu",
                    batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False, resolution: int | None = None) -> dict[str, Any]:
    """Write the mean and covariance of ``real``'s features to ``path`` (``.npz``: ``mu``, ``sigma``, ``extractor``).

    Returns ``{"path", "n", "extractor"}`` (the extractor's key, which reading the file back checks).
    """
    opts = SourceOptions(n=n, resolution=resolution, batch_size=batch_size, device=resolve_device(device))
    source = load_source(real, opts)
    if "statistics" in source.info:
        raise UserError(f"'{real}' is already a statistics file")
    name = extractor or source.kind.extractor or "inception"
    check_weights(name, extractor_weights)
    evaluator = Evaluator(source, ["fid"], extractor=name, extractor_weights=extractor_weights, device=opts.device,
                          batch_size=batch_size, progress=progress)
    features = evaluator.features(source, "real").features
    written = write_statistics(path, features, evaluator.extractor.key)
    return {"path": str(written), "n": len(features), "extractor": evaluator.extractor.key}


def uses_features(metrics: Sequence[str]) -> bool:
    """Whether any of these (resolved) metrics runs the feature extractor."""
    return any(METRICS.get(m).uses_features for m in metrics)


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class ExtractorChoice:
    """The feature extractor a run is scored with, and why (``ganforge eval`` prints both).

    Attributes:
        name: a registered extractor, or None where samples are their own features (points).
        weights: its weights file, or None for the default.
        reason: why this one, in a few words.
        fits_data: the run's ``eval`` section was written for the run's data set (not a
            domain classifier of another one); otherwise its ``n`` is not used either.
    """

    name: str | None
    weights: str | None
    reason: str
    fits_data: bool = True

    def n(self, e: EvalConfig, requested: int | None = None) -> int:
        """The sample count: ``requested``, else the run's ``eval.n`` where it fits the data, else the default."""
        if requested is not None:
            return requested
        return e.n if self.fits_data else EvalConfig.n

    def check_weights(self, metrics: Sequence[str]) -> None:
        """Fail now, in one line, if these (resolved) metrics run the extractor and its weights are missing."""
        if self.name is not None and uses_features(metrics):
            check_weights(self.name, self.weights)


def choose_extractor(
    cfg: Config, requested: str | None = None, weights: str | None = None, modality: str | None = None
) -> ExtractorChoice:
    """The extractor of a run's evaluation: the defaults follow the data actually used.

    Samples of a modality without an extractor (points) are their own features. Otherwise
    ``requested`` wins; else the run's ``eval.extractor``, except that a domain classifier
    (``digits``, ``mnist``, ``cifar10``, ``fsdd``: :data:`~ganforge.extractors.base.OWN_DATA`) scores
    only its own data set: a run on other data (``cdcgan-digits`` with ``data.name=image-folder``)
    is scored with its modality's default extractor (Inception for images, the reference), and
    the run's ``eval.n`` is dropped with it. Where that default is the same domain classifier
    (``fsdd``, the only extractor of clips), it is kept, and the reason says so.

    An extractor asked for that reads another modality (``--extractor inception`` on a run of
    clips) is a one-line :class:`UserError`; one in the run's config (``eval.extractor``'s
    default, ``inception``, on a run of clips) gives way to the modality's default extractor
    (``fsdd`` for clips). ``modality`` None means images.
    """
    kind = modalities.get(modality or "image")
    if kind.extractor is None:
        return ExtractorChoice(None, None, f"{kind.plural} are their own features")
    e, data = cfg.eval, cfg.data.name
    own = own_data_sets(e.extractor)
    fits = own is None or data in own  # the eval section was written for this data set
    if requested is not None:
        check_modality(requested, kind.name, kind.plural)
        return ExtractorChoice(requested, weights, "asked for", fits)
    default = kind.extractor
    default_own = own_data_sets(default)
    if input_modality(e.extractor) != kind.name:  # the config's default, inception, on a run of clips
        reason = f"the default of {kind.plural}; eval.extractor {e.extractor} reads {input_modality(e.extractor)} samples"
        if default_own is not None and data not in default_own:
            reason += f" (a classifier of {' or '.join(default_own)}; data set {data} is not)"
        return ExtractorChoice(default, weights, reason, fits)
    if fits:
        reason = f"the classifier of the run's own data set {data}" if own else "the run's eval.extractor, a general one"
        return ExtractorChoice(e.extractor, weights or e.extractor_weights, reason)
    names = " or ".join(own or ())
    if default != e.extractor:
        return ExtractorChoice(
            default, weights, f"data set {data} is not {names}; the {e.extractor} classifier only scores {names}", False
        )
    return ExtractorChoice(e.extractor, weights or e.extractor_weights,
                           f"the default extractor of {kind.plural}, although data set {data} is not {names}", False)


def run_config(run_dir: str | Path) -> Config:
    """The saved config of a run directory."""
    return RunDir(run_dir).config


@dataclass(frozen=True)
class EvalRequest:
    """What is asked of a run's evaluation (``ganforge eval RUN_DIR``): one request, whatever the recipe.

    Fields left None come from the run (its ``eval`` section, data set or recipe options);
    each run evaluator says which fields it reads and rejects those it cannot honour.

    Attributes:
        run_dir: the run directory (its ``config.yaml`` and ``generator/``).
        metrics: metric names (a list or ``"fid,kid"``).
        n: sample count (generators), or at most this many test pairs / images.
        extractor, extractor_weights: registered feature extractor and optional weights file.
        device: where the generator and the extractor run.
        batch_size: images per batch (sampling and features).
        progress: show progress bars.
        real: the reference set (a source), or what the recipe reads instead (SR: folders).
        seed: generator latents seed.
        kid_subset_size: KID subset size.
    """

    run_dir: str | Path
    metrics: str | Sequence[str] | None = None
    n: int | None = None
    extractor: str | None = None
    extractor_weights: str | None = None
    device: str | torch.device = "cpu"
    batch_size: int | None = None
    progress: bool = False
    real: SourceLike | None = None
    seed: int = 0
    kid_subset_size: int | None = None

    @classmethod
    def of(cls, run: RunLike, **fields: Any) -> EvalRequest:
        """``run`` (a run directory or a request) as a request, with ``fields`` replaced."""
        if isinstance(run, EvalRequest):
            return replace(run, **fields) if fields else run
        return cls(run, **fields)

    @cached_property
    def config(self) -> Config:
        """The run's saved config (read once)."""
        return run_config(self.run_dir)

    def extractor_choice(self) -> ExtractorChoice:
        """The request's extractor, else the run's as :func:`choose_extractor` picks it for the run's data and modality."""
        modality = RunDir(self.run_dir).generator_meta().get("modality")
        return choose_extractor(self.config, self.extractor, self.extractor_weights, modality)


RunLike = Union[str, Path, EvalRequest]
RunEvaluator = Callable[[EvalRequest], dict[str, Any]]

#: Recipe name -> the run evaluator of its runs; recipes not listed use :func:`evaluate_generator_run`.
RUN_EVALUATORS: dict[str, RunEvaluator] = {}


def register_run_evaluator(*recipes: str) -> Callable[[RunEvaluator], RunEvaluator]:
    """Decorator: score runs of ``recipes`` with ``fn(request) -> results``."""

    def decorator(fn: RunEvaluator) -> RunEvaluator:
        for recipe in recipes:
            if recipe in RUN_EVALUATORS:
                raise ValueError(f"recipe '{recipe}' already has a run evaluator ({RUN_EVALUATORS[recipe].__name__})")
            RUN_EVALUATORS[recipe] = fn
        return fn

    return decorator


def evaluate_generator_run(request: EvalRequest) -> dict[str, Any]:
    """Score a latent-variable generator's run against its training data set, with its ``eval`` config.

    Fields left None come from the run's ``eval`` section (``metrics``, ``n``, ``extractor``
    and its weights, ``batch_size``); ``real`` defaults to the run's data set (its features
    are cached). Returns what :func:`evaluate` returns.
    """
    cfg = request.config
    e = cfg.eval
    choice = request.extractor_choice()
    metrics = resolve_metrics(request.metrics if request.metrics is not None else e.metrics)
    choice.check_weights(metrics)  # before the data set is read and the generator sampled
    n = choice.n(e, request.n)
    real = request.real if request.real is not None else dataset_source(data_module.create(cfg.data), cfg.data, n)
    return evaluate(
        real, request.run_dir, metrics, n, choice.name, choice.weights,
        request.device, request.batch_size or e.batch_size, request.progress, seed=request.seed,
        kid_subset_size=request.kid_subset_size,
    )


def evaluate_run(run: RunLike, **fields: Any) -> dict[str, Any]:
    """Evaluate a run the way its recipe is scored (``ganforge eval RUN_DIR``).

    Args:
        run: the run directory, or a whole :class:`EvalRequest`.
        fields: :class:`EvalRequest` fields (``metrics``, ``n``, ``extractor``, ``real``, ``seed``, ...);
            those left out come from the run.

    Returns:
        Latent GANs: what :func:`evaluate` returns; other recipes: their evaluator's results
        (image-to-image: ``l1`` and feature metrics on the test pairs; super-resolution:
        PSNR/SSIM per benchmark folder).
    """
    request = EvalRequest.of(run, **fields)
    return RUN_EVALUATORS.get(request.config.recipe, evaluate_generator_run)(request)


def format_results(results: dict[str, Any]) -> str:
    """A two-column table of a result dict (6 significant digits)."""
    width = max(len(k) for k in results)
    lines = []
    for key, value in results.items():
        text = f"{value:.6g}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)


__all__ = [
    "RUN_EVALUATORS",
    "EvalRequest",
    "Evaluator",
    "ExtractorChoice",
    "RunEvaluator",
    "RunLike",
    "choose_extractor",
    "evaluate",
    "evaluate_generator_run",
    "evaluate_run",
    "format_results",
    "register_run_evaluator",
    "run_config",
    "uses_features",
]
