"""Executor: run a plan's steps in sequence, each from the previous step's model."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

from rum._guard import GUARD_CONSTRAINT, RETAIN_GUARD, RetainGuard, accuracy_on
from rum._seeding import seeded
from rum._validation import InstanceOf, validate_params
from rum.data import TensorData, model_dtype
from rum.exceptions import DivergenceWarning, InvalidParameterError
from rum.executor.result import StepResult, UnlearnResult
from rum.planner._plan import Plan, unlearner_key
from rum.profiler._profile import Profile
from rum.unlearners.context import NonFiniteLossError, RunContext

__all__ = ["execute", "StepResult", "UnlearnResult"]


def _progress_enabled(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def step_seeds(seed: int, n: int) -> list[int]:
    """Independent per-step seeds derived from the run's seed."""
    return [int(s.generate_state(1, np.uint64)[0] >> 1) for s in np.random.SeedSequence(seed).spawn(n)]


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


def _all_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters() if p.is_floating_point())


def _accuracies(model: torch.nn.Module, forget: TensorData, retain: TensorData | None, when: str) -> dict:
    """``forget_acc_<when>`` and ``retain_acc_<when>`` of ``model`` (the result's metrics)."""
    return {f"forget_acc_{when}": accuracy_on(model, forget), f"retain_acc_{when}": accuracy_on(model, retain)}


def retry_hint(u) -> str:
    """What to change when ``u`` diverged or wrecked the model, with its own settings named."""
    params = u.get_params()
    lr = params.get("lr")
    tips = [f"a smaller lr (this step used lr={lr:g})" if isinstance(lr, (int, float)) else "a smaller lr"]
    if params.get("optimizer") == "sgd":
        # measured: SCRUB's SGD steps wreck a CNN trained with Adam even at a tenth of its lr
        tips.append("optimizer='adam' with lr=1e-3 (a model trained with Adam may only take "
                    "much smaller SGD steps)")
    tips.append("fewer epochs")
    return "Try " + ", ".join(tips) + ", or another unlearner."


def _attempt(
    u, name: str, model: torch.nn.Module, forget_i: TensorData, retain_i: TensorData | None,
    guard: RetainGuard, n_items: int, step_seed: int, device: torch.device, n_classes: int,
    desc: str | None,
) -> tuple[torch.nn.Module, str, str, RunContext]:
    """Run one unlearner of a step in place: ``(model, status, message, context)``.

    The status is ``"ok"``, ``"diverged"`` (non-finite loss or weights) or
    ``"collapsed"`` (the retain guard tripped); the caller restores the weights
    from before the step when it is not ``"ok"``.
    """
    bar = None
    if desc is not None:
        from tqdm.auto import tqdm

        bar = tqdm(desc=desc, unit="it", leave=True)

    def on_start(total: int) -> None:
        if bar is not None:
            bar.reset(total=total)

    def on_progress(n: int, loss: float | None) -> None:
        if bar is not None:
            bar.update(n)
            if loss is not None:
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    status, message = "ok", ""
    # retrain is the reference itself: whatever it reaches is what retraining gives
    guarded = guard.data is not None and not u.tags.exact
    guard.start_step()
    with seeded(step_seed, device) as gen:
        ctx = RunContext(
            device=device,
            generator=gen,
            seed=step_seed,
            n_classes=n_classes,
            on_progress=on_progress,
            on_start=on_start,
            on_epoch_end=guard.on_epoch_end if guarded else None,
        )
        was_training = model.training
        try:
            out = u._unlearn(model, forget_i, retain_i, ctx)
            if out is not None:
                if not isinstance(out, torch.nn.Module):
                    raise TypeError(
                        f"{type(u).__name__}._unlearn must return the model (an nn.Module), "
                        f"returned {type(out).__name__}."
                    )
                model = out
            if not _all_finite(model):
                raise NonFiniteLossError(float("nan"), ctx.iterations)
        except NonFiniteLossError as err:
            status = "diverged"
            message = (
                f"{name}: loss or weights became {err.value} at iteration "
                f"{err.iteration}; the step was stopped and the weights from before it "
                f"restored. {retry_hint(u)}"
            )
        finally:
            model.train(was_training)
            if bar is not None:
                bar.close()
    model.eval()
    collapsed = guard.after_step(model) if status == "ok" and guarded else None
    if collapsed is not None:
        status = "collapsed"
        message = (
            f"{name}: retain accuracy fell from {guard.before:.3f} to {collapsed[1]:.3f} "
            f"({collapsed[0]:.0%} of the accuracy above the majority-class rate "
            f"{guard.floor:.3f}; retain_guard allows {guard.limit:.0%}); the weights from "
            f"before the step were restored, so its {n_items} item(s) were not "
            f"unlearned by it. {retry_hint(u)}"
        )
    return model, status, message, ctx


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
) -> UnlearnResult:
    """Run ``plan`` on a private model copy with validated data (no input checks here)."""
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

    show = _progress_enabled(progress)
    results: list[StepResult] = []
    t_exec = time.perf_counter()
    for i, (s, us, step_seed) in enumerate(zip(plan.steps, unlearners, step_seeds(seed, len(plan)))):
        forget_i = forget.subset(np.asarray(s.indices, dtype=np.int64))
        retain_i = _retain_for_step(plan, i, forget, retain)
        snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
        t0 = time.perf_counter()
        failed: list[str] = []
        for u in us:
            name = unlearner_key(u)
            desc = f"step {i + 1}/{len(plan)} {name}" if show else None
            model, status, message, ctx = _attempt(
                u, name, model, forget_i, retain_i, guard, len(s.indices), step_seed, device,
                n_classes, desc,
            )
            if status == "ok":
                break
            model.load_state_dict(snapshot)
            failed.append(message)
        if status == "ok" and failed:
            status = "fallback"
            message = " ".join(failed) + f" Its fallback {name} ran instead."
        elif status != "ok":
            if len(us) > 1:
                message = " ".join(failed) + " No fallback was left."
            warnings.warn(message, DivergenceWarning, stacklevel=3)
        results.append(
            StepResult(
                step=i,
                group=s.group,
                unlearner=name,
                n_items=len(s.indices),
                seconds=time.perf_counter() - t0,
                iterations=ctx.iterations,
                final_loss=ctx.last_loss,
                status=status,
                message=message,
            )
        )
    timings = dict(timings or {})
    timings["execute"] = time.perf_counter() - t_exec
    timings["total"] = sum(timings.get(k, 0.0) for k in ("profile", "plan", "execute"))
    metrics.update(_accuracies(model, forget, retain, "after"))
    return UnlearnResult(
        model=model,
        plan=plan,
        profile=profile,
        steps=tuple(results),
        timings=timings,
        metrics=metrics,
        seed=seed,
        device=str(device),
    )


