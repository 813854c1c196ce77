"""The one place where user data formats are turned into rum's internal form.

Every public function accepts, for each data argument, any of:

* a pair ``(X, y)`` of numpy arrays, torch tensors or nested lists;
* a ``torch.utils.data.Dataset`` whose items are ``(x, y)``;
* a ``torch.utils.data.DataLoader`` yielding ``(x, y)`` batches;
* an object with ``.data`` and ``.target`` (a scikit-learn ``Bunch``);
* a :class:`TensorData` (already converted).

:func:`as_data` materialises all of them into a :class:`TensorData`: a float
feature tensor and an int64 label tensor, both freshly allocated on the CPU, so
nothing rum does can write into the caller's arrays. Nothing else in the
package handles raw formats.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset

from rum._fields import Features, Fields, cat_features, move
from rum.exceptions import (
    EmptyDataError,
    InvalidDataError,
    NotDataError,
)

__all__ = ["TensorData", "Fields", "as_data", "count_items", "move", "cat_features", "batch_count"]


def batch_count(n_items: int, batch_size: int) -> int:
    """Mini-batches of ``batch_size`` that ``n_items`` items make (the last may be short).

    Examples:
        >>> batch_count(100, 32), batch_count(96, 32), batch_count(0, 32)
        (4, 3, 0)
    """
    return math.ceil(n_items / int(batch_size)) if n_items else 0


@dataclass(frozen=True, eq=False)
class TensorData:
    """Features ``X`` and integer labels ``y`` of equal length.

    ``X`` is a tensor (floats, or integer or boolean features, which keep their dtype), or
    :class:`Fields`, named tensors for models that take several inputs.

    Examples:
        >>> import numpy as np
        >>> d = as_data((np.zeros((4, 3)), np.array([0, 1, 0, 1])))
        >>> len(d), tuple(d.X.shape), d.y.dtype
        (4, (4, 3), torch.int64)
    """

    X: Features
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def feature_shape(self) -> tuple:
        return self.X.feature_shape if isinstance(self.X, Fields) else tuple(self.X.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.X.device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` with floating features cast to ``dtype`` (same object if nothing
        changes; integer and boolean features keep their dtype)."""
        X = move(self.X, device, dtype) if (device or dtype) else self.X
        y = self.y.to(device=device) if device is not None else self.y
        if X is self.X and y is self.y:
            return self
        return TensorData(X, y)

    def subset(self, indices: Any) -> TensorData:
        """The items at ``indices`` (any integer index array or boolean mask)."""
        idx = torch.as_tensor(np.asarray(indices), device=self.X.device)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = idx.long()
        return TensorData(self.X[idx], self.y[idx])

    def with_labels(self, y: torch.Tensor) -> TensorData:
        """The same features with other labels."""
        return TensorData(self.X, y.to(self.y.device, torch.int64))

    def concat(self, other: TensorData) -> TensorData:
        """This data followed by ``other``."""
        if isinstance(self.X, Fields):
            X = self.X.cat(other.X)
        else:
            X = torch.cat([self.X, other.X.to(self.X.device, self.X.dtype)])
        return TensorData(X, torch.cat([self.y, other.y.to(self.y.device)]))

    def n_batches(self, batch_size: int) -> int:
        return batch_count(len(self), batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` mini-batches, shuffled with ``generator`` when asked."""
        batch_size = int(batch_size)  # a numpy int would reach torch's split
        if shuffle:
            parts = ((self.X[i], self.y[i]) for i in self.shuffled_batches(batch_size, generator))
        else:
            parts = ((self.X[s : s + batch_size], self.y[s : s + batch_size])
                     for s in range(0, len(self), batch_size))
        for xb, yb in parts:
            if device is not None:
                xb, yb = move(xb, device, non_blocking=True), yb.to(device, non_blocking=True)
            yield xb, yb

    def shuffled_batches(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield the row indices of shuffled mini-batches (one ``randperm`` with ``generator``).

        For loops that need the positions too (per-item statistics, cached
        per-item targets); :meth:`batches` with ``shuffle=True`` draws the same order.

        Examples:
            >>> d = TensorData(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long))
            >>> [len(i) for i in d.shuffled_batches(2)]
            [2, 2, 1]
        """
        order = torch.randperm(len(self), generator=generator).to(self.X.device)
        yield from order.split(int(batch_size))

    def numpy(self) -> tuple[Any, np.ndarray]:
        """Copies of ``(X, y)`` as numpy arrays (``X`` a dict of arrays for :class:`Fields`)."""
        X = self.X.numpy() if isinstance(self.X, Fields) else self.X.detach().cpu().numpy().copy()
        return X, self.y.detach().cpu().numpy().copy()


def _describe(obj: Any) -> str:
    return type(obj).__name__


#: numpy dtype kinds that hold numbers rum can train on: bool, signed and unsigned ints, floats
#: (complex numbers are refused later, with the other checks of the values).
_NUMERIC_KINDS = "biufc"


def _from_numpy(arr: np.ndarray, name: str, part: str) -> torch.Tensor:
    if arr.dtype.kind not in _NUMERIC_KINDS:
        what = {"U": "strings", "S": "bytes", "O": "Python objects", "M": "dates",
                "m": "time spans", "V": "records"}.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise InvalidDataError(
            f"{name}: {part} is a numpy array of {what} (dtype {arr.dtype}). Convert it to numbers "
            f"first (for example np.asarray({part}, dtype=np.float32), or class indices for labels)."
        )
    if not arr.dtype.isnative:  # big-endian data from a file: torch reads native byte order only
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return torch.from_numpy(np.array(arr, copy=True))


def _to_tensor(value: Any, name: str, part: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.is_meta:
            raise InvalidDataError(
                f"{name}: {part} is a meta tensor: it has a shape but holds no values. Pass the "
                "data itself."
            )
        t = value.detach()
        if t.layout != torch.strided:  # sparse: rum works on dense batches
            t = t.to_dense()
        return t.cpu().clone()
    if isinstance(value, np.ndarray):
        return _from_numpy(value, name, part)
    if isinstance(value, (list, tuple)) or isinstance(value, numbers.Number):
        try:
            arr = np.asarray(value)
        except ValueError:
            arr = None
        if arr is None or arr.dtype == object:
            raise InvalidDataError(
                f"{name}: {part} could not be turned into a rectangular numeric array. "
                "Pass a numpy array or a torch tensor."
            )
        if arr.dtype == np.float64:  # Python floats carry no precision intent
            arr = arr.astype(np.float32)
        return _from_numpy(arr, name, part)
    raise NotDataError(
        f"{name}: {part} must be a numpy array, a torch tensor or a list, got {_describe(value)}."
    )


#: The keys a dict item may hold its label under (the Hugging Face convention first).
LABEL_KEYS = ("labels", "label")


def _to_features(value: Any, name: str, part: str) -> Features:
    """A tensor, or :class:`Fields` for a mapping of named arrays (a tokenizer's output)."""
    if isinstance(value, Fields):
        return Fields({k: _to_tensor(v, name, f"{part}[{k!r}]") for k, v in value.items()})
    if isinstance(value, Mapping):
        if not value:
            raise NotDataError(f"{name}: {part} is an empty dict; it must name the model's inputs.")
        fields = {str(k): _to_tensor(v, name, f"{part}[{k!r}]") for k, v in value.items()}
        lengths = {k: (int(t.shape[0]) if t.dim() else None) for k, t in fields.items()}
        if len(set(lengths.values())) != 1 or None in lengths.values():
            raise InvalidDataError(
                f"{name}: the named inputs of {part} have different numbers of rows {lengths}; "
                "each must have one row per item."
            )
        return Fields(fields)
    return _to_tensor(value, name, part)


def _from_pair(X: Any, y: Any, name: str) -> tuple[Features, torch.Tensor]:
    return _to_features(X, name, "X"), _to_tensor(y, name, "y")


def _split_item(batch: Any, i: int, name: str, what: str) -> tuple[Any, Any]:
    """``(features, label)`` of one item or batch: an ``(x, y)`` pair, or a dict with a label key."""
    if isinstance(batch, Mapping):
        key = next((k for k in LABEL_KEYS if k in batch), None)
        if key is None:
            raise NotDataError(
                f"{name}: item {i} of the {what} is a dict without a label: give it a 'labels' key "
                f"(the Hugging Face convention) or yield (inputs, label) pairs. Its keys: "
                f"{sorted(map(str, batch))}."
            )
        return {k: v for k, v in batch.items() if k != key}, batch[key]
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise NotDataError(
            f"{name}: the {what} must yield (x, y) pairs or dicts with a 'labels' key; item {i} "
            f"is a {_describe(batch)}. Wrap your dataset so that it returns (features, label)."
        )
    return batch[0], batch[1]


def _collect_batches(batches: Any, name: str, what: str) -> tuple[Features, torch.Tensor]:
    xs, ys = [], []
    for i, batch in enumerate(batches):
        x, y = _split_item(batch, i, name, what)
        xb, yb = _to_features(x, name, "x"), _to_tensor(y, name, "y")
        if yb.dim() == 0:  # one item, not a batch (a DataLoader with batch_size=None)
            xb, yb = (xb[None] if isinstance(xb, Fields) else xb.unsqueeze(0)), yb.reshape(1)
        xs.append(xb)
        ys.append(yb)
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    if isinstance(xs[0], Fields):
        for k in xs[0].keys():
            shapes = {tuple(x[k].shape[1:]) for x in xs}
            if len(shapes) > 1:
                raise InvalidDataError(
                    f"{name}: the input {k!r} has shapes {sorted(shapes)} in different batches. "
                    "Pad every item to one length (for example tokenizer(..., padding='max_length', "
                    "max_length=...))."
                )
    return cat_features(xs), torch.cat(ys).reshape(-1)


def _length(ds: Any, name: str) -> int:
    """The number of items a dataset declares, or a clear error when it declares none."""
    try:
        return len(ds)
    except TypeError:
        kind = "an IterableDataset" if isinstance(ds, IterableDataset) else "a Dataset"
        raise NotDataError(
            f"{name} is {kind} without __len__, so rum cannot tell how many items it holds (and "
            "an endless stream would never end): a deletion request is about specific items. "
            "Give it __len__, or pass the items as an (X, y) pair."
        ) from None


def _from_dataset(ds: Dataset, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = _length(ds, name)
    if n == 0:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    loader = DataLoader(ds, batch_size=512, shuffle=False, num_workers=0)
    with torch.random.fork_rng(devices=[]):  # a loader draws from torch's global RNG
        X, y = _collect_batches(itertools.islice(loader, _batches_for(n + 1, 512)), name, "dataset")
    if isinstance(ds, IterableDataset) and len(y) != n:
        raise InvalidDataError(
            f"{name}: the IterableDataset declares {n} items (__len__) but yields "
            f"{'more' if len(y) > n else len(y)}. rum reads every item of a deletion request exactly "
            "once: make __len__ and __iter__ agree."
        )
    return X, y


def _batches_for(n_items: int, batch_size: int) -> int:
    return math.ceil(n_items / batch_size)


def _raw_to_tensors(obj: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if obj is None:
        raise NotDataError(
            f"{name} is None. Pass the data as an (X, y) pair, a torch Dataset or a DataLoader."
        )
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        raise NotDataError(
            f"{name} is a {_describe(obj)} ({obj!r}); rum does not read files. Load the data "
            "yourself and pass an (X, y) pair of arrays, a torch Dataset or a DataLoader."
        )
    if isinstance(obj, DataLoader):
        return _from_loader(obj, name)
    if isinstance(obj, Dataset):
        return _from_dataset(obj, name)
    if isinstance(obj, (tuple, list)):
        if len(obj) != 2:
            raise NotDataError(
                f"{name} is a {_describe(obj)} of length {len(obj)}; expected an (X, y) pair "
                "of arrays."
            )
        return _from_pair(obj[0], obj[1], name)
    if hasattr(obj, "data") and hasattr(obj, "target"):
        return _from_pair(obj.data, obj.target, name)
    raise NotDataError(
        f"{name} is a {_describe(obj)}, which rum cannot read as data. Pass an (X, y) pair of "
        "numpy arrays or tensors, a torch Dataset yielding (x, y), or a DataLoader."
    )


def loader_order(loader: DataLoader, name: str = "data") -> list[int] | None:
    """The dataset positions a DataLoader's items are read from: every item once, in a fixed order.

    A deletion request is about specific items, so a loader's shuffling and ``drop_last``
    are ignored: with the default sampler (or ``shuffle=True``) rum reads the whole dataset
    in its own order; with a sampler that names its items (``SubsetRandomSampler``, or any
    sampler with ``indices``) those items in the order given. Any other sampler (weighted,
    with replacement, custom) is refused. ``None`` for an iterable dataset (read as it streams).

    Examples:
        >>> ds = torch.utils.data.TensorDataset(torch.zeros(5, 2), torch.zeros(5))
        >>> loader_order(DataLoader(ds, batch_size=2, shuffle=True, drop_last=True))
        [0, 1, 2, 3, 4]
        >>> loader_order(DataLoader(ds, sampler=torch.utils.data.SubsetRandomSampler([4, 1])))
        [4, 1]
    """
    from torch.utils.data import RandomSampler, SequentialSampler

    if isinstance(loader.dataset, IterableDataset):
        return None
    if loader.batch_sampler is not None and not isinstance(loader.batch_sampler, BatchSampler):
        raise NotDataError(
            f"{name}: the DataLoader uses a batch sampler of its own ({_describe(loader.batch_sampler)}), "
            "which may skip or repeat items; rum reads every item of a deletion request exactly once. "
            "Pass the Dataset itself, or a torch Subset of the items."
        )
    sampler = loader.sampler
    n = _length(loader.dataset, name)
    if isinstance(sampler, SequentialSampler) or (
            isinstance(sampler, RandomSampler) and not sampler.replacement
            and sampler.num_samples == n):
        return list(range(n))
    indices = getattr(sampler, "indices", None)
    if indices is not None and not getattr(sampler, "replacement", False):
        order = [int(i) for i in indices]
        if len(set(order)) != len(order):
            raise NotDataError(f"{name}: the DataLoader's sampler names some items twice.")
        return order
    raise NotDataError(
        f"{name}: the DataLoader draws items with a {_describe(sampler)}, which may skip or repeat "
        "them; rum reads every item of a deletion request exactly once. Pass the Dataset itself, "
        "or a torch Subset (or a SubsetRandomSampler) naming the items."
    )


def _from_loader(loader: DataLoader, name: str) -> tuple[Features, torch.Tensor]:
    """A DataLoader's items read once each in a fixed order, with its own collate function."""
    order = loader_order(loader, name)
    if order is None:  # an iterable dataset: as it streams, checked against its length
        n = _length(loader.dataset, name)
        fixed = DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn)
        with torch.random.fork_rng(devices=[]):
            X, y = _collect_batches(itertools.islice(fixed, n + 1), name, "DataLoader")
        if len(y) != n:
            raise InvalidDataError(
                f"{name}: the IterableDataset declares {n} items (__len__) but yields "
                f"{'more' if len(y) > n else len(y)}. rum reads every item of a deletion request "
                "exactly once: make __len__ and __iter__ agree."
            )
        return X, y
    if not order:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    fixed = DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=order,
                       collate_fn=loader.collate_fn, num_workers=0)
    with torch.random.fork_rng(devices=[]):  # a loader draws from torch's global RNG
        return _collect_batches(fixed, name, "DataLoader")


def _check_same_length(n_x: int, n_y: int, name: str) -> None:
    if n_x != n_y:
        raise InvalidDataError(f"{name}: X has {n_x} rows but y has {n_y} labels; they must match.")


def _all_finite(X: torch.Tensor) -> bool:
    """Whether every entry of ``X`` is finite.

    A sum is finite only if every term is (NaN and inf propagate), and summing
    is far cheaper than an element-wise test; the element-wise test runs only
    when the sum is not finite (a NaN/inf, or finite values whose sum overflows).
    """
    if bool(torch.isfinite(X.sum())):
        return True
    return bool(torch.isfinite(X).all())


def as_data(obj: Any, name: str = "data", *, allow_empty: bool = False) -> TensorData:
    """Convert any supported data form into a validated :class:`TensorData`.

    Args:
        obj: the data, in any form listed in the module docstring.
        name: the argument name used in error messages.
        allow_empty: accept zero items instead of raising :class:`EmptyDataError`.

    Raises:
        NotDataError: ``obj`` is not data (``None``, a path, a dict...).
        EmptyDataError: no items and ``allow_empty`` is false.
        InvalidDataError: lengths differ, features hold NaN/inf, labels are not
            non-negative integers.

    Examples:
        >>> import numpy as np
        >>> as_data((np.ones((2, 3)), [1, 0]), "forget_set").y.tolist()
        [1, 0]
    """
    if isinstance(obj, TensorData):
        X, y = obj.X, obj.y
    else:
        X, y = _raw_to_tensors(obj, name)
        if y.dim() > 1 and y.shape[1:].numel() == 1:
            y = y.reshape(-1)
    if y.dim() != 1:
        raise InvalidDataError(
            f"{name}: labels must be a 1-D array of class indices, got shape {tuple(y.shape)}. "
            "If they are one-hot, pass y.argmax(1)."
        )
    if not isinstance(X, Fields) and X.dim() == 0:
        raise InvalidDataError(f"{name}: X must have one row per item, got a scalar.")
    _check_same_length(X.shape[0], y.shape[0], name)
    if len(y) == 0:
        if not allow_empty:
            raise EmptyDataError(f"{name} is empty; it must contain at least one item.")
        if isinstance(X, Fields):
            return TensorData(X, y.long())
        return TensorData(X.float().reshape(0, *X.shape[1:]), y.long())
    X = Fields({k: _checked_features(v, name, f"X[{k!r}]") for k, v in X.items()}) \
        if isinstance(X, Fields) else _checked_features(X, name, "X")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InvalidDataError(
            f"{name}: labels must be integers (class indices), got dtype {y.dtype}. "
            "Convert them, for example y.astype(int) or y.long()."
        )
    y = y.long()
    if int(y.min()) < 0:
        raise InvalidDataError(
            f"{name}: labels must be class indices >= 0, found {int(y.min())}. "
            "Map your classes to 0..C-1 (for example with sklearn's LabelEncoder)."
        )
    return TensorData(X, y)


def _checked_features(X: torch.Tensor, name: str, part: str) -> torch.Tensor:
    """Real, finite features: floats in float32 or float64; integers and bools keep their dtype
    (token ids and masks; a model that takes floats gets them cast when rum checks the fit)."""
    if X.is_complex():
        raise InvalidDataError(f"{name}: {part} must hold real numbers, got dtype {X.dtype}.")
    if X.is_floating_point() and X.dtype not in (torch.float32, torch.float64):
        X = X.float()  # half precision and float8 features are computed on in float32
    if X.is_floating_point() and not _all_finite(X):
        bad = int((~torch.isfinite(X)).reshape(len(X), -1).any(1).sum())
        raise InvalidDataError(
            f"{name}: {bad} item(s) have NaN or infinite features. Impute or drop them first."
        )
    return X


def count_items(obj: Any, name: str = "data") -> int:
    """The number of items in data of any form :func:`as_data` reads, without converting it.

    ``(X, y)`` pairs, sized datasets and loaders with a sized sampler are
    counted without touching their values; other forms are converted and counted.

    Examples:
        >>> import numpy as np
        >>> count_items((np.zeros((4, 2)), np.zeros(4)), "train_set")
        4
    """
    if isinstance(obj, TensorData):
        return len(obj)
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(hasattr(v, "__len__") for v in obj):
        _check_same_length(len(obj[0]), len(obj[1]), name)
        return len(obj[1])
    if isinstance(obj, DataLoader):
        order = loader_order(obj, name)  # every item once, as as_data reads it
        if order is not None:
            return len(order)
    elif isinstance(obj, Dataset) and hasattr(obj, "__len__"):
        return len(obj)
    return len(as_data(obj, name, allow_empty=True))
