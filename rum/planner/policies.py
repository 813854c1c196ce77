"""Planning policies: objects that turn a profile into an ordered plan of steps.

A policy carries its choices and checks them when it is made, before any data is
touched: ``RUM({"high": "salun"})``, ``Uniform("finetune")``, ``Mapping({0: "noop",
1: "random-label"})``, ``Auto(budget=30)``. A name (``policy="uniform"``) is a shorthand
for the registered class with its defaults.

There are two kinds:

* a :class:`Policy` reads only the profile: :meth:`Policy.steps`;
* a :class:`SearchPolicy` tries unlearners on the data: :meth:`SearchPolicy.search`
  receives a :class:`PlanningContext` (the profile, a private copy of the model, the
  data, the seed, and the step runner its trials run through) and returns a
  :class:`SearchOutcome` (the plan and the model it produces).

Add your own with :func:`register_policy`.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from rum._data import TensorData
from rum._model import Prepared, model_dtype
from rum._registry import Registry
from rum._runner import EpochHook, StepResult, StepRun, run_step
from rum._runtime.guard import RetainGuard
from rum._runtime.seeding import step_seeds
from rum._validation import check_options
from rum.exceptions import InvalidParameterError, UnknownNameError
from rum.planner._plan import Plan, Step
from rum.profiler._profile import Profile
from rum.unlearners.base import Unlearner
from rum.unlearners.forget_class import ForgetClass  # noqa: F401 - registers "forget-class"
from rum.unlearners.registry import make_unlearner

__all__ = [
    "Policy",
    "SearchPolicy",
    "PlanningContext",
    "SearchOutcome",
    "Vanilla",
    "Uniform",
    "Shuffle",
    "RUM",
    "Mapping",
    "register_policy",
    "get_policy",
    "list_policies",
    "make_policy",
    "DEFAULT_UNLEARNER",
    "RUM_MAPPING",
]


class UnknownPolicyError(UnknownNameError):
    """A policy name is not registered."""


POLICIES: Registry[type] = Registry("policy", UnknownPolicyError, plural="policies")

#: The unlearner of the single-unlearner policies when none is named.
DEFAULT_UNLEARNER = "finetune"

#: The default per-difficulty assignment of the :class:`RUM` policy. ``"low"`` is
#: the least memorized group, ``"high"`` the most, ``"medium"`` any group in
#: between; ``"repair"`` is a last step over the whole forget set that runs on
#: retain data (``None`` to skip); a list names fallbacks in order of preference.
#: SCRUB brings the least memorized items to held-out behaviour without
#: over-forgetting, relabelling and SalUn actively forget the memorized groups, and
#: a short fine-tune with Adam repairs the collateral damage; the measurements
#: behind each choice are in benchmarks/NOTES.md ("The default RUM mapping").
#: The learning rates are pinned to the constants the mapping was measured with; run
#: alone, these unlearners calibrate ``lr="auto"`` instead (whether the pipeline gains from
#: calibrated rates is a follow-up experiment: benchmarks/NOTES.md).
RUM_MAPPING: dict[str, Any] = {
    "low": [("scrub", {"lr": 0.02}), ("neggrad+", {"epochs": 1, "lr": 0.01})],
    "medium": ("random-label", {"lr": 0.01}),
    "high": [("salun", {"lr": 0.05}), ("random-label", {"lr": 0.01})],
    "repair": ("finetune", {"optimizer": "adam", "lr": 1e-3, "epochs": 3}),
}

_LEVELS = ("low", "medium", "high", "repair")


# -- specs of unlearners ---------------------------------------------------------------------
def is_pair(spec: Any) -> bool:
    """Whether ``spec`` is one ``(name, params)`` pair (a two-item list too, as JSON gives it)."""
    return isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], cabc.Mapping)


def as_unlearner(spec: Any, argument: str) -> Unlearner:
    """A name, class, instance or ``(name, params)`` pair as a validated :class:`Unlearner`."""
    if is_pair(spec):
        u = make_unlearner(spec[0], dict(spec[1]), argument)
    else:
        u = make_unlearner(spec, None, argument)
    try:
        u.validate_params()
    except InvalidParameterError as err:
        raise InvalidParameterError(f"{argument}: {err}") from None
    return u


def as_unlearners(specs: Sequence, argument: str) -> tuple[Unlearner, ...]:
    """Several specs as unlearners, named ``argument[i]`` in errors."""
    return tuple(as_unlearner(x, f"{argument}[{i}]") for i, x in enumerate(specs))


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
    return as_unlearner(spec, argument), ()


def difficulty_names(n_groups: int) -> list[str]:
    """``low``/``medium``/``high`` for each group in easiest-first order."""
    if n_groups == 1:
        return ["high"]
    return ["low"] + ["medium"] * (n_groups - 2) + ["high"]


# -- the planning context ----------------------------------------------------------------------
@dataclass(frozen=True)
class PlanningContext:
    """What a :class:`SearchPolicy` may use: everything arrives through this one door.

    Attributes:
        profile: the forget set's profile (groups easiest first).
        model: a private copy of the caller's model on ``device``, as it was before
            unlearning. A search must not change it: copy it (``copy.deepcopy``) first.
        forget: the forget data, in the profile's order, on ``device`` in the model's dtype.
        retain: the retain data likewise, or ``None``.
        device: where the search runs.
        seed: the call's seed. Run the trial of the plan's ``i``-th step with
            :meth:`step_seed` ``(i)``, the seed the executor gives that step, so
            the plan replays exactly.
        n_classes: the number of classes the model predicts.
        retain_guard: the executor's retain guard (``None``: off). Trials run
            under it (:meth:`guard`), so a search never keeps a step that
            :func:`rum.execute` would undo.
        progress: whether to show progress bars.
    """

    profile: Profile
    model: torch.nn.Module
    forget: TensorData
    retain: TensorData | None
    device: torch.device
    seed: int
    n_classes: int
    retain_guard: float | None = 0.5
    progress: bool = False

    @classmethod
    def from_prepared(cls, profile: Profile, prep: Prepared, *, retain_guard: float | None,
                      progress: bool) -> PlanningContext:
        """The context of a call whose inputs :func:`rum._data.prepare_call` validated."""
        model = prep.model.to(prep.device)
        dtype = model_dtype(model)
        return cls(profile=profile, model=model, forget=prep.forget.to(prep.device, dtype),
                   retain=None if prep.retain is None else prep.retain.to(prep.device, dtype),
                   device=prep.device, seed=prep.seed, n_classes=prep.n_classes,
                   retain_guard=retain_guard, progress=progress)

    def step_seed(self, position: int) -> int:
        """The seed :func:`rum.execute` gives the plan's step at ``position`` (0 first)."""
        return step_seeds(self.seed, position + 1)[position]

    def guard(self, model: torch.nn.Module) -> RetainGuard:
        """The retain guard the executor would apply to ``model`` (measured now, as the reference)."""
        return RetainGuard(model, self.retain, self.retain_guard, self.seed)

    def run(self, unlearner: Unlearner, model: torch.nn.Module, forget: TensorData,
            retain: TensorData | None, *, seed: int, guard: RetainGuard | None = None,
            on_epoch: EpochHook | None = None) -> StepRun:
        """Run one trial through the step runner (:func:`rum._runner.run_step`), as the
        executor runs a plan's step: same seeding, context, guard and epoch hook."""
        return run_step(unlearner, model, forget, retain, seed=seed, device=self.device,
                        n_classes=self.n_classes, guard=guard, on_epoch=on_epoch)


