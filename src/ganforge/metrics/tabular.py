"""Quality, utility and privacy scores of a synthetic table against the real one (pure functions).

The tables are :class:`pandas.DataFrame` s with the same columns; ``kinds`` names each column's
kind: ``continuous``, ``discrete`` (integer-valued), ``date`` (numeric once converted), or
``categorical`` / ``boolean`` (compared as categories). Missing values are allowed everywhere.

* :func:`column_shapes`: per column, 1 - the Kolmogorov-Smirnov statistic (numeric kinds) or
  1 - the total-variation distance of the category frequencies (1 = same marginal).
* :func:`correlation_distance`: mean absolute difference of the pairwise association matrices
  (Pearson correlation of the numeric encoding below; 0 = same pairwise structure).
* :func:`detection_auc`: cross-validated AUC of a logistic regression telling real rows from
  synthetic ones (0.5: indistinguishable; 1: always told apart).
* :func:`closest_record`: distance from each synthetic row to its closest *training* row, against
  the same distance for real rows the generator never saw (a holdout). Synthetic rows much closer
  to the training data than fresh real rows are copies: memorisation.
* :func:`tstr`: train on synthetic, test on real (a held-out split): macro-F1 for a categorical
  target, R^2 for a numeric one, with a random forest and a logistic / linear regression.

The shared numeric encoding (:func:`encode`): numeric kinds standardised by the *real* table's
mean and std (dates as days), missing values as the mean plus a 0/1 "missing" column;
categories one-hot over the real table's categories (unseen ones all zero).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

NUMERIC = ("continuous", "discrete", "date")
CATEGORY = ("categorical", "boolean")
#: The category that stands for a missing value in category-kind columns.
MISSING = "<missing>"


def numeric_values(column: pd.Series, kind: str) -> np.ndarray:
    """A numeric-kind column as float64 (dates as days since 1970; missing as NaN)."""
    import pandas as pd

    if kind == "date":
        stamps = pd.to_datetime(column, errors="coerce")
        return (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan) / 86_400
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def category_values(column: pd.Series) -> np.ndarray:
    """A category-kind column as strings, missing values as the category :data:`MISSING`."""
    return column.astype(object).where(column.notna(), MISSING).astype(str).to_numpy()


def column_shapes(real: pd.DataFrame, fake: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, float]:
    """Per column: 1 - KS statistic (numeric kinds; missing share compared as a category too) or 1 - TV."""
    from scipy.stats import ks_2samp

    scores = {}
    for name, kind in kinds.items():
        if kind in NUMERIC:
            a, b = numeric_values(real[name], kind), numeric_values(fake[name], kind)
            present_a, present_b = a[~np.isnan(a)], b[~np.isnan(b)]
            if len(present_a) and len(present_b):
                ks = ks_2samp(present_a, present_b).statistic
            else:
                ks = float(len(present_a) != len(present_b))
            missing_gap = abs(np.isnan(a).mean() - np.isnan(b).mean())  # the missing share, as a category
            scores[name] = float(1 - max(ks, missing_gap))
        else:
            scores[name] = 1 - total_variation(category_values(real[name]), category_values(fake[name]))
    return scores


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between the category frequencies of ``a`` and ``b`` (0 to 1)."""
    categories, inverse = np.unique(np.r_[a, b], return_inverse=True)
    pa = np.bincount(inverse[: len(a)], minlength=len(categories)) / max(len(a), 1)
    pb = np.bincount(inverse[len(a):], minlength=len(categories)) / max(len(b), 1)
    return float(0.5 * np.abs(pa - pb).sum())


def encode(table: pd.DataFrame, kinds: Mapping[str, str], reference: pd.DataFrame | None = None) -> np.ndarray:
    """The shared numeric encoding of ``table`` (see the module docstring), fitted on ``reference``
    (default: ``table`` itself). Returns float64 ``[rows, features]``."""
    reference = table if reference is None else reference
    parts = []
    for name, kind in kinds.items():
        if kind in NUMERIC:
            ref = numeric_values(reference[name], kind)
            values = numeric_values(table[name], kind)
            mean = np.nanmean(ref) if np.isfinite(ref).any() else 0.0
            std = np.nanstd(ref) if np.isfinite(ref).any() else 1.0
            missing = np.isnan(values)
            parts.append(((np.where(missing, mean, values) - mean) / (std if std > 0 else 1.0))[:, None])
            if np.isnan(ref).any() or missing.any():
                parts.append(missing[:, None].astype(float))
        else:
            categories = np.unique(category_values(reference[name]))
            values = category_values(table[name])
            parts.append((values[:, None] == categories[None, :]).astype(float))
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0))


def correlation_distance(real: pd.DataFrame, fake: pd.DataFrame, kinds: Mapping[str, str]) -> float:
    """Mean |corr_real - corr_fake| over the pairs of encoded features (constant features count as 0)."""
    a, b = encode(real, kinds), encode(fake, kinds, reference=real)
    if a.shape[1] < 2:
        return 0.0
    ca, cb = _correlation(a), _correlation(b)
    upper = np.triu_indices(a.shape[1], k=1)
    return float(np.abs(ca - cb)[upper].mean())


