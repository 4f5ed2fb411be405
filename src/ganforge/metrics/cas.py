"""Classification Accuracy Score (CAS): train a classifier on generated data, test it on real data.

Ravuri & Vinyals (2019), "Classification Accuracy Score for Conditional Generative Models":
a conditional generator is good for downstream use when a classifier trained *only* on its
labelled samples classifies the real test set well. The same classifier trained on the same
number of real training images (``cas_real``) is the reference a perfect generator would reach.

The classifier is the project's own small CNN (:class:`~ganforge.extractors.classifier.ClassifierNet`,
the architecture of the shipped ``mnist`` classifier for grey images and of the ``cifar10`` one
for RGB, read at 32x32; for audio clips the ``fsdd`` classifier's, on its spectrograms: see
:data:`CAS_NETWORKS`), with fixed normalisation, trained from scratch with SGD (Nesterov,
warm-up + cosine schedule) and random shifts (of images; of spectrograms in time), for a
fixed number of steps and a fixed seed.
Everything random draws from generators seeded here, so a run is a pure function of its
inputs on a given machine and thread count (pass ``threads`` to pin it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..extractors.audio import AudioClassifierExtractor, check_clips
from ..extractors.audio import cas_config as clip_classifier_config
from ..extractors.classifier import ARCHITECTURES, ClassifierConfig, ClassifierExtractor

#: Default seed of the CAS classifier (weights, batch order, shifts, dropout).
CAS_SEED = 0


@dataclass(frozen=True)
class ClassifierRecipe:
    """How the CAS classifier is trained: the same for synthetic and real training sets.

    Attributes:
        steps: SGD steps (fixed, whatever the training set's size).
        batch_size: images per step.
        lr: peak learning rate (linear warm-up over ``warmup_fraction`` of the steps, then cosine to 0).
        warmup_fraction: share of the steps spent warming up.
        weight_decay: L2 penalty on conv and linear weights (not on biases or BatchNorm).
        shift: random translations of up to +-``shift`` pixels at ``resolution`` (0 = none); for
            clips, of up to +-``shift`` spectrogram frames in time.
        resolution: square side the classifier reads images at (they are resized to it; not
            used for clips).
    """

    steps: int = 600
    batch_size: int = 128
    lr: float = 0.05
    warmup_fraction: float = 0.1
    weight_decay: float = 5e-4
    shift: int = 2
    resolution: int = 32

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")
        if self.lr <= 0 or not 0 <= self.warmup_fraction < 1 or self.shift < 0 or self.resolution < 8:
            raise ValueError(f"bad classifier recipe {self}")

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to ``lr``, then cosine decay to 0 at ``steps``."""
        warmup = max(1, int(self.warmup_fraction * self.steps))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, self.steps - warmup)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


#: The recipe ``ganforge eval --metrics cas`` trains with (600 steps of 128 images: about 13 epochs of 6,000).
DEFAULT_RECIPE = ClassifierRecipe()


def classifier_config(
    channels: int, num_classes: int, class_names: list[str] | None = None, resolution: int = 32
) -> ClassifierConfig:
    """The CAS network: the shipped ``mnist`` (grey) or ``cifar10`` (RGB) architecture, ``num_classes`` outputs.

    Normalisation is fixed (mean 0.5, std 0.5), not measured on the training set, so a
    classifier trained on synthetic images reads real ones exactly as it read its own.
    """
    if channels not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got {channels}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    base = ARCHITECTURES["mnist" if channels == 1 else "cifar10"]
    names = tuple(class_names) if class_names and len(class_names) == num_classes else None
    names = names or tuple(str(k) for k in range(num_classes))
    return dataclasses.replace(
        base, name="cas", resolution=resolution, num_classes=num_classes, class_names=names,
        mean=(0.5,) * channels, std=(0.5,) * channels,
    )


@contextlib.contextmanager
def pinned_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (None: leave as is), then restore."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def random_shift(
    x: torch.Tensor, shift: int, fill: float, generator: torch.Generator, vertical: bool = True
) -> torch.Tensor:
    """Translate each image of ``x [N, C, H, W]`` by its own random offset in ``[-shift, shift]^2``.

    Pixels shifted in take the value ``fill`` (the normalised black background). With
    ``vertical=False`` the offsets are horizontal only (spectrograms: in time, not in pitch).
    """
    if shift == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), value=fill)  # [N, C, H + 2s, W + 2s]
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=generator)
    if not vertical:
        dy = torch.full_like(dy, shift)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # [N, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # [N, 1, 1, W]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]


