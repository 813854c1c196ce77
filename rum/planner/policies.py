"""Planning policies: how profile groups become an ordered list of steps.

A policy is a small class with one method, ``steps(profile, unlearners, seed)``,
registered under a name. Users add their own with :func:`register_policy`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rum.exceptions import InvalidParameterError, UnknownNameError
from rum.planner._plan import Step
from rum.profiler._profile import Profile
from rum.registry import Registry
from rum.unlearners.base import Unlearner
from rum.unlearners.registry import make_unlearner

__all__ = [
    "Policy",
    "register_policy",
    "get_policy",
    "list_policies",
    "DEFAULT_UNLEARNER",
    "RUM_MAPPING",
]


class UnknownPolicyError(UnknownNameError):
    """A policy name is not registered."""


POLICIES: Registry[type] = Registry("policy", UnknownPolicyError, plural="policies")

#: The unlearner of the single-unlearner policies when none is named.
DEFAULT_UNLEARNER = "finetune"

#: The default per-difficulty assignment of the ``"rum"`` policy. ``"low"`` is
#: the least memorized group, ``"high"`` the most, ``"medium"`` any group in
#: between; ``"repair"`` is a last step over the whole forget set that runs on
#: retain data (``None`` to skip); a list names fallbacks in order of
#: preference. Why, from the RUM suite in docs/benchmarks.md (3 tasks x 9
#: forget scenarios x 3 seeds): on the least memorized group SCRUB (the
#: student moves away from its teacher on the forget items while distilling it
#: on retain) brings the items to held-out behaviour without over-forgetting,
#: where doing nothing leaves the mislabeled items the profiler ranks low still
#: memorized; the memorized groups need an update that actively forgets:
#: relabelling on the medium groups, and SalUn (relabelling restricted to the
#: weights most salient for the forget loss) on the most memorized one, which
#: moved the mixed scenario (mislabeled plus ordinary items) from 0.90 to 0.97
#: ToW on digits and from 0.89 to 0.92 on tabular; a short fine-tune on retain
#: afterwards repairs the collateral damage. SCRUB's ascent and SalUn collapse
#: the benchmark's 1-D CNN on some seeds; the executor's ``retain_guard`` then
#: undoes the step, SalUn falls back to plain relabelling, SCRUB to one epoch
#: of NegGrad+ (the best single unlearner on most mnist1d scenarios; it moved
#: the mixed scenario there from 0.877 to 0.904 ToW), and the rest of the plan
#: still runs. SCRUB on the medium groups too scored a little higher on
#: the two MLP tasks but cost 0.3x the retrain time; SalUn on the medium groups
#: too helped digits and hurt tabular; 3 repair epochs instead of 5 keep the
#: whole plan within 0.25x on the suite's seeds (on mnist1d seeds 3 and 4 the
#: NegGrad+ fallback takes it to 0.27x). The repair uses Adam (lr 1e-3): SGD at
#: lr 0.1 wrecks the 1-D CNN and SGD at lr 0.01 is too weak to repair the digits MLP,
#: while Adam's step size does not depend on the scale of the gradients.
RUM_MAPPING: dict[str, Any] = {
    "low": ["scrub", ("neggrad+", {"epochs": 1})],
    "medium": "random-label",
    "high": ["salun", "random-label"],
    "repair": ("finetune", {"optimizer": "adam", "lr": 1e-3, "epochs": 3}),
}


def as_unlearner(spec: Any, argument: str) -> Unlearner:
    """A name, class, instance or ``(name, params)`` pair as an :class:`Unlearner`."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping):
        return make_unlearner(spec[0], dict(spec[1]), argument)
    return make_unlearner(spec, None, argument)


def is_pair(spec: Any) -> bool:
    """Whether ``spec`` is one ``(name, params)`` pair (a two-item list too, as JSON gives it)."""
    return isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], Mapping)


