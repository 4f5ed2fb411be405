"""Config fuzz: every numeric config key, with every kind of bad number, fails in one line before any data.

The keys come from the schema itself, so a new key is fuzzed without editing this file: the
dataclasses of ``ganforge.config`` (nested sections), every recipe's ``Options``, every model
family's numeric factory options and every regularizer's options. Each key gets a negative
number, zero, NaN, both infinities, a huge float and a huge integer, a string, a list and a
bool, through :func:`ganforge.train` (what ``ganforge train --set`` calls) with the data set
factory replaced by one that raises: a value is *accepted* when training reaches the data set,
*rejected* when a one-line :class:`ConfigError` comes first. A value must be accepted exactly
when its type fits and it lies in the key's declared :class:`~ganforge.config.Range`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any, Union

import pytest

import ganforge
from ganforge import models
from ganforge.config import Config, Range, field_range, preset_names, preset_path, read_yaml, resolve_extends, yaml_load
from ganforge.errors import ConfigError
from ganforge.losses.regularizers import GENERIC_OPTIONS, OPTION_RANGES, REGULARIZERS
from ganforge.training.recipes import RECIPES
from ganforge.validate import load_config
from test_bad_values import DataLoaded, no_data  # noqa: F401  (no_data: a fixture)

BASE_PRESET = "dcgan-digits"
#: The bad values, as ``--set key=VALUE`` spells them (parsed as YAML, like the CLI does).
VALUES = {
    "negative": "-1",
    "zero": "0",
    "NaN": ".nan",
    "+inf": ".inf",
    "-inf": "-.inf",
    "huge float": "1e30",
    "huge int": "1" + "0" * 30,
    "string": "abc",
    "list": "[1]",
    "bool": "true",
}
MESSAGE_LIMIT = 200  # a long or huge input is quoted shortened


@dataclass(frozen=True)
class Key:
    """One numeric config key: its dotted name, number type, declared range and the overrides it needs."""

    name: str
    kind: type  # int or float
    within: Range | None
    is_list: bool = False
    context: tuple[str, ...] = ()  # e.g. ("recipe=stylegan",) for that recipe's options


def _number_type(tp: Any) -> tuple[type | None, bool]:
    """``(int | float, is_list)`` of an annotation such as ``int | None`` or ``list[float]``; None if not numeric."""
    if typing.get_origin(tp) in (Union, typing.get_origin(int | None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _number_type(args[0]) if len(args) == 1 else (None, False)
    if typing.get_origin(tp) is list:
        kind, _ = _number_type(typing.get_args(tp)[0])
        return kind, kind is not None
    return (tp, False) if tp in (int, float) else (None, False)


def dataclass_keys(cls: type, prefix: str, context: tuple[str, ...] = ()) -> list[Key]:
    """The numeric fields of dataclass ``cls`` and of the dataclasses nested in it."""
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            keys += dataclass_keys(hints[f.name], name + ".", context)
            continue
        kind, is_list = _number_type(hints[f.name])
        if kind is not None:
            keys.append(Key(name, kind, field_range(f), is_list, context))
    return keys


def model_option_keys() -> list[Key]:
    keys = []
    for family in models.MODELS.names():
        hints = typing.get_type_hints(models.MODELS.get(family))
        for option in models.accepted_options(family):
            kind, is_list = _number_type(hints.get(option))
            if kind is not None:
                keys.append(Key(f"model.{option}", kind, models.option_range(option), is_list, (f"model.name={family}",)))
    return keys


def regularizer_keys() -> list[Key]:
    keys = []
    for name in REGULARIZERS.names():
        options = {**{k: p.annotation for k, p in REGULARIZERS.get(name).options().items()}, **GENERIC_OPTIONS}
        for option, hint in options.items():
            kind, _ = _number_type({"int": int, "float": float}.get(hint, hint))
            if kind is not None:
                keys.append(Key(f"loss.regularizers.{name}.{option}", kind, OPTION_RANGES.get(option)))
    return keys


def numeric_keys() -> list[Key]:
    """Every numeric key a config can hold, found by introspecting the schema and the registries."""
    recipe_keys = [key for name in RECIPES.names()
                   for key in dataclass_keys(RECIPES.get(name).Options, "recipe_options.", (f"recipe={name}",))]
    return dataclass_keys(Config, "") + recipe_keys + model_option_keys() + regularizer_keys()


KEYS = numeric_keys()


def _type_fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind is float or isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())


def valid(key: Key, value: Any) -> bool:
    """Whether ``value`` is a good value of ``key``: the right type, inside the declared range."""
    items = value if key.is_list else [value]
    if key.is_list and (not isinstance(value, list) or len(value) != 2):
        return False
    return key.within is not None and all(_type_fits(v, key.kind) and v in key.within for v in items)


def try_config(base: dict[str, Any], overrides: list[str], out: str) -> str | None:
    """None when training reaches the data set, else the :class:`ConfigError` message."""
    try:
        ganforge.train(base, out=out, overrides=overrides)
    except DataLoaded:
        return None
    except ConfigError as err:
        return str(err)
    raise AssertionError(f"{overrides}: training ran without loading data")


def test_the_schema_has_the_numeric_keys_we_know():
    names = {key.name for key in KEYS}
    assert {"optim.g_lr", "optim.g_betas", "train.threads", "train.seed", "data.resolution", "eval.n", "augment.target",
            "model.pack", "model.latent_dim", "recipe_options.pl_decay", "loss.regularizers.gp.weight"} <= names
    assert len(KEYS) >= 100


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k.context[0].split('=')[1]}:{k.name}" if k.context else k.name)
def test_every_numeric_key_declares_a_range(key: Key):
    assert key.within is not None, f"{key.name} declares no Range (config.ranged, models.OPTION_RANGES, ...)"


def test_declared_defaults_lie_in_their_ranges():
    config = Config()
    for key in dataclass_keys(Config, ""):
        value = config
        for part in key.name.split("."):
            value = getattr(value, part)
        assert value is None or valid(key, value), (key.name, value)
    for name in RECIPES.names():
        options = RECIPES.get(name).Options()
        for key in dataclass_keys(RECIPES.get(name).Options, ""):
            assert valid(key, getattr(options, key.name)), (name, key.name)
    for key in model_option_keys():
        family = key.context[0].split("=")[1]
        default = models.accepted_options(family)[key.name.split(".")[1]].default
        assert default is None or default is inspect.Parameter.empty or valid(key, default), (family, key.name, default)


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_passes_the_ranges(preset):
    load_config(preset)


def test_config_fuzz(no_data, tmp_path, capsys):  # noqa: F811
    """Every numeric key x every bad value: accepted iff valid, else one short line naming the key, before any data."""
    base = resolve_extends(read_yaml(preset_path(BASE_PRESET)))
    out = str(tmp_path / "run")
    tried, rejected, wrong = 0, 0, []
    for key in KEYS:
        for label, text in VALUES.items():
            if key.is_list and label not in ("string", "bool"):
                text = f"[{text}, 0.5]"  # one bad element in an otherwise good pair
            value = yaml_load(text)
            message = try_config(base, [*key.context, f"{key.name}={text}"], out)
            tried += 1
            if valid(key, value):
                if message is not None:
                    wrong.append(f"{key.context} {key.name}={text}: rejected a valid value: {message}")
                continue
            rejected += 1
            if message is None:
                wrong.append(f"{key.context} {key.name}={text} ({label}): accepted, reached the data set")
            elif "\n" in message or len(message) > MESSAGE_LIMIT or key.name not in message:
                wrong.append(f"{key.context} {key.name}={text}: not one short line naming the key: {message!r}")
    assert not (tmp_path / "run").exists()
    with capsys.disabled():
        print(f"\nconfig fuzz: {len(KEYS)} numeric keys x {len(VALUES)} values = {tried} configs tried, {rejected} rejected")
    assert tried == len(KEYS) * len(VALUES) >= 1000
    assert not wrong, "\n".join(wrong[:20])
