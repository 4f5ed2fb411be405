"""The simple table generators a tabular GAN must beat: a Gaussian copula and resampling with noise.

* :class:`GaussianCopula`: every column becomes a standard normal through its own empirical CDF
  (``z = Phi^-1(F(x))``); the columns' dependence is one correlation matrix of those normals.
  Sampling draws ``z ~ N(0, R)`` and maps each column back through its empirical quantile
  function. Categories take consecutive intervals of [0, 1], as wide as their frequencies, and a
  value anywhere in its interval; missing numeric values are drawn at their training share,
  independently of the other columns.
  ``condition=COLUMN`` fits one copula per value of that column (a class-conditional model, which
  keeps class-specific correlations) and samples classes at their training frequencies.
* :class:`Resample`: training rows drawn with replacement, numeric values moved by Gaussian noise
  (``noise`` times the column's std), categories replaced by a random category with probability
  ``noise``. It copies the training data by construction, which the closest-record check shows.

Both have ``fit(table, kinds, seed=...)`` and ``sample(n, seed=...)`` returning a DataFrame with
the training table's columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import DataError
from ..metrics.tabular import NUMERIC
from ..metrics.tabular import category_values as as_categories
from ..metrics.tabular import numeric_values as numeric
from .transform import from_categories, from_numeric, value_type

if TYPE_CHECKING:
    import pandas as pd


class Marginal:
    """One column's empirical distribution: values <-> uniforms in (0, 1)."""

    def __init__(self, column: pd.Series, kind: str) -> None:
        self.kind = kind
        if kind in NUMERIC:
            values = numeric(column, kind)
            self.sorted = np.sort(values[~np.isnan(values)])
            if self.sorted.size == 0:
                raise DataError(f"column '{column.name}' has no values")
        else:
            self.dtype = value_type(column)
            self.categories, counts = np.unique(as_categories(column), return_counts=True)
            self.edges = np.r_[0, np.cumsum(counts) / counts.sum()]

    def to_uniform(self, column: pd.Series, rng: np.random.Generator) -> np.ndarray:
        """Each value's CDF position (ties and categories spread uniformly over their interval)."""
        if self.kind in NUMERIC:
            values = numeric(column, self.kind)
            low = np.searchsorted(self.sorted, values, side="left")
            high = np.searchsorted(self.sorted, values, side="right")
            u = (low + rng.random(len(values)) * (high - low)) / len(self.sorted)
            return np.where(np.isnan(values), rng.random(len(values)), u)  # missing: anywhere (its flag says so)
        index = np.searchsorted(self.categories, as_categories(column))
        return self.edges[index] + rng.random(len(index)) * (self.edges[index + 1] - self.edges[index])

    def from_uniform(self, u: np.ndarray) -> Any:
        if self.kind in NUMERIC:
            positions = np.clip(u * len(self.sorted) - 0.5, 0, len(self.sorted) - 1)
            values = np.interp(positions, np.arange(len(self.sorted)), self.sorted)  # the empirical quantile
            return values
        index = np.clip(np.searchsorted(self.edges, u, side="right") - 1, 0, len(self.categories) - 1)
        return from_categories(self.categories[index].astype(object), self.dtype)


class GaussianCopula:
    """A Gaussian copula over empirical marginals (see the module docstring)."""

    def __init__(self) -> None:
        self.parts: list[tuple[float, Any, dict[str, Marginal], dict[str, float], np.ndarray]] = []
        self.kinds: dict[str, str] = {}
        self.condition: str | None = None

    def fit(self, table: pd.DataFrame, kinds: Mapping[str, str], *, condition: str | None = None, seed: int = 0) -> GaussianCopula:
        from scipy.stats import norm

        rng = np.random.default_rng(seed)
        self.kinds, self.condition = dict(kinds), condition
        groups = [(None, table)] if condition is None else list(table.groupby(condition, dropna=False, sort=True))
        for value, rows in groups:
            columns = [n for n in kinds if n != condition]
            marginals = {n: Marginal(rows[n], kinds[n]) for n in columns}
            missing = {n: float(rows[n].isna().mean()) for n in columns if kinds[n] in NUMERIC}
            z = np.stack([norm.ppf(np.clip(marginals[n].to_uniform(rows[n], rng), 1e-6, 1 - 1e-6)) for n in columns], axis=1)
            correlation = np.corrcoef(z, rowvar=False) if len(rows) > 1 and z.shape[1] > 1 else np.eye(z.shape[1])
            correlation = np.nan_to_num(correlation) + 1e-6 * np.eye(z.shape[1])  # constant columns: independent
            self.parts.append((len(rows) / len(table), value, marginals, missing, correlation))
        return self

    def sample(self, n: int, *, seed: int = 0) -> pd.DataFrame:
        import pandas as pd
        from scipy.stats import norm

        if not self.parts:
            raise DataError("fit the copula before sampling")
        rng = np.random.default_rng(seed)
        shares = np.array([p[0] for p in self.parts])
        counts = np.bincount(rng.choice(len(self.parts), size=n, p=shares / shares.sum()), minlength=len(self.parts))
        frames = []
        for (_, value, marginals, missing, correlation), count in zip(self.parts, counts):
            if count == 0:
                continue
            z = rng.multivariate_normal(np.zeros(len(marginals)), correlation, size=count, method="cholesky")
            out = {}
            for j, (name, marginal) in enumerate(marginals.items()):
                values = marginal.from_uniform(norm.cdf(z[:, j]))
                if missing.get(name):
                    values = np.where(rng.random(count) < missing[name], np.nan, values)
                out[name] = from_numeric(values, self.kinds[name]) if self.kinds[name] in NUMERIC else values
            if self.condition is not None:
                out[self.condition] = [value] * count
            frames.append(pd.DataFrame(out))
        table = pd.concat(frames, ignore_index=True)
        return table[list(self.kinds)].iloc[rng.permutation(n)].reset_index(drop=True)


class Resample:
    """Training rows with noise (see the module docstring): the memorising baseline."""

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = noise
        self.table: pd.DataFrame | None = None

    def fit(self, table: pd.DataFrame, kinds: Mapping[str, str], *, seed: int = 0) -> Resample:
        self.table, self.kinds = table.reset_index(drop=True), dict(kinds)
        return self

    def sample(self, n: int, *, seed: int = 0) -> pd.DataFrame:
        if self.table is None:
            raise DataError("fit the resampler before sampling")
        rng = np.random.default_rng(seed)
        rows = self.table.iloc[rng.integers(0, len(self.table), n)].reset_index(drop=True)
        for name, kind in self.kinds.items():
            if kind in NUMERIC:
                values = numeric(rows[name], kind)
                std = np.nanstd(numeric(self.table[name], kind)) or 0.0
                rows[name] = from_numeric(values + rng.normal(0, self.noise * std, n), kind)
            else:
                flip = rng.random(n) < self.noise
                choices = self.table[name].dropna().unique() if self.table[name].notna().any() else np.array([None])
                rows.loc[flip, name] = rng.choice(choices, flip.sum())
        return rows


__all__ = ["GaussianCopula", "Resample"]
