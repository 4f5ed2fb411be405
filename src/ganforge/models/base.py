"""Base classes shared by every model family.

* :func:`configurable` records a module's constructor arguments, which are saved beside
  its weights (``config.json`` + ``model.safetensors``) and rebuild it on load: the
  constructor signature *is* the config, and nothing is ever unpickled.
* :class:`Generator` knows its latent size, classes and output shape, and can sample.
* :class:`Translator` maps images to images (pix2pix, CycleGAN, super-resolution).
* :class:`Discriminator` returns raw logits ``[N]`` (patch discriminators ``[N, 1, h, w]``);
  sigmoids live inside the losses.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import math
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

import torch
from torch import nn

from ..core import atomic_write_files, eval_mode
from ..errors import ConfigError, UserError
from ..registry import Registry

M = TypeVar("M", bound=type)

#: Every concrete network class, by class name, so ``config.json`` can name it safely.
NETWORKS: Registry = Registry("network class")

#: Smallest latent truncation threshold (CLI, API and library alike).
MIN_TRUNCATION = 0.05

GENERATOR_CONFIG = "config.json"
GENERATOR_WEIGHTS = "model.safetensors"


def configurable(cls: M) -> M:
    """Class decorator: remember the constructor's keyword arguments in ``self.init_kwargs``.

    Also registers the class in :data:`NETWORKS` so it can be rebuilt from its config.
    """
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        recorded = dict(bound.arguments)
        recorded.pop("self")
        # Outermost class wins: a subclass's arguments describe the object.
        if type(self) is cls:
            self.init_kwargs = {k: _jsonable(v) for k, v in recorded.items()}

    cls.__init__ = wrapped  # type: ignore[assignment]
    NETWORKS.add(cls.__name__, cls)
    return cls


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def check_truncation(truncation: float | None, name: str = "truncation") -> None:
    """Raise unless ``truncation`` is None or a finite number >= :data:`MIN_TRUNCATION`."""
    if truncation is None:
        return
    if not math.isfinite(truncation) or truncation < MIN_TRUNCATION:
        # P(|z| <= t) is about 0.8 t for small t: a tiny threshold would redraw (almost) forever
        raise UserError(f"{name} must be a number >= {MIN_TRUNCATION} (or none), got {truncation}")


def truncated_normal(
    shape: tuple[int, ...],
    truncation: float | None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Standard normal samples, redrawing any entry with ``|z| > truncation`` (BigGAN's trick)."""
    z = torch.randn(shape, generator=generator, device=device)
    if truncation is None:
        return z
    check_truncation(truncation)
    while True:
        bad = z.abs() > truncation
        if not bad.any():
            return z
        z = torch.where(bad, torch.randn(shape, generator=generator, device=device), z)


