"""Private helpers shared by the gradient-based unlearners."""

from __future__ import annotations

import torch

from rum._data import TensorData
from rum._runtime.context import RunContext


def random_wrong_labels(y: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A label different from ``y`` for every item, drawn uniformly from the other classes."""
    if n_classes < 2:
        return y.clone()
    shift = torch.randint(1, n_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % n_classes


def _reset(module: torch.nn.Module):
    """The module's own re-initialisation: ``reset_parameters``, or ``_reset_parameters``
    (``torch.nn.MultiheadAttention``, whose projection weights have no module of their own)."""
    for name in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    return None


def _resettable(module: torch.nn.Module) -> bool:
    return _reset(module) is not None


def unresettable(model: torch.nn.Module) -> list[str]:
    """Modules of ``model`` with parameters of their own but no ``reset_parameters``."""
    return [name or type(module).__name__ for name, module in model.named_modules()
            if not _resettable(module) and any(True for _ in module.parameters(recurse=False))]


def reinitialise(model: torch.nn.Module) -> list[str]:
    """Reset every module that has ``reset_parameters``; return modules with parameters it could not reset."""
    for module in model.modules():
        if _resettable(module):
            _reset(module)()
    return unresettable(model)


def retain_sample_size(n_forget: int, retain: TensorData | None, ratio: float) -> int:
    """How many retain items to mix with ``n_forget`` relabelled items (``ratio`` per forget item)."""
    if retain is None or len(retain) == 0:
        return 0
    return min(len(retain), int(round(ratio * n_forget)))


def epoch_retain_size(n_retain: int, cap: int | None) -> int:
    """How many retain items one epoch takes with ``retain_per_epoch=cap``.

    Examples:
        >>> epoch_retain_size(1000, None), epoch_retain_size(1000, 300), epoch_retain_size(200, 300)
        (1000, 300, 200)
    """
    return n_retain if cap is None else min(n_retain, cap)


def epoch_retain(retain: TensorData, cap: int | None, ctx: RunContext) -> TensorData:
    """The retain items of one epoch: all of them, or ``cap`` drawn afresh without replacement.

    Nothing is drawn (the generator is not advanced) when ``cap`` is ``None``
    or covers the whole retain set, so such a run is the uncapped run exactly.
    """
    if epoch_retain_size(len(retain), cap) == len(retain):
        return retain
    pick = torch.randperm(len(retain), generator=ctx.generator)[:cap]
    return retain.subset(pick.to(retain.device))


def relabelled_mix(
    forget: TensorData, retain: TensorData | None, n_retain: int, ctx: RunContext
) -> TensorData:
    """The forget items with fresh random wrong labels, plus ``n_retain`` random retain items."""
    mixed = forget.with_labels(random_wrong_labels(forget.y, ctx.n_classes, ctx.generator))
    if n_retain:
        pick = torch.randperm(len(retain), generator=ctx.generator)[:n_retain]
        mixed = mixed.concat(retain.subset(pick.to(retain.device)))
    return mixed


def index_batches(n_items: int, batch_size: int, ctx: RunContext, *, no_singleton: bool
                  ) -> list[torch.Tensor]:
    """Shuffled mini-batches of positions ``0 .. n_items - 1`` (one ``randperm`` with ``ctx.generator``).

    With ``no_singleton``, a last batch of a single item joins the batch before
    it: batch normalisation cannot train on one item (pass
    ``no_singleton=mixes_batch(model)``).

    Examples:
        >>> from rum._runtime.context import RunContext
        >>> ctx = RunContext.simple(n_classes=2)
        >>> [len(b) for b in index_batches(9, 4, ctx, no_singleton=True)]
        [4, 5]
        >>> [len(b) for b in index_batches(9, 4, ctx, no_singleton=False)]
        [4, 4, 1]
    """
    parts = list(torch.randperm(n_items, generator=ctx.generator).split(int(batch_size)))
    if no_singleton and len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts
