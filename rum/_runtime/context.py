"""The runtime the executor hands to an unlearner.

Unlearners never choose a device, seed a global random number generator or
print. Everything of that kind arrives through a :class:`RunContext`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


class NonFiniteLossError(ArithmeticError):
    """Raised inside a step when its loss turns NaN or infinite (caught by the executor)."""

    def __init__(self, value: float, iteration: int):
        super().__init__(f"loss became {value} at iteration {iteration}")
        self.value = value
        self.iteration = iteration


@dataclass
class RunContext:
    """What an unlearner may use while it runs.

    Attributes:
        device: where the model and the batches live.
        generator: a seeded CPU ``torch.Generator`` for shuffling and sampling.
        seed: the integer seed of this step (for libraries that need one).
        n_classes: number of classes the model predicts.
        on_progress: called as ``on_progress(n_iterations, loss)`` after each
            iteration; the executor turns it into a progress bar.
        on_start: called once with the total number of iterations planned.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch
            of an epoch-based unlearner; returning ``True`` asks it to stop
            (the ``auto`` policy uses this to pick the number of epochs).

    Examples:
        >>> import rum
        >>> ctx = rum.RunContext.simple(n_classes=3, seed=0)
        >>> ctx.step(0.5)
        >>> ctx.iterations, ctx.last_loss
        (1, 0.5)
    """

    device: torch.device
    generator: torch.Generator
    seed: int
    n_classes: int
    on_progress: Callable[[int, float | None], None] | None = None
    on_start: Callable[[int], None] | None = None
    on_epoch_end: Callable[[int, torch.nn.Module], bool] | None = None
    iterations: int = field(default=0, init=False)
    epochs_done: int = field(default=0, init=False)
    last_loss: float | None = field(default=None, init=False)

    def start(self, total_iterations: int) -> None:
        """Announce how many iterations the step will run (for the ETA)."""
        if self.on_start is not None:
            self.on_start(int(total_iterations))

    def step(self, loss: torch.Tensor | float | None = None) -> None:
        """Report one finished iteration and its loss.

        Raises:
            NonFiniteLossError: the loss is NaN or infinite. The executor
                catches it, restores the last good weights and records it.
        """
        self.iterations += 1
        value = None
        if loss is not None:
            value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            if not math.isfinite(value):
                raise NonFiniteLossError(value, self.iterations)
            self.last_loss = value
        if self.on_progress is not None:
            self.on_progress(1, value)

    def end_epoch(self, model: torch.nn.Module) -> bool:
        """Report a finished epoch; ``True`` means the caller should stop early.

        Epoch-based unlearners call this after every epoch::

            for epoch in range(self.epochs):
                ...
                if ctx.end_epoch(model):
                    break
        """
        self.epochs_done += 1
        if self.on_epoch_end is None:
            return False
        return bool(self.on_epoch_end(self.epochs_done, model))

    @classmethod
    def simple(cls, n_classes: int, seed: int = 0, device: str = "cpu") -> RunContext:
        """A context for calling an unlearner's hook directly (tests, notebooks)."""
        return cls(
            device=torch.device(device),
            generator=torch.Generator().manual_seed(seed),
            seed=seed,
            n_classes=n_classes,
        )