@dataclass(frozen=True)
class SearchOutcome:
    """What a :class:`SearchPolicy` found.

    Attributes:
        plan: the plan (with what was tried as ``plan.search``, when recorded).
        model: the model the plan produces: running ``plan`` with
            :func:`rum.execute` (same seed and retain guard) must give these
            weights, so :func:`rum.unlearn` returns it without replaying.
        steps: one :class:`~rum.StepResult` per plan step (its trial's effort).
    """

    plan: Plan
    model: torch.nn.Module
    steps: tuple[StepResult, ...]


# -- the base classes ----------------------------------------------------------------------------
class Policy(ABC):
    """Turns a :class:`~rum.Profile` into steps, from the profile alone.

    A subclass takes its choices as keyword arguments of ``__init__`` (checked
    there, stored under the same names) and implements :meth:`steps`.

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import Policy, register_policy
        >>> @register_policy("hardest-only", force=True)
        ... class HardestOnly(Policy):
        ...     '''Only treat the most memorized group.'''
        ...     def __init__(self, unlearner="random-label"):
        ...         self.unlearner = unlearner
        ...     def steps(self, profile, seed):
        ...         last = profile.summary[-1].group
        ...         u = rum.get_unlearner(self.unlearner)()
        ...         return [rum.Step.from_unlearner(last, profile.indices(last), u)]
        >>> p = rum.Profile.from_groups(np.array([.1, .9]), np.zeros(2), np.array([0, 1]))
        >>> [s.indices for s in rum.plan(p, policy="hardest-only").steps]
        [(1,)]
    """

    #: The registry name, filled in by :func:`register_policy`.
    name: ClassVar[str | None] = None

    @abstractmethod
    def steps(self, profile: Profile, seed: int) -> list[Step]:
        """The ordered steps for ``profile`` (``seed`` for randomised policies)."""

    def explain(self, profile: Profile) -> str:
        """Why the plan for ``profile`` is what it is, when the forget set decided it
        (recorded as ``plan.reason``); empty by default."""
        return ""

    def get_params(self) -> dict[str, Any]:
        """The policy's choices, as given to ``__init__``."""
        init = type(self).__init__
        if init is object.__init__:
            return {}
        names = [p for p in inspect.signature(init).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        defaults = {}
        if type(self).__init__ is not object.__init__:
            defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
                        if p.default is not p.empty}
        shown = [f"{k}={v!r}" for k, v in self.get_params().items()
                 if not (k in defaults and _same(defaults[k], v))]
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def label(self) -> str:
        """The name a plan records for this policy."""
        return type(self).name or type(self).__name__


