"""A small name -> object registry with "did you mean" errors (the timm pattern).

Every pluggable piece (data sets, models, losses, recipes, ...) is registered by name in
the file that defines it; configs and the CLI only ever refer to those names.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UserError, shorten

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """A name that no registry entry (nor alias) carries."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or ``""``.

    A choice with exactly the same letters (a transposition: ``fdi`` for ``fid``) comes first,
    then the closest by difflib's ratio.
    """
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    close.sort(key=lambda choice: sorted(choice) != sorted(name))  # stable: difflib's order otherwise
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """Maps names (and aliases) to objects, usually factories or classes.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("mlp", aliases=("gan",))
        ... def build_mlp(...): ...
        >>> MODELS.get("mlp")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._help: dict[str, str] = {}

    def register(
        self, name: str, *, aliases: tuple[str, ...] = (), help: str | None = None
    ) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` (and ``aliases``)."""

        def decorator(obj: T) -> T:
            self.add(name, obj, aliases=aliases, help=help)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, aliases: tuple[str, ...] = (), help: str | None = None) -> None:
        """Register ``obj`` directly (the non-decorator form)."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} '{key}' is already registered")
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        doc = help if help is not None else (getattr(obj, "__doc__", None) or "")
        self._help[name] = doc.strip().splitlines()[0] if doc.strip() else ""

    def remove(self, name: str) -> T:
        """Unregister ``name`` and its aliases (plugins and tests that register temporarily)."""
        name = self.canonical(name)
        for alias in self.aliases_of(name):
            del self._aliases[alias]
        self._help.pop(name, None)
        return self._entries.pop(name)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` (resolving aliases); raises with a suggestion."""
        if not isinstance(name, str):
            raise UnknownNameError(f"{self.kind} must be a name, got {shorten(repr(name))} (available: {', '.join(sorted(self._entries))})")
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        choices = sorted([*self._entries, *self._aliases])
        raise UnknownNameError(
            f"unknown {self.kind} '{shorten(name)}'{did_you_mean(name, choices)} "
            f"(available: {', '.join(sorted(self._entries))})"
        )

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the registered factory ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        """First docstring line of an entry, for ``ganforge models`` and friends."""
        return self._help[self.canonical(name)]

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, target in self._aliases.items() if target == name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
