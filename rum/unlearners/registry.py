"""Register and look up unlearners by name."""

from __future__ import annotations

from typing import Any

from rum._registry import Registry
from rum.exceptions import InvalidParameterError, UnknownUnlearnerError
from rum.unlearners.base import Unlearner

__all__ = ["register_unlearner", "get_unlearner", "list_unlearners", "make_unlearner"]

UNLEARNERS: Registry[type[Unlearner]] = Registry("unlearner", UnknownUnlearnerError)


def register_unlearner(name: str, *, force: bool = False):
    """Class decorator that registers an :class:`Unlearner` subclass under ``name``.

    A name already taken raises unless ``force=True``.

    Examples:
        >>> import rum
        >>> @rum.register_unlearner("do-nothing-twice", force=True)
        ... class DoNothingTwice(rum.Unlearner):
        ...     def _unlearn(self, model, forget, retain, ctx):
        ...         return model
        >>> rum.get_unlearner("do-nothing-twice") is DoNothingTwice
        True
        >>> UNLEARNERS.unregister("do-nothing-twice")  # (clean up the example)
    """

    def wrap(cls: type[Unlearner]) -> type[Unlearner]:
        if not (isinstance(cls, type) and issubclass(cls, Unlearner)):
            raise InvalidParameterError(
                f"@register_unlearner({name!r}) must decorate a subclass of rum.Unlearner, "
                f"got {cls!r}."
            )
        UNLEARNERS.register(name, cls, force=force)
        cls.name = name
        return cls

    return wrap


def get_unlearner(name: str) -> type[Unlearner]:
    """The unlearner class registered under ``name``.

    Raises:
        UnknownUnlearnerError: the name is unknown; the message lists the
            known names and suggests the closest.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("finetune").__name__
        'Finetune'
    """
    return UNLEARNERS.get(name, "unlearner")


def list_unlearners(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered unlearners, optionally filtered by a glob ``pattern``.

    Examples:
        >>> import rum
        >>> rum.list_unlearners("neggrad*")
        ['neggrad', 'neggrad+']
    """
    return UNLEARNERS.names(pattern)


def make_unlearner(spec: Any, params: dict | None = None, argument: str = "unlearner") -> Unlearner:
    """Build an unlearner from a name, a class or an instance (plus parameter overrides)."""
    params = dict(params or {})
    if isinstance(spec, Unlearner):
        return spec.clone(**params) if params else spec
    if isinstance(spec, type) and issubclass(spec, Unlearner):
        cls = spec
    elif isinstance(spec, str):
        cls = UNLEARNERS.get(spec, argument)
    else:
        raise InvalidParameterError(
            f"{argument} must be a registered name (see rum.list_unlearners()), an Unlearner "
            f"subclass or an instance, got {type(spec).__name__}."
        )
    from rum._validation import check_options

    check_options(params, cls._param_names(), f"unlearner {cls.name or cls.__name__!r}")
    return cls(**params)
