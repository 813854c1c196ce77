"""The retain guard: measures each step's retain accuracy and says when to undo the step.

The step runner (:mod:`rum._runner`) applies it to every step, in the executor and in
the trials of a search policy alike.
"""

from __future__ import annotations

import numpy as np
import torch

from rum._data import TensorData
from rum._runtime.predict import accuracy_on, skill_lost
from rum._validation import NONE, Interval

#: Default of ``retain_guard``: a step that loses more than this fraction of the
#: model's retain accuracy above the majority-class rate is rolled back.
RETAIN_GUARD = 0.5
#: Retain items the guard measures accuracy on (a seeded random slice).
GUARD_ITEMS = 1024
#: A drop smaller than this many standard errors of the slice's accuracies never trips the guard.
GUARD_Z = 3.0
#: A tripped step that has lost at least this fraction of the skill is stopped at
#: the end of that epoch; one that lost less gets one more epoch to recover (steps
#: that fell this far never recovered usefully in the RUM suite: benchmarks/NOTES.md).
GUARD_NO_RECOVERY = 0.9
GUARD_CONSTRAINT = [Interval(float, 0, 1, closed="right"), NONE]


def guard_slice(retain: TensorData, seed: int) -> TensorData:
    """The retain items the guard measures: all of them, or :data:`GUARD_ITEMS` drawn with ``seed``."""
    n = len(retain)
    if n <= GUARD_ITEMS:
        return retain
    return retain.subset(np.sort(np.random.default_rng(seed).choice(n, GUARD_ITEMS, replace=False)))


class RetainGuard:
    """Measures each step's retain accuracy against the model's before the plan ran.

    The executor undoes a step it trips; the auto policy's search runs its trials under
    the same guard, so that it never keeps a step the executor would undo.
    """

    def __init__(self, model: torch.nn.Module, retain: TensorData | None, limit: float | None,
                 seed: int):
        self.limit, self.data = limit, None
        #: the accuracy on the slice of the model checked last (``None`` before any check)
        self.last: float | None = None
        if limit is None or retain is None or len(retain) == 0:
            return
        self.data = guard_slice(retain, seed)
        y = self.data.y.cpu()
        self.floor = float(torch.bincount(y).max()) / len(y)
        self.before = accuracy_on(model, self.data)

    def check(self, model: torch.nn.Module) -> tuple[float, float, bool]:
        """``(skill lost, accuracy, tripped)`` of ``model`` on the slice."""
        acc = self.last = accuracy_on(model, self.data)
        lost = skill_lost(self.before, acc, self.floor)
        # a drop within GUARD_Z standard errors of the slice's accuracies may be sampling noise
        se = np.sqrt((self.before * (1 - self.before) + acc * (1 - acc)) / len(self.data))
        return lost, acc, bool(lost > self.limit and self.before - acc > GUARD_Z * se)

    def start_step(self) -> None:
        self.seen: list[float] = []
        self.tripped: tuple[float, float] | None = None
        self.hit = False  # whether the last epoch checked is over the limit

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> bool:
        """Stop a step that has wrecked the model and either did not improve since its
        last epoch or has lost (nearly) all its skill.

        Its weights are restored anyway, so its remaining epochs would be wasted time.
        """
        lost, acc, hit = self.check(model)
        stop = hit and (lost >= GUARD_NO_RECOVERY or (bool(self.seen) and acc <= self.seen[-1]))
        self.seen.append(acc)
        self.hit = hit
        if stop:
            self.tripped = (lost, acc)
        return stop

    def after_step(self, model: torch.nn.Module) -> tuple[float, float] | None:
        """``(skill lost, accuracy)`` when the step that just ran must be undone, else ``None``."""
        if self.tripped is not None:
            return self.tripped
        lost, acc, hit = self.check(model)
        return (lost, acc) if hit else None