class SearchPolicy(Policy):
    """A policy that tries unlearners on the data to choose its steps.

    Subclasses implement :meth:`search`; :func:`rum.plan` (given the model and
    the data) and :func:`rum.unlearn` call it with a :class:`PlanningContext`.
    """

    @abstractmethod
    def search(self, ctx: PlanningContext) -> SearchOutcome:
        """Search a plan on the data of ``ctx``."""

    def steps(self, profile: Profile, seed: int) -> list[Step]:
        raise InvalidParameterError(
            f"policy {self.label!r} tries unlearners on the data: use rum.unlearn(..., "
            "policy=...) or rum.plan(profile, policy=..., model=..., forget_set=..., retain_set=...)."
        )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001
        return False


# -- the registry --------------------------------------------------------------------------------
def register_policy(name: str, *, force: bool = False):
    """Class decorator registering a :class:`Policy` subclass under ``name``.

    Examples:
        >>> from rum.policies import Policy, register_policy, list_policies
        >>> @register_policy("nothing", force=True)
        ... class Nothing(Policy):
        ...     def steps(self, profile, seed):
        ...         return []
        >>> "nothing" in list_policies()
        True
    """

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Policy)):
            raise InvalidParameterError(
                f"@register_policy({name!r}) must decorate a subclass of rum.policies.Policy."
            )
        POLICIES.register(name, cls, force=force)
        cls.name = name
        return cls

    return wrap


def get_policy(name: str) -> type:
    """The policy class registered under ``name``."""
    return POLICIES.get(name, "policy")


def list_policies() -> list[str]:
    """Names of the registered policies.

    Examples:
        >>> from rum.policies import list_policies
        >>> [p for p in list_policies() if p in ("auto", "rum", "uniform")]
        ['auto', 'rum', 'uniform']
    """
    return POLICIES.names()


def make_policy(spec: Any, params: cabc.Mapping[str, Any] | None = None, argument: str = "policy") -> Policy:
    """A policy from an instance, a class or a registered name (``params`` go to its ``__init__``).

    Examples:
        >>> from rum.policies import make_policy
        >>> make_policy("uniform", {"unlearner": "neggrad+"})
        Uniform(unlearner='neggrad+')
    """
    params = dict(params or {})
    if isinstance(spec, Policy):
        if params:
            raise InvalidParameterError(
                f"{argument} is already a configured policy ({spec!r}); give its options to its "
                "constructor instead."
            )
        return spec
    if isinstance(spec, type) and issubclass(spec, Policy):
        cls = spec
    elif isinstance(spec, str):
        cls = get_policy(spec)
    else:
        raise InvalidParameterError(
            f"{argument} must be a registered name ({', '.join(list_policies())}), a "
            f"rum.policies.Policy subclass or instance, got {type(spec).__name__}."
        )
    init = cls.__init__
    allowed = [] if init is object.__init__ else [
        p for p in inspect.signature(init).parameters if p != "self"]
    check_options(params, allowed, f"policy {cls.name or cls.__name__!r}")
    return cls(**params)


