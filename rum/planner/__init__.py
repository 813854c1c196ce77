"""Planner: assign an unlearner to each profile group and order the steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rum._validation import Options, validate_params
from rum.planner.plan import RETAIN_POLICIES, Plan, Step
from rum.profiler.profile import Profile
from rum.unlearners.base import Unlearner
from rum.unlearners.registry import make_unlearner

__all__ = ["plan", "Plan", "Step", "POLICIES", "DEFAULT_UNLEARNER"]

#: The unlearner used when none is named.
DEFAULT_UNLEARNER = "neggrad+"

POLICIES = ("vanilla", "uniform", "rum")


def _as_unlearner(spec: Any, argument: str) -> Unlearner:
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping):
        return make_unlearner(spec[0], dict(spec[1]), argument)
    return make_unlearner(spec, None, argument)


def plan(
    profile: Profile,
    *,
    policy: str = "rum",
    unlearners: Any = None,
    retain_policy: str = "strict",
) -> Plan:
    """Turn a profile into an ordered plan of unlearning steps.

    Args:
        profile: the forget-set profile (from :func:`rum.profile`).
        policy: ``"vanilla"`` (one step over the whole forget set),
            ``"uniform"`` (the same unlearner on each group, easiest first), or
            ``"rum"`` (an unlearner per group; with one group this is
            ``"uniform"``).
        unlearners: a name, class or instance used for every group, a
            ``(name, params)`` pair, or a mapping ``{group: spec}``. ``None``
            uses :data:`DEFAULT_UNLEARNER`.
        retain_policy: ``"strict"`` or ``"progressive"``.

    Example:
        >>> import numpy as np, rum
        >>> p = rum.Profile.single_group(np.array([0.2, 0.7, 0.1]))
        >>> print(rum.plan(p, policy="vanilla", unlearners="finetune").steps[0].unlearner)
        finetune
    """
    if not isinstance(profile, Profile):
        from rum.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"profile must be a rum.Profile (from rum.profile()), got {type(profile).__name__}."
        )
    validate_params(
        {"policy": policy, "retain_policy": retain_policy},
        {"policy": [Options(POLICIES)], "retain_policy": [Options(RETAIN_POLICIES)]},
        "rum.plan",
    )
    groups = [s.group for s in profile.summary]
    if isinstance(unlearners, Mapping):
        chosen = {}
        for g in groups:
            spec = unlearners.get(g, DEFAULT_UNLEARNER)
            chosen[g] = _as_unlearner(spec, f"unlearners[{g}]")
    else:
        u = _as_unlearner(DEFAULT_UNLEARNER if unlearners is None else unlearners, "unlearner")
        chosen = {g: u for g in groups}
    n = len(profile)
    if policy == "vanilla" or len(groups) == 1:
        u = chosen[groups[0]] if len(set(map(repr, chosen.values()))) == 1 else chosen[groups[-1]]
        steps = (Step.from_unlearner(-1 if len(groups) > 1 else groups[0], range(n), u, retain_policy),)
    else:
        steps = tuple(
            Step.from_unlearner(g, profile.indices(g), chosen[g], retain_policy) for g in groups
        )
    return Plan(steps=steps, policy=policy, n_forget=n)
