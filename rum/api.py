"""``rum.unlearn``: the one call."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch

from rum._validation import check_options, check_random_state, resolve_device, validate_params
from rum.data import TensorData, as_data, check_fits_model, check_model
from rum.executor import (
    GUARD_CONSTRAINT,
    RETAIN_GUARD,
    UnlearnResult,
    _progress_enabled,
    result_from_search,
    run_plan,
)
from rum.planner import plan as make_plan
from rum.profiler import PROFILE_OPTIONS, _profile_data
from rum.unlearners.registry import make_unlearner

__all__ = ["unlearn"]

#: Keyword options of the planner in the default (profile -> plan -> execute) pipeline.
PLAN_OPTIONS = ("policy", "unlearners", "retain_policy", "budget", "target")
#: Keyword options of the default pipeline: the planner's plus the profiler's.
PIPELINE_OPTIONS = PLAN_OPTIONS + PROFILE_OPTIONS


@dataclass
class _Prepared:
    model: torch.nn.Module  # a private deep copy
    forget: TensorData
    retain: TensorData | None
    device: torch.device
    seed: int
    n_classes: int


def _prepare(model: Any, forget_set: Any, retain_set: Any, device: Any, random_state: Any) -> _Prepared:
    """Validate everything at the boundary and copy the model; no work starts before this passes."""
    check_model(model)
    forget = as_data(forget_set, "forget_set")
    retain = None if retain_set is None else as_data(retain_set, "retain_set", allow_empty=True)
    dev = resolve_device(device)
    seed = check_random_state(random_state)
    sets = {"forget_set": forget}
    if retain is not None and len(retain):
        sets["retain_set"] = retain
    n_classes = check_fits_model(model, sets)
    if retain is not None and len(retain) == 0:
        retain = None
    work = copy.deepcopy(model)
    return _Prepared(work, forget, retain, dev, seed, n_classes)


def unlearn(
    model: Any,
    forget_set: Any,
    retain_set: Any = None,
    *,
    unlearner: Any = None,
    device: Any = "auto",
    random_state: Any = None,
    progress: bool | None = None,
    retain_guard: float | None = RETAIN_GUARD,
    **options: Any,
) -> UnlearnResult:
    """Make a copy of ``model`` forget ``forget_set``.

    Without ``unlearner``, runs the RUM pipeline: profile the forget set,
    plan an unlearner per group, execute the plan. With ``unlearner`` (a
    registered name, an :class:`Unlearner` class or an instance), applies that
    one unlearner to the whole forget set; ``**options`` are then its
    hyper-parameters.

    The caller's model and data are never modified.

    Args:
        model: the trained classifier (``torch.nn.Module`` returning logits).
        forget_set: the items to forget: an ``(X, y)`` pair, a ``Dataset`` or a
            ``DataLoader``.
        retain_set: the rest of the training data (or a sample of it), in the
            same forms. Needed by most unlearners.
        unlearner: run a single unlearner instead of the RUM pipeline.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
        random_state: seed; the same seed gives bit-identical weights on the CPU.
            ``None`` draws one, recorded in ``result.seed``.
        progress: show a progress bar per step (and one for ``policy="auto"``'s search);
            ``None`` shows them only on a terminal.
        retain_guard: undo a step after which the model has lost more than this
            fraction of its retain accuracy above the majority-class rate
            (measured on up to 1,024 retain items; default 0.5, so a step that
            wrecks the model is rolled back and reported in ``result.steps``
            with a :class:`~rum.exceptions.DivergenceWarning`). ``None`` turns
            the check off. Retraining never loses retain accuracy, so such a
            step is always a failure (usually a learning rate too large for
            the model); a step that trips it after an epoch and has lost 90 %
            of that accuracy, or not improved since the previous epoch, is
            stopped early. ``retrain`` itself is never checked. The ``auto``
            policy's search runs its trials under it and keeps no step it would undo.
        **options: the unlearner's hyper-parameters (with ``unlearner``), or the
            pipeline's options: the planner's ``policy``, ``unlearners``,
            ``retain_policy``, ``budget``, ``target`` (see :func:`rum.plan`) and the profiler's
            ``memorization``, ``entanglement``, ``embedding_layer``,
            ``grouping``, ``n_groups`` (see :func:`rum.profile`).

    Returns:
        UnlearnResult: ``.model`` is the unlearned copy; also the profile, the
        plan, per-step timings and before/after accuracies.

    Example:
        >>> import rum
        >>> result = rum.unlearn(model, (X_forget, y_forget), (X_retain, y_retain))  # doctest: +SKIP
        >>> result.model  # the unlearned copy  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    validate_params({"retain_guard": retain_guard}, {"retain_guard": GUARD_CONSTRAINT}, "rum.unlearn")
    if unlearner is not None:
        # Build (and validate) the unlearner before touching the data.
        u = make_unlearner(unlearner, options, "unlearner")
        u.validate_params()
        plan_options: dict = {"policy": "vanilla", "unlearners": u}
        profile_options: dict = {}
    else:
        check_options(options, PIPELINE_OPTIONS, "rum.unlearn()")
        if isinstance(options.get("policy"), str):  # an unknown name fails before any work
            from rum.planner import get_policy

            get_policy(options["policy"])
        if options.get("policy") == "auto":  # bad candidates or targets fail before any work
            from rum.planner.auto import parse_candidates, parse_target

            parse_candidates(options.get("unlearners"))
            parse_target(options.get("target"))
            _check_budget(options.get("budget"))
        else:
            from rum.planner import check_auto_only

            check_auto_only(options.get("policy"), target=options.get("target"),
                            budget=options.get("budget"))
        plan_options = {k: v for k, v in options.items() if k in PLAN_OPTIONS}
        profile_options = {k: v for k, v in options.items() if k in PROFILE_OPTIONS}
    prep = _prepare(model, forget_set, retain_set, device, random_state)
    if "n_groups" not in profile_options and unlearner is None:
        # the default of 3 groups must not make tiny forget sets an error
        profile_options["n_groups"] = min(3, len(prep.forget))
    prof = _profile_data(prep.model, prep.forget, prep.retain, prep.seed, **profile_options)
    t1 = time.perf_counter()
    n_retain = 0 if prep.retain is None else len(prep.retain)
    if plan_options.get("policy") == "auto":
        the_plan, searched, info = _auto_plan(prep, prof, plan_options, retain_guard, progress)
        return result_from_search(
            the_plan, searched, prep.model, prep.forget, prep.retain, profile=prof,
            efforts=info["efforts"], target_accuracy=info["target_accuracy"],
            device=prep.device, seed=prep.seed,
            timings={"profile": t1 - t0, "plan": time.perf_counter() - t1},
        )
    else:
        the_plan = make_plan(prof, n_retain=n_retain, random_state=prep.seed, **plan_options)
    t2 = time.perf_counter()
    return run_plan(
        the_plan,
        prep.model,
        prep.forget,
        prep.retain,
        profile=prof,
        device=prep.device,
        seed=prep.seed,
        n_classes=prep.n_classes,
        progress=progress,
        timings={"profile": t1 - t0, "plan": t2 - t1},
        retain_guard=retain_guard,
    )


def _check_budget(budget: Any) -> None:
    from rum.planner import BUDGET_CONSTRAINT

    validate_params({"budget": budget}, {"budget": BUDGET_CONSTRAINT}, "rum.unlearn")


def _auto_plan(prep: _Prepared, prof: Any, options: dict,
               retain_guard: float | None = RETAIN_GUARD, progress: bool | None = None) -> tuple:
    """Run the auto policy's search on a copy of the model: (plan, searched model, search info).

    Shared by :func:`unlearn` and :func:`rum.plan`, which have both validated ``budget``;
    every other check runs here, before the search.
    Its trials run under ``retain_guard``; :func:`rum.execute` with the same value
    replays the plan to the searched model.
    """
    import dataclasses

    from rum.exceptions import InvalidParameterError
    from rum.planner.auto import auto_search, parse_candidates, parse_target

    if prep.retain is None:
        raise InvalidParameterError("policy='auto' needs retain_set (the rest of the training data).")
    candidates, repair = parse_candidates(options.get("unlearners"))
    if options.get("retain_policy", "strict") != "strict":
        raise InvalidParameterError(
            "policy='auto' searches with the strict retain policy; leave retain_policy unset."
        )
    found, searched, info = auto_search(
        prof,
        copy.deepcopy(prep.model).to(prep.device),
        prep.forget.to(prep.device),
        prep.retain.to(prep.device),
        device=prep.device,
        seed=prep.seed,
        n_classes=prep.n_classes,
        candidates=candidates,
        repair=repair,
        budget=options.get("budget"),
        target=parse_target(options.get("target"), prep.model, len(prep.retain)),
        retain_guard=retain_guard,
        progress=_progress_enabled(progress),
    )
    return dataclasses.replace(found, n_retain=len(prep.retain)), searched, info