def as_unlearners(specs: Sequence, argument: str) -> tuple[Unlearner, ...]:
    """Several specs (pairs may be two-item lists) as unlearners, named ``argument[i]`` in errors."""
    return tuple(as_unlearner(tuple(x) if is_pair(x) else x, f"{argument}[{i}]")
                 for i, x in enumerate(specs))


def as_choice(spec: Any, argument: str) -> tuple[Unlearner, tuple[Unlearner, ...]]:
    """A spec, or a list of specs in order of preference, as ``(unlearner, fallbacks)``.

    A list names fallbacks: the executor runs the next one when the one before
    diverges or is undone by its retain guard. A ``(name, params)`` pair (also
    as a two-item list from JSON) is one spec.
    """
    if isinstance(spec, list) and not is_pair(spec):
        if not spec:
            raise InvalidParameterError(
                f"{argument} is an empty list: name an unlearner, or several in order of preference."
            )
        made = as_unlearners(spec, argument)
        return made[0], made[1:]
    return as_unlearner(tuple(spec) if is_pair(spec) else spec, argument), ()


def difficulty_names(n_groups: int) -> list[str]:
    """``low``/``medium``/``high`` for each group in easiest-first order."""
    if n_groups == 1:
        return ["high"]
    return ["low"] + ["medium"] * (n_groups - 2) + ["high"]


class Policy(ABC):
    """Turn a :class:`Profile` into steps.

    Subclasses implement :meth:`steps`. ``unlearners`` is whatever the user
    passed to :func:`rum.plan` (``None``, a single spec or a mapping).

    Example:
        >>> import numpy as np, rum
        >>> from rum.planner.policies import Policy, register_policy
        >>> @register_policy("hardest-only", force=True)
        ... class HardestOnly(Policy):
        ...     '''Only treat the most memorized group.'''
        ...     def steps(self, profile, unlearners, seed):
        ...         last = profile.summary[-1].group
        ...         u = rum.get_unlearner(unlearners or "random-label")()
        ...         return [rum.Step.from_unlearner(last, profile.indices(last), u)]
        >>> p = rum.Profile.from_groups(np.array([.1, .9]), np.zeros(2), np.array([0, 1]))
        >>> [s.indices for s in rum.plan(p, policy="hardest-only").steps]
        [(1,)]
    """

    name: str | None = None

    @abstractmethod
    def steps(self, profile: Profile, unlearners: Any, seed: int) -> list[Step]:
        """The ordered steps for ``profile``."""


def register_policy(name: str, *, force: bool = False):
    """Class decorator registering a :class:`Policy` subclass under ``name``."""

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise InvalidParameterError(
                f"@register_policy({name!r}) must decorate a subclass of rum.planner.Policy."
            )
        POLICIES.register(name, cls, force=force)
        cls.name = name
        return cls

    return wrap


def get_policy(name: str) -> type:
    """The policy class registered under ``name``."""
    return POLICIES.get(name, "policy")


def list_policies() -> list[str]:
    """Names of the registered policies."""
    return POLICIES.names()


def _single(unlearners: Any) -> Unlearner:
    if isinstance(unlearners, Mapping):
        raise InvalidParameterError(
            "this policy runs one unlearner; pass unlearners='name' (or a class or instance), "
            "or use policy='rum' with a mapping."
        )
    return as_unlearner(DEFAULT_UNLEARNER if unlearners is None else unlearners, "unlearners")


@register_policy("vanilla")
class Vanilla(Policy):
    """One step over the whole forget set, ignoring the groups."""

    def steps(self, profile, unlearners, seed):
        return [Step.from_unlearner(-1, range(len(profile)), _single(unlearners))]


@register_policy("uniform")
class Uniform(Policy):
    """The same unlearner on each group in turn, easiest first (RUM^F)."""

    def steps(self, profile, unlearners, seed):
        u = _single(unlearners)
        return [Step.from_unlearner(s.group, profile.indices(s.group), u) for s in profile.summary]


