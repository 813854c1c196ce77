"""What every conformance check shares: its errors, and running an unlearner on the tiny task."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rum._api import unlearn
from rum._data import as_data
from rum._runner import StepRun, run_step
from rum.exceptions import RumError
from rum.unlearners.base import Unlearner


class CheckFailure(AssertionError):
    """One conformance check failed; the message says how to comply."""


class ConformanceError(RumError, AssertionError):
    """Raised by :func:`rum.testing.check_unlearner` listing every failed check.

    Attributes:
        failures: ``{check name: message}`` for each unexpected failure.
    """

    def __init__(self, label: str, failures: dict[str, str]):
        self.failures = dict(failures)
        lines = [f"{label} failed {len(failures)} conformance check(s):"]
        for name, msg in failures.items():
            lines.append(f"- {name}: {msg}")
        super().__init__("\n".join(lines))


def _one_thread(check: Callable[[Unlearner], Any]) -> Callable[[Unlearner], Any]:
    """Run ``check`` with one intra-op torch thread (restored afterwards).

    The tiny task's models gain nothing from threads, and on a busy machine
    thread contention makes them tens of times slower.
    """

    @functools.wraps(check)
    def run(u: Unlearner) -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            check(u)
        finally:
            torch.set_num_threads(before)

    return run


def _label(u: Unlearner) -> str:
    return type(u).name or type(u).__name__


def _fail(u: Unlearner, problem: str, fix: str) -> CheckFailure:
    return CheckFailure(f"{_label(u)}: {problem} To comply: {fix}")


def _run(u: Unlearner, task, *, model=None, forget=None, retain="task", device="cpu", seed=0):
    """Run ``u`` through the public API on the tiny task.

    The executor's retain guard is off: it would undo a step that wrecks the
    tiny model, and hide from the checks what the unlearner itself did.
    """
    model = task.model if model is None else model
    forget = task.forget if forget is None else forget
    retain = task.retain if isinstance(retain, str) else retain
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unlearn(model, forget, retain, unlearner=u, device=device, random_state=seed,
                       progress=False, retain_guard=None)


def _call_hook(u: Unlearner, model: nn.Module, forget, retain, seed: int = 0,
               on_epoch=None) -> StepRun:
    """Run ``u``'s hook through the step runner, as the executor does, on converted data."""
    f = forget if not isinstance(forget, tuple) else as_data(forget, "forget_set")
    r = retain if retain is None or not isinstance(retain, tuple) else as_data(retain, "retain_set")
    u._check_can_run(r)
    return run_step(u, model, f, r, seed=seed, device=torch.device("cpu"), n_classes=10,
                    on_epoch=on_epoch)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict, b: dict) -> list[str]:
    """Names of state entries that differ (or exist in only one)."""
    diff = sorted(set(a) ^ set(b))
    for k in set(a) & set(b):
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k]):
            diff.append(k)
    return diff
