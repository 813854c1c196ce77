"""Planner: assign an unlearner to each profile group and order the steps."""

from __future__ import annotations

import dataclasses
from typing import Any

from rum._guard import GUARD_CONSTRAINT, RETAIN_GUARD
from rum._validation import NONE, Interval, Options, check_random_state, validate_params
from rum.data import as_data
from rum.exceptions import InvalidParameterError
from rum.planner._plan import RETAIN_POLICIES, Plan, Step
from rum.planner._search import SearchReport, Trial
from rum.planner.policies import (
    DEFAULT_UNLEARNER,
    RUM_MAPPING,
    Policy,
    get_policy,
    list_policies,
    register_policy,
)
from rum.profiler._profile import Profile

__all__ = [
    "plan",
    "Plan",
    "Step",
    "SearchReport",
    "Trial",
    "Policy",
    "register_policy",
    "get_policy",
    "list_policies",
    "DEFAULT_UNLEARNER",
    "RUM_MAPPING",
]


def _resolve_policy(policy: Any) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, type) and issubclass(policy, Policy):
        return policy()
    if isinstance(policy, str):
        return get_policy(policy)()
    raise InvalidParameterError(
        f"policy must be a name ({', '.join(list_policies())}), a rum.planner.Policy subclass "
        f"or instance, got {type(policy).__name__}."
    )


#: What ``budget=`` of the auto policy accepts: seconds above 0, or ``None`` (no limit).
BUDGET_CONSTRAINT = [Interval(float, 0, None, closed="neither"), NONE]
#: The options only the auto policy reads, and what each is to it.
AUTO_ONLY_OPTIONS = {"target": "what its search aims at", "budget": "its search's time limit"}


def check_auto_only(policy: Any, **options: Any) -> None:
    """Reject ``target`` or ``budget``, options of the auto policy only, with any other policy."""
    if isinstance(policy, str) and policy == "auto":
        return
    for name, value in options.items():
        if value is not None:
            raise InvalidParameterError(
                f"{name} is an option of policy='auto' ({AUTO_ONLY_OPTIONS[name]}); use "
                f"policy='auto' or drop {name}."
            )