def _correlation(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    norm[norm == 0] = np.inf  # a constant feature correlates with nothing
    return (centred.T @ centred) / np.outer(norm, norm)


def detection_auc(real: pd.DataFrame, fake: pd.DataFrame, kinds: Mapping[str, str], *, folds: int = 5, seed: int = 0,
                  model: str = "logistic") -> float:
    """Cross-validated ROC AUC of a classifier separating real from synthetic rows (as many of each: the
    larger table is subsampled). ``model``: ``logistic`` (a logistic regression, as SDMetrics'
    LogisticDetection: it sees each feature's shift, not broken relations between features) or
    ``forest`` (a random forest of 100 trees: it also sees relations, and is the harder judge)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    real = real.iloc[rng.permutation(len(real))[:n]]
    fake = fake.iloc[rng.permutation(len(fake))[:n]]
    x = np.r_[encode(real, kinds), encode(fake, kinds, reference=real)]
    y = np.r_[np.zeros(n), np.ones(n)]
    classifiers = {"logistic": lambda: LogisticRegression(max_iter=2000),
                   "forest": lambda: RandomForestClassifier(100, min_samples_leaf=2, random_state=seed, n_jobs=1)}
    if model not in classifiers:
        raise ValueError(f"model must be one of {', '.join(classifiers)}, got {model!r}")
    folds_ = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(classifiers[model](), x, y, cv=folds_, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def closest_record(
    train: pd.DataFrame, holdout: pd.DataFrame, fake: pd.DataFrame, kinds: Mapping[str, str], *, max_rows: int = 5000, seed: int = 0,
) -> dict[str, float]:
    """Distances to the closest training record (DCR), in the shared encoding fitted on ``train``.

    Returns the median DCR of synthetic rows and of holdout rows, their ratio (about 1 for a
    generator that does not copy; near 0 for one that returns training rows), and the share of
    synthetic rows closer to the training data than 95% of holdout rows are (``copies``; about
    0.05 when nothing is copied).
    """
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    def rows(table: pd.DataFrame) -> pd.DataFrame:
        return table.iloc[rng.permutation(len(table))[:max_rows]]

    index = NearestNeighbors(n_neighbors=1).fit(encode(train, kinds))
    fake_d = index.kneighbors(encode(rows(fake), kinds, reference=train))[0][:, 0]
    hold_d = index.kneighbors(encode(rows(holdout), kinds, reference=train))[0][:, 0]
    threshold = np.quantile(hold_d, 0.05)
    fake_median, hold_median = float(np.median(fake_d)), float(np.median(hold_d))
    return {"dcr_synthetic": fake_median, "dcr_holdout": hold_median,
            "dcr_ratio": fake_median / hold_median if hold_median > 0 else float("inf"),
            "copies": float((fake_d <= threshold).mean())}


def tstr(
    train: pd.DataFrame, test: pd.DataFrame, target: str, kinds: Mapping[str, str], *, seed: int = 0,
) -> dict[str, float]:
    """Train on ``train`` (synthetic, or real for the TRTR baseline), test on ``test`` (real, held out).

    A categorical or boolean target is classified (macro-F1), a numeric one regressed (R^2), each by a
    random forest and by a logistic / ridge regression on the shared encoding (fitted on ``test``'s
    columns so both tables share it). Returns ``{"random_forest": score, "linear": score, "metric": ...}``.
    """
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import f1_score, r2_score

    features = {name: kind for name, kind in kinds.items() if name != target}
    x_train, x_test = encode(train, features, reference=test), encode(test, features)
    classify = kinds[target] in CATEGORY
    out: dict[str, Any] = {"metric": "macro_f1" if classify else "r2"}
    if classify:
        y_train, y_test = category_values(train[target]), category_values(test[target])
        if len(np.unique(y_train)) < 2:  # a generator that drew one class teaches nothing
            return {**out, "random_forest": 0.0, "linear": 0.0}
        models = {"random_forest": RandomForestClassifier(200, random_state=seed, n_jobs=1),
                  "linear": LogisticRegression(max_iter=2000)}
        for name, model in models.items():
            out[name] = float(f1_score(y_test, model.fit(x_train, y_train).predict(x_test), average="macro"))
    else:
        y_train, y_test = numeric_values(train[target], kinds[target]), numeric_values(test[target], kinds[target])
        keep_train, keep_test = ~np.isnan(y_train), ~np.isnan(y_test)
        models = {"random_forest": RandomForestRegressor(200, random_state=seed, n_jobs=1), "linear": Ridge(1.0)}
        for name, model in models.items():
            model.fit(x_train[keep_train], y_train[keep_train])
            out[name] = float(r2_score(y_test[keep_test], model.predict(x_test[keep_test])))
    return out
