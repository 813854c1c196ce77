"""Named feature tensors: the inputs of models that take several (a text model's
``input_ids`` and ``attention_mask``), and moving features without casting integer ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rum.exceptions import InvalidDataError

__all__ = ["Fields", "Features", "move", "cat_features"]


class Fields:
    """Named feature tensors with one row per item: what a text model takes (``input_ids``,
    ``attention_mask``...), as a Hugging Face tokenizer or data set gives it.

    Indexing by a name gives that tensor; indexing by rows (an int index array, a mask or a
    slice) gives a ``Fields`` of those rows. ``model(**fields)`` passes the tensors by name.

    Examples:
        >>> f = Fields({"input_ids": torch.arange(6).reshape(3, 2), "attention_mask": torch.ones(3, 2)})
        >>> len(f), sorted(f.keys()), f[torch.tensor([2, 0])]["input_ids"].tolist()
        (3, ['attention_mask', 'input_ids'], [[4, 5], [0, 1]])
    """

    __slots__ = ("tensors",)

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = dict(tensors)

    def keys(self):
        return self.tensors.keys()

    def items(self):
        return self.tensors.items()

    def __len__(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0]) if self.tensors else 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            return self.tensors[index]
        return Fields({k: v[index] for k, v in self.tensors.items()})

    def __repr__(self) -> str:
        return "Fields(" + ", ".join(f"{k}={tuple(v.shape)} {v.dtype}" for k, v in self.tensors.items()) + ")"

    @property
    def shape(self) -> torch.Size:
        """``(n_items,)``: the rows; the fields' own shapes are in :attr:`feature_shape`."""
        return torch.Size([len(self)])

    @property
    def feature_shape(self) -> tuple:
        return tuple((k, tuple(v.shape[1:])) for k, v in sorted(self.tensors.items()))

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors.values())).device

    def to(self, device: Any = None, dtype: torch.dtype | None = None, non_blocking: bool = False) -> Fields:
        """On ``device``, floating fields cast to ``dtype`` (token ids and masks keep theirs)."""
        return Fields({k: move(v, device, dtype, non_blocking) for k, v in self.tensors.items()})

    def cat(self, other: Fields) -> Fields:
        if set(other.keys()) != set(self.keys()):
            raise InvalidDataError(f"cannot join fields {sorted(self.keys())} and {sorted(other.keys())}.")
        return Fields({k: torch.cat([v, other[k].to(v.device, v.dtype)]) for k, v in self.tensors.items()})

    def numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.tensors.items()}


#: What ``TensorData.X`` holds: one tensor, or named tensors (:class:`Fields`).
Features = torch.Tensor | Fields


def move(x: Any, device: Any = None, dtype: torch.dtype | None = None, non_blocking: bool = False) -> Any:
    """``x`` (a tensor or :class:`Fields`) on ``device``; floating values cast to ``dtype``.

    Integer and boolean features (token ids, masks, category codes) keep their dtype.

    Examples:
        >>> move(torch.tensor([1, 2]), dtype=torch.float64).dtype, move(torch.ones(2), dtype=torch.float64).dtype
        (torch.int64, torch.float64)
    """
    if isinstance(x, Fields):
        return x.to(device, dtype, non_blocking)
    if dtype is not None and not x.is_floating_point():
        dtype = None
    if device is None and dtype is None:
        return x
    return x.to(device=device, dtype=dtype, non_blocking=non_blocking)


def cat_features(parts: list) -> Any:
    """Tensors or :class:`Fields` joined along their rows."""
    if isinstance(parts[0], Fields):
        out = parts[0]
        for p in parts[1:]:
            out = out.cat(p)
        return out
    return torch.cat(parts)
