"""The step runner: the one place an unlearner runs on a model.

:func:`run_step` seeds the step, builds its :class:`~rum.RunContext`, shows its
progress bar, applies the retain guard after every epoch and at the end, calls
the caller's epoch hook, and says whether the step must be undone. The executor
runs every plan step through it, a search policy every trial and reference, and
the conformance kit every check that calls an unlearner's hook, so a step behaves
the same wherever it runs: that is what lets a searched plan replay exactly.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rum._data import TensorData
from rum._model import module_modes, restore_modes
from rum._records import jsonable
from rum._runtime.batchnorm import single_item_batchnorm
from rum._runtime.calibrate import AUTO, Calibration, calibrate_lr
from rum._runtime.context import NonFiniteLossError, RunContext
from rum._runtime.guard import RetainGuard
from rum._runtime.predict import accuracy_on, skill_lost
from rum._runtime.progress import StepBar
from rum._runtime.seeding import seeded
from rum.unlearners.base import Unlearner

__all__ = ["StepResult", "StepRun", "run_step", "retry_hint", "EpochHook", "BACKOFF",
           "BACKOFF_FACTOR", "backed_off", "resolve_lr"]

#: How many times :func:`rum.unlearn` with one unlearner retries a step the retain guard
#: undid (or that diverged), each time with the learning rate times :data:`BACKOFF_FACTOR`.
BACKOFF = 2
#: The learning rate of a retry, as a fraction of the previous try's.
BACKOFF_FACTOR = 0.3
#: Items a calibration probe trains on (forget, retain) and measures the retain skill on.
PROBE_FORGET, PROBE_RETAIN, PROBE_EVAL = 32, 128, 512

#: ``hook(epoch, model, ctx) -> stop``: called after every epoch the guard lets through, with
#: the step's :class:`~rum.RunContext` (its ``iterations`` and ``last_loss`` so far).
EpochHook = Callable[[int, torch.nn.Module, RunContext], bool]


@dataclass(frozen=True)
class StepResult:
    """What happened in one plan step.

    Attributes:
        step: position in the plan.
        group: the profile group treated.
        unlearner: the name of the unlearner that ran (the last one tried when
            the step has fallbacks).
        n_items: forget items in the step.
        seconds: wall-clock time of the step.
        iterations: optimiser iterations reported by the unlearner.
        final_loss: last reported loss (``None`` when none was reported).
        status: ``"ok"``; ``"diverged"`` when the loss or the weights became
            NaN/inf; ``"collapsed"`` when the step cost the model more retain
            accuracy than ``retain_guard`` allows. In both cases the step was
            stopped or undone and the weights from before it restored;
            ``"fallback"`` when that happened to the step's unlearner and one
            of its fallbacks then ran without it.
        message: details for a status other than ``"ok"``.
        lr: the learning rate the step ran with (after calibration and back-off;
            ``None`` for an unlearner without ``lr``).
        calibration: what ``lr="auto"`` probed and chose (a
            :class:`~rum._runtime.calibrate.Calibration` as a dict), or ``None``.
        backoffs: how many times the step was retried with a smaller learning rate
            after the retain guard undid it or it diverged.

    Examples:
        >>> s = StepResult(step=0, group=-1, unlearner="finetune", n_items=12, seconds=0.5)
        >>> StepResult.from_dict(s.to_dict()) == s
        True
    """

    step: int
    group: int
    unlearner: str
    n_items: int
    seconds: float
    iterations: int = 0
    final_loss: float | None = None
    status: str = "ok"
    message: str = ""
    lr: float | None = None
    calibration: dict | None = None
    backoffs: int = 0

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> StepResult:
        return cls(**d)

    @property
    def unlearned(self) -> bool:
        """Whether the step's forget items were unlearned (it was not undone)."""
        return self.status in ("ok", "fallback")


@dataclass
class StepRun:
    """What :func:`run_step` did (the runner's working record; plans keep :class:`StepResult`).

    Attributes:
        model: the model after the step (the one passed in, changed in place,
            or the module ``_unlearn`` returned). When ``status`` is not
            ``"ok"`` the caller restores the weights from before the step.
        status: ``"ok"``, ``"diverged"`` (a non-finite loss or weights) or
            ``"collapsed"`` (the retain guard tripped).
        message: why, for a status other than ``"ok"``.
        iterations, epochs, loss: what the unlearner reported to its context.
        seconds: the step's wall-clock time (calibration included).
        lr: the learning rate it ran with (``None``: the unlearner has no ``lr``).
        calibration: what ``lr="auto"`` probed, or ``None``.
        unlearner: the unlearner that ran (``lr`` resolved).
    """

    model: torch.nn.Module
    status: str
    message: str
    iterations: int
    epochs: int
    loss: float | None
    seconds: float
    lr: float | None = None
    calibration: Calibration | None = None
    unlearner: Unlearner | None = None

    def result(self, step: int, group: int, unlearner: str, n_items: int) -> StepResult:
        """This run as the :class:`StepResult` of plan step ``step``."""
        return StepResult(step=step, group=group, unlearner=unlearner, n_items=n_items,
                          seconds=self.seconds, iterations=self.iterations, final_loss=self.loss,
                          status=self.status, message=self.message, lr=self.lr,
                          calibration=None if self.calibration is None else self.calibration.to_dict())


