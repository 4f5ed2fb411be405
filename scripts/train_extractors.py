"""Train the classifier feature extractors (``digits``, ``mnist``, ``cifar10``, ``fsdd``) and write their weights.

Reproducible on a CPU: fixed seed, a pinned number of threads and a fixed batch and
augmentation order, so the same command on the same machine and PyTorch build writes
the same weights. The networks see exactly the preprocessing of the extractor
(:func:`ganforge.extractors.classifier.preprocess`); augmentation (random shifts, and
horizontal flips for CIFAR-10) is applied on top of it. Held-out accuracy is measured
through the extractor itself (uint8 images in, logits out) and stored in the file's
metadata together with the data, epochs and command.

Data (see ``scripts/README.md``):

* ``digits``: scikit-learn's 1,797 digits; train on the first 1,437, hold out the last
  360 (20%, the ``digits`` data set's ``test`` split).
* ``mnist``: the 60,000 training images when the train split is found under ``--mnist-root``
  (default: the ``mnist`` data set's default root), then held out on the 10,000 test
  images; otherwise the 10,000 *test* images of ``--mnist-test-root`` (default
  ``../shared/data/mnist``), train on the first 8,500 and hold out the last 1,500.
* ``cifar10``: train on the 50,000 ``train`` images, hold out the 10,000 ``test`` images
  of ``--cifar10-root`` (default ``../shared/data/cifar10``).
* ``fsdd`` (spoken digits, :mod:`ganforge.extractors.audio`): train on the ``fsdd`` data set's
  ``train`` split (recordings 5-49 of each speaker and digit, 2,700 clips), hold out its
  ``test`` split (recordings 0-4, 300 clips) of ``--fsdd-root`` (default
  ``../shared/data/fsdd/recordings``). The network reads the extractor's spectrograms
  (:func:`ganforge.extractors.audio.preprocess_clips`), computed batch by batch from waveforms
  augmented so that it also recognises generated clips: random time shifts, gain changes and a
  little white noise (see :class:`AudioRecipe`).

Usage::

    python scripts/train_extractors.py                  # all four, into the package
    python scripts/train_extractors.py digits mnist --out /tmp/weights
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data import DATASETS
from ganforge.data import create as create_data
from ganforge.errors import DataError
from ganforge.extractors.audio import FSDD_ARCHITECTURE, AudioClassifierExtractor, fit_length
from ganforge.extractors.classifier import (
    ARCHITECTURES,
    WEIGHTS_DIR,
    ClassifierConfig,
    ClassifierExtractor,
    ClassifierNet,
    preprocess,
    save_classifier,
)
from ganforge.extractors.video import MOVING_DIGITS_ARCHITECTURE, VideoClassifierExtractor, preprocess_video

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
MNIST_TEST_TRAIN = 8_500  # with only the MNIST test set: train on [:8500], hold out [8500:]


@dataclass(frozen=True)
class Recipe:
    """Optimisation and augmentation settings of one classifier."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1  # peak SGD learning rate (linear warm-up, then cosine decay to 0)
    warmup_fraction: float = 0.1
    weight_decay: float = 5e-4
    shift: int = 3  # random translations of up to +-shift pixels at the native resolution
    flip: bool = False  # random horizontal flips
    dtype: str = "float32"  # storage dtype of the weights file


@dataclass(frozen=True)
class AudioRecipe(Recipe):
    """A :class:`Recipe` of a classifier of clips: waveform augmentation instead of pixel shifts.

    Each training clip is, in this order: shifted in time by a uniform number of samples in
    ``[-time_shift, time_shift]`` (zeros shifted in; then cropped or padded to the network's
    length as usual), scaled by a gain uniform in ``gain_db`` dB, and, with probability
    ``noise_prob``, given white Gaussian noise of an RMS level uniform in ``noise_db`` dB of
    full scale; finally clipped to [-1, 1], as a WAV file would.
    """

    shift: int = 0  # no pixel shifts: time shifts act on the waveform
    time_shift: int = 800  # samples (0.1 s at 8 kHz)
    gain_db: tuple[float, float] = (-24.0, 6.0)
    noise_prob: float = 0.5
    noise_db: tuple[float, float] = (-70.0, -30.0)


