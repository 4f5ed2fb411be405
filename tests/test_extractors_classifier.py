"""The shipped classifier extractors (digits, mnist, cifar10), Stacked MNIST and mode counting.

Accuracies are measured on real data the classifiers were not trained on (see
``scripts/README.md``): the last 360 sklearn digits, the last 1,500 images of the MNIST test
set (``../shared/data/mnist``; the classifier trained on the first 8,500), and CIFAR-10 test
images.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import ganforge.data.stacked_mnist  # noqa: F401  (registers 'stacked-mnist' until data/__init__ imports it)
import ganforge.extractors.classifier  # noqa: F401  (registers the classifiers until extractors/__init__ imports it)
from ganforge.config import DataConfig
from ganforge.data import DATASETS
from ganforge.data import create as create_dataset
from ganforge.data.images import resize_batch, to_channels
from ganforge.data.stacked_mnist import stack_digits
from ganforge.errors import UserError
from ganforge.extractors import EXTRACTORS, create
from ganforge.extractors.classifier import (
    ClassifierExtractor,
    default_weights,
    load_classifier,
    read_metadata,
    save_classifier,
    stacked_mnist_labels,
)
from ganforge.metrics.modes import class_mode_stats

NAMES = ("digits", "mnist", "cifar10")
MNIST_HELDOUT = slice(8500, 10000)  # the part of the MNIST test set the classifier never saw


@pytest.fixture(scope="module")
def mnist_extractor() -> ClassifierExtractor:
    return create("mnist")


@pytest.fixture(scope="module")
def mnist_test(shared_data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    ds = create_dataset(DataConfig(name="mnist", root=str(shared_data / "mnist"), split="test"))
    return ds.data, ds.labels


def accuracy(extractor: ClassifierExtractor, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((extractor.predict(images) == labels).double().mean())


# --------------------------------------------------------------------------- mode counting


def test_class_mode_stats_hand_computed() -> None:
    # Perfectly balanced: every class hit, KL 0.
    assert class_mode_stats(torch.tensor([0, 1, 2, 3]), 4) == {"modes": 4, "kl": 0.0}
    # Half the classes, equally: KL = 2 * 0.5 * log(0.5 * 4) = log 2.
    stats = class_mode_stats(torch.tensor([0, 0, 1, 1]), 4)
    assert stats["modes"] == 2 and stats["kl"] == pytest.approx(math.log(2), abs=1e-12)
    # p = (3/4, 1/4) against uniform on 2: 0.75 log 1.5 + 0.25 log 0.5 = 0.130812035...
    stats = class_mode_stats([0, 0, 0, 1], 2)
    assert stats["modes"] == 2 and stats["kl"] == pytest.approx(0.1308120359, abs=1e-9)
    # Total collapse onto one of 1,000 classes: KL = log 1000.
    stats = class_mode_stats(torch.full((50,), 417), 1000)
    assert stats["modes"] == 1 and stats["kl"] == pytest.approx(math.log(1000), abs=1e-12)
    assert isinstance(stats["modes"], int) and isinstance(stats["kl"], float)


def test_class_mode_stats_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="0..9"):
        class_mode_stats(torch.tensor([0, 10]), 10)
    with pytest.raises(ValueError, match="0..9"):
        class_mode_stats(torch.tensor([-1, 3]), 10)
    with pytest.raises(ValueError, match="at least one"):
        class_mode_stats(torch.tensor([], dtype=torch.long), 10)
    with pytest.raises(ValueError, match="integers"):
        class_mode_stats(torch.tensor([0.0, 1.0]), 10)


# --------------------------------------------------------------------------- weights and loading


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights(name: str) -> None:
    path = default_weights(name)
    assert path.is_file() and path.stat().st_size < 2_000_000
    meta = read_metadata(path)
    assert float(meta["accuracy"]) >= {"digits": 0.97, "mnist": 0.985, "cifar10": 0.75}[name]
    assert int(meta["epochs"]) > 0 and meta["train_data"] and meta["heldout_data"]
    extractor = create(name)
    assert name in EXTRACTORS and extractor.name == name
    assert extractor.weights_id == hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    assert extractor.key == f"{name}-{extractor.weights_id}"
    assert not extractor.training and not any(p.requires_grad for p in extractor.parameters())
    assert json.loads(meta["config"])["name"] == name


def test_weights_override_and_clear_errors(tmp_path: Path) -> None:
    copy = tmp_path / "copy.safetensors"
    shutil.copy(default_weights("mnist"), copy)
    assert create("mnist", weights=str(copy)).weights_id == create("mnist").weights_id

    # Different weights (re-saved with a perturbed head) -> a different id and different logits.
    other = load_classifier("mnist", fuse=False)
    with torch.no_grad():
        other.net.head.bias.add_(1.0)
    save_classifier(tmp_path / "other.safetensors", other.net, {"accuracy": 0.0})
    changed = create("mnist", weights=str(tmp_path / "other.safetensors"))
    assert changed.weights_id != create("mnist").weights_id
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    assert torch.allclose(changed(x).logits, create("mnist")(x).logits + 1.0, atol=1e-4)

    missing = tmp_path / "nope.safetensors"
    with pytest.raises(UserError, match="not found") as err:
        create("mnist", weights=str(missing))
    assert str(missing) in str(err.value) and "\n" not in str(err.value)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(UserError, match="cannot read") as err:
        create("digits", weights=str(garbage))
    assert "\n" not in str(err.value)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(default_weights("digits").read_bytes()[:5000])
    with pytest.raises(UserError):
        create("digits", weights=str(truncated))

    with pytest.raises(UserError, match="'mnist' classifier, not 'cifar10'"):
        create("cifar10", weights=str(copy))


@pytest.mark.parametrize("name", NAMES)
def test_accepts_grey_rgb_and_any_size(name: str) -> None:
    extractor = create(name)
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 1, 8, 8), (3, 1, 28, 28), (2, 3, 32, 32), (2, 3, 64, 48), (1, 1, 17, 23)]:
        out = extractor(torch.randint(0, 256, shape, dtype=torch.uint8, generator=g))
        assert out.features.shape == (shape[0], extractor.feature_dim) and out.features.dtype == torch.float32
        assert out.logits is not None and out.logits.shape == (shape[0], 10)
        assert torch.isfinite(out.features).all() and torch.isfinite(out.logits).all()
    # Grey and its RGB repetition are the same picture, whichever channels the network reads.
    grey = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8, generator=g)
    a, b = extractor(grey), extractor(grey.expand(-1, 3, -1, -1).contiguous())
    assert torch.allclose(a.features, b.features, atol=1e-5) and torch.allclose(a.logits, b.logits, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        extractor(grey.float())


# --------------------------------------------------------------------------- accuracy on held-out real data


def test_digits_heldout_accuracy() -> None:
    extractor = create("digits")
    native = DATASETS.get("digits")(root=None, split="test", resolution=None, channels=None, download=False)
    assert len(native) == 360  # the last 20%, held out from training
    assert accuracy(extractor, native.data, native.labels) >= 0.97
    # As a GAN trained at 32x32 RGB sees them.
    rgb32 = to_channels(resize_batch(native.data, 32), 3)
    assert accuracy(extractor, rgb32, native.labels) >= 0.97


def test_mnist_heldout_accuracy(
    mnist_extractor: ClassifierExtractor, mnist_test: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = mnist_test[0][MNIST_HELDOUT], mnist_test[1][MNIST_HELDOUT]
    assert accuracy(mnist_extractor, images, labels) >= 0.985
    # At 32x32 as RGB (the dcgan-mnist preset's format): the same digits, the same answers.
    rgb32 = to_channels(resize_batch(images, 32), 3)
    assert accuracy(mnist_extractor, rgb32, labels) >= 0.985
    # Shifted by 2 pixels (generated digits are not always centred): still recognised.
    shifted = torch.roll(images, shifts=(2, -2), dims=(2, 3))
    assert accuracy(mnist_extractor, shifted, labels) >= 0.97


def test_cifar10_heldout_accuracy(shared_data: Path) -> None:
    ds = create_dataset(DataConfig(name="cifar10", root=str(shared_data / "cifar10"), split="test", max_samples=4000))
    extractor = create("cifar10")
    assert torch.bincount(ds.labels, minlength=10).min() > 300  # the stored order mixes classes
    assert accuracy(extractor, ds.data, ds.labels) >= 0.75
    # Grey input works (repeated to RGB) and is still far better than chance.
    assert accuracy(extractor, to_channels(ds.data[:1000], 1), ds.labels[:1000]) >= 0.6


# --------------------------------------------------------------------------- Stacked MNIST


def test_stacked_mnist_dataset(shared_data: Path, mnist_test: tuple[torch.Tensor, torch.Tensor]) -> None:
    cfg = DataConfig(name="stacked-mnist", root=str(shared_data / "mnist"), split="test", max_samples=3000)
    ds = create_dataset(cfg)
    assert ds.data.shape == (3000, 3, 28, 28) and ds.data.dtype == torch.uint8
    assert ds.num_classes == 1000 and int(ds.labels.min()) >= 0 and int(ds.labels.max()) <= 999
    assert torch.equal(create_dataset(cfg).data, ds.data)  # deterministic
    # Each channel is an MNIST test image of the digit its label says.
    images, labels = mnist_test
    digit_of = {bytes(img.numpy().tobytes()): int(lab) for img, lab in zip(images[:, 0], labels)}
    for image, label in zip(ds.data[:200], ds.labels[:200]):
        digits = [digit_of[bytes(image[c].numpy().tobytes())] for c in range(3)]
        assert int(label) == 100 * digits[0] + 10 * digits[1] + digits[2]
    # Other seeds give other images; the labels are balanced over the 1,000 classes.
    data, stacked_labels = stack_digits(images, labels, 2000, seed=1)
    assert not torch.equal(data[:100], ds.data[:100])
    assert torch.bincount(stacked_labels, minlength=1000).tolist() == [2] * 1000
    resized = create_dataset(DataConfig(name="stacked-mnist", root=str(shared_data / "mnist"), split="test",
                                        resolution=32, max_samples=10))
    assert resized.data.shape == (10, 3, 32, 32)
    with pytest.raises(UserError, match="3 channels"):
        create_dataset(DataConfig(name="stacked-mnist", root=str(shared_data / "mnist"), split="test", channels=1))


def test_stacked_mnist_real_data_covers_all_modes(
    mnist_extractor: ClassifierExtractor, mnist_test: tuple[torch.Tensor, torch.Tensor]
) -> None:
    # Stack only digits the classifier never saw (the last 1,500 of the MNIST test set).
    images, labels = mnist_test[0][MNIST_HELDOUT], mnist_test[1][MNIST_HELDOUT]
    stacked, true_labels = stack_digits(images, labels, 10_000, seed=0)
    predicted = stacked_mnist_labels(stacked, mnist_extractor)
    assert predicted.dtype == torch.long and predicted.shape == (10_000,)
    assert torch.equal(stacked_mnist_labels(stacked[:20]), predicted[:20])  # default: the shipped mnist classifier
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        stacked_mnist_labels(stacked[:, :1], mnist_extractor)
    assert float((predicted == true_labels).double().mean()) >= 0.95  # about 0.99 ** 3
    stats = class_mode_stats(predicted, 1000)
    assert stats["modes"] >= 990 and stats["kl"] < 0.05

    # A collapsed "generator" that only ever draws 10 of the 1,000 triples.
    keep = torch.isin(true_labels, torch.arange(10) * 97)
    collapsed = class_mode_stats(stacked_mnist_labels(stacked[keep], mnist_extractor), 1000)
    assert collapsed["modes"] <= 30 and collapsed["kl"] > math.log(1000 / 10) - 0.5