def retry_hint(u: Unlearner) -> str:
    """What to change when ``u`` diverged or wrecked the model, naming only options it takes."""
    params = u.get_params()
    tips = []
    if "lr" in params:
        lr = params["lr"]
        tips.append(f"a smaller lr (this step used lr={lr:g})" if isinstance(lr, (int, float))
                    else "a smaller lr")
    if params.get("optimizer") == "sgd":
        # measured: SCRUB's SGD steps wreck a CNN trained with Adam even at a tenth of its lr
        tips.append("optimizer='adam' with lr=1e-3 (a model trained with Adam may only take "
                    "much smaller SGD steps)")
    if "epochs" in params:
        tips.append("fewer epochs")
    if not tips:
        return "Try another unlearner."
    return "Try " + ", ".join(tips) + ", or another unlearner."


def backed_off(u: Unlearner, lr: float | None) -> Unlearner | None:
    """``u`` with its learning rate times :data:`BACKOFF_FACTOR`, or ``None`` without a numeric lr."""
    if lr is None or "lr" not in u.get_params():
        return None
    return u.clone(lr=float(lr) * BACKOFF_FACTOR)


def _probe_unlearner(u: Unlearner, lr: float) -> Unlearner:
    """``u`` with learning rate ``lr`` and every other setting as given.

    A probe runs all the unlearner's epochs, on a small slice of the data: the later
    epochs of impair-then-repair methods (``unsir``, SCRUB's min steps) undo much of
    what the first one costs, and a first epoch alone would call their step too large.
    """
    return u.clone(lr=lr)