RECIPES: dict[str, Recipe] = {
    "digits": Recipe(epochs=60, batch_size=64, lr=0.05, shift=4),
    "mnist": Recipe(epochs=30, batch_size=128, lr=0.1, shift=3),
    "cifar10": Recipe(epochs=8, batch_size=128, lr=0.1, shift=2, flip=True),
    "fsdd": AudioRecipe(epochs=40, batch_size=64, lr=0.05),
    "moving-digits": Recipe(epochs=12, batch_size=64, lr=0.05, shift=2),  # shifts: the whole clip, every frame alike
}
#: Classifiers of clips (their architecture; the others are in ``ARCHITECTURES``).
AUDIO_ARCHITECTURES = {"fsdd": FSDD_ARCHITECTURE}
VIDEO_ARCHITECTURES = {"moving-digits": MOVING_DIGITS_ARCHITECTURE}
FULL_MNIST_EPOCHS = 5  # with the 60k MNIST train set: about as many steps as 30 epochs of 8.5k


@dataclass
class Split:
    """uint8 images (float audio clips ``[N, 1, L]``, uint8 video clips ``[N, T, C, H, W]``) and labels to train on and
    to hold out, with their descriptions. Video labels are ``[N, 2]``: the digit, then the direction of motion."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    heldout_images: torch.Tensor
    heldout_labels: torch.Tensor
    train_data: str
    heldout_data: str


def _dataset(name: str, root: str | Path | None, split: str):
    return DATASETS.get(name)(
        root=None if root is None else str(root), split=split, resolution=None, channels=None, download=False
    )


def load_split(name: str, args: argparse.Namespace) -> Split:
    """The training and held-out data of classifier ``name`` (see the module docstring)."""
    if name == "digits":
        ds = _dataset("digits", None, "all")
        cut = int(0.8 * len(ds))  # 1437, as the digits data set's 'test' split
        return Split(
            ds.data[:cut], ds.labels[:cut], ds.data[cut:], ds.labels[cut:],
            f"sklearn load_digits [0:{cut}]", f"sklearn load_digits [{cut}:{len(ds)}] (digits data set, split=test)",
        )
    if name == "mnist":
        try:
            train = _dataset("mnist", args.mnist_root, "train")
            test = _dataset("mnist", args.mnist_root, "test")
            return Split(
                train.data, train.labels, test.data, test.labels,
                "MNIST train set (60k)", "MNIST test set (t10k)",
            )
        except DataError as err:
            print(f"mnist: no train split ({err}); using the 10k test set split {MNIST_TEST_TRAIN:,}/"
                  f"{10_000 - MNIST_TEST_TRAIN:,}", flush=True)
        test = _dataset("mnist", args.mnist_test_root, "test")
        k = MNIST_TEST_TRAIN
        return Split(
            test.data[:k], test.labels[:k], test.data[k:], test.labels[k:],
            f"MNIST test set (t10k) [0:{k}]", f"MNIST test set (t10k) [{k}:{len(test)}]",
        )
    if name == "cifar10":
        train = _dataset("cifar10", args.cifar10_root, "train")
        test = _dataset("cifar10", args.cifar10_root, "test")
        return Split(
            train.data, train.labels, test.data, test.labels,
            f"CIFAR-10 train set ({train.info.get('layout')})", f"CIFAR-10 test set ({test.info.get('layout')})",
        )
    if name == "fsdd":
        rate, length = FSDD_ARCHITECTURE.sample_rate, FSDD_ARCHITECTURE.length
        train, test = (create_data(DataConfig(name="fsdd", root=str(args.fsdd_root), split=part, sample_rate=rate,
                                              length=length)) for part in ("train", "test"))
        return Split(
            train.data, train.labels, test.data, test.labels,
            f"FSDD train split (recordings 5-49, {rate} Hz, {length} samples)",
            f"FSDD test split (recordings 0-4, {rate} Hz, {length} samples)",
        )
    if name == "moving-digits":
        train, test = (_dataset("moving-digits", None, part) for part in ("train", "test"))
        train_labels, test_labels = (torch.stack([d.labels, d.info["directions"][:, 0]], dim=1) for d in (train, test))
        return Split(
            train.data, train_labels, test.data, test_labels,
            "moving-digits train split (seed 0; scikit-learn digits [0:1438])",
            "moving-digits test split (fresh clips: seed 1; held-out digits [1438:1797])",
        )
    raise ValueError(f"unknown classifier {name!r}")


def channel_stats(images: torch.Tensor, config: ClassifierConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1]) of ``images`` as the network reads them."""
    plain = dataclasses.replace(config, mean=(0.0,) * config.channels, std=(1.0,) * config.channels)
    total = torch.zeros(config.channels, dtype=torch.float64)
    total_sq = torch.zeros(config.channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), 5000):
        x = preprocess(images[start : start + 5000], plain).double()
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)


