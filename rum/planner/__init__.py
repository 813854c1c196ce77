"""Planner: assign an unlearner to each profile group and order the steps."""

from __future__ import annotations

import dataclasses
from typing import Any

from rum._data import as_data
from rum._model import prepare_call
from rum._runtime.guard import GUARD_CONSTRAINT, RETAIN_GUARD
from rum._runtime.progress import progress_enabled
from rum._validation import Interval, Options, check_random_state, validate_params
from rum.exceptions import InvalidParameterError
from rum.planner._plan import RETAIN_POLICIES, Plan, Step
from rum.planner._search import SearchReport, Trial
from rum.planner.auto import Auto  # noqa: F401 - registers the auto policy
from rum.planner.policies import (
    PlanningContext,
    Policy,
    SearchOutcome,
    SearchPolicy,
    make_policy,
)
from rum.profiler._profile import Profile

# The policies themselves are public in rum.policies.
__all__ = ["plan", "Plan", "Step", "SearchReport", "Trial", "RETAIN_POLICIES"]


def check_retain_policy(policy: Policy, retain_policy: str) -> None:
    """A search policy's trials run with the strict retain policy; reject another one."""
    validate_params({"retain_policy": retain_policy},
                    {"retain_policy": [Options(RETAIN_POLICIES)]}, "rum.plan")
    if isinstance(policy, SearchPolicy) and retain_policy != "strict":
        raise InvalidParameterError(
            f"policy {policy.label!r} searches with the strict retain policy; leave retain_policy unset."
        )


def search(policy: SearchPolicy, ctx: PlanningContext) -> SearchOutcome:
    """Run a search policy on a planning context; the plan records its retain-set size."""
    outcome = policy.search(ctx)
    n_retain = 0 if ctx.retain is None else len(ctx.retain)
    return dataclasses.replace(outcome, plan=dataclasses.replace(outcome.plan, n_retain=n_retain))


def plan(
    profile: Profile,
    policy: Any = "rum",
    *,
    model: Any = None,
    forget_set: Any = None,
    retain_set: Any = None,
    retain_policy: str = "strict",
    n_retain: int = 0,
    device: Any = "auto",
    random_state: Any = 0,
    retain_guard: float | None = RETAIN_GUARD,
    progress: bool | None = None,
    output: Any = None,
    overlap: str = "error",
) -> Plan:
    """Turn a profile into an ordered plan of unlearning steps, without running it.

    Printing the plan shows each step's estimated cost (in passes over the
    retain set when ``n_retain`` is known), so a plan can be checked before
    anything runs.

    Args:
        profile: the forget-set profile (from :func:`rum.profile`).
        policy: a policy object from :mod:`rum.policies` (``RUM({"high":
            "salun"})``, ``Uniform("finetune")``, ``Vanilla(...)``,
            ``Shuffle(...)``, ``Mapping({...})``, ``Auto(budget=...)``, your
            own), or a registered name as a shorthand for that policy with its
            defaults: ``"rum"`` (default), ``"uniform"``, ``"vanilla"``,
            ``"shuffle"``, ``"auto"``.
        model: the trained model. A search policy (``Auto``) tries unlearners
            on it and on the data, so it needs ``model``, ``forget_set`` and
            ``retain_set``.
        forget_set: the forget data, in the profile's order (for a search policy).
        retain_set: the retain data; for any policy it sets ``n_retain`` when
            that is 0.
        retain_policy: ``"strict"`` (every step's retain data excludes the whole
            forget set) or ``"progressive"`` (groups not yet processed stay in
            the retain data of earlier steps).
        n_retain: retain-set size, for the cost estimate.
        device: where a search policy's trials run.
        random_state: the seed of randomised and search policies; give
            :func:`rum.execute` the same one to replay a searched plan.
        retain_guard: the executor's retain guard a search policy's trials run
            under (as in :func:`rum.unlearn`); give :func:`rum.execute` the same
            value and it replays the plan to the searched model. Other policies
            do not run anything: set it where the plan runs.
        progress: show a search policy's progress bar; ``None`` shows it only on
            a terminal.
        output: for a search policy, which part of the model's output holds the
            logits (as in :func:`rum.unlearn`).
        overlap: for a search policy, what to do with retain items equal to forget
            items (as in :func:`rum.unlearn`).

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import Uniform
        >>> p = rum.Profile.from_groups(np.array([.1, .5, .9]), np.zeros(3), np.array([0, 1, 2]))
        >>> print(", ".join(s.unlearner for s in rum.plan(p).steps))
        scrub, random-label, salun, finetune
        >>> print(rum.plan(p, Uniform("neggrad+")).steps[0].unlearner)
        neggrad+
    """
    if not isinstance(profile, Profile):
        raise InvalidParameterError(
            f"profile must be a rum.Profile (from rum.profile()), got {type(profile).__name__}."
        )
    validate_params(
        {"n_retain": n_retain, "retain_guard": retain_guard},
        {"n_retain": [Interval(int, 0, None)], "retain_guard": GUARD_CONSTRAINT},
        "rum.plan",
    )
    pol = make_policy(policy)
    check_retain_policy(pol, retain_policy)
    seed = check_random_state(random_state)
    if isinstance(pol, SearchPolicy):
        if model is None or forget_set is None or retain_set is None:
            raise InvalidParameterError(
                f"policy {pol.label!r} tries unlearners on the data: pass model=, forget_set= and "
                "retain_set= to rum.plan (rum.unlearn does this for you)."
            )
        prep = prepare_call(model, forget_set, retain_set, device, seed, output=output,
                            overlap=overlap)
        if len(prep.forget) != len(profile):
            raise InvalidParameterError(
                f"the profile has {len(profile)} items but forget_set has {len(prep.forget)}."
            )
        ctx = PlanningContext.from_prepared(profile, prep, retain_guard=retain_guard,
                                            progress=progress_enabled(progress))
        return search(pol, ctx).plan
    if retain_guard != RETAIN_GUARD:
        raise InvalidParameterError(
            f"retain_guard is what a search policy's trials run under; policy {pol.label!r} runs "
            "nothing. Set it where the plan runs: rum.execute(..., retain_guard=...)."
        )
    steps = tuple(dataclasses.replace(s, retain_policy=retain_policy) for s in pol.steps(profile, seed))
    if retain_set is not None and not n_retain:
        n_retain = len(as_data(retain_set, "retain_set", allow_empty=True))
    return Plan(steps=steps, policy=pol.label, n_forget=len(profile), n_retain=n_retain,
                reason=pol.explain(profile))
