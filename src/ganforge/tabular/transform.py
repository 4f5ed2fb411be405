"""Tables <-> the vectors a tabular GAN reads and writes: column kinds and mode-specific normalisation.

Column kinds (:func:`infer_kinds`, overridable per column):

* ``continuous``: real numbers; ``discrete``: integers with many values (rounded on the way back);
  ``date``: dates and times (as days since 1970, converted back);
* ``categorical``: anything else, and integers with few values; ``boolean``: two values that read as
  true / false.

The encoding (:class:`TableTransformer`) follows CTGAN (Xu et al. 2019, section 4.2):

* A numeric column is modelled by a variational Gaussian mixture (scikit-learn's
  ``BayesianGaussianMixture``, a Dirichlet-process prior so unneeded modes get no weight; at most
  ``max_modes``, kept when their weight exceeds ``min_weight``). A value ``x`` becomes a mode ``k``,
  drawn from the posterior ``P(k | x)``, as a one-hot, and its position in that mode,
  ``alpha = (x - mu_k) / (4 sigma_k)`` clipped to [-1, 1]. Multi-modal and skewed columns thus
  become a choice plus a bounded scalar, which a generator with a ``tanh`` and a softmax output can
  both produce; a min-max scaling would squash all but the widest mode into a sliver of [-1, 1].
* A category column is a one-hot over the categories seen in training.
* Missing values: a numeric column with any gets a two-way one-hot (present / missing; the value
  part is then ignored); in a category column, missing is a category of its own.

``spans`` lists the output layout: ``(start, width, "tanh" | "softmax", column)``. The generator
applies the activation per span, and the conditional vector of training-by-sampling picks among
the softmax spans of category columns. The transformer's whole state is plain JSON
(:meth:`TableTransformer.to_dict`), stored with the generator so that samples decode anywhere.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import DataError
from ..metrics.tabular import MISSING, NUMERIC
from ..metrics.tabular import category_values as as_categories
from ..metrics.tabular import numeric_values as numeric

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("continuous", "discrete", "date", "categorical", "boolean")
#: Integers with at most this many distinct values are categories, not numbers.
MAX_INTEGER_CATEGORIES = 20
TRUE_FALSE = ({"true", "false"}, {"yes", "no"}, {"t", "f"}, {"y", "n"})


def infer_kinds(table: pd.DataFrame, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kind of every column (see the module docstring), ``overrides`` winning; a one-line
    :class:`DataError` names a column whose override is unknown or does not fit its values."""
    import pandas as pd

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(table.columns))
    if unknown:
        names = ", ".join(map(str, table.columns))
        raise DataError(f"data.columns names '{unknown[0]}', which is not a column of the table (columns: {names})")
    kinds = {}
    for name in table.columns:
        column = table[name]
        kind = overrides.get(name) or _infer(column)
        if kind not in KINDS:
            raise DataError(f"column '{name}': unknown kind '{kind}' (one of {', '.join(KINDS)})")
        present = column.dropna()
        if kind in ("continuous", "discrete") and not present.empty and pd.to_numeric(present, errors="coerce").isna().any():
            bad = present[pd.to_numeric(present, errors="coerce").isna()].iloc[0]
            raise DataError(f"column '{name}' is declared {kind} but holds the value {bad!r}, which is not a number")
        if kind == "date" and not present.empty and pd.to_datetime(present.astype(str), errors="coerce").isna().any():
            raise DataError(f"column '{name}' is declared date but holds values that are not dates")
        if kind == "boolean" and present.nunique() > 2:
            raise DataError(f"column '{name}' is declared boolean but holds {present.nunique()} distinct values")
        kinds[str(name)] = kind
    return kinds


def _infer(column: pd.Series) -> str:
    import pandas as pd

    present = column.dropna()
    if present.empty:
        return "categorical"
    if pd.api.types.is_bool_dtype(present):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(present):
        return "date"
    if pd.api.types.is_numeric_dtype(present):
        values = present.to_numpy(dtype=float)
        if np.all(values == np.round(values)):
            return "categorical" if present.nunique() <= MAX_INTEGER_CATEGORIES else "discrete"
        return "continuous"
    text = present.astype(str).str.strip().str.lower()
    if text.nunique() <= 2 and any(set(text.unique()) <= pair for pair in TRUE_FALSE):
        return "boolean"
    if text.str.match(r"^\d{4}-\d{2}-\d{2}").all() and pd.to_datetime(present.astype(str), errors="coerce").notna().all():
        return "date"
    return "categorical"


