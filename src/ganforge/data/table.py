"""Table data sets: any CSV or Parquet file (``table``), and scikit-learn's bundled tables.

A table is read with pandas (``pip install 'ganforge[tabular]'``), its column kinds inferred
(:func:`ganforge.tabular.infer_kinds`) or given with ``data.columns: {name: kind}``. Rows are
shuffled once with a fixed seed and split: the last :data:`TEST_SHARE` are the ``test`` split
(the held-out real rows of TSTR and of the closest-record check), the others ``train``. The
transformer is always fitted on the training rows, so both splits share one encoding; its fit
(a variational Gaussian mixture per numeric column: seconds to tens of seconds) is cached under
``$GANFORGE_CACHE/tables``, keyed by the training rows' exact contents and kinds.
``info["frame"]`` keeps the split's rows as a DataFrame for the table scores.

``data.target`` names the column to condition on and to predict: a categorical or boolean
target becomes the data set's labels (its categories the class names).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..core import cached
from ..errors import DataError
from ..metrics.tabular import CATEGORY, category_values
from ..tabular import TableTransformer, infer_kinds
from ..tabular import modality as _modality  # noqa: F401  (registers the 'table' modality)
from ..tabular.transform import check_rows
from .base import DATASETS, Dataset, refuse_image_options

if TYPE_CHECKING:
    import pandas as pd

#: Share of the (shuffled) rows held out as the ``test`` split.
TEST_SHARE = 0.3
#: The shuffle of every table's rows before the split.
SPLIT_SEED = 0


def pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise DataError("tables need pandas: pip install 'ganforge[tabular]'") from None
    return pd


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (``.csv``, ``.tsv``, ``.txt``) or Parquet file as a DataFrame; a one-line error otherwise."""
    pd = pandas()
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"table file '{path}' does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", skipinitialspace=True)
    except ImportError:
        raise DataError(f"reading '{path}' needs pyarrow: pip install pyarrow") from None
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' ParserError is a ValueError
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"'{path}' is not a table pandas can read ({reason})") from None
    raise DataError(f"'{path}': a table is a .csv, .tsv or .parquet file")


def table_dataset(name: str, frame: pd.DataFrame, split: str, columns: dict[str, str] | None,
                  target: str | None, source: str) -> Dataset:
    """Split ``split`` of ``frame`` as a :class:`Dataset` of transformer vectors (see the module docstring)."""
    if split not in ("train", "test"):
        raise DataError(f"data set '{name}' has the splits 'train' and 'test', not {split!r}")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    check_rows(frame, minimum=4)
    if target is not None and target not in frame.columns:
        raise DataError(f"data.target names '{target}', which is not a column of the table (columns: {', '.join(frame.columns)})")
    kinds = infer_kinds(frame, columns)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    cut = len(frame) - max(1, round(TEST_SHARE * len(frame)))
    train = frame.iloc[order[:cut]].reset_index(drop=True)
    rows = train if split == "train" else frame.iloc[order[cut:]].reset_index(drop=True)
    transformer = fitted_transformer(name, train, kinds)
    vectors = torch.from_numpy(transformer.transform(rows))
    labels, class_names = None, None
    if target is not None and kinds[target] in CATEGORY:
        code = next(c for c in transformer.columns if c.name == target)
        class_names = list(code.categories)
        index = {c: i for i, c in enumerate(class_names)}
        labels = torch.tensor([index[c] for c in category_values(rows[target])], dtype=torch.long)
    info: dict[str, Any] = {"table": transformer.to_dict(), "kinds": kinds, "target": target, "frame": rows,
                            "split": split, "source": source}
    return Dataset(name, vectors, labels, class_names, info=info, modality="table")


def fitted_transformer(name: str, train: pd.DataFrame, kinds: dict[str, str]) -> TableTransformer:
    """The transformer fitted on ``train`` (memoised on disk: the same rows and kinds give the same fit)."""
    digest = hashlib.sha256(train.to_csv(index=False).encode()).hexdigest()
    key = {"rows": digest, "kinds": kinds, "fit": "ctgan-modes-1"}  # bump the fit tag when TableTransformer.fit changes
    return TableTransformer.from_dict(cached(key, lambda: TableTransformer.fit(train, kinds).to_dict(), namespace="tables",
                                             label=name))


def _refuse_image_options(name: str, resolution: int | None, channels: int | None) -> None:
    refuse_image_options(name, "table", "data.columns and data.target", resolution, channels)


@DATASETS.register("table", help="a CSV or Parquet file (data.root); data.columns: {name: kind}, data.target: column")
def table(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
          columns: dict[str, str] | None, target: str | None) -> Dataset:
    """The rows of the table file ``root`` (see the module docstring)."""
    _refuse_image_options("table", resolution, channels)
    if root is None:
        raise DataError("data set 'table' needs data.root: the CSV or Parquet file")
    return table_dataset("table", read_table(root), split, columns, target, str(root))


def _sklearn_table(name: str, loader: Callable[..., Any], target_names: bool) -> Callable[..., Dataset]:
    def factory(*, root: str | None, split: str, resolution: int | None, channels: int | None, download: bool,
                columns: dict[str, str] | None, target: str | None) -> Dataset:
        _refuse_image_options(name, resolution, channels)
        pandas()
        bunch = loader(as_frame=True)
        frame = bunch.frame.copy()
        if target_names:  # class names instead of indices: samples read as the data set's own words
            frame["target"] = np.asarray(bunch.target_names)[frame["target"].to_numpy()]
        return table_dataset(name, frame, split, columns, "target" if target is None else target, f"sklearn.datasets.load_{name}")

    factory.__doc__ = f"scikit-learn's bundled '{name}' table (offline); the target column is 'target'."
    return factory


def _register_sklearn() -> None:
    from sklearn import datasets

    for name, loader, named, what in (
        ("breast_cancer", datasets.load_breast_cancer, True, "569 tumours, 30 measurements, malignant or benign"),
        ("wine", datasets.load_wine, True, "178 wines, 13 measurements, 3 cultivars"),
        ("diabetes", datasets.load_diabetes, False, "442 patients, 10 measurements, disease progression (regression)"),
    ):
        DATASETS.register(name, help=f"scikit-learn's {name} table: {what} (bundled, offline)")(_sklearn_table(name, loader, named))


_register_sklearn()
