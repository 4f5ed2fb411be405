"""Feature extractors: networks that map uint8 images (or, for audio extractors, float clips) to feature vectors.

An extractor is an ``nn.Module`` whose ``forward`` takes a uint8 batch ``[N, C, H, W]``
(values 0-255, any resolution, 1 or 3 channels) and returns :class:`Features`: the
embedding used by FID/KID/PR/DC and, when the network has a classifier head, the logits
used by the Inception Score and by mode counting. Each extractor owns its preprocessing
(resize, channel conversion, normalisation), so metrics only ever see images as stored.

Extractors are registered by name in :data:`EXTRACTORS` with a factory
``factory(weights: str | None) -> FeatureExtractor``; ``weights`` is an optional path that
overrides the default weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from ..core import cache_root
from ..errors import ConfigError, UserError
from ..registry import Registry

EXTRACTORS: Registry[Callable[..., "FeatureExtractor"]] = Registry("feature extractor")

#: Domain classifiers: extractor name -> the data sets it was trained on. Its features mean
#: something only on those (the ``digits`` classifier scores clothing as some digit), so the
#: default extractor of a run on other data is the reference one, Inception (see
#: :func:`ganforge.evaluation.choose_extractor`). Extractors not listed are general.
OWN_DATA: dict[str, tuple[str, ...]] = {}

#: Extractor name -> the modality of the samples it reads (``audio``: float clips). Extractors not
#: listed read images (uint8). Evaluation refuses an extractor of another modality in one line
#: (:func:`check_modality`) before building it.
INPUT_MODALITY: dict[str, str] = {}

#: Extractor name -> ``check(weights)``: find the weights file without building the network,
#: raising a one-line error where there is none (evaluation calls it before any other work).
WEIGHT_CHECKS: dict[str, Callable[[str | None], object]] = {}


def own_data_sets(name: str) -> tuple[str, ...] | None:
    """The data sets a domain classifier ``name`` scores, or None for a general extractor."""
    return OWN_DATA.get(EXTRACTORS.canonical(name))


def input_modality(name: str) -> str:
    """The modality of the samples extractor ``name`` reads (``image`` unless :data:`INPUT_MODALITY` says otherwise)."""
    return INPUT_MODALITY.get(EXTRACTORS.canonical(name), "image")


def check_modality(name: str, modality: str, plural: str | None = None) -> None:
    """Raise a one-line :class:`UserError` when extractor ``name`` does not read samples of ``modality``."""
    reads = input_modality(name)
    if reads != modality:
        fitting = [n for n in EXTRACTORS.names() if INPUT_MODALITY.get(n, "image") == modality]
        hint = f": use {' or '.join(fitting)}" if fitting else ""
        raise UserError(f"the {name} extractor reads {reads} samples, not {plural or modality + ' samples'}{hint}")


def check_weights(name: str, weights: str | None = None) -> None:
    """Raise the extractor's one-line error now if its weights cannot be found (cheap: no network is built)."""
    check = WEIGHT_CHECKS.get(EXTRACTORS.canonical(name))
    if check is not None:
        check(weights)


@dataclass
class Features:
    """Output of an extractor: ``features`` ``[N, D]`` and optional ``logits`` ``[N, K]`` (float32)."""

    features: torch.Tensor
    logits: torch.Tensor | None = None


