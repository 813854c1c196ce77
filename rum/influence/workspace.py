"""The working copy a correction runs on: parameters, dtype, and the data as the objective sees it."""

from __future__ import annotations

import copy as _copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rum._data import Fields, TensorData
from rum._model import model_dtype
from rum.exceptions import InvalidDataError
from rum.influence.features import tail_view
from rum.influence.hvp import ParamSpace, select_parameters
from rum.influence.linear import is_linear_model

__all__ = ["Workspace", "build_workspace", "default_batch_size", "DEEP_BATCH_SIZE", "LINEAR_BATCH_SIZE"]

#: Default items per forward pass for deep models (and a deep prefix computing
#: features), and for linear models or linear tails, whose per-item memory is
#: one feature vector.
DEEP_BATCH_SIZE = 512
LINEAR_BATCH_SIZE = 8192


def default_batch_size(linear: bool) -> int:
    """Items per forward pass when the updated part is linear, or not."""
    return LINEAR_BATCH_SIZE if linear else DEEP_BATCH_SIZE


@dataclass
class Workspace:
    """Where a correction happens.

    Attributes:
        model: the model being corrected (a copy unless built with
            ``copy=False``), in eval mode on the device, in float64 when the
            updated parameters form a linear model.
        space: the updated parameters as one flat vector.
        module: what the objectives evaluate: ``model`` itself, or its tail
            after a frozen prefix (see :mod:`rum.influence.features`).
        data: the data sets as ``module`` sees them (prefix outputs for a tail).
        convex: the whole model is one linear layer.
        linear_tail: the updated tail is one linear layer on fixed features.
        dtype_out: the caller's dtype, to cast the result back to.
        net: the network the parameter space names: ``model`` itself, or the module
            inside a ``DataParallel`` wrapper.
    """

    model: nn.Module
    space: ParamSpace
    module: nn.Module
    data: list[TensorData]
    convex: bool
    linear_tail: bool
    dtype_out: torch.dtype
    net: nn.Module | None = None

    def __post_init__(self) -> None:
        if self.net is None:
            self.net = self.model

    @property
    def linear(self) -> bool:
        """The objective is convex: the model or its updated tail is linear."""
        return self.convex or self.linear_tail

    def finish(self) -> nn.Module:
        """The model in the caller's dtype, in eval mode."""
        return self.model.to(self.dtype_out).eval()


def build_workspace(
    model: nn.Module,
    parameters: Any,
    datasets: Sequence[TensorData],
    device: torch.device | str,
    *,
    copy: bool = True,
) -> Workspace:
    """Prepare ``model`` (a copy by default) and ``datasets`` for a correction.

    Examples:
        >>> m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> d = TensorData(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
        >>> ws = build_workspace(m, 1, [d], "cpu")
        >>> ws.linear_tail, ws.data[0].X.shape, ws.data[0].X.dtype
        (True, torch.Size([5, 4]), torch.float64)
    """
    if any(isinstance(d.X, Fields) for d in datasets):
        raise InvalidDataError(
            "influence corrections work on one tensor of features per item; this data has named "
            "inputs (a text model's input_ids...). Use a gradient unlearner (finetune, neggrad+, "
            "scrub...) for such models."
        )
    dtype_out = model_dtype(model)
    work = _copy.deepcopy(model) if copy else model
    work = work.to(device).eval()
    # the objectives call the network functionally, which a DataParallel wrapper refuses: they
    # work on the module inside it (the same parameters), and the wrapper is what comes back
    inner = work.module if isinstance(work, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else work
    names = select_parameters(inner, parameters)
    convex = is_linear_model(inner)
    data = [d.to(device, dtype_out) for d in datasets]
    module: nn.Module = inner
    linear_tail = False
    if not convex:
        view = tail_view(inner, names, data, DEEP_BATCH_SIZE)
        if view is not None:
            module, data = view
            linear_tail = is_linear_model(module)
    if convex or linear_tail:
        work.double()
        data = [d.to(dtype=torch.float64) for d in data]
    return Workspace(
        model=work, space=ParamSpace.of(inner, names), module=module, data=data,
        convex=convex, linear_tail=linear_tail, dtype_out=dtype_out, net=inner,
    )
