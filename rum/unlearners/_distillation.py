"""Distillation from a frozen teacher, shared by SCRUB and the anchored fine-tune."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from rum._data import TensorData
from rum._runtime.context import RunContext
from rum._runtime.optim import logits

__all__ = ["TEACHER_CACHE_BYTES", "distillation_kl", "frozen_logits", "teacher_batches"]

#: A frozen teacher's logits for a whole set are kept in memory when they take at
#: most this many bytes, instead of a teacher forward pass per batch and epoch;
#: larger sets stream.
TEACHER_CACHE_BYTES = 256 * 2**20


@torch.no_grad()
def frozen_logits(teacher: torch.nn.Module, X: torch.Tensor, batch_size: int = 1024,
                  max_bytes: float | None = None) -> torch.Tensor | None:
    """The logits of a frozen ``teacher`` on every row of ``X`` (on ``X``'s device), or
    ``None`` when they would take more than ``max_bytes`` (default
    :data:`TEACHER_CACHE_BYTES`).

    Examples:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2)
        >>> frozen_logits(net, torch.zeros(5, 3)).shape
        torch.Size([5, 2])
        >>> frozen_logits(net, torch.zeros(5, 3), max_bytes=8) is None
        True
    """
    limit = TEACHER_CACHE_BYTES if max_bytes is None else max_bytes
    if len(X) == 0:
        return None
    first = logits(teacher, X[:batch_size])  # its width gives the size of the whole
    if first.element_size() * first.shape[1] * len(X) > limit:
        return None
    rest = (logits(teacher, X[s : s + batch_size]) for s in range(batch_size, len(X), batch_size))
    return torch.cat([first, *rest])


def teacher_batches(
    teacher: torch.nn.Module | None, data: TensorData, batch_size: int, ctx: RunContext,
    cached: torch.Tensor | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One shuffled pass over ``data`` as ``(x, y, teacher logits)`` batches.

    ``cached`` is :func:`frozen_logits` of ``teacher`` on ``data.X``; where it
    is ``None`` (too large to keep) the frozen ``teacher`` answers each batch.
    """
    for idx in data.shuffled_batches(batch_size, ctx.generator):
        x = data.X[idx]
        if cached is not None:
            target = cached[idx]
        else:
            with torch.no_grad():
                target = logits(teacher, x)
        yield x, data.y[idx], target


def distillation_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(p_teacher || p_student)`` with both softmaxes at temperature ``T``.

    Summed over classes, averaged over the batch (Hinton et al.'s scaling, so
    gradients keep their size when ``T`` changes).

    Examples:
        >>> import torch
        >>> z = torch.tensor([[1.0, 2.0, 0.5]])
        >>> float(distillation_kl(z, z, 4.0))
        0.0
    """
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits / t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()
    return kl * t * t
