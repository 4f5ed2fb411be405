"""PSNR/SSIM with the SR conventions, checked against scikit-image and the published bicubic rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganforge.metrics.psnr_ssim import bicubic_upscale, imresize, modcrop, psnr, read_image, rgb_to_y, ssim

skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is the reference (pip install scikit-image)")


def _set5(shared_data: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted((shared_data / "sr" / "set5").glob("*.png"))]


def test_psnr_and_ssim_equal_scikit_image_on_y(shared_data: Path) -> None:
    for hr in _set5(shared_data)[:3]:
        hr, _, sr = bicubic_upscale(hr, 4)
        a, b = rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]
        assert psnr(sr, hr, crop_border=4) == pytest.approx(
            skimage_metrics.peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
        reference = skimage_metrics.structural_similarity(
            b, a, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ssim(sr, hr, crop_border=4) == pytest.approx(reference, abs=1e-9)


def test_rgb_ssim_is_the_channel_mean() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    reference = skimage_metrics.structural_similarity(
        b.astype(float), a.astype(float), data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1)
    assert ssim(b, a, y_channel=False) == pytest.approx(reference, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0) and psnr(a, a) == float("inf")


def test_bicubic_baseline_matches_the_published_set5_rows(shared_data: Path) -> None:
    """MATLAB-protocol bicubic on Set5: 33.66 dB / 0.9299 at x2, 28.42 dB / 0.8104 at x4."""
    images = _set5(shared_data)
    for scale, (published_psnr, published_ssim) in {2: (33.66, 0.9299), 4: (28.42, 0.8104)}.items():
        pairs = [bicubic_upscale(im, scale) for im in images]
        mean_psnr = np.mean([psnr(sr, hr, scale) for hr, _, sr in pairs])
        mean_ssim = np.mean([ssim(sr, hr, scale) for hr, _, sr in pairs])
        assert abs(mean_psnr - published_psnr) < 0.05
        assert abs(mean_ssim - published_ssim) < 0.002


def test_imresize_follows_matlab_conventions() -> None:
    flat = np.full((17, 23, 3), 77, np.uint8)
    assert (imresize(flat, 0.25) == 77).all() and imresize(flat, 0.25).shape == (5, 6, 3)  # ceil(17/4), ceil(23/4)
    ramp = np.tile(np.arange(32, dtype=np.float64) * 4, (8, 1))
    up = imresize(ramp, 2)
    assert up.shape == (16, 64) and up.dtype == np.float64
    assert np.allclose(np.diff(up[:, 4:-4], axis=1), 2.0)  # cubic convolution reproduces linear ramps
    assert modcrop(np.zeros((13, 10)), 4).shape == (12, 8)
    assert rgb_to_y(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))[0].tolist() == pytest.approx([235.0, 16.0])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