# -- the built-in policies -----------------------------------------------------------------------
class _OneUnlearner(Policy):
    """A policy running one unlearner (a name, class, instance or ``(name, params)`` pair)."""

    def __init__(self, unlearner: Any = DEFAULT_UNLEARNER):
        self.unlearner = unlearner
        if isinstance(unlearner, cabc.Mapping):
            raise InvalidParameterError(
                f"{type(self).__name__} runs one unlearner; pass unlearner='name' (or a class, an "
                "instance or a (name, params) pair), or use RUM or Mapping for one per group."
            )
        as_unlearner(unlearner, "unlearner")  # checked now, before any data is touched

    def _unlearner(self) -> Unlearner:
        return as_unlearner(self.unlearner, "unlearner")


@register_policy("vanilla")
class Vanilla(_OneUnlearner):
    """One step over the whole forget set, ignoring the groups.

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import Vanilla
        >>> p = rum.Profile.from_groups(np.array([.1, .9]), np.zeros(2), np.array([0, 1]))
        >>> [(s.unlearner, s.indices) for s in rum.plan(p, Vanilla("neggrad+")).steps]
        [('neggrad+', (0, 1))]
    """

    def steps(self, profile, seed):
        return [Step.from_unlearner(-1, range(len(profile)), self._unlearner())]


@register_policy("uniform")
class Uniform(_OneUnlearner):
    """The same unlearner on each group in turn, easiest first (RUM^F).

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import Uniform
        >>> p = rum.Profile.from_groups(np.array([.1, .9]), np.zeros(2), np.array([0, 1]))
        >>> [(s.unlearner, s.indices) for s in rum.plan(p, Uniform("finetune")).steps]
        [('finetune', (0,)), ('finetune', (1,))]
    """

    def steps(self, profile, seed):
        u = self._unlearner()
        return [Step.from_unlearner(s.group, profile.indices(s.group), u) for s in profile.summary]


@register_policy("shuffle")
class Shuffle(_OneUnlearner):
    """A control: the same unlearner on random groups of the profile's group sizes."""

    def steps(self, profile, seed):
        u = self._unlearner()
        perm = np.random.default_rng(seed).permutation(len(profile))
        steps, start = [], 0
        for s in profile.summary:
            idx = np.sort(perm[start : start + s.size])
            steps.append(Step.from_unlearner(s.group, idx, u))
            start += s.size
        return steps


def _group_keys(unlearners: cabc.Mapping, argument: str, names: Sequence[str] = ()) -> dict:
    """The mapping with digit-string keys (as JSON gives them) turned into group ids."""
    out = {}
    for key, value in unlearners.items():
        if isinstance(key, str) and key.lstrip("-").isdigit():
            key = int(key)
        if not (isinstance(key, (int, np.integer)) and not isinstance(key, bool)) and key not in names:
            choices = "a group id" + (f" or one of {', '.join(map(repr, names))}" if names else "")
            raise InvalidParameterError(f"{argument} has a key {key!r}; each key must be {choices}.")
        out[int(key) if isinstance(key, (int, np.integer)) else key] = value
    return out


def _check_groups(keys: Sequence, profile: Profile, argument: str) -> None:
    groups = [s.group for s in profile.summary]
    bad = [k for k in keys if isinstance(k, int) and k not in groups]
    if bad:
        raise InvalidParameterError(
            f"{argument} names groups {bad} that the profile does not have (it has {groups})."
        )