@dataclass
class ColumnCode:
    """How one column is encoded: its kind, and the modes (numeric) or categories (others)."""

    name: str
    kind: str
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    has_missing: bool = False
    dtype: str = "str"  # category columns: the type their values go back to (str, int, float, bool)
    step: float = 0.0  # date columns: 1 when every training date is a whole day (decoded dates are rounded to it)

    @property
    def width(self) -> int:
        if self.kind in NUMERIC:
            return 1 + len(self.means) + (2 if self.has_missing else 0)
        return len(self.categories)

    def spans(self, start: int) -> list[tuple[int, int, str, str]]:
        if self.kind not in NUMERIC:
            return [(start, len(self.categories), "softmax", self.name)]
        out = [(start, 1, "tanh", self.name), (start + 1, len(self.means), "softmax", self.name)]
        if self.has_missing:
            out.append((start + 1 + len(self.means), 2, "softmax", self.name))
        return out


class TableTransformer:
    """Fit on a table, then :meth:`transform` rows to float vectors and :meth:`inverse` them back."""

    def __init__(self, columns: list[ColumnCode]) -> None:
        self.columns = columns
        self.spans: list[tuple[int, int, str, str]] = []
        start = 0
        for column in columns:
            self.spans += column.spans(start)
            start += column.width
        self.width = start

    @classmethod
    def fit(cls, table: pd.DataFrame, kinds: Mapping[str, str], *, max_modes: int = 10, min_weight: float = 0.005,
            seed: int = 0) -> TableTransformer:
        columns = []
        for name, kind in kinds.items():
            column = table[name]
            if kind in NUMERIC:
                values = numeric(column, kind)
                present = values[~np.isnan(values)]
                if present.size == 0:
                    raise DataError(f"column '{name}' has no values")
                means, stds, weights = fit_modes(present, max_modes, min_weight, seed)
                step = 1.0 if kind == "date" and np.all(present == np.round(present)) else 0.0
                columns.append(ColumnCode(name, kind, means, stds, weights, has_missing=bool(np.isnan(values).any()), step=step))
            else:
                columns.append(ColumnCode(name, kind, categories=sorted(set(as_categories(column))), dtype=value_type(column)))
        return cls(columns)

    def transform(self, table: pd.DataFrame, seed: int = 0) -> np.ndarray:
        """``[rows, width]`` float32: per numeric column ``alpha``, the mode one-hot (drawn from the
        posterior) and the missing one-hot; per category column its one-hot."""
        rng = np.random.default_rng(seed)
        parts = []
        for code in self.columns:
            column = table[code.name]
            if code.kind in NUMERIC:
                values = numeric(column, code.kind)
                missing = np.isnan(values)
                alpha, modes = encode_modes(np.where(missing, code.means[0], values), code, rng)
                parts += [alpha[:, None], np.eye(len(code.means))[modes]]
                if code.has_missing:
                    parts.append(np.stack([~missing, missing], axis=1).astype(float))
            else:
                index = {c: i for i, c in enumerate(code.categories)}
                found = np.array([index.get(c, -1) for c in as_categories(column)])
                if (found < 0).any():
                    example = as_categories(column)[found < 0][0]
                    raise DataError(f"column '{code.name}' holds categories unseen in training, e.g. {example!r}")
                parts.append(np.eye(len(code.categories))[found])
        return np.concatenate(parts, axis=1).astype(np.float32)

    def inverse(self, vectors: np.ndarray) -> pd.DataFrame:
        """Vectors (activated generator outputs, or :meth:`transform`'s) back to a table: the largest
        entry of each one-hot wins; ``alpha`` is clipped to [-1, 1]."""
        import pandas as pd

        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.width:
            raise DataError(f"expected vectors [N, {self.width}], got shape {vectors.shape}")
        out: dict[str, Any] = {}
        start = 0
        for code in self.columns:
            block = vectors[:, start:start + code.width]
            start += code.width
            if code.kind in NUMERIC:
                k = len(code.means)
                mode = block[:, 1:1 + k].argmax(axis=1)
                values = np.clip(block[:, 0], -1, 1) * 4 * np.asarray(code.stds)[mode] + np.asarray(code.means)[mode]
                if code.has_missing:
                    values = np.where(block[:, 1 + k + 1] > block[:, 1 + k], np.nan, values)
                if code.step:
                    values = np.round(values / code.step) * code.step
                out[code.name] = from_numeric(values, code.kind)
            else:
                out[code.name] = from_categories(np.asarray(code.categories, dtype=object)[block.argmax(axis=1)], code.dtype)
        return pd.DataFrame(out)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [vars(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TableTransformer:
        return cls([ColumnCode(**c) for c in state["columns"]])


def from_numeric(values: np.ndarray, kind: str) -> Any:
    import pandas as pd

    if kind == "discrete":
        return pd.array(np.round(values), dtype="Int64") if np.isnan(values).any() else np.round(values).astype(np.int64)
    if kind == "date":
        return pd.to_datetime(values * 86_400, unit="s", errors="coerce")
    return values


def value_type(column: pd.Series) -> str:
    """What a category column's values are, so that decoded values get their type back."""
    import pandas as pd

    present = column.dropna()
    for name, test in (("bool", pd.api.types.is_bool_dtype), ("int", pd.api.types.is_integer_dtype),
                       ("float", pd.api.types.is_float_dtype)):
        if len(present) and test(present):
            return name
    return "str"


def from_categories(picked: np.ndarray, dtype: str) -> Any:
    """Decoded category strings as ``dtype`` values (missing: ``None``, or pandas' nullable types)."""
    import pandas as pd

    missing = picked == MISSING
    if dtype == "str":
        return np.where(missing, None, picked)
    convert = {"int": lambda c: int(float(c)), "float": float, "bool": lambda c: c == "True"}[dtype]
    values = [None if m else convert(c) for c, m in zip(picked, missing)]
    nullable = {"int": "Int64", "float": "Float64", "bool": "boolean"}[dtype]
    plain = {"int": np.int64, "float": float, "bool": bool}[dtype]
    return pd.array(values, dtype=nullable) if missing.any() else np.asarray(values, dtype=plain)


def fit_modes(values: np.ndarray, max_modes: int, min_weight: float, seed: int) -> tuple[list[float], list[float], list[float]]:
    """Means, standard deviations and weights (renormalised) of the weighty modes of a variational
    Gaussian mixture of ``values``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    distinct = np.unique(values)
    if len(distinct) == 1:  # a constant column: one mode of unit width
        return [float(distinct[0])], [1.0], [1.0]
    mixture = BayesianGaussianMixture(
        n_components=min(max_modes, len(distinct)), weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=1e-3, max_iter=200, random_state=seed,
    )
    with warnings.catch_warnings():  # not converged in max_iter: the modes found so far serve (as in CTGAN)
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(values[:, None])
    keep = mixture.weights_ > min_weight
    means = mixture.means_[keep, 0]
    stds = np.sqrt(mixture.covariances_[keep].reshape(-1))
    weights = mixture.weights_[keep] / mixture.weights_[keep].sum()
    spread = float(values.std()) or 1.0
    return [float(m) for m in means], [float(max(s, 1e-3 * spread)) for s in stds], [float(w) for w in weights]


def encode_modes(values: np.ndarray, code: ColumnCode, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, mode)`` per value: the mode drawn from its posterior ``P(k | x)`` (proportional to
    ``w_k N(x; mu_k, sigma_k)``), ``alpha`` the value's clipped position in that mode."""
    mu, sigma = np.asarray(code.means)[None, :], np.asarray(code.stds)[None, :]
    log_density = np.log(np.asarray(code.weights))[None, :] - 0.5 * ((values[:, None] - mu) / sigma) ** 2 - np.log(sigma)
    posterior = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    modes = (posterior.cumsum(axis=1) < rng.random((len(values), 1))).sum(axis=1).clip(max=len(code.means) - 1)
    alpha = (values - mu[0, modes]) / (4 * sigma[0, modes])
    return np.clip(alpha, -1, 1), modes


def check_rows(table: pd.DataFrame, minimum: int = 2) -> None:
    """A table a GAN can learn from: at least ``minimum`` rows and one column."""
    if table.shape[1] == 0:
        raise DataError("the table has no columns")
    if len(table) < minimum:
        raise DataError(f"the table has {len(table)} row{'s' * (len(table) != 1)}: a generator needs at least {minimum}")
