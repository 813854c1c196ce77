"""Executor: run a plan's steps in sequence, each from the previous step's model.

Each step runs through the step runner (:func:`rum._runner.run_step`); a step that
diverges or collapses is undone, and its fallbacks (if any) run instead.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np
import torch

from rum._data import TensorData
from rum._model import model_dtype, prepare_call
from rum._runner import BACKOFF_FACTOR, StepResult, backed_off, run_step
from rum._runtime.guard import GUARD_CONSTRAINT, RETAIN_GUARD, RetainGuard
from rum._runtime.predict import accuracy_on
from rum._runtime.progress import progress_enabled
from rum._runtime.seeding import step_seeds
from rum._validation import InstanceOf, validate_params
from rum.exceptions import DivergenceWarning, InvalidParameterError, UnlearningFailedError
from rum.executor.result import UnlearnResult
from rum.planner._plan import Plan, unlearner_key
from rum.planner.policies import SearchOutcome
from rum.profiler import _profile_data
from rum.profiler._profile import Profile

__all__ = ["execute", "StepResult", "UnlearnResult"]


def _retain_for_step(
    plan: Plan, i: int, forget: TensorData, retain: TensorData | None
) -> TensorData | None:
    step = plan.steps[i]
    if step.retain_policy != "progressive":
        return retain
    later = [j for s in plan.steps[i + 1 :] for j in s.indices]
    if not later:
        return retain
    extra = forget.subset(np.array(sorted(set(later))))
    return extra if retain is None else retain.concat(extra)


def _accuracies(model: torch.nn.Module, forget: TensorData, retain: TensorData | None, when: str) -> dict:
    """``forget_acc_<when>`` and ``retain_acc_<when>`` of ``model`` (the result's metrics)."""
    return {f"forget_acc_{when}": accuracy_on(model, forget), f"retain_acc_{when}": accuracy_on(model, retain)}


def run_plan(
    plan: Plan,
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    *,
    profile: Profile,
    device: torch.device,
    seed: int,
    n_classes: int,
    progress: bool | None,
    timings: dict | None = None,
    retain_guard: float | None = RETAIN_GUARD,
    backoff: int = 0,
    on_failure: str = "warn",
) -> UnlearnResult:
    """Run ``plan`` on a private model copy with validated data (no input checks here).

    ``backoff``: how many times a step the retain guard undid, or that diverged, is
    retried with its learning rate times :data:`~rum._runner.BACKOFF_FACTOR` before
    its fallbacks run (0 for plans, whose fallbacks are the remedy; ``rum.unlearn``
    with one unlearner retries). ``on_failure``: ``"warn"`` (a
    :class:`~rum.exceptions.DivergenceWarning` per failed step) or ``"raise"``
    (:class:`~rum.exceptions.UnlearningFailedError` at the first).
    """
    unlearners = [s.build_all() for s in plan.steps]
    for i, us in enumerate(unlearners):
        retain_i = _retain_for_step(plan, i, forget, retain)
        for u in us:
            try:
                u._check_can_run(retain_i)
            except InvalidParameterError as err:
                raise InvalidParameterError(f"plan step {i} ({unlearner_key(u)}): {err}") from None

    model = model.to(device)
    dtype = model_dtype(model)
    forget = forget.to(device, dtype)
    retain = None if retain is None else retain.to(device, dtype)
    metrics = _accuracies(model, forget, retain, "before")
    guard = RetainGuard(model, retain, retain_guard, seed)

    show = progress_enabled(progress)
    results: list[StepResult] = []
    ran = list(plan.steps)  # the steps as they ran: a backed-off step keeps the lr it ran with
    t_exec = time.perf_counter()
    for i, (s, us, step_seed) in enumerate(zip(plan.steps, unlearners, step_seeds(seed, len(plan)))):
        forget_i = forget.subset(np.asarray(s.indices, dtype=np.int64))
        retain_i = _retain_for_step(plan, i, forget, retain)
        snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
        t0 = time.perf_counter()
        failed: list[str] = []
        calibration, retries = None, 0
        for k, u in enumerate(us):
            name, fell_back = unlearner_key(u), k > 0
            tried: list[str] = []  # the learning rates of this unlearner's tries so far
            while True:
                run = run_step(u, model, forget_i, retain_i, seed=step_seed, device=device,
                               n_classes=n_classes, guard=guard, label=name,
                               progress=f"step {i + 1}/{len(plan)} {name}" if show else None)
                model, status, message = run.model, run.status, run.message
                if not tried:
                    calibration = run.calibration
                if status == "ok":
                    break
                model.load_state_dict(snapshot)
                smaller = backed_off(run.unlearner, run.lr) if len(tried) < backoff else None
                if smaller is None:
                    break
                tried.append(f"lr={run.lr:.3g} ({status})")
                u = smaller
            retries += len(tried)
            if tried and status == "ok" and k == 0:
                # replaying the result's plan (rum.execute) must give these weights, without retries
                kept = (u, *us[1:])
                ran[i] = dataclasses.replace(s, params=u.get_params(), instance=kept)
            if tried:
                message = (f"{message} Smaller steps were tried after {', '.join(tried)}, each "
                           f"{BACKOFF_FACTOR:g} times the last." if status != "ok" else
                           f"{name}: undone with {', '.join(tried)}; kept with lr={run.lr:.3g} "
                           f"({BACKOFF_FACTOR:g} times the last).")
            if status == "ok":
                break
            failed.append(message)
        if status == "ok" and fell_back:
            status = "fallback"
            message = " ".join(failed) + f" Its fallback {name} ran instead."
        elif status != "ok":
            if len(us) > 1:
                message = " ".join(failed) + " No fallback was left."
            message = (f"The {len(forget_i)} forget item(s) of step {i} were NOT unlearned (the "
                       f"model keeps the weights from before the step). {message}")
            if on_failure == "raise":
                raise UnlearningFailedError(message)
            warnings.warn(message, DivergenceWarning, stacklevel=3)
        results.append(
            StepResult(
                step=i,
                group=s.group,
                unlearner=name,
                n_items=len(s.indices),
                seconds=time.perf_counter() - t0,
                iterations=run.iterations,
                final_loss=run.loss,
                status=status,
                message=message,
                lr=run.lr,
                calibration=None if calibration is None else calibration.to_dict(),
                backoffs=retries,
            )
        )
    timings = dict(timings or {})
    timings["execute"] = time.perf_counter() - t_exec
    timings["total"] = sum(timings.get(k, 0.0) for k in ("profile", "plan", "execute"))
    metrics.update(_accuracies(model, forget, retain, "after"))
    return UnlearnResult(
        model=model,
        plan=plan if ran == list(plan.steps) else dataclasses.replace(plan, steps=tuple(ran)),
        profile=profile,
        steps=tuple(results),
        timings=timings,
        metrics=metrics,
        seed=seed,
        device=str(device),
    )


def result_from_search(
    outcome: SearchOutcome,
    original: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    *,
    profile: Profile,
    device: torch.device,
    seed: int,
    timings: dict,
) -> UnlearnResult:
    """The result of a plan whose steps already ran during a search (a search policy).

    ``outcome.model`` is what the plan produces (the search guarantees an exact
    replay would give the same weights), ``original`` the model before it. Each
    step's seconds are those of its trial, already counted in ``timings["plan"]``,
    so ``timings["execute"]`` is 0. The forget accuracy the search aimed at, when it
    reports one (``plan.search.target_accuracy``), becomes the metric
    ``forget_acc_target``.
    """
    model, plan = outcome.model, outcome.plan
    dtype = model_dtype(model)
    forget = forget.to(device, dtype)
    retain = None if retain is None else retain.to(device, dtype)
    metrics = {**_accuracies(original, forget, retain, "before"),
               **_accuracies(model, forget, retain, "after")}
    if plan.search is not None and not np.isnan(plan.search.target_accuracy):
        metrics["forget_acc_target"] = float(plan.search.target_accuracy)
    timings = dict(timings, execute=0.0)
    timings["total"] = sum(timings.get(k, 0.0) for k in ("profile", "plan", "execute"))
    model.eval()
    return UnlearnResult(model=model, plan=plan, profile=profile, steps=outcome.steps,
                         timings=timings, metrics=metrics, seed=seed, device=str(device))


def execute(
    plan: Plan,
    model: Any,
    forget_set: Any,
    retain_set: Any = None,
    *,
    profile: Profile | None = None,
    device: Any = "auto",
    random_state: Any = None,
    progress: bool | None = None,
    retain_guard: float | None = RETAIN_GUARD,
    output: Any = None,
    overlap: str = "error",
) -> UnlearnResult:
    """Run a plan on a copy of ``model`` and return the result.

    Each step starts from the previous step's model. A step whose loss turns
    NaN or infinite is stopped, and a step after which the model has lost
    more than ``retain_guard`` of its retain accuracy above the majority-class
    rate (measured on up to 1,024 retain items) is undone: in both cases the
    weights are rolled back to those before the step, and the result records
    it (``result.diverged``, the step's ``status``) with a
    :class:`rum.exceptions.DivergenceWarning`. ``retain_guard=None`` turns
    the second check off; a step that trips it after an epoch and has lost
    90 % of that accuracy, or not improved since the previous epoch, is
    stopped early, and ``retrain`` is never checked. ``device``,
    ``random_state``, ``progress``, ``output`` and ``overlap`` are as in :func:`rum.unlearn`.

    Examples:
        >>> result = rum.execute(plan, model, forget_set, retain_set)  # doctest: +SKIP
    """
    validate_params(
        {"plan": plan, "retain_guard": retain_guard},
        {"plan": [InstanceOf((Plan,), "a rum.Plan")], "retain_guard": GUARD_CONSTRAINT},
        "rum.execute",
    )
    prep = prepare_call(model, forget_set, retain_set, device, random_state, output=output,
                        overlap=overlap)
    if plan.n_forget and plan.n_forget != len(prep.forget):
        raise InvalidParameterError(
            f"plan was made for {plan.n_forget} forget items but forget_set has {len(prep.forget)}."
        )
    bad = [i for s in plan.steps for i in s.indices if not 0 <= i < len(prep.forget)]
    if bad:
        raise InvalidParameterError(
            f"plan refers to forget items {bad[:5]} outside forget_set (size {len(prep.forget)})."
        )
    if profile is None:
        profile = _profile_data(prep.model, prep.forget, prep.retain, prep.seed)
    result = run_plan(
        plan,
        prep.model,
        prep.forget,
        prep.retain,
        profile=profile,
        device=prep.device,
        seed=prep.seed,
        n_classes=prep.n_classes,
        progress=progress,
        retain_guard=retain_guard,
    )
    prep.release(result.model)
    return result
