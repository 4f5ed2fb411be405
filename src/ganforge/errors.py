"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``error: <message>`` for these and exits without a traceback:
``UserError`` (bad input: config, paths, names) exits 2, ``TrainingError`` (the run
itself failed, e.g. diverged) exits 1.
"""

from __future__ import annotations


def shorten(text: object, limit: int = 24) -> str:
    """``text`` as a printable string of at most ``limit`` characters (errors quote only a prefix of bad input).

    Unprintable characters are escaped (``\\x1b``, ``\\ud800``): a quoted input can neither drive
    a terminal nor break the UTF-8 encoding of a JSON error (a lone surrogate did: a 500).
    """
    text = str(text).strip()
    head = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text[:limit])
    return head if len(text) <= limit and len(head) <= limit else f"{head[: limit - 4]}..."


class GanforgeError(Exception):
    """Base class of every error ganforge raises on purpose."""

    exit_code = 1


class UserError(GanforgeError, ValueError):
    """Something the user gave us is wrong: a config key, a name, a path, a file."""

    exit_code = 2


class ConfigError(UserError):
    """An unknown config key, a value of the wrong type, or a bad override."""


class DataError(UserError):
    """A data set cannot be found or read."""


class TrainingError(GanforgeError):
    """Training could not continue (divergence, interruption)."""

    exit_code = 1


class DivergenceError(TrainingError):
    """A loss or a weight became NaN or infinite."""
