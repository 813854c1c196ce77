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

import contextlib
import copy
import itertools
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset

from rum._validation import check_random_state, resolve_device
from rum.exceptions import (
    EmptyDataError,
    IncompatibleDataError,
    InvalidDataError,
    NotAModelError,
    NotDataError,
)

__all__ = ["TensorData", "as_data", "check_model", "check_fits_model", "prepare_call", "Prepared"]


def batch_count(n_items: int, batch_size: int) -> int:
    """Mini-batches of ``batch_size`` that ``n_items`` items make (the last may be short).

    Examples:
        >>> batch_count(100, 32), batch_count(96, 32), batch_count(0, 32)
        (4, 3, 0)
    """
    return math.ceil(n_items / int(batch_size)) if n_items else 0


@dataclass(frozen=True, eq=False)
class TensorData:
    """Features ``X`` (float) and integer labels ``y`` of equal length.

    Examples:
        >>> import numpy as np
        >>> d = as_data((np.zeros((4, 3)), np.array([0, 1, 0, 1])))
        >>> len(d), tuple(d.X.shape), d.y.dtype
        (4, (4, 3), torch.int64)
    """

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.X.device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` with features cast to ``dtype`` (same object if nothing changes)."""
        X = self.X.to(device=device, dtype=dtype) if (device or dtype) else self.X
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
        return TensorData(
            torch.cat([self.X, other.X.to(self.X.device, self.X.dtype)]),
            torch.cat([self.y, other.y.to(self.y.device)]),
        )

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
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
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

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of ``(X, y)`` as numpy arrays."""
        return self.X.detach().cpu().numpy().copy(), self.y.detach().cpu().numpy().copy()


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


def _from_pair(X: Any, y: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _to_tensor(X, name, "X"), _to_tensor(y, name, "y")


def _collect_batches(batches: Any, name: str, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for i, batch in enumerate(batches):
        if isinstance(batch, Mapping) or not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise NotDataError(
                f"{name}: the {what} must yield (x, y) pairs; item {i} is a {_describe(batch)}. "
                "Wrap your dataset so that it returns (features, label)."
            )
        xb, yb = _to_tensor(batch[0], name, "x"), _to_tensor(batch[1], name, "y")
        if yb.dim() == 0:  # one item, not a batch (a DataLoader with batch_size=None)
            xb, yb = xb.unsqueeze(0), yb.reshape(1)
        xs.append(xb)
        ys.append(yb)
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    return torch.cat(xs), torch.cat(ys).reshape(-1)


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
        if isinstance(obj.dataset, IterableDataset):
            _length(obj.dataset, name)  # an endless stream is refused before it is read
        with torch.random.fork_rng(devices=[]):  # a loader draws from torch's global RNG
            return _collect_batches(obj, name, "DataLoader")
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


def module_modes(model: torch.nn.Module) -> list[bool]:
    """The train/eval flag of every submodule of ``model``, in ``model.modules()`` order."""
    return [m.training for m in model.modules()]


def restore_modes(model: torch.nn.Module, modes: list[bool]) -> None:
    """Set every submodule's train/eval flag back to ``modes`` (from :func:`module_modes`)."""
    for m, training in zip(model.modules(), modes):
        m.training = training


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode inside the block; afterwards every submodule's own flag is back.

    ``model.train(was_training)`` would set every submodule to the top-level flag, and a
    BatchNorm the caller froze in eval mode inside a training model would come back training.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
        >>> _ = net[1].eval()
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training, net[1].training
        (True, False)
    """
    modes = module_modes(model)
    model.eval()
    try:
        yield model
    finally:
        restore_modes(model, modes)


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
    if X.dim() == 0:
        raise InvalidDataError(f"{name}: X must have one row per item, got a scalar.")
    _check_same_length(X.shape[0], y.shape[0], name)
    if len(y) == 0:
        if not allow_empty:
            raise EmptyDataError(f"{name} is empty; it must contain at least one item.")
        return TensorData(X.float().reshape(0, *X.shape[1:]), y.long())
    if X.dtype == torch.bool or X.is_complex():
        raise InvalidDataError(f"{name}: features must be real numbers, got dtype {X.dtype}.")
    if not X.is_floating_point() or X.dtype not in (torch.float32, torch.float64):
        X = X.float()  # ints, half precision and float8 features are computed on in float32
    if not _all_finite(X):
        bad = int((~torch.isfinite(X)).reshape(len(X), -1).any(1).sum())
        raise InvalidDataError(
            f"{name}: {bad} item(s) have NaN or infinite features. Impute or drop them first."
        )
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
        # a loader yields what its sampler picks (a subset, with replacement...), not its dataset
        batches = obj.batch_sampler
        if isinstance(batches, BatchSampler) and not batches.drop_last and hasattr(batches.sampler, "__len__"):
            return len(batches.sampler)
    elif isinstance(obj, Dataset) and hasattr(obj, "__len__"):
        return len(obj)
    return len(as_data(obj, name, allow_empty=True))


def is_logistic_regression(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn ``LogisticRegression`` (without importing sklearn eagerly)."""
    mod = type(obj).__module__ or ""
    if not mod.startswith("sklearn"):
        return False
    from sklearn.linear_model import LogisticRegression

    return isinstance(obj, LogisticRegression)


def check_model(model: Any, name: str = "model") -> torch.nn.Module:
    """Raise :class:`NotAModelError` unless ``model`` is a ``torch.nn.Module`` with parameters."""
    if not isinstance(model, torch.nn.Module):
        hint = ""
        if is_logistic_regression(model):
            hint = (
                " A fitted scikit-learn LogisticRegression is unlearned exactly by "
                "rum.correct(model, rum.requests.delete(train_set, forget_positions), "
                "train_set=train_set), which returns a corrected copy."
            )
        elif hasattr(model, "predict") and hasattr(model, "fit"):
            hint = (
                " Other scikit-learn estimators are not accepted; wrap the classifier as a "
                "torch module, or use rum.correct for a fitted LogisticRegression."
            )
        raise NotAModelError(
            f"{name} must be a torch.nn.Module (a trained classifier), got "
            f"{type(model).__name__}.{hint}"
        )
    if not any(True for _ in model.parameters()):
        raise NotAModelError(f"{name} has no parameters; there is nothing to unlearn.")
    return model


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def check_fits_model(model: torch.nn.Module, datasets: Mapping[str, TensorData]) -> int:
    """Check that every dataset fits ``model``; return the number of classes.

    The model's first output must be a ``(batch, n_classes)`` tensor of logits
    for a batch of each dataset's first items, and every label must be below
    ``n_classes``. The model's train/eval mode is restored afterwards.
    """
    n_classes: int | None = None
    device, dtype = model_device(model), model_dtype(model)
    with eval_mode(model):
        for name, data in datasets.items():
            if len(data) == 0:
                continue
            x = data.X[:2].to(device=device, dtype=dtype)
            try:
                with torch.no_grad():
                    out = model(x)
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise IncompatibleDataError(
                    f"{name}: items of shape {tuple(data.feature_shape)} do not fit the model "
                    f"(forward pass failed: {first}). Reshape the features to what the model "
                    "was trained on."
                ) from None
            if isinstance(out, (tuple, list)):
                out = out[0]
            if not isinstance(out, torch.Tensor) or out.dim() != 2:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise IncompatibleDataError(
                    f"model: expected logits of shape (batch, n_classes) on {name}, got {shape}. "
                    "rum works with classifiers that return one logit per class."
                )
            c = int(out.shape[1])
            if n_classes is None:
                n_classes = c
            top = int(data.y.max())
            if top >= c:
                raise InvalidDataError(
                    f"{name}: found label {top}, but the model outputs only {c} classes "
                    f"(labels must be in 0..{c - 1})."
                )
    shapes = {name: d.feature_shape for name, d in datasets.items() if len(d)}
    if len(set(shapes.values())) > 1:
        raise IncompatibleDataError(
            "data sets have different feature shapes: "
            + ", ".join(f"{k}={v}" for k, v in shapes.items())
            + ". All sets must have the features the model was trained on."
        )
    if n_classes is None:
        raise EmptyDataError("all data sets are empty; nothing to check the model against.")
    return n_classes


@dataclass
class Prepared:
    """A call's inputs after validation: a private copy of the model and converted data."""

    model: torch.nn.Module  # a private deep copy
    forget: TensorData
    retain: TensorData | None  # None when none was given, or it is empty
    device: torch.device
    seed: int
    n_classes: int


def prepare_call(model: Any, forget_set: Any, retain_set: Any, device: Any, random_state: Any) -> Prepared:
    """Validate a call's model, data, device and seed, and copy the model; no work starts before this.

    Shared by every public function that unlearns (:func:`rum.unlearn`,
    :func:`rum.execute`, :func:`rum.plan` with a search policy).
    """
    check_model(model)
    forget = as_data(forget_set, "forget_set")
    retain = None if retain_set is None else as_data(retain_set, "retain_set", allow_empty=True)
    dev = resolve_device(device)
    seed = check_random_state(random_state)
    sets = {"forget_set": forget}
    if retain is not None and len(retain):
        sets["retain_set"] = retain
    n_classes = check_fits_model(model, sets)
    if retain is not None and len(retain) == 0:
        retain = None
    return Prepared(copy.deepcopy(model), forget, retain, dev, seed, n_classes)
