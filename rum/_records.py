"""Helpers for rum's frozen records: plain-text tables and JSON conversion."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def fmt(value: Any, digits: int = 4) -> str:
    """Format a cell: floats to ``digits`` significant places, NaN as '-', None as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "-"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [
        all(isinstance(r[i], numbers.Number) or r[i] is None for r in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(list(headers)))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and mappings into JSON-safe values.

    NaN and infinities become ``None``; callables become a descriptive string.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if hasattr(value, "detach") and hasattr(value, "tolist"):
        return jsonable(value.detach().cpu().numpy())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if callable(value):
        mod = getattr(value, "__module__", "?")
        name = getattr(value, "__qualname__", type(value).__name__)
        return f"<callable {mod}.{name}>"
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return repr(value)


def float_array(values: Any) -> np.ndarray:
    """A read-only float64 array; ``None`` entries become NaN."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr = values.astype(np.float64)  # a copy: the caller's array stays writable and theirs
    else:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    arr.setflags(write=False)
    return arr


def frozen_array(values: Any, dtype: Any) -> np.ndarray:
    arr = np.array(values, dtype=dtype)
    arr.setflags(write=False)
    return arr


def save_json(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(obj.to_dict(), indent=2))
    return path


def load_json(path: str | Path) -> dict:
    """The JSON object saved at ``path``; a file that is not one is an
    :class:`~rum.exceptions.InvalidFileError` naming it."""
    from rum.exceptions import InvalidFileError

    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidFileError(f"no such file {str(path)!r}. Check the path.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, IsADirectoryError) as err:
        what = "nested too deeply" if isinstance(err, RecursionError) else type(err).__name__
        raise InvalidFileError(f"{str(path)!r} is not a JSON file rum wrote ({what}).") from None
    if not isinstance(obj, dict):
        raise InvalidFileError(f"{str(path)!r} holds a JSON {type(obj).__name__}, not a record rum wrote.")
    return obj
