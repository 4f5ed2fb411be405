"""LPIPS: the reference package with the AlexNet backbone read from a local file.

The published AlexNet weights cannot be downloaded here, so the backbone is a seeded random
AlexNet saved to disk; the checks hold for any backbone: ganforge's LPIPS equals the paper's
formula written out independently below (so the file's weights land in the right layers),
is zero for equal images, symmetric, and grows with the distortion.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

import ganforge
from ganforge.errors import ConfigError, UserError
from ganforge.evaluation.superres import score_folder
from ganforge.metrics import lpips as gl

pytest.importorskip("lpips")


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)  # full model: features.* + classifier.*
    return path


def paper_lpips(x: torch.Tensor, y: torch.Tensor, weights: Path) -> torch.Tensor:
    """Zhang et al. (2018), eq. 1, AlexNet v0.1, from the backbone file and the package's linear weights."""
    alexnet = torchvision.models.alexnet(weights=None)
    alexnet.load_state_dict(torch.load(weights, weights_only=True))
    features = alexnet.features.eval()
    lin_file = resources.files("lpips") / "weights" / "v0.1" / "alex.pth"
    lins = torch.load(str(lin_file), map_location="cpu", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    taps = (1, 4, 7, 9, 11)  # relu1 .. relu5

    def stages(img: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], (img - shift) / scale
        for i, layer in enumerate(features[: taps[-1] + 1]):
            h = layer(h)
            if i in taps:
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        total = torch.zeros(len(x))
        for k, (a, b) in enumerate(zip(stages(x), stages(y))):
            w = lins[f"lin{k}.model.1.weight"]  # [1, C, 1, 1], non-negative
            total += F.conv2d((a - b) ** 2, w).mean(dim=(1, 2, 3))
    return total


def _images(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 8, size // 8, 3)).astype(np.uint8)
    return np.stack([np.asarray(Image.fromarray(b).resize((size, size), Image.BICUBIC)) for b in base])


def _noisy(images: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


def test_lpips_is_the_papers_formula_with_the_files_weights(alexnet_file):
    model = gl.load_lpips(alexnet_file)
    a, b = _images(4), _noisy(_images(4), 25.0)
    ours = gl.lpips_distances(model, a, b)
    reference = paper_lpips(gl.to_model_range(a), gl.to_model_range(b), alexnet_file).double()
    assert ours.shape == (4,) and (ours > 0).all()
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-7), (ours, reference)
    # another backbone gives another distance: the file's weights are the ones used
    torch.manual_seed(1)
    other = alexnet_file.with_name("alexnet-other.pth")
    torch.save(torchvision.models.alexnet(weights=None).features.state_dict(), other)  # features only, no prefix
    assert not torch.allclose(gl.lpips_distances(gl.load_lpips(other), a, b), ours, rtol=1e-3)


def test_lpips_is_zero_for_equal_images_symmetric_and_grows_with_distortion(alexnet_file):
    model = gl.load_lpips(alexnet_file)
    clean = _images(6, seed=3)
    assert gl.lpips_distances(model, clean, clean).abs().max() < 1e-6
    noisy = _noisy(clean, 20.0)
    assert torch.allclose(gl.lpips_distances(model, clean, noisy), gl.lpips_distances(model, noisy, clean), rtol=1e-5)
    means = [gl.lpips_distances(model, clean, _noisy(clean, s)).mean().item() for s in (5.0, 20.0, 60.0)]
    assert means[0] < means[1] < means[2], means
    grey = clean[0, ..., 0]  # [H, W]: scored as the same plane in R, G, B
    assert gl.lpips_distances(model, grey, grey).item() == pytest.approx(0.0, abs=1e-6)


def test_missing_weights_are_a_one_line_error_and_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_LPIPS_ALEXNET_WEIGHTS", raising=False)
    assert not gl.available()
    pattern = r"^AlexNet \(for LPIPS\) weights not found: download https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    with pytest.raises(ConfigError, match=pattern) as err:
        gl.load_lpips()
    assert "\n" not in str(err.value) and str(tmp_path / "cache") in str(err.value)
    fake = tmp_path / "cache" / "weights" / "alexnet-owt-7be5be79.pth"  # the published name, other bytes
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the published file")
    assert gl.available()
    with pytest.raises(UserError, match="does not have the SHA-256 of torchvision's AlexNet"):
        gl.load_lpips()
    torch.save({"features.0.weight": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(ConfigError, match="not an AlexNet features state dict"):
        gl.load_lpips(tmp_path / "wrong.pth")


def test_super_resolution_scores_include_lpips(alexnet_file, tmp_path, monkeypatch):
    folder = tmp_path / "set"
    folder.mkdir()
    for i, image in enumerate(_images(2, size=64, seed=5)):
        Image.fromarray(image).save(folder / f"{i}.png")
    model = gl.load_lpips(alexnet_file)
    hr = np.asarray(Image.open(folder / "0.png").convert("RGB"))
    exact = score_folder(folder, 4, upscale=lambda lr: hr, n=1, lpips_model=model)  # a perfect upscaler
    assert exact["lpips"] == pytest.approx(0.0, abs=1e-6) and exact["bicubic_lpips"] > 1e-4
    assert exact["psnr"] == float("inf") or exact["psnr"] > 90
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("GANFORGE_LPIPS_ALEXNET_WEIGHTS", raising=False)
    plain = score_folder(folder, 4)
    assert "lpips" not in plain and "bicubic_lpips" not in plain


def test_translation_eval_reports_lpips_when_available(alexnet_file, tmp_path, monkeypatch):
    from test_translation import _config, write_pairs

    write_pairs(tmp_path / "pairs" / "train", 8, seed=0)
    write_pairs(tmp_path / "pairs" / "test", 4, seed=1)
    run = ganforge.train(_config(tmp_path / "pairs", **{"train.steps": 2}), out=tmp_path / "run")
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("GANFORGE_LPIPS_ALEXNET_WEIGHTS", raising=False)
    assert "lpips" not in ganforge.evaluate_run(run.dir, metrics=[])
    with pytest.raises(ConfigError, match="AlexNet"):
        ganforge.evaluate_run(run.dir, metrics=["lpips"])
    monkeypatch.setenv("GANFORGE_LPIPS_ALEXNET_WEIGHTS", str(alexnet_file))
    scored = ganforge.evaluate_run(run.dir, metrics=["lpips"])
    assert set(scored) >= {"l1", "lpips"} and "fid" not in scored and 0 < scored["lpips"] < 2
