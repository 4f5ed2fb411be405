"""Model families (a registry): each factory builds a ``(generator, discriminator)`` pair.

A factory has the signature ``build(data_shape, num_classes=0, *, **options)``; its
keyword-only options are exactly what ``model.*`` accepts in a config.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from ..errors import ConfigError
from ..registry import Registry, did_you_mean

MODELS: Registry = Registry("model")

from .base import (  # noqa: E402
    NETWORKS,
    Discriminator,
    Generator,
    configurable,
    load_generator,
    save_generator,
    weights_hash,
)


def ensure_registered() -> None:
    """Import every family module so that its networks are registered."""
    from . import dcgan, mlp  # noqa: F401


ensure_registered()


def accepted_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword-only options of model family ``name``."""
    factory = MODELS.get(name)
    return {
        p.name: p
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate (and type-coerce) ``options`` against the factory signature of ``name``."""
    from ..config import _coerce

    accepted = accepted_options(name)
    hints = typing.get_type_hints(MODELS.get(name))
    for key, value in list(options.items()):
        if key not in accepted:
            raise ConfigError(
                f"unknown config key 'model.{key}' for model '{name}'{did_you_mean(key, list(accepted))}"
                f" (accepted: {', '.join(accepted) or 'none'})"
            )
        options[key] = _coerce(value, hints.get(key, Any), f"model.{key}")
    return options


def create(name: str, data_shape: tuple[int, ...], num_classes: int = 0, **options: Any) -> tuple[Generator, Discriminator]:
    """Build the ``(generator, discriminator)`` pair of family ``name``."""
    check_options(name, options)
    return MODELS.create(name, tuple(data_shape), num_classes, **options)


__all__ = [
    "MODELS",
    "NETWORKS",
    "Discriminator",
    "Generator",
    "accepted_options",
    "check_options",
    "configurable",
    "create",
    "load_generator",
    "save_generator",
    "weights_hash",
]
