"""Loading a saved generator folder (``config.json`` + ``model.safetensors``), which may be malformed.

Nothing in the folder is trusted before it is checked, and nothing is allocated before the
check that bounds it:

1. ``config.json`` is a JSON object naming a registered generator (or translator) class, with
   ``kwargs`` that its constructor accepts, of the annotated types, and a ``meta`` mapping
   whose known keys have the types the commands read (:data:`META_TYPES`).
2. The network is built on the ``meta`` device (shapes only, no memory), with at most as many
   tensors as the weights file holds, and its tensor names and shapes must equal those in the
   safetensors header (:func:`check_state_shapes` names the first difference). A
   ``hidden_dim: 12000`` edited into ``config.json`` is thus one error line, not gigabytes.
3. Only then are the weights decoded and the generator built for real: its size is now that
   of the weights file.

Every failure is a one-line :class:`~ganforge.errors.UserError`.
"""

from __future__ import annotations

import inspect
import json
import threading
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn.modules import module as module_hooks

from ..config import coerce
from ..core import read_files, shorten
from ..errors import ConfigError, GanforgeError, UserError
from .base import GENERATOR_CONFIG, GENERATOR_WEIGHTS, NETWORKS, Generator, Translator, ensure_registered

#: The ``meta`` keys that ganforge reads back, and their types (other keys are kept as they are).
META_TYPES: dict[str, Any] = {
    "run": str,
    "step": int,
    "data": Optional[str],
    "modality": str,
    "class_names": Optional[list[str]],
    "weights_id": str,
    "centers": list[list[float]],
    "std": float,
}


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _checked(value: Any, tp: Any, what: str, expected: Any = None) -> Any:
    """``value`` coerced to annotation ``tp`` (named ``expected`` if given); else a one-line error quoting a prefix of it."""
    try:
        return coerce(value, tp, what)
    except ConfigError:
        expected = expected or (tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", ""))
        raise UserError(f"{what} must be {expected}, got {shorten(json.dumps(value))}") from None


def check_arguments(cls: type, kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """``kwargs`` checked against the constructor of ``cls``: known names, required ones present, annotated types."""
    parameters = {
        name: p for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    hints = typing.get_type_hints(inspect.unwrap(cls.__init__))  # type: ignore[misc]
    for key in kwargs:
        if key not in parameters:
            raise UserError(f"{where}: {cls.__name__} takes no argument '{shorten(key)}' (it takes {', '.join(parameters)})")
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in kwargs]
    if missing:
        raise UserError(f"{where}: the {cls.__name__} arguments lack '{missing[0]}'")
    return {
        key: _checked(value, hints.get(key, Any), f"{where}: {cls.__name__} argument '{key}'", parameters[key].annotation)
        for key, value in kwargs.items()
    }


def check_meta(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """``meta`` with its known keys (:data:`META_TYPES`) checked."""
    return {
        key: _checked(value, META_TYPES[key], f"{where}: meta.{key}") if key in META_TYPES else value
        for key, value in meta.items()
    }


def read_generator_config(data: bytes, where: str) -> tuple[type[nn.Module], dict[str, Any], dict[str, Any]]:
    """``(class, constructor arguments, meta)`` from the bytes of a ``config.json``, all checked."""
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{where} is not valid JSON ({err})") from None
    return check_generator_config(config, where)


def check_generator_config(config: Any, where: str) -> tuple[type[nn.Module], dict[str, Any], dict[str, Any]]:
    """``(class, constructor arguments, meta)`` of a decoded ``config.json``, all checked."""
    if not isinstance(config, dict):
        raise UserError(f"{where} must hold a JSON object with 'class', 'kwargs' and 'meta', not a {_kind(config)}")
    name = config.get("class")
    cls = NETWORKS.get(name) if isinstance(name, str) and name in NETWORKS else None
    if not (isinstance(cls, type) and issubclass(cls, (Generator, Translator))):
        known = sorted(n for n in NETWORKS.names() if issubclass(NETWORKS.get(n), (Generator, Translator)))
        raise UserError(
            f"{where}: 'class' must name a generator class ({', '.join(known)}), got {shorten(json.dumps(name))}"
        )
    kwargs, meta = config.get("kwargs"), config.get("meta", {})
    for key, value in (("kwargs", kwargs), ("meta", meta)):
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be a JSON object, not a {_kind(value)}")
    return cls, check_arguments(cls, kwargs, where), check_meta(meta, where)


def safetensors_shapes(data: bytes, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the header of a safetensors file (the tensors are not decoded)."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < size <= len(data) - 8:
        raise UserError(f"{where} is not a safetensors file (truncated or garbage header)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise UserError(f"{where} is not a safetensors file (its header is not a JSON object)")
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise UserError(f"{where} is not a safetensors file (tensor '{shorten(name)}' has no valid shape)")
        shapes[name] = tuple(shape)
    return shapes


def _shape(shape: Sequence[int]) -> str:
    return shorten(list(shape), 40)


def check_state_shapes(expected: Mapping[str, Sequence[int]], found: Mapping[str, Sequence[int]], found_in: str) -> None:
    """Raise a one-line error at the first tensor name or shape of ``found`` that differs from ``expected``.

    Args:
        expected: the network's tensors (name -> shape).
        found: what a file holds for it.
        found_in: the file, as it should read in the message ("the weights", "the checkpoint").
    """
    for name, shape in expected.items():
        if name not in found:
            raise UserError(f"tensor '{shorten(name, 60)}' of the network is missing from {found_in}")
        if tuple(found[name]) != tuple(shape):
            raise UserError(
                f"tensor '{shorten(name, 60)}' has shape {_shape(found[name])} in {found_in} but {_shape(shape)} in the network"
            )
    extra = next((name for name in found if name not in expected), None)
    if extra is not None:
        raise UserError(f"tensor '{shorten(extra, 60)}' in {found_in} is not in the network")


class _TooManyTensors(Exception):
    pass


def build_on_meta(cls: type[nn.Module], kwargs: dict[str, Any], max_tensors: int, where: str) -> nn.Module:
    """``cls(**kwargs)`` on the ``meta`` device (no memory), stopped once it registers more than ``max_tensors``.

    The limit bounds the work a corrupt argument can cause (``num_layers: 1000000000``); a
    constructor that fails on its arguments is a one-line error.
    """
    seen: set[tuple[int, str]] = set()  # (module, name): re-assigning a buffer (power iterations) calls the hooks again
    thread = threading.get_ident()

    def counter(module: nn.Module, name: str, tensor: Any) -> None:
        if threading.get_ident() == thread:
            seen.add((id(module), name))
            if len(seen) > max_tensors:
                raise _TooManyTensors

    handles = [
        module_hooks.register_module_parameter_registration_hook(counter),
        module_hooks.register_module_buffer_registration_hook(counter),
    ]
    try:
        with torch.device("meta"):
            return cls(**kwargs)
    except _TooManyTensors:
        raise UserError(f"{where} describes a {cls.__name__} with far more tensors than the weights hold") from None
    except GanforgeError as err:
        raise UserError(f"{where}: {err}") from None
    except Exception as err:  # the constructor's own complaint about its (corrupt) arguments
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{where}: its arguments do not build a {cls.__name__} ({shorten(reason, 120)})") from None
    finally:
        for handle in handles:
            handle.remove()


def check_fit(cls: type[nn.Module], kwargs: dict[str, Any], shapes: Mapping[str, Sequence[int]], where: str,
              misfit: str, found_in: str) -> None:
    """Raise unless ``cls(**kwargs)`` has exactly the tensors ``shapes`` (built on the ``meta`` device: no memory).

    Args:
        where: the source of ``kwargs``, for errors in them.
        misfit: what a difference in the tensors is called (the message's start).
        found_in: where ``shapes`` come from, as the message names it ("the weights").
    """
    skeleton = build_on_meta(cls, kwargs, 2 * len(shapes) + 64, where)
    try:
        check_state_shapes({k: v.shape for k, v in skeleton.state_dict().items()}, shapes, found_in)
    except UserError as err:
        raise UserError(f"{misfit}: {err}") from None


def load_generator(folder: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Rebuild a generator from its folder (``config.json`` + ``model.safetensors``), checked first (see above).

    Image-to-image runs give a :class:`Translator` (see :func:`is_translator`). To load from
    a run directory, use :func:`ganforge.rundir.load_generator` (or ``ganforge.load``).
    """
    from safetensors.torch import load as load_safetensors

    ensure_registered()
    folder = Path(folder)
    config_path, weights_path = folder / GENERATOR_CONFIG, folder / GENERATOR_WEIGHTS
    if not config_path.is_file():
        raise UserError(f"no generator found at '{folder}' (expected {GENERATOR_CONFIG} and {GENERATOR_WEIGHTS})")
    if not weights_path.is_file():
        raise UserError(f"missing weights file '{weights_path}'")
    try:  # both files from one version of the folder, even while training replaces it
        files = read_files(folder, (GENERATOR_CONFIG, GENERATOR_WEIGHTS))
    except OSError as err:
        raise UserError(f"cannot read the generator at '{folder}': {err.strerror}") from None
    config, weights = f"'{config_path}'", f"'{weights_path}'"
    cls, kwargs, meta = read_generator_config(files[GENERATOR_CONFIG], config)
    shapes = safetensors_shapes(files[GENERATOR_WEIGHTS], weights)
    check_fit(cls, kwargs, shapes, config, f"{weights} does not fit the {cls.__name__} of {config}", "the weights")
    try:
        state = load_safetensors(files[GENERATOR_WEIGHTS])
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise UserError(f"cannot read {weights}: {shorten(err, 120)}") from None
    generator = cls(**kwargs)
    generator.load_state_dict(state)
    generator.meta = meta
    return generator.to(device).eval()


__all__ = [
    "META_TYPES", "build_on_meta", "check_arguments", "check_fit", "check_generator_config", "check_meta",
    "check_state_shapes", "load_generator", "read_generator_config", "safetensors_shapes",
]
