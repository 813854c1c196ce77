"""The optimisation loop's pieces: optimiser construction, one optimiser step, losses, batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from rum._data import TensorData
from rum._fields import cat_features
from rum._model import forward, pick_logits
from rum._runtime.context import RunContext
from rum._validation import Interval, Options

#: Constraints shared by every optimiser-driven unlearner (``lr="auto"``: calibrated, see
#: :mod:`rum._runtime.calibrate`).
OPTIM_CONSTRAINTS: dict[str, list] = {
    "epochs": [Interval(int, 1, None)],
    "lr": [Interval(float, 0, None, closed="neither"), Options(("auto",))],
    "batch_size": [Interval(int, 1, None)],
    "optimizer": [Options(("sgd", "adam"))],
    "momentum": [Interval(float, 0, 1, closed="left")],
    "weight_decay": [Interval(float, 0, None)],
}


def make_optimizer(
    model: torch.nn.Module, optimizer: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def optimise(
    opt: torch.optim.Optimizer,
    loss: torch.Tensor,
    ctx: RunContext,
    *,
    max_grad_norm: float | None = None,
    grad_mask: dict[torch.nn.Parameter, torch.Tensor] | None = None,
) -> None:
    """One optimiser step on ``loss`` (zero grad, backward, clip, mask, step), reported to ``ctx``.

    The loss is reported before the step so that a NaN or infinite loss stops
    the step before it corrupts the weights.
    """
    ctx.step(loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    if grad_mask is not None:
        for p in params:
            if p.grad is not None and p in grad_mask:
                p.grad.mul_(grad_mask[p])
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()


def logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return pick_logits(forward(model, x))


def cross_entropy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits(model, x), y)


def mixes_batch(model: torch.nn.Module) -> bool:
    """Whether a training-mode forward pass of ``model`` couples the items of a batch.

    Batch normalisation does (each item is normalised with statistics of the
    whole batch); layer, group and instance normalisation, dropout and the
    usual layers do not.
    """
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def paired_cross_entropy(
    model: torch.nn.Module, x1: torch.Tensor, y1: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor,
    *, joint: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean cross-entropy of two batches, in one forward pass when ``joint``.

    One pass over the concatenated batch costs less than two small ones (about
    a fifth of a NegGrad+ step on the benchmark's 1-D CNN) and gives the same
    losses for a model that does not :func:`mix the batch <mixes_batch>`
    (dropout draws other masks, from the same distribution); pass
    ``joint=not mixes_batch(model)``.
    """
    if not joint:
        return cross_entropy(model, x1, y1), cross_entropy(model, x2, y2)
    out = logits(model, cat_features([x1, x2]))
    return F.cross_entropy(out[: len(x1)], y1), F.cross_entropy(out[len(x1):], y2)


def cycle_batches(
    data: TensorData, batch_size: int, ctx: RunContext
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches of ``data`` (a new order every pass)."""
    for _ in itertools.count():
        yield from data.batches(batch_size, shuffle=True, generator=ctx.generator)
