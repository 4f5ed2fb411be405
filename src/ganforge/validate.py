"""Check a parsed config against the registries: the one place where names and options are looked up.

:mod:`ganforge.config` parses (types, value ranges) and imports no registry; this module
checks what needs one — data set, loss, recipe, model family, regularizer, augmentation,
learning-rate schedule, metric and extractor names, the image sizes the model family can
build, the device name — and coerces ``recipe_options`` and the model family's options
(numbers within their declared ranges). Nothing here loads data or allocates memory.
Recipes and model factories trust a checked config and do not check again.
:func:`load_config` (also ``ganforge.load_config``) is parse + check.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from . import augment, data, losses, models
from .config import Config, EvalConfig, from_dict, parse_config
from .core import parse_device
from .errors import ConfigError
from .evaluation import METRICS
from .extractors import EXTRACTORS
from .registry import did_you_mean
from .training.loggers import LOGGERS
from .training.recipes import RECIPES
from .training.schedule import LR_SCHEDULES


def check_config(config: Config) -> Config:
    """``config`` checked against the registries, as a new :class:`Config` with coerced options.

    ``recipe_options`` and ``model.options`` keep the keys given (the saved ``config.yaml``
    round-trips), their values coerced to the recipe's ``Options`` fields and the factory's
    annotations, so ``Recipe.Options(**config.recipe_options)`` and
    ``models.create(name, ..., **config.model.options)`` need no further checks.

    Raises:
        ConfigError: an unknown name (with a suggestion) or a wrong option; a type or range
            error of a ``Config`` built in Python, which never went through parsing.
    """
    config = from_dict(config.to_dict())  # types and ranges (again, for a parsed config: it costs nothing)
    data.DATASETS.canonical(config.data.name)
    losses.LOSSES.canonical(config.loss.name)
    recipe = RECIPES.get(config.recipe)
    options = recipe.check_options(config.recipe_options)
    recipe_options = {key: getattr(options, key) for key in config.recipe_options}
    model_options = models.check_options(config.model.name, config.model.options)
    crop = config.data.crop is not None  # the model sees the crops
    models.check_resolution(config.model.name, config.data.crop if crop else config.data.resolution,
                            "data.crop" if crop else "data.resolution")
    losses.check_regularizers(config.loss.regularizers)
    if augment.AUGMENTS.canonical(config.augment.name) == "diffaugment":
        augment.parse_policy(config.augment.policy)
    LR_SCHEDULES.canonical(config.optim.lr_schedule)
    check_eval(config.eval)
    parse_device(config.train.device, "train.device")
    for name in config.train.loggers:
        LOGGERS.canonical(name)
    return dataclasses.replace(
        config,
        recipe_options=recipe_options,
        model=dataclasses.replace(config.model, options=model_options),
    )


def check_eval(e: EvalConfig) -> None:
    """Metric names of the ``eval`` section; the extractor only when evaluation is on and uses it."""
    available = f"(available: {', '.join(METRICS.names())})"
    if not e.metrics:
        raise ConfigError(f"config key 'eval.metrics' must name at least one metric {available}")
    for name in e.metrics:
        if name not in METRICS:
            raise ConfigError(f"unknown metric '{name}' in eval.metrics{did_you_mean(name, METRICS.names())} {available}")
    if e.every > 0 and any(METRICS.get(m).uses_features for m in e.metrics):
        EXTRACTORS.canonical(e.extractor)


def load_config(
    source: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> Config:
    """Resolve a preset name, a YAML path or a dict, apply overrides, parse and check.

    Overriding ``model.name`` drops the inherited options the new family does not accept
    (see :func:`ganforge.config.apply_overrides`).

    Args:
        source: preset name (``"dcgan-digits"``), path to a YAML file, a mapping, or None for
            the default preset.
        overrides: ``["train.steps=100", ...]`` or ``{"train.steps": 100}``.
    """
    return check_config(parse_config(source, overrides, models.accepted_options))


__all__ = ["check_config", "check_eval", "load_config"]
