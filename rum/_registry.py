"""A small named registry, one instance per plug-in kind.

Unlearners live in :data:`UNLEARNERS`; the profiler and planner keep their
own instances for scorers, grouping strategies and policies.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from rum._validation import did_you_mean
from rum.exceptions import InvalidParameterError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to plug-in classes or functions.

    Args:
        kind: what is registered, for messages ("unlearner", "scorer", ...).
        error: the exception class raised for an unknown name.
    """

    def __init__(
        self, kind: str, error: type[UnknownNameError] = UnknownNameError, plural: str | None = None
    ):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T, *, force: bool = False) -> T:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterError(f"a {self.kind} name must be a non-empty str, got {name!r}.")
        if name in self._items and self._items[name] is not obj and not force:
            raise InvalidParameterError(
                f"a {self.kind} named {name!r} is already registered "
                f"({self._items[name]!r}). Pick another name or pass force=True to replace it."
            )
        self._items[name] = obj
        return obj

    def decorator(self, name: str, *, force: bool = False) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            self.register(name, obj, force=force)
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            return obj

        return wrap

    def get(self, name: Any, argument: str | None = None) -> T:
        if isinstance(name, str) and name in self._items:
            return self._items[name]
        known = ", ".join(sorted(self._items)) or "none"
        arg = f"{argument}=" if argument else ""
        hint = did_you_mean(name, self._items) if isinstance(name, str) else ""
        raise self.error(f"{arg}{name!r} is not a known {self.kind}.{hint} Known {self.plural}: {known}.")

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def names(self, pattern: str | None = None) -> list[str]:
        names = sorted(self._items)
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatch(n, pattern)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self.names())
