"""The metric registry: metrics by name, what each returns, and what it reads (:class:`EvalInputs`).

Metrics are registered in :data:`METRICS` with :func:`register_metric` (the built-in ones
in :mod:`ganforge.evaluation.adapters`) and return values under fixed keys (``fid``,
``kid_mean``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..errors import UserError
from ..extractors import Features
from ..registry import Registry
from .sources import Source

#: What a metric computes: ``fn(inputs) -> {key: value}``.
MetricFn = Callable[["EvalInputs"], dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``compute(inputs) -> {key: value}``.

    Attributes:
        primary: the key that ranks checkpoints when this metric comes first in a list.
        higher_is_better: direction of ``primary``.
        needs_real: compares against the real set (``is`` and ``modes`` do not).
        uses_features: runs the feature extractor on images (``modes`` does not).
    """

    compute: MetricFn
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
) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register ``fn(inputs) -> dict`` as metric ``name``."""

    def decorator(fn: MetricFn) -> MetricFn:
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

    def __init__(
        self,
        real: Source | None,
        fake: Source,
        features: Callable[[Source, str], Features],
        kid_subset_size: int | None,
        class_names: Callable[[], Sequence[str] | None] | None = None,
    ) -> None:
        self.real, self.fake = real, fake
        self.kid_subset_size = kid_subset_size
        self._features_of = features
        self._class_names = class_names
        self._memo: dict[str, Features] = {}

    def features(self, side: str) -> Features:
        """Features (and logits) of ``"real"`` or ``"fake"``, computed on first use."""
        if side not in self._memo:
            source = self.real if side == "real" else self.fake
            assert source is not None, "check_real_given runs first"
            self._memo[side] = self._features_of(source, side)
        return self._memo[side]

    def class_names(self) -> list[str] | None:
        """The names of the extractor's logits' classes (a classifier's), or None where it has none."""
        names = self._class_names() if self._class_names is not None else None
        return None if names is None else [str(n) for n in names]

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and fake feature matrices."""
        return self.features("real").features, self.features("fake").features

    def reference_info(self, key: str) -> Any:
        """``info[key]`` of the real set, else of the fake set (e.g. a generator's metadata)."""
        for source in (self.real, self.fake):
            if source is not None and source.info.get(key) is not None:
                return source.info[key]
        return None


__all__ = [
    "METRICS",
    "EvalInputs",
    "Metric",
    "MetricFn",
    "check_real_given",
    "metric_names",
    "register_metric",
    "resolve_metrics",
]
