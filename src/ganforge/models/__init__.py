"""Model families (a registry): each factory builds a ``(generator, discriminator)`` pair.

A factory has the signature ``build(data_shape, num_classes=0, *, **options)``; its
keyword-only options are exactly what ``model.*`` accepts in a config (numbers within
:data:`OPTION_RANGES`). Image-to-image families (marked with :func:`translator_family`) have
``build(in_channels, out_channels, *, **options)`` instead and return a :class:`Translator`;
:func:`create_translator` builds them.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable

from ..config import MAX_SIDE, Range, coerce
from ..errors import ConfigError
from ..registry import Registry, did_you_mean

MODELS: Registry = Registry("model")

from .base import (  # noqa: E402  # noqa: E402
    FAMILY_MODULES,
    NETWORKS,
    Discriminator,
    Generator,
    Translator,
    configurable,
    ensure_registered,
    is_translator,
    save_generator,
    weights_hash,
)
from .loading import load_generator  # noqa: E402
from .pacgan import PackedDiscriminator, packed_shape  # noqa: E402


def smallest(name: str) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
    """The family's smallest configurations ``[(data shape, options), ...]`` (tests run them).

    A factory declares them as its ``smallest`` attribute; see :func:`smallest_config`.
    """
    return list(getattr(MODELS.get(name), "smallest", []))


def smallest_config(*configs: tuple[tuple[int, ...], dict[str, Any]]) -> Any:
    """Decorator for a model factory: its cheapest valid ``(data shape, options)`` pairs."""

    def decorate(factory: Any) -> Any:
        factory.smallest = list(configs)
        return factory

    return decorate


def image_resolutions(check: Callable[[int], Any]) -> Any:
    """Decorator for a model factory: ``check(side)`` raises :class:`ConfigError` for image sides it cannot build.

    :func:`check_resolution` runs it on the config's ``data.resolution`` (or ``data.crop``)
    before any data is loaded.
    """

    def decorate(factory: Any) -> Any:
        factory.check_resolution = check
        return factory

    return decorate


def check_resolution(name: str, side: int | None, key: str = "data.resolution") -> None:
    """Raise :class:`ConfigError` if family ``name`` declares that it cannot build images of ``side`` px (config ``key``)."""
    check = getattr(MODELS.get(name), "check_resolution", None)
    if side is not None and check is not None:
        try:
            check(side)
        except ConfigError as err:
            raise ConfigError(f"config key '{key}': {err}") from None


def translator_family(factory: Any) -> Any:
    """Decorator for a factory of image-to-image networks (see :func:`create_translator`).

    Its ``smallest`` configurations name the *input* shape ``(in_channels, H, W)``.
    """
    factory.translator = True
    return factory


def takes_labels(name: str) -> bool:
    """Whether model family ``name`` builds class-conditional networks (text's ``textgan`` does not)."""
    return not getattr(MODELS.get(name), "unconditional", False)


def is_translator_family(name: str) -> bool:
    """Whether model family ``name`` builds image-to-image networks."""
    return bool(getattr(MODELS.get(name), "translator", False))


def create_translator(name: str, in_channels: int, out_channels: int, **options: Any) -> tuple[Translator, Any]:
    """Build the ``(translator, discriminator)`` pair of image-to-image family ``name``.

    ``options`` are not checked again here (:func:`ganforge.validate.check_config` did, with
    :func:`check_options`); an unknown keyword raises ``TypeError``.

    Raises:
        ConfigError: ``name`` is a latent-variable family.
    """
    if not is_translator_family(name):
        names = [n for n in MODELS.names() if is_translator_family(n)]
        raise ConfigError(
            f"model '{name}' generates from latents; image-to-image recipes need an image-to-image model "
            f"(available: {', '.join(names)})"
        )
    return MODELS.create(name, in_channels, out_channels, **options)


def accepted_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only options of model family ``name``."""
    factory = MODELS.get(name)
    return {
        p.name: p
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


_WIDTH = Range(1, 4096)  # channels, hidden units, latent sizes
_EXTRA = Range(0, 4096)  # optional extra features (0 = none)
_BLOCKS = Range(0, 256)

#: The values every numeric model option accepts, by option name (the same name means the same
#: thing in every family): checked by :func:`check_options` before anything is built. A new numeric option needs an entry
#: (``tests/test_config_fuzz.py`` fails without one).
OPTION_RANGES: dict[str, Range] = {
    **dict.fromkeys(["latent_dim", "noise_dim", "w_dim", "base_channels", "d_base_channels", "max_channels",
                     "d_max_channels", "g_channels", "d_channels", "channels", "hidden_dim", "d_hidden_dim",
                     "q_hidden", "d_hidden", "growth", "embed_dim", "d_embed_dim", "d_filters", "content_dim", "motion_dim",
                     "video_base_channels"], _WIDTH),
    **dict.fromkeys(["label_dim", "minibatch_discrimination", "num_categorical", "num_continuous"], _EXTRA),
    **dict.fromkeys(["n_blocks", "blocks"], _BLOCKS),
    **dict.fromkeys(["num_layers", "d_num_layers", "mapping_layers"], Range(1, 64)),
    **dict.fromkeys(["depth", "d_layers", "d_stages"], Range(1, 16)),
    "dropout_blocks": Range(0, 16),
    "mbstd_group": Range(1, 256),
    "scale": Range(2, 4),
    "attention_resolution": Range(4, MAX_SIDE),
    **dict.fromkeys(["dropout", "d_dropout"], Range(0, 1, hi_open=True)),
    "w_avg_beta": Range(0, 1, hi_open=True),
    "res_scale": Range(0, 10),
    "mapping_lr_mul": Range(0, 10, lo_open=True),
    "kernel": Range(4, 255),
    "phase_shuffle": Range(0, 64),
    "n_fft": Range(4, 16384),
    "hop": Range(1, 16384),
    "griffin_lim_iters": Range(0, 1000),
    "d_noise": Range(0, 10),  # a standard deviation, of data in [-1, 1]
    "tau": Range(0, 10, lo_open=True),  # Gumbel-softmax temperature (ctgan)
    "image_frames": Range(1, 1024),  # and at most the clips' frames (checked by mocogan)
    "sprite_size": Range(0, MAX_SIDE),  # 0: half the frame; a power of two below it (checked by mocogan)
}


def option_range(option: str) -> Range | None:
    """The declared range of model option ``option`` (None: undeclared)."""
    return OPTION_RANGES.get(option)


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked and type-coerced against the factory signature of ``name`` (a new dict).

    Numbers must lie in their :data:`OPTION_RANGES`.

    Called once, by :func:`ganforge.validate.check_config`; :func:`create` trusts its options.
    """
    accepted = accepted_options(name)
    hints = typing.get_type_hints(MODELS.get(name))
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in accepted:
            raise ConfigError(
                f"unknown config key 'model.{key}' for model '{name}'{did_you_mean(key, list(accepted))}"
                f" (accepted: {', '.join(accepted) or 'none'})"
            )
        checked[key] = coerce(value, hints.get(key, Any), f"model.{key}", option_range(key))
    return checked


def create(
    name: str, data_shape: tuple[int, ...], num_classes: int = 0, *, pack: int = 1, **options: Any
) -> tuple[Generator, Discriminator]:
    """Build the ``(generator, discriminator)`` pair of family ``name``.

    With ``pack = m > 1`` (PacGAN) the discriminator is built for ``m`` samples stacked
    along the channel (or feature) axis and wrapped to take ``[N, ...]`` batches, ``N`` a
    multiple of ``m``, returning ``N / m`` logits. ``options`` are not checked again here
    (see :func:`create_translator`).
    """
    if is_translator_family(name):
        raise ConfigError(f"model '{name}' translates images: train it with an image-to-image recipe (e.g. recipe=pix2pix)")
    shape = tuple(data_shape)
    if pack == 1:
        return MODELS.create(name, shape, num_classes, **options)
    generator, _ = MODELS.create(name, shape, num_classes, **options)
    _, discriminator = MODELS.create(name, packed_shape(shape, pack), num_classes, **options)
    return generator, PackedDiscriminator(discriminator, pack)


ensure_registered()

__all__ = [
    "FAMILY_MODULES",
    "ensure_registered",
    "MODELS",
    "NETWORKS",
    "Discriminator",
    "Generator",
    "Translator",
    "accepted_options",
    "OPTION_RANGES",
    "check_options",
    "check_resolution",
    "image_resolutions",
    "option_range",
    "configurable",
    "create",
    "create_translator",
    "is_translator",
    "is_translator_family",
    "takes_labels",
    "translator_family",
    "smallest",
    "smallest_config",
    "load_generator",
    "save_generator",
    "weights_hash",
]