@register_policy("shuffle")
class Shuffle(Policy):
    """A control: the same unlearner on random groups of the profile's group sizes."""

    def steps(self, profile, unlearners, seed):
        u = _single(unlearners)
        perm = np.random.default_rng(seed).permutation(len(profile))
        steps, start = [], 0
        for s in profile.summary:
            idx = np.sort(perm[start : start + s.size])
            steps.append(Step.from_unlearner(s.group, idx, u))
            start += s.size
        return steps


@register_policy("rum")
class RUM(Policy):
    """An unlearner per group by difficulty, then an optional repair step.

    ``unlearners`` may override :data:`RUM_MAPPING` by difficulty name
    (``{"high": "salun"}``), by group id (``{2: ("neggrad+", {"alpha": 0.8})}``)
    or name the repair step (``{"repair": None}`` drops it). Groups whose
    unlearner is ``noop`` get no step.
    """

    def steps(self, profile, unlearners, seed):
        if unlearners is not None and not isinstance(unlearners, Mapping):
            raise InvalidParameterError(
                "policy='rum' takes unlearners=None or a mapping {group or 'low'/'medium'/"
                "'high'/'repair': unlearner}; for one unlearner on every group use "
                "policy='uniform'."
            )
        user = dict(unlearners or {})
        known = {"low", "medium", "high", "repair"} | {s.group for s in profile.summary}
        for key in user:
            if key not in known:
                raise InvalidParameterError(
                    f"unlearners has a key {key!r} that is neither a group id of the profile "
                    f"({[s.group for s in profile.summary]}) nor one of 'low', 'medium', "
                    "'high', 'repair'."
                )
        steps = []
        names = difficulty_names(profile.n_groups)
        for s, level in zip(profile.summary, names):
            spec = user.get(s.group, user.get(level, RUM_MAPPING[level]))
            u, fallbacks = as_choice(spec, f"unlearners[{s.group!r}]")
            if type(u).name == "noop":
                continue
            steps.append(Step.from_unlearner(s.group, profile.indices(s.group), u, fallbacks=fallbacks))
        repair = user.get("repair", RUM_MAPPING["repair"])
        if repair is not None:
            u, fallbacks = as_choice(repair, "unlearners['repair']")
            steps.append(Step.from_unlearner(-1, range(len(profile)), u, fallbacks=fallbacks))
        if not steps:
            steps.append(Step.from_unlearner(-1, range(len(profile)), as_unlearner("noop", "noop")))
        return steps


@register_policy("mapping")
class UserMapping(Policy):
    """Exactly the user's ``{group: unlearner}`` mapping; groups not named get no step."""

    def steps(self, profile, unlearners, seed):
        if not isinstance(unlearners, Mapping):
            raise InvalidParameterError(
                "policy='mapping' needs unlearners={group: unlearner or (name, params)}."
            )
        groups = {s.group for s in profile.summary}
        bad = [g for g in unlearners if g not in groups]
        if bad:
            raise InvalidParameterError(
                f"unlearners names groups {bad} that the profile does not have "
                f"(it has {sorted(groups)})."
            )
        return [
            Step.from_unlearner(s.group, profile.indices(s.group), u, fallbacks=fallbacks)
            for s in profile.summary
            if s.group in unlearners
            for u, fallbacks in [as_choice(unlearners[s.group], f"unlearners[{s.group}]")]
        ]


@register_policy("auto")
class Auto(Policy):
    """Search each group's unlearner and length on the data (see :mod:`rum.planner.auto`).

    It needs the model and data, so it runs through :func:`rum.unlearn` or
    :func:`rum.plan` with ``model=``, ``forget_set=`` and ``retain_set=``.
    """

    def steps(self, profile, unlearners, seed):
        raise InvalidParameterError(
            "policy='auto' tries unlearners on the data: use rum.unlearn(..., policy='auto') "
            "or rum.plan(profile, policy='auto', model=..., forget_set=..., retain_set=...)."
        )