@register_policy("rum")
class RUM(Policy):
    """An unlearner per group by difficulty, then an optional repair step (the default).

    Args:
        unlearners: overrides of :data:`RUM_MAPPING` by difficulty name
            (``{"high": "salun"}``), by group id (``{2: ("neggrad+", {"alpha": 0.8})}``),
            or for the repair step (``{"repair": None}`` drops it); a list names
            fallbacks in order of preference. Groups whose unlearner is ``noop`` get
            no step.

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import RUM
        >>> p = rum.Profile.from_groups(np.array([.1, .5, .9]), np.zeros(3), np.array([0, 1, 2]))
        >>> [s.unlearner for s in rum.plan(p, RUM({"high": "neggrad+", "repair": None})).steps]
        ['scrub', 'random-label', 'neggrad+']
    """

    def __init__(self, unlearners: cabc.Mapping | None = None):
        self.unlearners = unlearners
        if unlearners is not None and not isinstance(unlearners, cabc.Mapping):
            raise InvalidParameterError(
                "RUM takes unlearners=None or a mapping {group or 'low'/'medium'/'high'/'repair': "
                "unlearner}; for one unlearner on every group use Uniform(unlearner)."
            )
        for key, spec in _group_keys(unlearners or {}, "unlearners", _LEVELS).items():
            if spec is not None:
                as_choice(spec, f"unlearners[{key!r}]")  # checked now, before any data
            elif key != "repair":
                raise InvalidParameterError(
                    f"unlearners[{key!r}] is None; only the repair step can be dropped. Use "
                    "'noop' to leave a group alone."
                )

    def steps(self, profile, seed):
        user = _group_keys(self.unlearners or {}, "unlearners", _LEVELS)
        _check_groups(list(user), profile, "unlearners")
        check = profile.check
        if check is not None and check.keep_model:
            return [noop_step(len(profile))]
        steps, skip = [], np.zeros(len(profile), dtype=bool)
        if check is not None and check.kind == "class-wise":
            steps.append(class_step(check))
            skip[list(check.class_positions)] = True
        for s, level in zip(profile.summary, difficulty_names(profile.n_groups)):
            spec = user.get(s.group, user.get(level, RUM_MAPPING[level]))
            u, fallbacks = as_choice(spec, f"unlearners[{s.group!r}]")
            indices = profile.indices(s.group)
            indices = indices[~skip[indices]]
            if type(u).name == "noop" or not len(indices):
                continue
            steps.append(Step.from_unlearner(s.group, indices, u, fallbacks=fallbacks))
        repair = user.get("repair", RUM_MAPPING["repair"])
        rest = np.flatnonzero(~skip)
        if repair is not None and len(rest):
            u, fallbacks = as_choice(repair, "unlearners['repair']")
            steps.append(Step.from_unlearner(-1, rest, u, fallbacks=fallbacks))
        if not steps:
            steps.append(noop_step(len(profile)))
        return steps

    def explain(self, profile):
        check = profile.check
        if check is None or not (check.keep_model or check.kind == "class-wise"):
            return ""
        return check.reason


def noop_step(n_forget: int) -> Step:
    """The one step of a plan that keeps the model: ``noop`` over the whole forget set."""
    return Step.from_unlearner(-1, range(n_forget), as_unlearner("noop", "noop"))


def class_step(check) -> Step:
    """The step that forgets the classes of a class-wise forget set (``profile.check``):
    ``forget-class`` over their items (group ``-2``)."""
    u = as_unlearner(("forget-class", {"classes": list(check.classes)}), "forget-class")
    return Step.from_unlearner(-2, check.class_positions, u)


@register_policy("mapping")
class Mapping(Policy):
    """Exactly the given ``{group: unlearner}``; groups not named get no step.

    Examples:
        >>> import numpy as np, rum
        >>> from rum.policies import Mapping
        >>> p = rum.Profile.from_groups(np.array([.1, .9]), np.zeros(2), np.array([0, 1]))
        >>> [(s.group, s.unlearner) for s in rum.plan(p, Mapping({1: "random-label"})).steps]
        [(1, 'random-label')]
    """

    def __init__(self, unlearners: Any = None):
        self.unlearners = unlearners
        if not isinstance(unlearners, cabc.Mapping):
            raise InvalidParameterError(
                "Mapping needs unlearners={group: unlearner or (name, params) or a list of "
                "fallbacks}, e.g. Mapping({0: 'noop', 1: 'random-label'})."
            )
        for key, spec in _group_keys(unlearners, "unlearners").items():
            as_choice(spec, f"unlearners[{key}]")

    def steps(self, profile, seed):
        user = _group_keys(self.unlearners, "unlearners")
        _check_groups(list(user), profile, "unlearners")
        return [
            Step.from_unlearner(s.group, profile.indices(s.group), u, fallbacks=fallbacks)
            for s in profile.summary
            if s.group in user
            for u, fallbacks in [as_choice(user[s.group], f"unlearners[{s.group}]")]
        ]