def augment(x: torch.Tensor, recipe: Recipe, fill: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to ``recipe.shift`` pixels (and flips) of a normalised batch ``[N, C, R, R]``.

    A shift is a crop of the batch padded by ``shift`` on every side; the padding is the
    normalised value of a black pixel (``fill``, per channel), the background of digits.
    """
    n, c, h, w = x.shape
    if recipe.flip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    s = recipe.shift
    if s > 0:
        padded = fill.view(1, c, 1, 1).expand(n, c, h + 2 * s, w + 2 * s).clone()
        padded[:, :, s : s + h, s : s + w] = x
        dy = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # [N, 1, R, 1]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # [N, 1, 1, R]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    return x.contiguous(memory_format=torch.channels_last)


def augment_clips(clips: torch.Tensor, recipe: AudioRecipe, generator: torch.Generator) -> torch.Tensor:
    """Random time shifts, gains and noise of float clips ``[N, 1, L]`` (see :class:`AudioRecipe`)."""
    n, _, length = clips.shape
    s = recipe.time_shift
    if s > 0:
        padded = F.pad(clips, (s, s))  # [N, 1, L + 2s], zeros either side
        start = torch.randint(0, 2 * s + 1, (n,), generator=generator)
        clips = padded[torch.arange(n)[:, None], 0, start[:, None] + torch.arange(length)][:, None]
    lo, hi = recipe.gain_db
    gain_db = lo + (hi - lo) * torch.rand(n, generator=generator)
    clips = clips * (10.0 ** (gain_db / 20.0)).view(n, 1, 1)
    lo, hi = recipe.noise_db
    level = 10.0 ** ((lo + (hi - lo) * torch.rand(n, generator=generator)) / 20.0)
    noisy = torch.rand(n, generator=generator) < recipe.noise_prob
    noise = torch.randn(clips.shape, generator=generator) * (level * noisy).view(n, 1, 1)
    return (clips + noise).clamp(-1.0, 1.0)


def prepare(
    name: str, split: Split, recipe: Recipe, generator: torch.Generator
) -> tuple[ClassifierExtractor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """The untrained extractor, the training data as held in memory, and ``batch -> network input`` (augmented).

    Images are preprocessed once and shifted (flipped) afterwards; clips are augmented as
    waveforms and turned into spectrograms batch by batch.
    """
    if name in AUDIO_ARCHITECTURES:
        assert isinstance(recipe, AudioRecipe)
        config = AUDIO_ARCHITECTURES[name]  # fixed normalisation (the CAS classifiers share it)
        clips = AudioClassifierExtractor(config)
        data = fit_length(split.train_images, config.length)
        return clips, data, lambda batch: clips.preprocess(augment_clips(batch, recipe, generator))
    if name in VIDEO_ARCHITECTURES:
        plain = dataclasses.replace(VIDEO_ARCHITECTURES[name], mean=(0.0,), std=(1.0,))
        raw = torch.cat([preprocess_video(split.train_images[i : i + 1000], plain) for i in range(0, len(split.train_images), 1000)])
        mean, std = round(float(raw.mean()), 4), round(float(raw.std()), 4)
        config = dataclasses.replace(VIDEO_ARCHITECTURES[name], mean=(mean,), std=(std,))
        data = (raw - mean) / std  # [N, 1, T, R, R]
        fill = torch.tensor([-mean / std] * config.frames)  # a black pixel, normalised, in every frame
        shift = lambda batch: augment(batch.flatten(1, 2), recipe, fill, generator).contiguous().view(batch.shape)  # noqa: E731
        return VideoClassifierExtractor(config), data, shift
    mean, std = channel_stats(split.train_images, ARCHITECTURES[name])
    config = dataclasses.replace(ARCHITECTURES[name], mean=mean, std=std)
    images = ClassifierExtractor(config)
    # The training set, preprocessed once (float [N, C, R, R] at the native resolution).
    chunks = range(0, len(split.train_images), 5000)
    data = torch.cat([preprocess(split.train_images[i : i + 5000], config) for i in chunks])
    fill = (0.0 - torch.tensor(mean)) / torch.tensor(std)  # a black pixel, normalised
    return images, data, lambda batch: augment(batch, recipe, fill, generator)


def learning_rate(step: int, total: int, recipe: Recipe) -> float:
    """Linear warm-up to ``recipe.lr`` over the first ``warmup_fraction`` of steps, then cosine to 0."""
    warmup = max(1, int(recipe.warmup_fraction * total))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def accuracy(extractor: ClassifierExtractor, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Class accuracy (the digit, for video classifiers, whose labels are ``[N, 2]``)."""
    return float((extractor.predict(images) == (labels[:, 0] if labels.dim() == 2 else labels)).double().mean())


def head_losses(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Cross-entropy of the class head, plus that of the direction head for video labels ``[N, 2]``."""
    if labels.dim() == 1:
        return F.cross_entropy(logits, labels)
    return F.cross_entropy(logits[:, :num_classes], labels[:, 0]) + F.cross_entropy(logits[:, num_classes:], labels[:, 1])


def train_one(name: str, split: Split, recipe: Recipe, seed: int, command: str) -> tuple[ClassifierExtractor, dict]:
    """Train classifier ``name`` on ``split`` with ``recipe``; returns it and its training record."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    extractor, data, network_input = prepare(name, split, recipe, generator)
    net: ClassifierNet = extractor.net
    labels = split.train_labels

    decay, no_decay = [], []
    for param in net.parameters():
        (no_decay if param.dim() == 1 else decay).append(param)  # no weight decay on biases and BN
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, momentum=0.9, nesterov=True,
    )
    steps_per_epoch = len(data) // recipe.batch_size
    total = steps_per_epoch * recipe.epochs
    start = time.time()
    step = 0
    for epoch in range(recipe.epochs):
        net.train()
        order = torch.randperm(len(data), generator=generator)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            x = network_input(data[idx])
            _, logits = net(x)
            loss = head_losses(logits, labels[idx], extractor.num_logits)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            step += 1
        extractor.eval()
        held = accuracy(extractor, split.heldout_images[:2000], split.heldout_labels[:2000])
        print(
            f"{name}: epoch {epoch + 1}/{recipe.epochs}  loss {running / steps_per_epoch:.4f}  "
            f"held-out acc {held:.4f} (first {min(2000, len(split.heldout_images))})  ({time.time() - start:.0f} s)",
            flush=True,
        )
    extractor.eval()
    seconds = time.time() - start
    unit = "clips" if name in AUDIO_ARCHITECTURES or name in VIDEO_ARCHITECTURES else "images"
    record = {
        "name": name,
        "accuracy": round(accuracy(extractor, split.heldout_images, split.heldout_labels), 5),
        "train_accuracy": round(accuracy(extractor, split.train_images, split.train_labels), 5),
        **({"direction_accuracy": round(float((extractor.predict_directions(split.heldout_images) == split.heldout_labels[:, 1])
                                              .double().mean()), 5)} if name in VIDEO_ARCHITECTURES else {}),
        "heldout_data": f"{split.heldout_data} ({len(split.heldout_images)} {unit})",
        "train_data": f"{split.train_data} ({len(split.train_images)} {unit})",
        "epochs": recipe.epochs,
        "recipe": dataclasses.asdict(recipe),
        "seed": seed,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        # No timings or paths: the same command writes the same bytes (and weights_id).
        "command": command,
    }
    print(f"{name}: trained in {seconds:.0f} s", flush=True)
    return extractor, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"classifiers to train (default: all of {', '.join(RECIPES)})")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder (default: the package's weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (pinned for reproducibility)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (quick trials)")
    parser.add_argument("--mnist-root", default=None, help="folder with the MNIST train and test IDX files")
    parser.add_argument("--mnist-test-root", default=str(SHARED_DATA / "mnist"),
                        help="folder with the MNIST test IDX files, used when no train split is found")
    parser.add_argument("--cifar10-root", default=str(SHARED_DATA / "cifar10"))
    parser.add_argument("--fsdd-root", default=str(SHARED_DATA / "fsdd" / "recordings"),
                        help="the FSDD recordings/ folder")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in RECIPES]
    if unknown:
        parser.error(f"unknown classifier {unknown[0]!r} (choose from {', '.join(RECIPES)})")

    torch.set_num_threads(args.threads)
    results = []
    for name in args.names or list(RECIPES):
        recipe = RECIPES[name]
        if args.epochs is not None:
            recipe = dataclasses.replace(recipe, epochs=args.epochs)
        split = load_split(name, args)
        if name == "mnist" and len(split.train_images) > 20_000 and args.epochs is None:
            recipe = dataclasses.replace(recipe, epochs=FULL_MNIST_EPOCHS)
        command = f"python scripts/train_extractors.py {name} --seed {args.seed} --threads {args.threads}"
        if args.epochs is not None:
            command += f" --epochs {args.epochs}"
        extractor, record = train_one(name, split, recipe, args.seed, command)
        path = args.out / f"{name}.safetensors"
        digest = save_classifier(path, extractor.net, record, dtype=getattr(torch, recipe.dtype))
        size = path.stat().st_size
        print(f"{name}: held-out accuracy {record['accuracy']:.4f} on {record['heldout_data']}; "
              f"wrote {path} ({size / 1e6:.2f} MB, sha256 {digest[:8]})", flush=True)
        results.append((name, record["accuracy"], record["heldout_data"]))
    print("\nsummary:")
    for name, acc, held in results:
        print(f"  {name:8s} {acc * 100:6.2f}%  {held}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
