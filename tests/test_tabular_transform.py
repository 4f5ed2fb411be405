"""Column kinds and CTGAN's mode-specific normalisation: inference, round trips, modes, missing values, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganforge.errors import DataError
from ganforge.tabular import TableTransformer, infer_kinds

pd = pytest.importorskip("pandas", reason="tables need pandas: pip install 'ganforge[tabular]'")


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    bimodal = np.where(rng.random(n) < 0.3, rng.normal(-10, 1, n), rng.normal(20, 3, n))
    income = rng.lognormal(10, 1, n).round()
    income[::17] = np.nan  # missing values are kept
    return pd.DataFrame({
        "bimodal": bimodal, "income": income, "children": rng.integers(0, 4, n),
        "city": rng.choice(["Lyon", "Oslo", "Rome"], n), "member": rng.choice(["yes", "no"], n),
        "joined": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
        "flag": rng.random(n) < 0.5, "note": np.where(rng.random(n) < 0.1, None, "ok"),
    })


def test_kinds_are_inferred_and_overridable(table):
    assert infer_kinds(table) == {"bimodal": "continuous", "income": "discrete", "children": "categorical",
                                  "city": "categorical", "member": "boolean", "joined": "date", "flag": "boolean",
                                  "note": "categorical"}
    assert infer_kinds(table, {"children": "discrete"})["children"] == "discrete"
    with pytest.raises(DataError, match="column 'city' is declared continuous but holds the value"):
        infer_kinds(table, {"city": "continuous"})
    with pytest.raises(DataError, match="data.columns names 'nope'"):
        infer_kinds(table, {"nope": "categorical"})
    with pytest.raises(DataError, match="column 'city': unknown kind 'colour'"):
        infer_kinds(table, {"city": "colour"})


def test_a_round_trip_gives_the_table_back(table):
    kinds = infer_kinds(table)
    transformer = TableTransformer.fit(table, kinds)
    vectors = transformer.transform(table)
    assert vectors.shape == (len(table), transformer.width) and np.abs(vectors).max() <= 1
    back = transformer.inverse(vectors)
    # numbers within a mode's clipping (|alpha| <= 1 covers 4 sigma), categories and missing values exact
    assert np.allclose(back["bimodal"], table["bimodal"], atol=1e-6)
    assert back["income"].isna().sum() == table["income"].isna().sum()
    present = table["income"].notna()
    assert np.allclose(back["income"][present].astype(float), table["income"][present], rtol=1e-6)
    for name in ("children", "city", "member", "flag"):
        assert back[name].tolist() == table[name].tolist()  # values and their types
    assert back["note"].tolist() == table["note"].tolist()  # None stays None
    assert (back["joined"].dt.strftime("%Y-%m-%d") == table["joined"]).all()
    again = TableTransformer.from_dict(json.loads(json.dumps(transformer.to_dict())))  # plain JSON state
    assert np.array_equal(again.transform(table), vectors)


def test_mode_specific_normalisation_finds_the_modes(table):
    transformer = TableTransformer.fit(table, {"bimodal": "continuous"})
    code = transformer.columns[0]
    big = sorted((w, m) for w, m in zip(code.weights, code.means) if w > 0.1)
    assert len(big) == 2 and big[0][1] == pytest.approx(-10, abs=1) and big[1][1] == pytest.approx(20, abs=1.5)
    assert [s[2] for s in transformer.spans] == ["tanh", "softmax"]
    vectors = transformer.transform(table)
    mode = vectors[:, 1:].argmax(axis=1)
    low = np.asarray(code.means)[mode] < 0
    assert np.array_equal(low, table["bimodal"].to_numpy() < 5)  # every value goes to its own mode


def test_unseen_categories_and_bad_vectors_give_one_line_errors(table):
    transformer = TableTransformer.fit(table, {"city": "categorical"})
    with pytest.raises(DataError, match="column 'city' holds categories unseen in training, e.g. 'Paris'"):
        transformer.transform(pd.DataFrame({"city": ["Paris"]}))
    with pytest.raises(DataError, match=r"expected vectors \[N, 3\]"):
        transformer.inverse(np.zeros((2, 5)))
