"""Declarative parameter checks shared by every public entry point.

Constraints are small objects with ``is_satisfied_by`` and a human
description; :func:`validate_params` turns a failure into one message format:
``The 'epochs' parameter of Finetune must be an int in [1, inf). Got 0.``
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rum.exceptions import InvalidDeviceError, InvalidParameterError, UnknownOptionError

#: The number types a numeric hyper-parameter may have: Python's and numpy's (not bool, not
#: Fraction or Decimal, which torch cannot take).
INT_TYPES = (int, np.integer)
FLOAT_TYPES = (int, float, np.integer, np.floating)
#: Largest magnitude of a numeric hyper-parameter: ints fit in int64, floats in float32 (the
#: weights' usual dtype; torch cannot use an lr of 1e300 on them).
MAX_INT = 2**63 - 1
MAX_FLOAT = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``kind`` is ``int`` or ``float`` (ints are accepted as floats).

    Numbers are Python's or numpy's (bools, fractions and decimals are refused), ints
    fit in 64 bits and floats are finite and within float32's range.

    Examples:
        >>> Interval(int, 1, None).is_satisfied_by(3), Interval(int, 1, None).is_satisfied_by(True)
        (True, False)
        >>> Interval(float, 0, None).is_satisfied_by(1e300)
        False
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind is int:
            if not isinstance(value, INT_TYPES) or abs(int(value)) > MAX_INT:
                return False
        elif not isinstance(value, FLOAT_TYPES):
            return False
        elif isinstance(value, INT_TYPES) and abs(int(value)) > MAX_INT:
            return False  # torch takes a Python int as an int64
        elif not math.isfinite(float(value)) or abs(float(value)) > MAX_FLOAT:
            return False
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return lo_ok and hi_ok

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        name = "an int" if self.kind is int else "a float"
        return f"{name} in {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def is_satisfied_by(self, value: Any) -> bool:
        # True == 1 in Python: a bool matches only a bool option
        if isinstance(value, (bool, np.bool_)) and not any(isinstance(v, bool) for v in self.values):
            return False
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class InstanceOf:
    """An instance of the given type(s)."""

    types: tuple
    description: str

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class _IsNone:
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


NONE = _IsNone()
CALLABLE = InstanceOf((Callable,), "a callable")  # type: ignore[arg-type]
BOOL = InstanceOf((bool,), "a bool")


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, list], owner: str) -> None:
    """Check every value in ``params`` against its list of allowed constraints.

    A value passes when it satisfies at least one constraint of its list.
    Raises :class:`InvalidParameterError` naming the parameter and the owner.
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if not allowed:
            continue
        if any(c.is_satisfied_by(value) for c in allowed):
            continue
        desc = " or ".join(str(c) for c in allowed)
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {desc}. Got {value!r} instead.{_hint(value)}"
        )


def _hint(value: Any) -> str:
    """Why a number that looks right was refused, when that is not obvious."""
    if isinstance(value, (bool, np.bool_)):
        return " (a bool is not a number here)"
    if isinstance(value, numbers.Number) and not isinstance(value, FLOAT_TYPES):
        return f" (a {type(value).__name__} is not taken: pass float(value) or int(value))"
    if isinstance(value, INT_TYPES) and abs(int(value)) > MAX_INT:
        return " (it does not fit in 64 bits)"
    if isinstance(value, FLOAT_TYPES) and math.isfinite(float(value)) and abs(float(value)) > MAX_FLOAT:
        return f" (beyond float32's range, {MAX_FLOAT:.3g}: torch cannot use it on float32 weights)"
    return ""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name``, or ``None`` when nothing is close."""
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A " Did you mean 'x'?" suffix, or an empty string."""
    guess = closest(name, choices)
    return f" Did you mean {guess!r}?" if guess else ""


def check_options(options: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Reject keyword options not in ``allowed`` with a did-you-mean hint."""
    allowed = sorted(allowed)
    for key in options:
        if key not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise UnknownOptionError(
                f"{where} got an unknown keyword option {key!r}.{did_you_mean(key, allowed)} "
                f"Accepted options: {known}."
            )


def check_random_state(random_state: Any, name: str = "random_state") -> int:
    """Turn ``random_state`` into a concrete 63-bit seed.

    ``None`` draws fresh entropy (the seed is recorded so the run can be
    repeated); an int is used as is; a ``numpy.random.Generator`` supplies one.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InvalidParameterError(
                f"{name} must be a non-negative int, None or a numpy Generator. Got {random_state}."
            )
        return int(random_state)
    raise InvalidParameterError(
        f"{name} must be a non-negative int, None or a numpy Generator. "
        f"Got {type(random_state).__name__}."
    )


def resolve_device(device: Any, name: str = "device") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a device.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise InvalidDeviceError(
                f"{name}={device!r} is not a device torch understands. "
                "Use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
            ) from None
    else:
        raise InvalidDeviceError(
            f"{name} must be 'auto', a device string or a torch.device. Got {type(device).__name__}."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidDeviceError(
                f"{name}={device!r} asks for CUDA, but no CUDA device is available here. "
                "Use device='auto' to fall back to the CPU."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidDeviceError(
                f"{name}={device!r} names CUDA device {dev.index}, but only "
                f"{torch.cuda.device_count()} exist."
            )
    elif dev.type != "cpu" and dev.type != "mps":
        raise InvalidDeviceError(
            f"{name}={device!r}: rum runs on 'cpu' or 'cuda' (or 'mps'). Use device='auto'."
        )
    return dev