def _check_images(images: torch.Tensor, name: str) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} images must be uint8 [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")


def _image_config(
    images: torch.Tensor, num_classes: int, class_names: Sequence[str] | None, recipe: ClassifierRecipe
) -> ClassifierConfig:
    return classifier_config(images.shape[1], num_classes, list(class_names) if class_names else None, recipe.resolution)


def _clip_config(
    clips: torch.Tensor, num_classes: int, class_names: Sequence[str] | None, recipe: ClassifierRecipe
) -> ClassifierConfig:
    return clip_classifier_config(num_classes, class_names, length=clips.shape[-1])


@dataclass(frozen=True)
class CASNetwork:
    """The CAS classifier of one modality: its extractor class and config, input check and shifts.

    Attributes:
        extractor: the :class:`ClassifierExtractor` class (its ``preprocess`` and ``background``).
        config: ``config(train_samples, num_classes, class_names, recipe)``.
        check: ``check(samples, name)``: raise ValueError unless these are samples it reads.
        vertical_shifts: shift the network input in both directions (images), or in time only
            (spectrograms).
    """

    extractor: type[ClassifierExtractor]
    config: Callable[[torch.Tensor, int, Sequence[str] | None, ClassifierRecipe], ClassifierConfig]
    check: Callable[[torch.Tensor, str], None]
    vertical_shifts: bool = True


#: Modality -> its CAS classifier: grey and RGB images, and audio clips (the ``fsdd`` architecture).
CAS_NETWORKS: dict[str, CASNetwork] = {
    "image": CASNetwork(ClassifierExtractor, _image_config, _check_images),
    "audio": CASNetwork(AudioClassifierExtractor, _clip_config, lambda x, name: check_clips(x, name), False),
}


def cas_network(modality: str) -> CASNetwork:
    """The CAS classifier of ``modality`` (ValueError for a modality without one)."""
    if modality not in CAS_NETWORKS:
        raise ValueError(f"cas is defined for {' and '.join(CAS_NETWORKS)} samples, not {modality}")
    return CAS_NETWORKS[modality]


def _check_labelled(samples: torch.Tensor, labels: torch.Tensor, name: str, modality: str = "image") -> None:
    cas_network(modality).check(samples, name)
    if labels.dim() != 1 or len(labels) != len(samples):
        raise ValueError(f"{name}: {tuple(labels.shape)} labels for {len(samples)} samples")
    if len(samples) == 0:
        raise ValueError(f"{name} set is empty")


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    recipe: ClassifierRecipe | None = None,
    seed: int = CAS_SEED,
    class_names: list[str] | None = None,
    threads: int | None = None,
    modality: str = "image",
) -> ClassifierExtractor:
    """Train the CAS classifier from scratch on ``images`` and ``labels [N]``.

    ``images`` are uint8 ``[N, C, H, W]`` (``modality="image"``) or float clips ``[N, 1, L]``
    (``"audio"``). Batches are drawn without replacement, epoch by epoch, in a seeded order;
    the global RNG is left untouched. Returns the classifier in eval mode (``.predict(images)``).
    """
    _check_labelled(images, labels, "training", modality)
    network = cas_network(modality)
    recipe = recipe or DEFAULT_RECIPE
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
    config = network.config(images, num_classes, class_names, recipe)
    with pinned_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weights and dropout
        order_rng = torch.Generator().manual_seed(seed)
        classifier = network.extractor(config, weights_id=f"cas-seed{seed}")
        net = classifier.net
        data = torch.cat([classifier.preprocess(images[i : i + 4096]) for i in range(0, len(images), 4096)])
        labels = labels.long()
        fill = classifier.background()  # a black pixel (silence), normalised
        decay = [p for p in net.parameters() if p.dim() > 1]
        no_decay = [p for p in net.parameters() if p.dim() <= 1]
        optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr, momentum=0.9, nesterov=True,
        )
        batch = min(recipe.batch_size, len(data))
        order, position = torch.randperm(len(data), generator=order_rng), 0
        net.train()
        for step in range(recipe.steps):
            if position + batch > len(data):
                order, position = torch.randperm(len(data), generator=order_rng), 0
            idx = order[position : position + batch]
            position += batch
            x = random_shift(data[idx], recipe.shift, fill, order_rng, network.vertical_shifts)
            x = x.contiguous(memory_format=torch.channels_last)
            _, logits = net(x)
            loss = F.cross_entropy(logits, labels[idx])
            for group in optimizer.param_groups:
                group["lr"] = recipe.learning_rate(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return classifier.eval().requires_grad_(False)


def accuracy(
    classifier: ClassifierExtractor, images: torch.Tensor, labels: torch.Tensor, threads: int | None = None
) -> float:
    """Share of ``images`` (images or clips, what ``classifier`` reads) that ``classifier`` labels as ``labels``."""
    classifier.check_input(images)
    if labels.dim() != 1 or len(labels) != len(images) or len(images) == 0:
        raise ValueError(f"test: {tuple(labels.shape)} labels for {len(images)} samples")
    with pinned_threads(threads):
        return float((classifier.predict(images) == labels.long()).double().mean())


def train_and_test(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    *,
    recipe: ClassifierRecipe | None = None,
    seed: int = CAS_SEED,
    threads: int | None = None,
    modality: str = "image",
) -> float:
    """Test accuracy of the CAS classifier trained on ``train_*`` (any source, real or generated)."""
    classifier = train_classifier(train_images, train_labels, num_classes, recipe=recipe, seed=seed, threads=threads,
                                  modality=modality)
    return accuracy(classifier, test_images, test_labels, threads)


def cas_scores(
    fake_images: torch.Tensor,
    fake_labels: torch.Tensor,
    real_images: torch.Tensor | None,
    real_labels: torch.Tensor | None,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    *,
    recipe: ClassifierRecipe | None = None,
    seed: int = CAS_SEED,
    threads: int | None = None,
    modality: str = "image",
) -> dict[str, float | int | None]:
    """CAS of labelled fake images (or clips: ``modality="audio"``), and the same classifier trained on as many real ones.

    Real training images byte-identical to a test image are left out first (so a real set
    that contains the test split cannot inflate ``cas_real``).

    Returns:
        ``cas`` (test accuracy, trained on the fakes), ``cas_real`` (trained on the first
        ``len(fake_images)`` eligible real images; None without real labels), ``cas_n_real``
        (how many) and ``cas_n_test``.
    """
    recipe = recipe or DEFAULT_RECIPE
    if int(fake_labels.min()) < 0 or int(fake_labels.max()) >= num_classes:
        raise ValueError(f"fake labels lie outside the test set's {num_classes} classes")
    scores: dict[str, float | int | None] = {
        "cas": train_and_test(fake_images, fake_labels, test_images, test_labels, num_classes,
                              recipe=recipe, seed=seed, threads=threads, modality=modality),
        "cas_real": None,
        "cas_n_real": 0,
        "cas_n_test": len(test_images),
    }
    if real_images is not None and real_labels is not None:
        keep = torch.nonzero(drop_duplicates_of(real_images, test_images)).flatten()[: len(fake_images)]
        if len(keep):
            scores["cas_real"] = train_and_test(real_images[keep], real_labels[keep], test_images, test_labels,
                                                num_classes, recipe=recipe, seed=seed, threads=threads, modality=modality)
            scores["cas_n_real"] = len(keep)
    return scores


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """``0, 1, ..., K-1, 0, 1, ...``: ``n`` class-balanced labels (what ganforge's generators draw)."""
    return torch.arange(n) % num_classes


def balanced_subset(
    labels: torch.Tensor, per_class: int, seed: int = 0, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices of ``per_class`` samples of every class (a seeded random choice, sorted).

    Args:
        labels: ``int64 [N]`` class of each sample.
        per_class: samples to keep per class.
        seed: which samples.
        exclude: boolean mask ``[N]`` of samples never to pick.

    Raises:
        ValueError: a class has fewer than ``per_class`` eligible samples.
    """
    rng = torch.Generator().manual_seed(seed)
    allowed = torch.ones(len(labels), dtype=torch.bool) if exclude is None else ~exclude
    picked = []
    for cls in sorted(set(labels.tolist())):
        pool = torch.nonzero((labels == cls) & allowed).flatten()
        if len(pool) < per_class:
            raise ValueError(f"class {cls} has {len(pool)} samples, fewer than {per_class}")
        picked.append(pool[torch.randperm(len(pool), generator=rng)[:per_class]])
    return torch.cat(picked).sort().values


def drop_duplicates_of(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Boolean mask ``[N]``: rows of ``images`` that are *not* byte-identical to a row of ``reference``.

    Keeps a "real" training set from containing the test images (the ``digits`` data set's
    ``train`` split holds its ``test`` split).
    """
    if images.shape[1:] != reference.shape[1:]:
        return torch.ones(len(images), dtype=torch.bool)
    seen = {bytes(row) for row in reference.reshape(len(reference), -1).numpy()}
    return torch.tensor([bytes(row) not in seen for row in images.reshape(len(images), -1).numpy()], dtype=torch.bool)


__all__ = [
    "CAS_NETWORKS",
    "CAS_SEED",
    "CASNetwork",
    "ClassifierRecipe",
    "DEFAULT_RECIPE",
    "accuracy",
    "balanced_labels",
    "balanced_subset",
    "cas_network",
    "cas_scores",
    "classifier_config",
    "drop_duplicates_of",
    "random_shift",
    "train_and_test",
    "train_classifier",
]
