"""Table scores (ganforge.metrics.tabular): each against its definition, and against tables whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.datasets import load_breast_cancer

from ganforge.metrics import tabular as tm

pd = pytest.importorskip("pandas", reason="table scores need pandas: pip install 'ganforge[tabular]'")


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, dict[str, str]]:
    """scikit-learn's breast_cancer table (569 rows, 30 continuous features, a binary target)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    kinds = {name: "continuous" for name in frame.columns}
    kinds["target"] = "categorical"
    return frame, kinds


def split(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = len(frame) * 7 // 10
    return frame.iloc[order[:cut]].reset_index(drop=True), frame.iloc[order[cut:]].reset_index(drop=True)


def test_column_shapes_are_one_minus_ks_and_one_minus_tv():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=500), "c": ["a"] * 250 + ["b"] * 250})
    fake = pd.DataFrame({"x": rng.normal(0.5, 1, size=400), "c": ["a"] * 300 + ["b"] * 100})
    scores = tm.column_shapes(real, fake, {"x": "continuous", "c": "categorical"})
    assert scores["x"] == pytest.approx(1 - ks_2samp(real["x"], fake["x"]).statistic)
    assert scores["c"] == pytest.approx(0.75)  # frequencies 1/2, 1/2 against 3/4, 1/4
    assert tm.column_shapes(real, real, {"x": "continuous", "c": "categorical"}) == {"x": 1.0, "c": 1.0}
    missing = real.assign(x=real["x"].where(np.arange(500) % 5 != 0))  # 20% missing, the rest the same
    assert tm.column_shapes(real, missing, {"x": "continuous"})["x"] == pytest.approx(0.8, abs=0.02)


def test_correlation_distance_sees_broken_pairs(cancer):
    frame, kinds = cancer
    assert tm.correlation_distance(frame, frame, kinds) == pytest.approx(0, abs=1e-12)
    rng = np.random.default_rng(0)
    shuffled = frame.apply(lambda column: column.to_numpy()[rng.permutation(len(column))])  # marginals kept, pairs broken
    assert tm.column_shapes(frame, shuffled, kinds) == pytest.approx({k: 1.0 for k in kinds})
    assert tm.correlation_distance(frame, shuffled, kinds) > 0.25


def test_detection_auc_is_chance_for_a_resample_and_high_for_a_shift(cancer):
    frame, kinds = cancer
    train, test = split(frame)
    assert tm.detection_auc(train, test, kinds) < 0.62  # two samples of the same table
    shifted = test.assign(**{"mean radius": test["mean radius"] * 1.3})
    assert tm.detection_auc(train, shifted, kinds) > 0.85


def test_closest_record_flags_a_generator_that_returns_training_rows(cancer):
    frame, kinds = cancer
    train, holdout = split(frame)
    copier = train.sample(len(holdout), random_state=0)  # a "generator" that memorised its data
    copied = tm.closest_record(train, holdout, copier, kinds)
    assert copied["dcr_synthetic"] == 0 and copied["dcr_ratio"] == 0 and copied["copies"] == 1.0
    rng = np.random.default_rng(1)
    jittered = holdout.assign(**{k: holdout[k] * rng.normal(1, 0.02, len(holdout)) for k in kinds if kinds[k] == "continuous"})
    fresh = tm.closest_record(train, holdout, jittered, kinds)
    assert 0.8 < fresh["dcr_ratio"] < 1.3 and fresh["copies"] < 0.2


def test_tstr_scores_real_data_high_and_shuffled_labels_at_chance(cancer):
    frame, kinds = cancer
    train, test = split(frame)
    real = tm.tstr(train, test, "target", kinds)
    assert real["metric"] == "macro_f1" and real["random_forest"] > 0.9 and real["linear"] > 0.9
    noise = train.assign(target=train["target"].sample(frac=1, random_state=0).to_numpy())
    assert tm.tstr(noise, test, "target", kinds)["random_forest"] < 0.65
    one_class = train.assign(target="benign")
    assert tm.tstr(one_class, test, "target", kinds)["random_forest"] == 0.0
    regression = tm.tstr(train, test, "mean area", {**kinds, "mean area": "continuous"})
    assert regression["metric"] == "r2" and regression["random_forest"] > 0.9
