"""The baselines a tabular GAN is judged beside: a Gaussian copula learns marginals and correlations;
resampling with noise copies its training rows, which the closest-record check sees."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from ganforge.metrics import tabular as tm
from ganforge.tabular import infer_kinds
from ganforge.tabular.baselines import GaussianCopula, Resample

pd = pytest.importorskip("pandas", reason="tables need pandas: pip install 'ganforge[tabular]'")


@pytest.fixture(scope="module")
def cancer():
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    order = np.random.default_rng(0).permutation(len(frame))
    cut = len(frame) * 7 // 10
    kinds = infer_kinds(frame)
    return frame.iloc[order[:cut]].reset_index(drop=True), frame.iloc[order[cut:]].reset_index(drop=True), kinds


def test_a_class_conditional_copula_keeps_marginals_correlations_and_utility(cancer):
    train, test, kinds = cancer
    fake = GaussianCopula().fit(train, kinds, condition="target", seed=0).sample(2000, seed=1)
    assert list(fake.columns) == list(train.columns) and len(fake) == 2000
    assert np.mean(list(tm.column_shapes(train, fake, kinds).values())) > 0.9
    rng = np.random.default_rng(2)
    independent = fake.apply(lambda c: c.to_numpy()[rng.permutation(len(c))])  # same marginals, no correlations
    assert tm.correlation_distance(train, fake, kinds) < 0.5 * tm.correlation_distance(train, independent, kinds)
    assert tm.tstr(fake, test, "target", kinds)["random_forest"] > 0.88
    assert tm.closest_record(train, test, fake, kinds)["dcr_ratio"] > 0.8  # it does not copy rows


def test_resampling_copies_and_the_closest_record_check_says_so(cancer):
    train, test, kinds = cancer
    fake = Resample(noise=0.01).fit(train, kinds).sample(len(test), seed=0)
    check = tm.closest_record(train, test, fake, kinds)
    assert check["dcr_ratio"] < 0.3 and check["copies"] > 0.8


def test_the_copula_handles_mixed_columns_and_missing_values():
    rng = np.random.default_rng(0)
    n = 800
    income = rng.lognormal(10, 1, n).round()
    income[::10] = np.nan
    table = pd.DataFrame({"income": income, "city": rng.choice(["Lyon", "Oslo", "Rome"], n, p=[0.6, 0.3, 0.1]),
                          "joined": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
                          "flag": rng.random(n) < 0.2})
    kinds = infer_kinds(table)
    fake = GaussianCopula().fit(table, kinds).sample(4000, seed=0)
    assert fake["income"].isna().mean() == pytest.approx(0.1, abs=0.02)
    assert fake["city"].value_counts(normalize=True)["Lyon"] == pytest.approx((table["city"] == "Lyon").mean(), abs=0.03)
    assert fake["flag"].dtype == bool and fake["flag"].mean() == pytest.approx(table["flag"].mean(), abs=0.03)
    assert min(tm.column_shapes(table, fake, kinds).values()) > 0.9