def resolve_lr(
    unlearner: Unlearner,
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    *,
    seed: int,
    device: torch.device,
    n_classes: int,
) -> tuple[Unlearner, Calibration | None]:
    """``unlearner`` with ``lr="auto"`` replaced by a calibrated learning rate, and the record.

    Each probe runs the unlearner (all its epochs), with the candidate learning rate,
    on a copy of ``model`` with up to 32 forget and 128 retain items, and measures
    the retain skill it cost on up to 512 other retain items (see
    :func:`rum._runtime.calibrate.calibrate_lr` for the rule). Everything is drawn
    from ``seed``; torch's global RNGs and ``model`` are left as they were.
    Without retain data nothing can be measured and the reference learning rate is used.
    """
    if unlearner.get_params().get("lr") != AUTO:
        return unlearner, None
    reference = float(unlearner.resolved_lr())
    if retain is None or len(retain) == 0 or unlearner.tags.exact:
        cal = Calibration(reference=reference, probes=(), chosen=reference,
                          reason="no retain data to measure a probe on; the reference lr is used.")
        return unlearner.clone(lr=reference), cal
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    f_idx = np.sort(rng.choice(len(forget), min(len(forget), PROBE_FORGET), replace=False))
    perm = rng.permutation(len(retain))
    r_idx = np.sort(perm[:PROBE_RETAIN])
    e_idx = np.sort(perm[PROBE_RETAIN:PROBE_RETAIN + PROBE_EVAL]) if len(perm) > PROBE_RETAIN else r_idx
    f_part, r_part, e_part = forget.subset(f_idx), retain.subset(r_idx), retain.subset(e_idx)
    modes = module_modes(model)  # per module: a BatchNorm the caller keeps in eval stays so
    model.eval()
    y = e_part.y.cpu()
    floor = float(torch.bincount(y).max()) / len(y)
    before, f_before = accuracy_on(model, e_part), accuracy_on(model, f_part)
    restore_modes(model, modes)
    work = copy.deepcopy(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def probe(lr: float) -> tuple[float, float] | None:
        work.load_state_dict(state)
        restore_modes(work, modes)
        u = _probe_unlearner(unlearner, lr)
        with seeded(seed, device) as gen:
            ctx = RunContext(device=device, generator=gen, seed=seed, n_classes=n_classes)
            try:
                with single_item_batchnorm(work) as hooks:
                    out = u._unlearn(work, f_part, r_part, ctx)
                    if isinstance(out, torch.nn.Module) and out is not work:
                        hooks.strip(out)
            except NonFiniteLossError:
                return None
        m = out if isinstance(out, torch.nn.Module) else work
        if not _all_finite(m):
            return None
        m.eval()
        return (skill_lost(before, accuracy_on(m, e_part), floor),
                f_before - accuracy_on(m, f_part))

    # ascent without retain data compounds over the full forget set far more than over a
    # probe's slice: such an unlearner's probes may only lower its lr
    cal = calibrate_lr(probe, reference, up=unlearner.tags.requires_retain)
    cal = Calibration(reference=cal.reference, probes=cal.probes, chosen=cal.chosen,
                      reason=cal.reason, bound=cal.bound, seconds=time.perf_counter() - t0,
                      items=(len(f_part), len(r_part), len(e_part)))
    return unlearner.clone(lr=cal.chosen), cal


def _all_finite(model: torch.nn.Module) -> bool:
    """Whether every floating parameter and buffer (BatchNorm's running statistics too) is finite."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def run_step(
    unlearner: Unlearner,
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    *,
    seed: int,
    device: torch.device,
    n_classes: int,
    guard: RetainGuard | None = None,
    on_epoch: EpochHook | None = None,
    label: str | None = None,
    progress: str | None = None,
) -> StepRun:
    """Run ``unlearner`` on ``model`` (in place) under a fresh context seeded with ``seed``.

    Args:
        unlearner: the configured unlearner; its hook ``_unlearn`` is called once.
        model: the model to change (a private copy, on ``device``).
        forget, retain: validated data on ``device`` (``retain`` may be ``None``).
        seed: the step's seed: torch's global RNGs are seeded with it inside the
            step and restored afterwards, and the context's generator draws from it.
        device: where the model and the data live.
        n_classes: the number of classes the model predicts.
        guard: the retain guard (``None``, or one without data, checks nothing).
            It sees every epoch and stops a step that has wrecked the model; at
            the end it says whether the step must be undone (status
            ``"collapsed"``). Exact unlearners (``retrain``) are never checked.
        on_epoch: the caller's epoch hook, ``on_epoch(epoch, model, ctx)``, called
            after each epoch the guard let through; returning ``True`` stops the
            step after that epoch.
        label: the step's name in messages (default: the unlearner's registry name).
        progress: a progress bar's description, or ``None`` for no bar.

    Only :class:`~rum._runtime.context.NonFiniteLossError` is caught (status
    ``"diverged"``); any other exception propagates, after the bar is closed
    and the model's train/eval flag restored.
    """
    name = label or type(unlearner).name or type(unlearner).__name__
    t0 = time.perf_counter()
    unlearner, calibration = resolve_lr(unlearner, model, forget, retain, seed=seed,
                                        device=device, n_classes=n_classes)
    lr = unlearner.get_params().get("lr")
    guarded = guard is not None and guard.data is not None and not unlearner.tags.exact
    if guarded:
        guard.start_step()

    def on_epoch_end(epoch: int, m: torch.nn.Module) -> bool:
        # the guard sees every epoch (its verdict depends on the last one it saw)
        if guarded and guard.on_epoch_end(epoch, m):
            return True
        return bool(on_epoch(epoch, m, ctx)) if on_epoch is not None else False

    bar = StepBar(progress)
    status, message = "ok", ""
    with seeded(seed, device) as gen:
        ctx = RunContext(
            device=device, generator=gen, seed=seed, n_classes=n_classes,
            on_progress=bar.advance, on_start=bar.start,
            on_epoch_end=on_epoch_end if (guarded or on_epoch is not None) else None,
        )
        modes = module_modes(model)
        try:
            with single_item_batchnorm(model) as hooks:
                out = unlearner._unlearn(model, forget, retain, ctx)
                if isinstance(out, torch.nn.Module) and out is not model:
                    hooks.strip(out)  # a copy of the model carries the block's hooks
            if out is not None:
                if not isinstance(out, torch.nn.Module):
                    raise TypeError(
                        f"{type(unlearner).__name__}._unlearn must return the model (an nn.Module), "
                        f"returned {type(out).__name__}."
                    )
                model = out
            if not _all_finite(model):
                raise NonFiniteLossError(float("nan"), ctx.iterations)
        except NonFiniteLossError as err:
            status = "diverged"
            message = (
                f"{name}: loss or weights became {err.value} at iteration {err.iteration}; the "
                f"step was stopped and the weights from before it restored. {retry_hint(unlearner)}"
            )
        finally:
            restore_modes(model, modes)
            bar.close()
    model.eval()
    collapsed = guard.after_step(model) if status == "ok" and guarded else None
    if collapsed is not None:
        status = "collapsed"
        message = (
            f"{name}: retain accuracy fell from {guard.before:.3f} to {collapsed[1]:.3f} "
            f"({collapsed[0]:.0%} of the accuracy above the majority-class rate "
            f"{guard.floor:.3f}; retain_guard allows {guard.limit:.0%}); the weights from "
            f"before the step were restored, so its {len(forget)} item(s) were not "
            f"unlearned by it. {retry_hint(unlearner)}"
        )
    return StepRun(model=model, status=status, message=message, iterations=ctx.iterations,
                   epochs=ctx.epochs_done, loss=ctx.last_loss, seconds=time.perf_counter() - t0,
                   lr=lr if isinstance(lr, (int, float)) else None, calibration=calibration,
                   unlearner=unlearner)
