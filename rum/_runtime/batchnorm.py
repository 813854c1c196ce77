"""BatchNorm while a model trains: batches of one item, and layers the caller froze."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["single_item_batchnorm"]


def _one_value_per_channel(x: torch.Tensor) -> bool:
    return x.dim() >= 2 and x.shape[1] > 0 and x.numel() // x.shape[1] == 1


class _Hooks:
    """The hooks of one :func:`single_item_batchnorm` block."""

    def __init__(self, before, after):
        self.functions = (before, after)

    def strip(self, model: torch.nn.Module) -> None:
        """Remove this block's hooks from ``model`` (a copy made inside the block carries them)."""
        for m in model.modules():
            for hooks in (m._forward_pre_hooks, m._forward_hooks):
                for key in [k for k, f in hooks.items() if f in self.functions]:
                    del hooks[key]


@contextlib.contextmanager
def single_item_batchnorm(*models: torch.nn.Module) -> Iterator[_Hooks]:
    """Inside the block, a training-mode BatchNorm normalises with its running statistics, as in
    eval mode, and leaves them unchanged, when

    * it is given one value per channel (a batch of one item to a ``BatchNorm1d``), where
      torch would raise; or
    * the caller froze it: its weight and bias have ``requires_grad=False``. What the caller
      froze stays frozen, its running statistics included.

    Every other batch is normalised as usual.
    The hooks are removed at the end; a copy of the model made inside the block carries
    them too: ``hooks.strip(copy)`` removes them there.

    A data set of ``n`` items in batches of ``b`` ends with a batch of one item whenever
    ``n % b == 1`` (a retain set of 65 items in batches of 64), and a group of one forget
    item is a batch of one: without this, a model with BatchNorm fails there.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).train()
        >>> with single_item_batchnorm(net):
        ...     tuple(net(torch.ones(1, 3)).shape)
        (1, 4)
        >>> net[1].training, len(net[1]._forward_hooks)
        (True, 0)
    """
    flipped: list[_BatchNorm] = []

    def before(module: _BatchNorm, args: tuple) -> None:
        if not (module.training and module.track_running_stats):
            return
        frozen = any(True for _ in module.parameters()) and not any(
            p.requires_grad for p in module.parameters())
        one_value = bool(args) and isinstance(args[0], torch.Tensor) and _one_value_per_channel(args[0])
        if frozen or one_value:
            module.training = False
            flipped.append(module)

    def after(module: _BatchNorm, args: tuple, output: object) -> None:
        if flipped and flipped[-1] is module:
            flipped.pop().training = True

    norms = [m for model in models for m in model.modules() if isinstance(m, _BatchNorm)]
    handles = [h for m in norms for h in (m.register_forward_pre_hook(before),
                                          m.register_forward_hook(after))]
    try:
        yield _Hooks(before, after)
    finally:
        for h in handles:
            h.remove()
        while flipped:  # a forward pass that raised between the two hooks
            flipped.pop().training = True
