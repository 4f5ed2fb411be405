"""Metric statistics (FID, KID, IS, PRDC) against the reference implementations.

Each reference is imported with ``pytest.importorskip`` (they are in the ``test`` extra);
all comparisons use the same random float64 features on both sides.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.metrics.fid import feature_statistics, fid_from_features, frechet_distance
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.prdc import density_coverage, prdc, precision_recall


def _features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Correlated features (random linear mix), so covariances are not near-diagonal.
    mix = np.random.default_rng(1234).normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix) * scale + shift


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# (real, fake) pairs: same distribution; shifted and scaled; higher dimension.
PAIRS = {
    "same-dist-64": ((1000, 64, 0), (1200, 64, 1, 0.0, 1.0)),
    "shift-scale-64": ((1000, 64, 2), (800, 64, 3, 0.3, 1.5)),
    "shift-scale-256": ((1500, 256, 4), (1500, 256, 5, -0.2, 0.8)),
}


@pytest.fixture(params=sorted(PAIRS), scope="module")
def pair(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    real_args, fake_args = PAIRS[request.param]
    return _features(*real_args), _features(*fake_args)


# --------------------------------------------------------------------------------------- FID


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pytorch-fid passes sqrtm(disp=False)
def test_frechet_distance_matches_pytorch_fid(pair: tuple[np.ndarray, np.ndarray]) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is the FID reference")
    real, fake = pair
    mu1, s1 = feature_statistics(real)
    mu2, s2 = feature_statistics(fake)
    np.testing.assert_allclose(s1, np.cov(real, rowvar=False), rtol=1e-12, atol=1e-14)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(fid_score.calculate_frechet_distance(mu1, s1, mu2, s2))
    assert _rel(ours, ref) < 1e-6, (ours, ref)
    assert _rel(fid_from_features(real, fake), ref) < 1e-6


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::RuntimeWarning", "ignore::scipy.linalg.LinAlgWarning"
)
def test_frechet_distance_singular_covariance_matches_pytorch_fid(capsys: pytest.CaptureFixture[str]) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid is the FID reference")
    # Fewer samples than dimensions: rank-deficient covariances (the eps-offset regime).
    real, fake = _features(40, 96, 6), _features(50, 96, 7, 0.5, 2.0)
    mu1, s1 = feature_statistics(real)
    mu2, s2 = feature_statistics(fake)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(fid_score.calculate_frechet_distance(mu1, s1, mu2, s2))
    assert _rel(ours, ref) < 1e-6, (ours, ref)
    # A product whose sqrtm is not finite (nilpotent) takes the eps * I fallback in both.
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    ours = frechet_distance(np.zeros(2), np.eye(2), np.ones(2), nilpotent)
    ref = float(fid_score.calculate_frechet_distance(np.zeros(2), np.eye(2), np.ones(2), nilpotent))
    assert np.isfinite(ours) and _rel(ours, ref) < 1e-6, (ours, ref)


def test_fid_of_set_with_itself_is_zero() -> None:
    x = _features(1000, 64, 8)
    assert abs(fid_from_features(x, x)) < 1e-6
    assert abs(fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(x).float())) < 1e-6


def test_fid_gaussian_closed_form() -> None:
    # Isotropic covariances a^2 I and b^2 I: d^2 = ||mu||^2 + D (a - b)^2 exactly.
    d, a, b = 8, 1.0, 2.0
    mu = np.full(d, 0.5)
    value = frechet_distance(np.zeros(d), a**2 * np.eye(d), mu, b**2 * np.eye(d))
    assert value == pytest.approx(mu @ mu + d * (a - b) ** 2, rel=1e-12)


def test_fid_errors() -> None:
    x = _features(10, 4, 9)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(x[:1], x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        feature_statistics(x[:1])
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid_from_features(x, x[:, :3])
    with pytest.raises(ValueError, match="mean vectors"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="2-D"):
        fid_from_features(x[0], x)


# --------------------------------------------------------------------------------------- KID


def test_kid_matches_torch_fidelity(pair: tuple[np.ndarray, np.ndarray]) -> None:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity is the KID reference")
    real, fake = pair
    subsets, size, seed = 10, 500, 3
    ours = kernel_inception_distance(real, fake, num_subsets=subsets, subset_size=size, seed=seed)
    ref = metric_kid.kid_features_to_metric(
        torch.from_numpy(real), torch.from_numpy(fake),
        kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False,
    )  # fmt: skip
    assert _rel(ours[0], ref[metric_kid.KEY_METRIC_KID_MEAN]) < 1e-9, (ours, ref)
    assert _rel(ours[1], ref[metric_kid.KEY_METRIC_KID_STD]) < 1e-6, (ours, ref)


def test_kid_full_set_matches_torch_fidelity_mmd() -> None:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity is the KID reference")
    real, fake = _features(600, 128, 10), _features(600, 128, 11, 0.1, 1.2)
    mean, std = kernel_inception_distance(real, fake, num_subsets=1, subset_size=600, degree=2, coef0=0.5)
    ref = metric_kid.kernel_mmd(
        real, fake, kid_kernel="poly", kid_kernel_poly_degree=2,
        kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=0.5,
    )  # fmt: skip
    assert _rel(mean, float(ref)) < 1e-9 and std == 0.0


def test_kid_of_iid_halves_is_within_noise_of_zero() -> None:
    x = _features(2000, 64, 12)
    mean, std = kernel_inception_distance(x[:1000], x[1000:], num_subsets=50, subset_size=500)
    assert std > 0 and abs(mean) < 3 * std, (mean, std)
    shifted, _ = kernel_inception_distance(x[:1000], x[1000:] * 1.5 + 0.3, num_subsets=50, subset_size=500)
    assert shifted > 10 * std


def test_kid_errors() -> None:
    x = _features(100, 8, 13)
    with pytest.raises(ValueError, match=r"subset_size 200 exceeds .*real: 100, fake: 100"):
        kernel_inception_distance(x, x, subset_size=200)
    with pytest.raises(ValueError, match="feature sizes differ"):
        kernel_inception_distance(x, x[:, :4], subset_size=50)
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_inception_distance(x[:1], x, subset_size=1)


# ---------------------------------------------------------------------------------------- IS


@pytest.mark.parametrize(
    "n, classes, splits, shuffle", [(1000, 100, 10, True), (1003, 1008, 7, True), (500, 10, 3, False)]
)
def test_inception_score_matches_torch_fidelity(n: int, classes: int, splits: int, shuffle: bool) -> None:
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity is the IS reference")
    logits = np.random.default_rng(n).normal(size=(n, classes)) * 3.0
    ours = inception_score(logits, splits=splits, shuffle=shuffle)
    ref = metric_isc.isc_features_to_metric(torch.from_numpy(logits), splits=splits, shuffle=shuffle, rng_seed=2020)
    assert _rel(ours[0], ref[metric_isc.KEY_METRIC_ISC_MEAN]) < 1e-9, (ours, ref)
    assert _rel(ours[1], ref[metric_isc.KEY_METRIC_ISC_STD]) < 1e-6, (ours, ref)


def test_inception_score_extremes_and_errors() -> None:
    # Confident, uniformly spread predictions: IS -> number of classes; identical ones: IS = 1.
    confident = np.eye(10).repeat(100, axis=0) * 50.0
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-9)
    assert inception_score(np.zeros((100, 10)), splits=5) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="at least one sample per split"):
        inception_score(np.zeros((5, 10)), splits=10)


# -------------------------------------------------------------------------------------- PRDC


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_reference(pair: tuple[np.ndarray, np.ndarray], k: int) -> None:
    ref_prdc = pytest.importorskip("prdc", reason="prdc (Naeem et al.) is the PRDC reference")
    real, fake = pair
    ref = ref_prdc.compute_prdc(real, fake, nearest_k=k)
    ours = prdc(real, fake, k=k, batch_size=300)  # several blocks, including a ragged last one
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(ref[name]), rel=1e-12, abs=1e-12), name


def test_prdc_wrappers_high_dim_and_torch_input() -> None:
    ref_prdc = pytest.importorskip("prdc", reason="prdc (Naeem et al.) is the PRDC reference")
    real, fake = _features(500, 2048, 14), _features(400, 2048, 15, 0.05, 1.1)
    ref3 = ref_prdc.compute_prdc(real, fake, nearest_k=3)
    ref5 = ref_prdc.compute_prdc(real, fake, nearest_k=5)
    p, r = precision_recall(torch.from_numpy(real).float().double(), torch.from_numpy(fake))
    d, c = density_coverage(real, fake)
    assert (p, r) == pytest.approx((ref3["precision"], ref3["recall"]), abs=1e-12)
    assert (d, c) == pytest.approx((ref5["density"], ref5["coverage"]), abs=1e-12)


def test_prdc_errors() -> None:
    x = _features(10, 4, 16)
    with pytest.raises(ValueError, match="at least 6 samples"):
        prdc(x[:5], x, k=5)
    with pytest.raises(ValueError, match="feature sizes differ"):
        prdc(x, x[:, :2], k=3)
    with pytest.raises(ValueError, match="k must be"):
        prdc(x, x, k=0)
