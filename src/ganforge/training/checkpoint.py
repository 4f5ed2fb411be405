"""Atomic writes and safe loading of the full training state.

A checkpoint is a plain ``dict`` of tensors and Python scalars saved with ``torch.save``
and read back with ``torch.load(weights_only=True)``: it cannot execute code. Writes go
to a temporary file in the same folder, are fsync'ed, then renamed over the target, so a
crash mid-write never leaves a truncated checkpoint. What is read back is checked against
:data:`CHECKPOINT_LAYOUT` before anything is restored, so a truncated, foreign or edited file
is a one-line error.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import atomic_write_bytes, shorten
from ..errors import UserError

#: The version of the checkpoint layout (``state["format"]``).
CHECKPOINT_FORMAT = 1

#: What a checkpoint holds: key -> type (or a nested layout); keys in ``OPTIONAL_KEYS`` may be missing or null.
CHECKPOINT_LAYOUT: dict[str, Any] = {
    "format": int,
    "step": int,
    "recipe": {"networks": dict, "optimizers": dict, "scalers": dict, "extra": dict},
    "ema": dict,
    "loader": {"epoch": int, "position": int, "seed": int},
    "rng": {"torch": torch.Tensor, "python": (tuple, list), "numpy": dict, "generators": dict},
    "config": str,
    "eval_best": {"key": str, "value": (int, float), "step": int},
}
OPTIONAL_KEYS = {"recipe.scalers", "recipe.extra", "config", "eval_best"}


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Serialise ``state`` (tensors, numbers, strings, nested dicts/lists) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code, no pickled objects) and check its layout.

    Raises:
        UserError: the file is missing, truncated, not a checkpoint, or not laid out as
            :data:`CHECKPOINT_LAYOUT` (one line naming the first problem).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"cannot load checkpoint '{path}': it is not a checkpoint, or holds objects other than tensors "
                        "and plain data (which are never unpickled)") from None
    except EOFError:
        raise UserError(f"cannot load checkpoint '{path}': it is empty or truncated") from None
    except Exception as err:
        first = (str(err).strip().split(". ")[0].splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot load checkpoint '{path}': it is truncated or corrupt ({shorten(first, 100)})") from None
    check_checkpoint(state, path)
    return state


def check_checkpoint(state: Any, path: str | Path) -> None:
    """Raise a one-line error unless ``state`` is laid out as :data:`CHECKPOINT_LAYOUT` (format first)."""
    if not isinstance(state, dict):
        raise UserError(f"'{path}' is not a ganforge checkpoint: it holds a {type(state).__name__}, not a dict")
    if "format" in state and state["format"] != CHECKPOINT_FORMAT:
        raise UserError(f"'{path}' has checkpoint format {shorten(state['format'])}, expected {CHECKPOINT_FORMAT}")
    problem = _layout_problem(state, CHECKPOINT_LAYOUT, "")
    if problem is None and state["step"] < 0:
        problem = f"'step' is {state['step']}"
    if problem is not None:
        raise UserError(f"'{path}' is not a ganforge checkpoint: {problem}")


def _layout_problem(node: dict[str, Any], layout: dict[str, Any], prefix: str) -> str | None:
    """The first difference between ``node`` and ``layout`` ("missing 'rng'", "'step' is a str, not int"), or None."""
    for key, expected in layout.items():
        where = f"{prefix}{key}"
        if node.get(key) is None:
            if where in OPTIONAL_KEYS:
                continue
            return f"missing '{where}'" if key not in node else f"'{where}' is null"
        value = node[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                return f"'{where}' is a {type(value).__name__}, not a dict"
            if (problem := _layout_problem(value, expected, f"{where}.")) is not None:
                return problem
        elif not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
            return f"'{where}' is a {type(value).__name__}, not {names}"
    return None


# --------------------------------------------------------------------------- RNG state


def rng_state(extra: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every random state a run depends on, as tensors and ints (weights_only-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "generators": {name: g.get_state() for name, g in (extra or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], extra: dict[str, torch.Generator] | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in (extra or {}).items():
        generator.set_state(state["generators"][name])
