"""Correction requests: which training items change, and into what.

A request is a list of pairs ``(z, z~)``: ``z`` is an item as it is in the
training set and ``z~`` the item that replaces it. A deletion is a pair with
no replacement. Feature edits, relabelling and deletions therefore share one
record and one code path in :func:`rum.correct`.

The helpers build the common requests from the training data itself:

* :func:`replace_features`: overwrite some feature columns of some items;
* :func:`relabel`: give some items other labels;
* :func:`delete`: remove some items.

Requests combine with ``+`` (they must not touch the same training item twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rum._data import TensorData, as_data
from rum.exceptions import EmptyDataError, InvalidDataError, InvalidParameterError

__all__ = ["Request", "replace_features", "relabel", "delete"]


@dataclass(frozen=True, eq=False)
class Request:
    """Pairs ``(before[i], after[i])``; ``deleted[i]`` marks a pair without replacement.

    Attributes:
        before: the affected items as they are in the training set.
        after: their replacements, in the same order (the row of a deleted
            item is kept as a placeholder and ignored).
        deleted: boolean mask, true where the item is removed.
        indices: positions of the items in the training set the request was
            built from (``None`` when unknown; :func:`rum.correct` does not need them).

    Examples:
        >>> import numpy as np
        >>> X, y = np.eye(4, dtype=np.float32), np.array([0, 1, 0, 1])
        >>> r = relabel((X, y), [1, 3], [0, 0]) + delete((X, y), [0])
        >>> len(r), r.n_deleted, r.after.y.tolist()
        (3, 1, [0, 0, 0])
    """

    before: TensorData
    after: TensorData
    deleted: np.ndarray
    indices: np.ndarray | None = None

    def __post_init__(self) -> None:
        deleted = np.asarray(self.deleted, dtype=bool).reshape(-1).copy()
        deleted.setflags(write=False)
        object.__setattr__(self, "deleted", deleted)
        if self.indices is not None:
            idx = np.asarray(self.indices, dtype=np.int64).reshape(-1).copy()
            idx.setflags(write=False)
            object.__setattr__(self, "indices", idx)
        n = len(self.before)
        if len(self.after) != n or len(deleted) != n:
            raise InvalidDataError(
                f"a request needs as many replacements as affected items: before has {n}, "
                f"after {len(self.after)}, deleted mask {len(deleted)}."
            )
        if self.before.feature_shape != self.after.feature_shape:
            raise InvalidDataError(
                f"before and after must have the same feature shape, got "
                f"{self.before.feature_shape} and {self.after.feature_shape}."
            )
        if self.indices is not None:
            if len(self.indices) != n:
                raise InvalidDataError("request indices must have one entry per affected item.")
            if len(np.unique(self.indices)) != n:
                raise InvalidDataError(
                    "a request touches the same training item twice; combine the edits into one."
                )

    def __len__(self) -> int:
        return len(self.before)

    @property
    def n_deleted(self) -> int:
        """Number of pairs without replacement."""
        return int(self.deleted.sum())

    @property
    def kept_after(self) -> TensorData:
        """The replacements that stay in the training set (deleted rows dropped)."""
        return self.after.subset(np.flatnonzero(~self.deleted))

    def __add__(self, other: Request) -> Request:
        if not isinstance(other, Request):
            return NotImplemented
        indices = None
        if self.indices is not None and other.indices is not None:
            indices = np.concatenate([self.indices, other.indices])
        return Request(
            self.before.concat(other.before),
            self.after.concat(other.after),
            np.concatenate([self.deleted, other.deleted]),
            indices,
        )

    def __repr__(self) -> str:
        return (
            f"Request({len(self)} item(s): {len(self) - self.n_deleted} replaced, "
            f"{self.n_deleted} deleted)"
        )

    @classmethod
    def from_pairs(cls, before: Any, after: Any = None) -> Request:
        """A request from aligned data: ``after=None`` deletes every item of ``before``.

        Examples:
            >>> import numpy as np
            >>> Request.from_pairs((np.ones((2, 3)), [0, 1])).n_deleted
            2
        """
        b = as_data(before, "before")
        if after is None:
            return cls(b, b, np.ones(len(b), dtype=bool))
        a = as_data(after, "after")
        if len(a) != len(b):
            raise InvalidDataError(
                f"before has {len(b)} items but after has {len(a)}; they must be aligned pairs "
                "(after[i] replaces before[i]). Use rum.requests.delete for removals."
            )
        return cls(b, a, np.zeros(len(b), dtype=bool))


def _rows(indices: Any, n: int, name: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise InvalidParameterError(f"{name}: a boolean mask must have length {n}.")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise InvalidParameterError(
            f"{name} must be a 1-D array of integer positions or a boolean mask, got {idx.dtype}."
        )
    if len(idx) and (idx.min() < -n or idx.max() >= n):
        raise InvalidParameterError(f"{name}: positions must be in [0, {n}), got {idx.tolist()[:5]}...")
    idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
    if len(np.unique(idx)) != len(idx):
        raise InvalidParameterError(f"{name} lists the same item more than once.")
    return idx


def replace_features(
    data: Any,
    columns: Any,
    values: Any = 0.0,
    *,
    rows: Any = None,
) -> Request:
    """Replace the values of some feature columns.

    Args:
        data: the training set (any form rum reads).
        columns: feature column positions (into the flattened features).
        values: the new values: a scalar, one value per column, or an array
            of shape ``(len(rows), len(columns))``.
        rows: the items to edit (positions or mask). ``None`` edits every item
            whose columns differ from the new values, which for ``values=0``
            are the rows where the feature is present, as in feature unlearning.

    Returns:
        Request: only the rows whose features actually change.

    Examples:
        >>> import numpy as np
        >>> X = np.array([[1., 2.], [0., 3.], [4., 5.]])
        >>> r = replace_features((X, [0, 1, 0]), columns=[0])
        >>> r.indices.tolist(), r.after.X[:, 0].tolist()
        ([0, 2], [0.0, 0.0])
    """
    d = as_data(data, "data")
    n = len(d)
    flat = d.X.reshape(n, -1)
    cols = np.asarray(columns)
    if cols.dtype == bool:
        cols = np.flatnonzero(cols)
    cols = np.atleast_1d(cols)
    if cols.ndim != 1 or len(cols) == 0 or not np.issubdtype(cols.dtype, np.integer):
        raise InvalidParameterError("columns must be a non-empty list of integer feature positions.")
    if cols.min() < 0 or cols.max() >= flat.shape[1]:
        raise InvalidParameterError(
            f"columns must be in [0, {flat.shape[1]}) (features are flattened), got {cols.tolist()}."
        )
    sel = np.arange(n) if rows is None else _rows(rows, n, "rows")
    vals = torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=flat.dtype)
    try:
        new_block = torch.broadcast_to(vals, (len(sel), len(cols))).clone()
    except RuntimeError:
        raise InvalidParameterError(
            f"values must be a scalar, one value per column ({len(cols)}) or an array of shape "
            f"({len(sel)}, {len(cols)}); got shape {tuple(vals.shape)}."
        ) from None
    cols_t = torch.as_tensor(cols, dtype=torch.long)
    sel_t = torch.as_tensor(sel, dtype=torch.long)
    old_block = flat[sel_t][:, cols_t]
    changed = (old_block != new_block).any(1).numpy()
    if rows is None:
        sel, sel_t, new_block = sel[changed], sel_t[changed], new_block[changed]
    if len(sel) == 0:
        raise EmptyDataError(
            "replace_features: no item changes (every selected row already has these values)."
        )
    before = d.subset(sel)
    X_after = before.X.reshape(len(sel), -1).clone()
    X_after[:, cols_t] = new_block
    after = TensorData(X_after.reshape(before.X.shape), before.y.clone())
    return Request(before, after, np.zeros(len(sel), dtype=bool), sel)


def relabel(data: Any, indices: Any, labels: Any) -> Request:
    """Give the items at ``indices`` the new ``labels`` (for example their clean labels).

    Examples:
        >>> import numpy as np
        >>> r = relabel((np.zeros((3, 2)), [0, 1, 1]), [2], [0])
        >>> r.before.y.tolist(), r.after.y.tolist()
        ([1], [0])
    """
    d = as_data(data, "data")
    idx = _rows(indices, len(d), "indices")
    if len(idx) == 0:
        raise EmptyDataError("relabel: indices is empty; nothing to correct.")
    new = torch.as_tensor(np.asarray(labels)).reshape(-1)
    if new.numel() == 1 and len(idx) > 1:
        new = new.expand(len(idx))
    if new.numel() != len(idx):
        raise InvalidParameterError(
            f"labels must have one entry per index ({len(idx)}), got {new.numel()}."
        )
    if new.is_floating_point() or new.dtype == torch.bool or int(new.min()) < 0:
        raise InvalidDataError("labels must be non-negative integer class indices.")
    before = d.subset(idx)
    return Request(before, before.with_labels(new.long().clone()), np.zeros(len(idx), bool), idx)


def delete(data: Any, indices: Any) -> Request:
    """Remove the items at ``indices`` from the training set.

    Examples:
        >>> import numpy as np
        >>> delete((np.zeros((3, 2)), [0, 1, 1]), [0, 2]).n_deleted
        2
    """
    d = as_data(data, "data")
    idx = _rows(indices, len(d), "indices")
    if len(idx) == 0:
        raise EmptyDataError("delete: indices is empty; nothing to remove.")
    before = d.subset(idx)
    return Request(before, before, np.ones(len(idx), dtype=bool), idx)