class FeatureExtractor(nn.Module):
    """Base class: uint8 images in, :class:`Features` out (always in eval mode, no grads).

    Subclasses set ``name``, ``feature_dim``, ``num_logits`` (0 without a head) and
    ``weights_id`` (a short string identifying the weights, part of cache keys), and
    implement :meth:`extract`. An extractor of another kind of sample (audio clips)
    overrides :meth:`check_input`, and is listed in :data:`INPUT_MODALITY`.
    """

    name: str = "extractor"
    feature_dim: int = 0
    num_logits: int = 0
    weights_id: str = "random"
    #: The name of each logit's class where the head is a classifier of known classes (the accuracy metric reads it).
    class_names: tuple[str, ...] | None = None

    def extract(self, images: torch.Tensor) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, samples: torch.Tensor) -> Features:
        self.check_input(samples)
        return self.extract(samples)

    def check_input(self, images: torch.Tensor) -> None:
        """Raise ValueError unless ``images`` is what :meth:`extract` reads (here: uint8 images ``[N, 1|3, H, W]``)."""
        if images.dtype != torch.uint8:
            raise ValueError(f"{self.name} extractor expects uint8 images (0-255), got {images.dtype}")
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"{self.name} extractor expects images [N, 1 or 3, H, W], got shape {tuple(images.shape)}"
            )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def key(self) -> str:
        """Identifies extractor and weights (used in cache keys and reports)."""
        return f"{self.name}-{self.weights_id}"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights ids and download checks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsFile:
    """A published torchvision backbone the library reads from disk and never downloads.

    Looked up, first that exists: an explicit path, ``$<env_var>``,
    ``$GANFORGE_CACHE/weights/<file name>``. The file name carries the first 8 hex digits
    of its SHA-256 (torchvision's convention), checked when a file has that name.
    """

    label: str  # "VGG-19"
    url: str
    env_var: str
    option: str  # the config key or flag that takes a path
    without: str = ""  # how to work without the file

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def cache_path(self) -> Path:
        return cache_root() / "weights" / self.name

    def default(self) -> Path:
        """The file to use, or a one-line ConfigError telling how to get one."""
        env = os.environ.get(self.env_var)
        if env:
            return Path(env).expanduser()
        if self.cache_path().is_file():
            return self.cache_path()
        hint = f"; {self.without}" if self.without else ""
        raise ConfigError(
            f"{self.label} weights not found: download {self.url} and give its path with "
            f"{self.option} (or ${self.env_var}, or put it at {self.cache_path()}){hint}"
        )

    def read(self, path: str | Path | None = None) -> dict[str, torch.Tensor]:
        """The ``features`` state dict (prefix removed, classifier dropped) from ``path`` or :meth:`default`."""
        path = Path(path).expanduser() if path is not None else self.default()
        if not path.is_file():
            raise ConfigError(f"{self.label} weights file not found: {path} (the published one is {self.url})")
        prefix = self.name.rsplit("-", 1)[-1].split(".")[0]
        if path.name == self.name and not file_sha256(path).startswith(prefix):
            raise UserError(f"{path} does not have the SHA-256 of torchvision's {self.label} ({prefix}...): download it again")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # corrupt or foreign files raise many different types
            raise UserError(f"cannot read {self.label} weights from {path}: {err}") from None
        if not isinstance(state, dict):
            raise UserError(f"{path} does not hold a state dict")
        return {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}


def create(name: str = "inception", weights: str | None = None, device: str | torch.device = "cpu") -> FeatureExtractor:
    """Build the registered extractor ``name`` (optionally from a weights file) on ``device``."""
    factory = EXTRACTORS.get(name)
    extractor = factory(weights=weights)
    return extractor.to(device).eval().requires_grad_(False)


def batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    """Split a uint8 tensor into batches, or pass through an iterable of batches."""
    if isinstance(images, torch.Tensor):
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size]
    else:
        yield from images


@torch.inference_mode()
def extract_features(
    extractor: FeatureExtractor,
    images: torch.Tensor | Iterable[torch.Tensor],
    *,
    batch_size: int = 100,
    total: int | None = None,
    progress: bool = False,
    desc: str = "features",
) -> Features:
    """Run ``extractor`` over ``images`` (a tensor, or an iterable of batches): uint8 images, or what it reads (clips).

    Returns the concatenated float32 features (and logits) on the CPU.
    """
    from tqdm.auto import tqdm

    if total is None and isinstance(images, torch.Tensor):
        total = images.shape[0]
    feats: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    device = extractor.device
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for batch in batches(images, batch_size):
            out = extractor(batch.to(device, non_blocking=True))
            feats.append(out.features.float().cpu())
            if out.logits is not None:
                logits.append(out.logits.float().cpu())
            bar.update(batch.shape[0])
    if not feats:
        raise ValueError("no images to extract features from")
    return Features(torch.cat(feats), torch.cat(logits) if logits else None)