def result_from_search(
    plan: Plan,
    model: torch.nn.Module,
    original: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    *,
    profile: Profile,
    efforts: list[dict],
    device: torch.device,
    seed: int,
    timings: dict,
    target_accuracy: float | None = None,
) -> UnlearnResult:
    """The result of a plan whose steps already ran during a search (the ``auto`` policy).

    ``model`` is what the plan produces (the search guarantees an exact replay
    would give the same weights); each step's seconds are those of its trial,
    already counted in ``timings["plan"]``, so ``timings["execute"]`` is 0.
    ``target_accuracy``, the forget accuracy the search aimed at, becomes the
    metric ``forget_acc_target``. What the search tried is on the plan (``plan.search``).
    """
    dtype = model_dtype(model)
    forget = forget.to(device, dtype)
    retain = None if retain is None else retain.to(device, dtype)
    metrics = {**_accuracies(original, forget, retain, "before"),
               **_accuracies(model, forget, retain, "after")}
    if target_accuracy is not None:
        metrics["forget_acc_target"] = float(target_accuracy)
    steps = tuple(
        StepResult(step=i, group=s.group, unlearner=s.unlearner, n_items=len(s.indices),
                   seconds=e.get("seconds", 0.0), iterations=e.get("iterations", 0),
                   final_loss=e.get("loss"))
        for i, (s, e) in enumerate(zip(plan.steps, efforts))
    )
    timings = dict(timings, execute=0.0)
    timings["total"] = sum(timings.get(k, 0.0) for k in ("profile", "plan", "execute"))
    model.eval()
    return UnlearnResult(model=model, plan=plan, profile=profile, steps=steps, timings=timings,
                         metrics=metrics, seed=seed, device=str(device))


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
    ``random_state`` and ``progress`` are as in :func:`rum.unlearn`.

    Example:
        >>> result = rum.execute(plan, model, forget_set, retain_set)  # doctest: +SKIP
    """
    from rum.api import _prepare

    validate_params(
        {"plan": plan, "retain_guard": retain_guard},
        {"plan": [InstanceOf((Plan,), "a rum.Plan")], "retain_guard": GUARD_CONSTRAINT},
        "rum.execute",
    )
    prep = _prepare(model, forget_set, retain_set, device, random_state)
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
        from rum.profiler import _profile_data

        profile = _profile_data(prep.model, prep.forget, prep.retain, prep.seed)
    return run_plan(
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

