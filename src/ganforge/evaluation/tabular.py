"""Table metrics (``ganforge eval`` of a table run): TSTR beside TRTR, column shapes, correlations,
detection, the closest-record check and the privacy budget.

Every metric reads the generated rows as a table (decoded by the generator's own encoding) and
the real ones as the data set's rows: its ``train`` split (what the generator learned from) and
its ``test`` split (held out: TSTR's test set and the closest-record check's reference). The
maths is in :mod:`ganforge.metrics.tabular`. Importing this module registers ``tstr``,
``column-shapes``, ``correlation``, ``detection``, ``dcr`` and ``epsilon``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import DataConfig
from ..errors import UserError
from ..metrics import tabular as tm
from .registry import EvalInputs, register_metric
from .sources import Source, other_split, require_modality

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Tables:
    """What the table metrics compare: generated rows, the real training rows, the held-out rows."""

    fake: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame | None
    kinds: dict[str, str]
    target: str | None


def tables(inputs: EvalInputs, metric: str, *, holdout: bool = False) -> Tables:
    """The generated and real tables of ``inputs`` (the real ones re-read from their data set's splits)."""
    fake: Source = require_modality(inputs.fake, "table", metric, "table rows")
    kind = fake.kind
    transformer = getattr(kind, "transformer", None)
    if transformer is None:
        raise UserError(f"{metric}: the generated rows come without their table encoding (metadata 'table')")
    kinds = {c.name: c.kind for c in transformer.columns}
    cfg: DataConfig | None = None if inputs.real is None else inputs.real.info.get("data_config")
    if cfg is not None:
        train = other_split(cfg, "train", metric).info["frame"]
        test = other_split(cfg, "test", metric).info["frame"] if holdout else None
    elif inputs.real is not None and inputs.real.modality == "table":
        if holdout:
            raise UserError(f"{metric} needs a held-out split: evaluate a run directory or give --real NAME (a table data set)")
        train, test = inputs.real.kind.rows(inputs.real.data), None
    else:
        raise UserError(f"{metric} compares against real table rows: evaluate a run directory or give --real NAME")
    missing = sorted(set(kinds) - set(train.columns))
    if missing:
        raise UserError(f"{metric}: the real table lacks the generated column(s) {', '.join(missing)}")
    target = inputs.reference_info("target")
    return Tables(kind.rows(fake.data), train, test, kinds, target)


@register_metric("tstr", primary="tstr", higher_is_better=True, uses_features=False, aliases=("trtr",))
def _tstr(inputs: EvalInputs) -> dict[str, Any]:
    """Train on synthetic, test on real (held out): a random forest (``tstr``) and a logistic / ridge
    regression (``tstr_linear``), beside the same models trained on the real training rows (``trtr``,
    ``trtr_linear``); macro-F1 for a category target, R^2 for a numeric one (``tstr_score``)."""
    t = tables(inputs, "tstr", holdout=True)
    if t.target is None:
        raise UserError("tstr needs a target column: set data.target (the column to predict)")
    assert t.holdout is not None
    synthetic = tm.tstr(t.fake, t.holdout, t.target, t.kinds)
    real = tm.tstr(t.train, t.holdout, t.target, t.kinds)
    return {"tstr": synthetic["random_forest"], "tstr_linear": synthetic["linear"],
            "trtr": real["random_forest"], "trtr_linear": real["linear"], "tstr_score": synthetic["metric"]}


@register_metric("column-shapes", primary="column_shapes", higher_is_better=True, uses_features=False, aliases=("shapes",))
def _column_shapes(inputs: EvalInputs) -> dict[str, Any]:
    """Per-column similarity to the training rows (1 - KS statistic for numbers, 1 - total variation for
    categories), averaged (``column_shapes``), with the worst column (``column_shapes_min``, ``_worst``)."""
    t = tables(inputs, "column-shapes")
    shapes = tm.column_shapes(t.train, t.fake, t.kinds)
    worst = min(shapes, key=shapes.__getitem__)
    return {"column_shapes": float(np.mean(list(shapes.values()))), "column_shapes_min": shapes[worst],
            "column_shapes_worst": worst}


@register_metric("correlation", primary="correlation_distance", higher_is_better=False, uses_features=False,
                 aliases=("correlations", "corr"))
def _correlation(inputs: EvalInputs) -> dict[str, Any]:
    """Mean absolute difference between the real and synthetic pairwise correlations (0: the same)."""
    t = tables(inputs, "correlation")
    return {"correlation_distance": tm.correlation_distance(t.train, t.fake, t.kinds)}


@register_metric("detection", primary="detection_auc", higher_is_better=False, uses_features=False, aliases=("detection-auc",))
def _detection(inputs: EvalInputs) -> dict[str, Any]:
    """Cross-validated ROC AUC of a classifier telling synthetic rows from real ones (0.5: it cannot): a logistic
    regression (``detection_auc``, SDMetrics' LogisticDetection) and a random forest (``detection_auc_forest``,
    which also sees broken relations between columns)."""
    t = tables(inputs, "detection")
    return {"detection_auc": tm.detection_auc(t.train, t.fake, t.kinds),
            "detection_auc_forest": tm.detection_auc(t.train, t.fake, t.kinds, model="forest")}


@register_metric("dcr", primary="dcr_ratio", higher_is_better=True, uses_features=False, aliases=("closest-record", "memorisation"))
def _dcr(inputs: EvalInputs) -> dict[str, Any]:
    """Distance to the closest training record: synthetic rows' median over held-out rows' (``dcr_ratio``; near 0
    means copied rows) and the share of synthetic rows nearer than 95% of held-out ones (``copies``; ~0.05)."""
    t = tables(inputs, "dcr", holdout=True)
    assert t.holdout is not None
    return tm.closest_record(t.train, t.holdout, t.fake, t.kinds)


@register_metric("epsilon", primary="epsilon", higher_is_better=False, needs_real=False, uses_features=False,
                 aliases=("privacy",))
def _epsilon(inputs: EvalInputs) -> dict[str, Any]:
    """The differential-privacy budget a run spent (``epsilon`` at ``delta``; ``train.privacy``), from its metadata."""
    generator = inputs.fake.info.get("generator")
    privacy = (getattr(generator, "meta", None) or {}).get("privacy")
    if not privacy:
        raise UserError("epsilon: this generator was trained without train.privacy (no privacy budget to report)")
    return {"epsilon": float(privacy["epsilon"]), "delta": float(privacy["delta"])}
