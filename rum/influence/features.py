"""Corrections of the last layers on features computed once.

When only the last layers of an ``nn.Sequential`` change, everything before
them is a fixed function of the input. The objective of the correction then
depends on the data only through that prefix's outputs, so rum computes them
once and runs every gradient, Hessian-vector product and Newton step on the
tail alone. The result is the same (up to rounding) as running the whole
network each time, at a fraction of the cost. A tail that is one linear layer
also makes the problem convex, so the exact solver and the iterated Newton
refinement of linear models apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rum._data import TensorData

__all__ = ["split_frozen_prefix", "tail_view", "MAX_FEATURE_BYTES"]

#: Largest total size of cached features; above it the full network is used.
MAX_FEATURE_BYTES = 1 << 30


def split_frozen_prefix(model: nn.Module, names: Sequence[str]) -> int | None:
    """Where the frozen prefix of ``model`` ends, or ``None`` when there is none.

    Args:
        model: the model.
        names: the names of the parameters that change.

    Returns:
        The index ``j`` of the first top-level module of an ``nn.Sequential``
        holding a changing parameter, when ``j > 0`` and no parameter is shared
        between ``model[:j]`` and ``model[j:]``; ``None`` otherwise.

    Examples:
        >>> m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> split_frozen_prefix(m, ["2.weight", "2.bias"]), split_frozen_prefix(m, ["0.weight"])
        (2, None)
    """
    if not isinstance(model, nn.Sequential) or not names:
        return None
    keys = list(model._modules)
    tops = {n.split(".", 1)[0] for n in names}
    if not tops <= set(keys):
        return None
    j = min(keys.index(k) for k in tops)
    if j == 0:
        return None
    head = {id(p) for p in model[:j].parameters()}
    if any(id(p) in head for p in model[j:].parameters()):
        return None
    return j


def _features(prefix: nn.Module, data: TensorData, batch_size: int) -> TensorData | None:
    parts = []
    with torch.no_grad():
        for x, _ in data.batches(batch_size):
            out = prefix(x)
            if not isinstance(out, torch.Tensor):
                return None
            parts.append(out)
    if not parts:
        return None
    return TensorData(torch.cat(parts), data.y)


def tail_view(
    model: nn.Module,
    names: Sequence[str],
    datasets: Sequence[TensorData],
    batch_size: int,
) -> tuple[nn.Module, list[TensorData]] | None:
    """The tail of ``model`` holding ``names`` and the prefix's outputs on each data set.

    The tail shares its modules with ``model`` (and keeps their parameter
    names), so writing the corrected parameters into it writes them into the
    model. ``None`` when the model has no frozen prefix (see
    :func:`split_frozen_prefix`), when the prefix does not return a tensor, or
    when the features would take more than :data:`MAX_FEATURE_BYTES`.
    The model must be in eval mode.

    Examples:
        >>> m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
        >>> d = TensorData(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
        >>> tail, (f,) = tail_view(m, ["2.weight", "2.bias"], [d], 64)
        >>> type(tail[0]).__name__, f.X.shape
        ('Linear', torch.Size([5, 4]))
    """
    j = split_frozen_prefix(model, names)
    if j is None:
        return None
    prefix, tail = model[:j], model[j:]
    total = sum(len(d) for d in datasets)
    probe = next((d for d in datasets if len(d)), None)
    if probe is None:
        return None
    with torch.no_grad():
        out = prefix(probe.X[:1])
    if not isinstance(out, torch.Tensor):
        return None
    if out.numel() * out.element_size() * total > MAX_FEATURE_BYTES:
        return None
    feats = []
    for d in datasets:
        if len(d) == 0:
            feats.append(TensorData(out.new_zeros((0, *out.shape[1:])), d.y))
            continue
        f = _features(prefix, d, batch_size)
        if f is None:
            return None
        feats.append(f)
    return tail, feats
