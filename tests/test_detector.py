"""The synthetic-image detector: it learns up-sampling traces, keeps them through a save, reads any size,
and the ``detect`` / ``verify --detector`` commands report it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_sample_images

from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.safeguards.detector import Detector, DetectorConfig, DetectorNet, crop_origins, roc_auc, train_detector

SMALL = DetectorConfig(size=32, widths=(8, 16, 32))


def photo_crops(count: int, size: int, seed: int) -> list[np.ndarray]:
    """``count`` crops of the photos that ship with scikit-learn, each a ``2 size`` square halved (bicubic):
    real camera content at the scale of generated images."""
    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        photo = photos[i % 2]
        top, left = rng.integers(0, photo.shape[0] - 2 * size), rng.integers(0, photo.shape[1] - 2 * size)
        out.append(np.asarray(Image.fromarray(photo[top:top + 2 * size, left:left + 2 * size]).resize((size, size), Image.BICUBIC)))
    return out


def upsampled(images: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """What a generator's last layer does: half-size content, then a 4x4 stride-2 transposed convolution
    whose kernel is not an exact interpolator (a checkerboard: Odena et al. 2016)."""
    generator = torch.Generator().manual_seed(seed)
    kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(kernel, kernel) / 16 + 0.04 * torch.rand(4, 4, generator=generator)
    kernel = kernel * 4 / kernel.sum()  # four taps land on each output pixel on average
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    y = F.conv_transpose2d(x.reshape(-1, 1, *x.shape[2:]), kernel[None, None], stride=2, padding=1)
    y = y.reshape(len(images), 3, *y.shape[2:]).clamp(0, 255).round().to(torch.uint8)
    return list(y.permute(0, 2, 3, 1).numpy())


def write(folder, images) -> str:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return str(folder)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector-data")
    return write(root / "real", photo_crops(160, 32, seed=0)), write(root / "fake", upsampled(photo_crops(160, 32, seed=1)))


@pytest.fixture(scope="module")
def detector(folders) -> Detector:
    real, fake = folders
    return train_detector(real, fake, steps=120, batch_size=32, config=SMALL, seed=0)


def auc(detector: Detector, real: list[np.ndarray], fake: list[np.ndarray]) -> float:
    return roc_auc(np.r_[np.zeros(len(real)), np.ones(len(fake))], detector.logits(real + fake))


def test_the_detector_learns_upsampling_traces_on_unseen_images(detector):
    real, fake = photo_crops(100, 32, seed=7), upsampled(photo_crops(100, 32, seed=8))
    torch.manual_seed(0)
    untrained = Detector(DetectorNet(SMALL))
    assert auc(untrained, real, fake) < 0.8  # the task is not trivial for a random network
    assert auc(detector, real, fake) >= 0.95
    assert detector.record["val_auc"] >= 0.95
    # trained with JPEG augmentation: the traces still show after JPEG 90 (both classes re-encoded)
    assert auc(detector, [jpeg(x, 90) for x in real], [jpeg(x, 90) for x in fake]) >= 0.8


def test_a_saved_detector_loads_to_the_same_scores(detector, tmp_path):
    path = detector.save(tmp_path / "det.safetensors")
    loaded = Detector.load(path)
    images = photo_crops(6, 48, seed=3)
    assert np.allclose(loaded.probability(images), detector.probability(images), atol=1e-6)
    assert loaded.config == SMALL and loaded.record["steps"] == 120 and len(loaded.weights_id) == 8
    with pytest.raises(UserError, match="no detector at"):
        Detector.load(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UserError, match="not a ganforge detector"):
        Detector.load(tmp_path / "other.safetensors")


def test_crops_cover_large_images_and_small_ones_are_enlarged(detector):
    origins = crop_origins(100, 60, 32, 9)
    assert len(origins) == 9 and (0, 0) in origins and (68, 28) in origins
    assert crop_origins(32, 32, 32, 9) == [(0, 0)] and crop_origins(64, 64, 32, 1) == [(16, 16)]
    big, small = np.zeros((100, 60, 3), np.uint8), np.zeros((20, 24), np.uint8)
    assert detector.probability([big, small]).shape == (2,)


def test_detect_commands_train_score_and_report(folders, tmp_path, capsys):
    real, fake = folders
    out = tmp_path / "det.safetensors"
    assert main(["detect", "train", "--real", real, "--fake", fake, "--out", str(out), "--steps", "3",
                 "--batch-size", "8", "--threads", "1"]) == 0
    assert "held-out AUC" in capsys.readouterr().out
    files = [f"{fake}/000.png", f"{real}/000.png"]
    assert main(["detect", str(out), *files, "--json", str(tmp_path / "p.json")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("P(synthetic) = ") == 2
    report = json.loads((tmp_path / "p.json").read_text())
    assert [r["file"] for r in report["files"]] == files
    assert all(0 <= r["probability"] <= 1 for r in report["files"])
    assert main(["verify", files[0], "--detector", str(out), "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["detector"]["probability"] <= 1
    assert main(["detect", "train", "--real", str(tmp_path / "nowhere"), "--fake", fake, "--out", str(out)]) == 2
    assert "real folder not found" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["detect", str(out), str(tmp_path / "bad.png")]) == 2
    assert "is not an image" in capsys.readouterr().err


def test_the_server_adds_its_detector_to_verify_reports(detector, tiny_dcgan_run, tmp_path):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    path = detector.save(tmp_path / "det.safetensors")
    buffer = io.BytesIO()
    Image.fromarray(upsampled(photo_crops(1, 32, seed=5))[0]).save(buffer, "PNG")
    with TestClient(create_app(tiny_dcgan_run.dir, detector=path), base_url="http://localhost") as client:
        report = client.post("/api/verify", content=buffer.getvalue()).json()
    assert report["detector"]["weights_id"] == Detector.load(path).weights_id
    assert report["detector"]["probability"] == pytest.approx(float(detector.probability([np.asarray(Image.open(buffer))])[0]), abs=1e-6)


def test_large_training_images_are_cropped_never_resized(tmp_path):
    from ganforge.safeguards.detector import read_pixels

    image = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "big.png")
    kept = read_pixels(tmp_path / "big.png", 256)
    assert kept.shape == (256, 256, 3) and np.array_equal(kept, image[22:278, 122:378])
    assert read_pixels(tmp_path / "big.png").shape == (300, 500, 3)