class Generator(nn.Module):
    """A generator maps latents ``z [N, latent_dim]`` (and labels ``[N]``) to samples.

    Image generators end in ``tanh`` (range [-1, 1]); vector generators are unbounded and
    live in data coordinates.
    """

    latent_dim: int
    num_classes: int
    output_shape: tuple[int, ...]

    @property
    def is_image(self) -> bool:
        return len(self.output_shape) == 3

    @property
    def latent_parts(self) -> dict[str, slice]:
        """Named parts of the latent that mean something on their own (MoCoGAN: ``content`` and ``motion``);
        ``ganforge interpolate --walk PART`` walks one and keeps the others. None by default."""
        return {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """What ``forward`` returns -> samples as the data set holds them in the model's range.

        The identity for most families. A generator that works in another representation than
        its data (SpecGAN: spectrograms of audio) turns its outputs back here; training feeds
        ``forward``'s outputs to the discriminator, while every sampling path
        (:func:`generate`, previews, the serve API) calls ``decode`` after it.
        """
        return outputs

    def fit_data(self, real: torch.Tensor) -> None:
        """Data-dependent set-up before training, from real samples (model range): a no-op by default.

        Recipes call it once on fresh networks (SpecGAN stores per-frequency statistics);
        what it sets must live in buffers, so that checkpoints and saved generators keep it.
        """

    def sample_latents(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """Draw ``n`` latents ``[n, latent_dim]`` on the generator's device."""
        device = generator.device if generator is not None else self.device
        return truncated_normal((n, self.latent_dim), truncation, generator, device).to(self.device)

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Validate labels: required (and in range) for conditional models, else None."""
        if self.num_classes == 0:
            if labels is not None:
                raise UserError("this generator is unconditional: it takes no labels")
            return None
        if labels is None:
            raise UserError(f"this generator is conditional: give labels in 0..{self.num_classes - 1}")
        labels = torch.as_tensor(labels, dtype=torch.long, device=self.device).reshape(-1)
        if labels.numel() == 1 and n > 1:
            labels = labels.expand(n)
        if labels.numel() != n:
            raise UserError(f"got {labels.numel()} labels for {n} samples")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            bad = labels[(labels < 0) | (labels >= self.num_classes)].unique()[:8].tolist()
            raise UserError(f"labels must be in 0..{self.num_classes - 1}, got {', '.join(map(str, bad))}")
        return labels

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int = 0,
        labels: torch.Tensor | list[int] | int | None = None,
        truncation: float | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """``n`` samples for ``seed`` (same seed, same samples), in eval mode, on the CPU.

        For conditional generators without ``labels``, classes cycle ``0, 1, ..., K-1, 0, ...``.
        """
        if self.num_classes and labels is None:
            labels = torch.arange(n) % self.num_classes
        labels = self.check_labels(labels, n)
        return generate(self, seeded_latents(n, self.latent_dim, seed, truncation), labels, batch_size=batch_size)


Inputs = Union[torch.Tensor, Sequence[Optional[torch.Tensor]]]


def seeded_latents(n: int, latent_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """The ``n`` latents of ``seed`` (CPU stream): what :meth:`Generator.sample` draws for that seed."""
    return truncated_normal((n, latent_dim), truncation, torch.Generator(device="cpu").manual_seed(int(seed)))


@torch.no_grad()
def generate(
    generator: nn.Module,
    z: Inputs,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 256,
    convert: Callable[[torch.Tensor], torch.Tensor] | None = None,
    forward: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """The one batched path from latents (and labels) to outputs, in eval mode, on the CPU.

    Sampling, evaluation, latent walks, ``synthesize`` and the serve API all go through it.

    Args:
        generator: the network (put in eval mode for the call).
        z: latents ``[N, D]``, or a tuple of per-sample inputs sliced together (None entries
            pass through), e.g. InfoGAN's (noise, category, continuous) codes.
        labels: ``[N]`` class labels of a conditional generator, or None.
        convert: applied to each output batch before it is gathered (``to_uint8`` keeps
            only the uint8 copies of a large set in memory); default float32.
        forward: called as ``forward(*z_batch, labels_batch)`` instead of ``generator``.
    """
    parts = (z,) if isinstance(z, torch.Tensor) else tuple(z)
    n = len(next(p for p in parts if p is not None))
    device = next(generator.parameters(), torch.empty(0)).device  # parameter-free wrappers run on the CPU
    convert = convert or (lambda out: out.float())
    forward = forward or generator
    decode = generator.decode if isinstance(generator, Generator) else (lambda out: out)
    chunks = []
    with eval_mode(generator):
        for i in range(0, n, batch_size):
            batch = [None if p is None else p[i : i + batch_size].to(device) for p in parts]
            y = None if labels is None else labels[i : i + batch_size].to(device)
            chunks.append(convert(decode(forward(*batch, y))).cpu())
    return torch.cat(chunks)


def square_image_shape(family: str, data_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, resolution)`` of square image data ``(C, R, R)``; a one-line error otherwise."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise ConfigError(f"{family} needs square images, got data of shape {tuple(data_shape)}")
    return data_shape[0], data_shape[1]


class Translator(nn.Module):
    """An image-to-image generator: ``x [N, in_channels, H, W] -> [N, out_channels, sH, sW]``.

    Inputs and outputs are images in [-1, 1]; ``scale`` (``s``) is 1 for translation
    (pix2pix, CycleGAN) and 2 or 4 for super-resolution. ``H`` and ``W`` must be multiples
    of ``size_multiple`` (a U-Net of depth ``d`` halves the size ``d`` times). Saved and
    loaded like a :class:`Generator` (:func:`save_generator`, :func:`load_generator`).
    """

    in_channels: int
    out_channels: int
    scale: int = 1
    size_multiple: int = 1

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`UserError` unless ``x`` is ``[N, in_channels, H, W]`` with sizes it accepts."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise UserError(f"this translator takes images [N, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise UserError(f"this translator needs image sides that are multiples of {m}, got {x.shape[-1]}x{x.shape[-2]}")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Translate images ``x`` (float in [-1, 1]) in eval mode, batch by batch; float32 on the CPU."""
        self.check_input(x)
        with eval_mode(self):
            out = [self(x[i : i + batch_size].to(self.device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out)


    def sample(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Translators have no latent space: sampling is a user error (translate inputs instead)."""
        raise UserError("this is an image-to-image generator: it translates input images and has no latents to sample")


def is_translator(module: nn.Module) -> bool:
    """Whether ``module`` maps images to images (a :class:`Translator`), not latents to samples."""
    return isinstance(module, Translator)


class Discriminator(nn.Module):
    """A discriminator maps samples ``[N, ...]`` (and labels) to logits ``[N]``, or ``[k * N]`` when it judges
    each sample ``k`` ways (MoCoGAN: a video and an image logit per clip, :attr:`judgements` = 2); every loss
    averages over the logits, so the ``k`` judgements add up."""

    num_classes: int
    #: Logits per sample (the ``k`` above).
    judgements: int = 1

    def fit_data(self, real: torch.Tensor) -> None:
        """Data-dependent set-up before training (see :meth:`Generator.fit_data`): a no-op by default."""


# --------------------------------------------------------------------------- save / load


def weights_hash(module: nn.Module) -> str:
    """A short stable id of a module's weights (sha256 of its tensors, in key order)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def save_generator(generator: Generator | Translator, folder: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors``: a generator (or translator) loadable on its own."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    config = {
        "class": type(generator).__name__,
        "kwargs": generator.init_kwargs,
        "meta": {**(meta or {}), "weights_id": weights_hash(generator)},
    }
    # Both files in one step: the weights_id stamped on outputs always names these weights.
    return atomic_write_files(
        folder, {GENERATOR_WEIGHTS: save(state), GENERATOR_CONFIG: json.dumps(config, indent=2).encode()}
    )


#: One module per family; importing it registers the family (and its network classes).
FAMILY_MODULES = ("mlp", "dcgan", "sngan", "sagan", "acgan", "infogan", "progan", "stylegan", "pix2pix", "srgan", "cyclegan",
                  "specgan", "wavegan", "textgan", "mocogan", "ctgan")


def ensure_registered() -> None:
    """Import every family module of ``ganforge.models`` so that its networks are registered."""
    for module in FAMILY_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def init_weights(std: float = 0.02) -> Callable[[nn.Module], None]:
    """DCGAN initialisation: conv/linear weights ~ N(0, std), norm scales ~ N(1, std)."""

    def apply(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)

    return apply
