"""The built-in metrics: adapters from :class:`~ganforge.evaluation.registry.EvalInputs` to the pure
functions of :mod:`ganforge.metrics` (``fid``, ``kid``, ``is``, ``pr``, ``dc``, ``modes``, ``accuracy``, ``cas``).

Importing this module registers them in :data:`~ganforge.evaluation.registry.METRICS`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

from ..config import DataConfig
from ..data import Dataset
from ..errors import UserError
from ..extractors.classifier import stacked_mnist_labels
from ..metrics import (
    density_coverage,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    label_accuracy,
    mode_stats,
    precision_recall,
)
from ..metrics import modes as mode_metrics
from ..metrics.cas import CAS_NETWORKS, cas_scores
from .registry import EvalInputs, register_metric
from .sources import other_split

KID_SUBSET_SIZE = 1000  # torch-fidelity's default; smaller sets use all their samples per subset
KID_SUBSETS = 100
PR_K = 3  # Kynkäänniemi et al.
DC_K = 5  # Naeem et al.
IS_SPLITS = 10
STACKED_MNIST_MODES = 1000  # three digits, one per channel: 10^3 classes


@register_metric("fid", primary="fid", higher_is_better=False)
def _fid(inputs: EvalInputs) -> dict[str, Any]:
    """Fréchet distance between Gaussian fits of real and fake features (Heusel et al. 2017); the real side may be
    a statistics file's mean and covariance (pytorch-fid's .npz)."""
    stats = inputs.real.info.get("statistics") if inputs.real is not None else None
    if stats is not None:
        mu, sigma = feature_statistics(inputs.features("fake").features)
        if len(mu) != len(stats["mu"]):
            raise UserError(f"fid: the statistics are of {len(stats['mu'])}-d features, the extractor gives {len(mu)}-d")
        return {"fid": frechet_distance(stats["mu"], stats["sigma"], mu, sigma)}
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
    real, fake = inputs.pair()
    size = inputs.kid_subset_size or min(KID_SUBSET_SIZE, len(real), len(fake))
    mean, std = kernel_inception_distance(real, fake, num_subsets=KID_SUBSETS, subset_size=size)
    return {"kid_mean": mean, "kid_std": std}


@register_metric("is", primary="is_mean", higher_is_better=True, needs_real=False, aliases=("inception-score",))
def _is(inputs: EvalInputs) -> dict[str, Any]:
    """Inception Score of the fake set from the extractor's logits (10 splits)."""
    logits = inputs.features("fake").logits
    if logits is None:
        raise UserError("is needs class logits: use an extractor with a classifier head")
    mean, std = inception_score(logits, splits=IS_SPLITS)
    return {"is_mean": mean, "is_std": std}


@register_metric("pr", primary="precision", higher_is_better=True, aliases=("precision-recall",))
def _pr(inputs: EvalInputs) -> dict[str, Any]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3."""
    precision, recall = precision_recall(*inputs.pair(), k=PR_K)
    return {"precision": precision, "recall": recall}


@register_metric("dc", primary="density", higher_is_better=True, aliases=("density-coverage",))
def _dc(inputs: EvalInputs) -> dict[str, Any]:
    """Density and coverage (Naeem et al. 2020), k = 5."""
    density, coverage = density_coverage(*inputs.pair(), k=DC_K)
    return {"density": density, "coverage": coverage}


def _mixture_modes(inputs: EvalInputs) -> dict[str, Any]:
    centers, std = inputs.reference_info("centers"), inputs.reference_info("std")
    if inputs.fake.is_image or centers is None:
        raise UserError("modes on a Gaussian mixture needs 2-D points and the mixture's centres")
    stats = mode_stats(inputs.fake.data, centers, std)
    return {"modes": stats["modes_covered"], "high_quality": stats["high_quality"]}


def _stacked_mnist_modes(inputs: EvalInputs) -> dict[str, Any]:
    # Looked up when called: the MNIST classifier is optional (and replaceable in tests).
    stats = mode_metrics.class_mode_stats(stacked_mnist_labels(inputs.fake.data), STACKED_MNIST_MODES)
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


@register_metric("accuracy", primary="accuracy", higher_is_better=True, needs_real=False, aliases=("label-accuracy",))
def _accuracy(inputs: EvalInputs) -> dict[str, Any]:
    """Share of labelled samples (a conditional run's) that the extractor's classifier gives their label, overall and per label."""
    fake = inputs.fake
    labels = fake.info.get("labels")
    if labels is None:
        raise UserError(f"accuracy needs labelled {fake.kind.plural}: give a conditional generator (a run directory)")
    classes = inputs.class_names()
    logits = inputs.features("fake").logits
    if logits is None or classes is None:
        raise UserError("accuracy needs a classifier of the data's classes as extractor (e.g. mnist, fsdd)")
    names = [str(n) for n in fake.info.get("class_names") or range(int(labels.max()) + 1)]
    unknown = [name for name in names if name not in classes]
    if unknown:
        raise UserError(
            f"accuracy: the extractor's classifier knows classes {', '.join(classes)}, not the {fake.kind.plural}' "
            f"label '{unknown[0]}' (score it with a classifier of its data set)"
        )
    to_classifier = torch.tensor([classes.index(name) for name in names])  # sample label index -> classifier's index
    return label_accuracy(logits.argmax(dim=1), to_classifier[labels.long()], classes)


def cas_test_split(cfg: DataConfig) -> Dataset:
    """The labelled ``test`` split of the data set ``cfg`` names (what CAS classifiers are tested on)."""
    test = other_split(cfg, "test", "cas")
    if test.labels is None:
        raise UserError(f"cas needs class labels, and '{cfg.name}' has none")
    return test


@register_metric("cas", primary="cas", higher_is_better=True, uses_features=False,
                 aliases=("classification-accuracy-score",))
def _cas(inputs: EvalInputs) -> dict[str, Any]:
    """Classification Accuracy Score: a small CNN trained on the labelled fakes, tested on the real test split."""
    fake, real = inputs.fake, inputs.real
    assert real is not None, "check_real_given runs first"
    if fake.modality not in CAS_NETWORKS:
        raise UserError(f"cas trains a classifier of {' or '.join(sorted(CAS_NETWORKS))} samples, not of {fake.kind.plural}")
    if fake.info.get("labels") is None:
        raise UserError(f"cas trains a classifier on labelled {fake.kind.plural}: give a conditional generator (a run directory)")
    cfg = real.info.get("data_config")
    if cfg is None or real.info.get("labels") is None:
        raise UserError(
            "cas tests on the real test split of a labelled data set: evaluate a run on its own data set "
            "(no --real), or give --real NAME (e.g. mnist, digits)"
        )
    test = cas_test_split(cfg)
    return cas_scores(fake.data, fake.info["labels"], real.data, real.info["labels"], test.data, test.labels,
                      test.num_classes, modality=fake.modality)


__all__ = ["DC_K", "IS_SPLITS", "KID_SUBSETS", "KID_SUBSET_SIZE", "MODE_COUNTERS", "PR_K", "cas_test_split"]