def plan(
    profile: Profile,
    *,
    policy: Any = "rum",
    unlearners: Any = None,
    budget: float | None = None,
    target: Any = None,
    retain_policy: str = "strict",
    n_retain: int = 0,
    random_state: Any = 0,
    model: Any = None,
    forget_set: Any = None,
    retain_set: Any = None,
    device: Any = "auto",
    retain_guard: float | None = RETAIN_GUARD,
    progress: bool | None = None,
) -> Plan:
    """Turn a profile into an ordered plan of unlearning steps, without running it.

    Printing the plan shows each step's estimated cost (in passes over the
    retain set when ``n_retain`` is known), so a plan can be checked before
    anything runs.

    Args:
        profile: the forget-set profile (from :func:`rum.profile`).
        policy: ``"rum"`` (default: an unlearner per group by difficulty, see
            :data:`RUM_MAPPING`, then a repair step), ``"uniform"`` (one
            unlearner on each group in turn, RUM^F), ``"vanilla"`` (one step
            over the whole forget set), ``"shuffle"`` (a control: random groups
            of the same sizes), ``"mapping"`` (exactly ``unlearners``),
            ``"auto"`` (searches each group's unlearner and length against an
            oracle-free target; needs ``model``, ``forget_set`` and
            ``retain_set``), or a :class:`Policy`.
        unlearners: for ``"uniform"``/``"vanilla"``/``"shuffle"`` a name, class,
            instance or ``(name, params)``; for ``"rum"``/``"mapping"`` a mapping
            ``{group id or "low"/"medium"/"high"/"repair": unlearner}``; for
            ``"auto"`` the candidates to try on every group (one or a list), or
            ``{"candidates": [...], "repair": [...] or None}`` (repair candidates
            are fallbacks: the first that improves the search score is kept).
        budget: for ``"auto"``: the search's time limit in seconds (the
            reference included). Each stage gets an even share of the time
            left, the repair whatever remains; a trial stops after the epoch
            running at its stage's deadline and keeps its best epoch so far.
            ``plan.search`` says which stages the budget cut short.
        target: for ``"auto"``: what its search aims each group's forget
            accuracy at. ``None`` (default, :data:`rum.planner.auto.AUTO_TARGET`):
            what a two-epoch retrain on the retain set gets right, rescaled to a
            full model's accuracy; ``("retrain", {...})`` the same with your
            recipe (``epochs``, ``lr``, ``train_fn``...); ``"neighbors"``: the
            label agreement of each item's nearest retain items in the model's
            embedding (no training; the default falls back to it for models
            ``retrain`` cannot re-initialise).
        retain_policy: ``"strict"`` (every step's retain data excludes the whole
            forget set) or ``"progressive"`` (groups not yet processed stay in
            the retain data of earlier steps).
        n_retain: retain-set size, for the cost estimate (taken from
            ``retain_set`` when that is given).
        random_state: seed of the ``"shuffle"`` and ``"auto"`` policies.
        model: for ``"auto"``: the trained model to search on.
        forget_set: for ``"auto"``: the forget data, in forget-set order.
        retain_set: for ``"auto"``: the retain data; for any policy, its size
            sets ``n_retain`` when that is left at 0.
        device: for ``"auto"``: where the search runs.
        retain_guard: for ``"auto"``: the executor's retain guard its trials run
            under (as in :func:`rum.unlearn`; ``None`` turns it off). Give
            :func:`rum.execute` the same value and it replays the plan to the
            searched model.
        progress: for ``"auto"``: show a progress bar for its search; ``None``
            shows one only on a terminal.

    Example:
        >>> import numpy as np, rum
        >>> p = rum.Profile.from_groups(np.array([.1, .5, .9]), np.zeros(3), np.array([0, 1, 2]))
        >>> print(", ".join(s.unlearner for s in rum.plan(p).steps))
        scrub, random-label, salun, finetune
        >>> print(rum.plan(p, policy="vanilla", unlearners="neggrad+").steps[0].unlearner)
        neggrad+
    """
    if not isinstance(profile, Profile):
        raise InvalidParameterError(
            f"profile must be a rum.Profile (from rum.profile()), got {type(profile).__name__}."
        )
    validate_params(
        {"retain_policy": retain_policy, "budget": budget, "n_retain": n_retain,
         "retain_guard": retain_guard},
        {
            "retain_policy": [Options(RETAIN_POLICIES)],
            "retain_guard": GUARD_CONSTRAINT,
            "budget": BUDGET_CONSTRAINT,
            "n_retain": [Interval(int, 0, None)],
        },
        "rum.plan",
    )
    seed = check_random_state(random_state)
    if isinstance(policy, str) and policy == "auto":
        if model is None or forget_set is None or retain_set is None:
            raise InvalidParameterError(
                "policy='auto' tries unlearners on the data: pass model=, forget_set= and "
                "retain_set= to rum.plan (rum.unlearn does this for you)."
            )
        from rum.api import _auto_plan, _prepare

        prep = _prepare(model, forget_set, retain_set, device, seed)
        if len(prep.forget) != len(profile):
            raise InvalidParameterError(
                f"the profile has {len(profile)} items but forget_set has {len(prep.forget)}."
            )
        found, _, _ = _auto_plan(
            prep, profile,
            {"budget": budget, "unlearners": unlearners, "retain_policy": retain_policy,
             "target": target},
            retain_guard,
            progress,
        )
        steps, n_retain, search = found.steps, n_retain or found.n_retain, found.search
        name = "auto"
    else:
        check_auto_only(policy, target=target, budget=budget)
        if retain_guard != RETAIN_GUARD:
            raise InvalidParameterError(
                "retain_guard is an option of policy='auto' here (its search runs under the "
                "guard); for other policies set it where the plan runs: rum.execute(..., "
                "retain_guard=...)."
            )
        pol = _resolve_policy(policy)
        steps = tuple(pol.steps(profile, unlearners, seed))
        name, search = pol.name or type(pol).__name__, None
        if retain_set is not None and not n_retain:
            n_retain = len(as_data(retain_set, "retain_set", allow_empty=True))
    steps = tuple(dataclasses.replace(s, retain_policy=retain_policy) for s in steps)
    return Plan(steps=steps, policy=name, n_forget=len(profile), n_retain=n_retain, search=search)
