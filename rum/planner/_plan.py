"""The Plan record: an ordered list of unlearning steps, one per group.

Plans are data: a step names its unlearner by its registry name, and a plan read
from JSON is turned back into unlearners through the registry alone. Loading,
printing or running a plan never imports a module; a plug-in is available once the
user has imported the code that registers it (:func:`rum.register_unlearner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rum._records import jsonable, load_json, save_json, table
from rum.exceptions import UnknownUnlearnerError
from rum.planner._search import SearchReport
from rum.unlearners.base import Unlearner
from rum.unlearners.registry import UNLEARNERS, make_unlearner

__all__ = ["Plan", "Step", "RETAIN_POLICIES"]

#: ``"strict"``: every step's retain data excludes the whole forget set.
#: ``"progressive"``: groups not yet processed stay in the retain data of earlier steps
#: (the RUM reference code's sequential mode).
RETAIN_POLICIES = ("strict", "progressive")


def unlearner_key(u: Unlearner) -> str:
    """The name a step records for an unlearner: its registry name, else ``module:QualName``.

    A plan holding an unregistered class runs in the session that made it (the step
    keeps the object); saved and loaded, it needs the class registered.
    """
    cls = type(u)
    if cls.name and cls.name in UNLEARNERS and UNLEARNERS.get(cls.name) is cls:
        return cls.name
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclass(frozen=True)
class Step:
    """One unlearning step.

    Attributes:
        group: the profile group it treats (-1 for the whole forget set, -2 for
            the items of the classes a class-wise forget set takes out).
        indices: forget-set positions of the items it unlearns.
        unlearner: a registry name (or ``module:Class`` for unregistered classes).
        params: the unlearner's hyper-parameters.
        retain_policy: ``"strict"`` or ``"progressive"`` (see :data:`RETAIN_POLICIES`).
        fallbacks: ``(unlearner, params)`` pairs run in turn, from the weights
            before the step, when the unlearner before them diverges or is undone
            by the executor's retain guard.

    Examples:
        >>> import rum
        >>> s = rum.Step(0, [3, 1], "finetune", {"epochs": 2}, fallbacks=[("noop", {})])
        >>> s.indices, s.build_all()
        ((3, 1), [Finetune(epochs=2), Noop()])
    """

    group: int
    indices: tuple[int, ...]
    unlearner: str
    params: dict = field(default_factory=dict)
    retain_policy: str = "strict"
    fallbacks: tuple[tuple[str, dict], ...] = ()
    #: The unlearner objects the step was made from, primary then fallbacks
    #: (not serialised); lets classes that cannot be re-imported by name
    #: (defined in a function) run.
    instance: tuple[Unlearner, ...] | Unlearner | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", tuple(np.asarray(self.indices, dtype=np.int64).ravel().tolist()))
        # a record parameter (an InfluenceSettings...) is kept as the dict JSON gives back
        object.__setattr__(self, "params", {k: v.to_dict() if _is_record(v) else v
                                            for k, v in dict(self.params).items()})
        object.__setattr__(self, "fallbacks", tuple((str(n), dict(p)) for n, p in self.fallbacks))

    @classmethod
    def from_unlearner(
        cls, group: int, indices: Any, unlearner: Unlearner, retain_policy: str = "strict",
        fallbacks: Sequence[Unlearner] = (),
    ) -> Step:
        return cls(
            group, indices, unlearner_key(unlearner), unlearner.get_params(), retain_policy,
            fallbacks=tuple((unlearner_key(f), f.get_params()) for f in fallbacks),
            instance=(unlearner, *fallbacks),
        )

    def build(self) -> Unlearner:
        """Instantiate the step's unlearner with its parameters."""
        return self.build_all()[0]

    def build_all(self) -> list[Unlearner]:
        """The step's unlearner, then its fallbacks, instantiated with their parameters."""
        made = self.instance if isinstance(self.instance, tuple) else (self.instance,)
        specs = [(self.unlearner, self.params), *self.fallbacks]
        return [_build(name, params, made[i] if i < len(made) else None)
                for i, (name, params) in enumerate(specs)]

    def to_dict(self) -> dict:
        out = {
            "group": self.group,
            "indices": list(self.indices),
            "unlearner": self.unlearner,
            "params": jsonable(self.params),
            "retain_policy": self.retain_policy,
        }
        if self.fallbacks:
            out["fallbacks"] = [{"unlearner": n, "params": jsonable(p)} for n, p in self.fallbacks]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Step:
        """A step from :meth:`to_dict`'s form; every unlearner it names must be registered."""
        check_registered(d["unlearner"])
        for f in d.get("fallbacks", ()):
            check_registered(f["unlearner"], "step.fallbacks")
        return cls(
            group=int(d["group"]),
            indices=tuple(d["indices"]),
            unlearner=d["unlearner"],
            params=dict(d.get("params") or {}),
            retain_policy=d.get("retain_policy", "strict"),
            fallbacks=tuple((f["unlearner"], dict(f.get("params") or {})) for f in d.get("fallbacks", ())),
        )


def _is_record(value: Any) -> bool:
    return hasattr(value, "to_dict") and hasattr(type(value), "from_dict")


def _build(name: str, params: dict, instance: Unlearner | None) -> Unlearner:
    """An unlearner from its recorded name and parameters (or the class of ``instance``).

    Names resolve through the registry only; nothing is imported.
    """
    if instance is not None:
        return make_unlearner(type(instance), params, "step.unlearner")
    check_registered(name)
    return make_unlearner(name, params, "step.unlearner")


def check_registered(name: str, where: str = "step.unlearner") -> None:
    """Raise :class:`~rum.exceptions.UnknownUnlearnerError` unless ``name`` is a registered unlearner.

    The message lists the registered names and, for a ``module:Class`` name (a
    plan made from an unregistered class), says how to make it loadable.
    """
    if isinstance(name, str) and name in UNLEARNERS:
        return
    known = ", ".join(UNLEARNERS.names())
    if isinstance(name, str) and ":" in name:
        raise UnknownUnlearnerError(
            f"{where}={name!r} names a class, not a registered unlearner. rum never imports "
            "code named in a plan: register the class with @rum.register_unlearner('a-name'), "
            f"import the module that does so, and make the plan again. Registered: {known}."
        )
    UNLEARNERS.get(name, where)  # raises, listing the registered names


def _with_changes(name: str, params: dict) -> str:
    """``name`` and the parameters that differ from its defaults, e.g. ``neggrad+(epochs=1)``."""
    try:
        defaults = jsonable(_build(name, {}, None).get_params())
    except Exception:  # noqa: BLE001 - a label must never break printing
        return name
    changed = [f"{k}={v}" for k, v in jsonable(params).items() if defaults.get(k) != v]
    return f"{name}({', '.join(changed)})" if changed else name


@dataclass(frozen=True)
class Plan:
    """An ordered tuple of :class:`Step`, run in sequence by :func:`rum.execute`.

    Attributes:
        steps: the steps, in execution order.
        policy: the policy that made the plan.
        n_forget: size of the forget set the plan was made for.
        n_retain: size of the retain set (0 when unknown); used for the cost estimate.
        search: for a plan of the ``auto`` policy, what its search aimed at and
            tried (:class:`~rum.planner.SearchReport`; ``print(plan.search)``);
            otherwise ``None``. Saved with the plan; plans compare equal without it.
        reason: why the plan is what it is, when the forget set decided it (a
            class-wise forget set, or one the model already treats like held-out
            data, so that the model is kept); empty otherwise.

    Examples:
        >>> plan = Plan((Step(0, [0, 1], "finetune", {"epochs": 3}),), policy="manual", n_forget=2)
        >>> plan.steps[0].unlearner, Plan.from_dict(plan.to_dict()) == plan
        ('finetune', True)
    """

    steps: tuple[Step, ...]
    policy: str = "vanilla"
    n_forget: int = 0
    n_retain: int = 0
    search: SearchReport | None = field(default=None, compare=False, repr=False)
    reason: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def estimated_cost(self) -> list[float | None]:
        """Per-step cost estimate in retain epochs (passes over the retain set).

        Retraining from scratch costs as many retain epochs as the original
        training had epochs, so a plan estimated at 2 retain epochs is about
        30x cheaper than retraining a model trained for 60 epochs. ``None``
        where an unlearner gives no estimate or the retain size is unknown.
        """
        out: list[float | None] = []
        for s in self.steps:
            work = None
            if self.n_retain:
                try:
                    work = s.build().estimate_work(len(s.indices), self.n_retain)
                except Exception:  # noqa: BLE001 - an estimate must never break printing
                    work = None
            out.append(None if work is None else work / self.n_retain)
        return out

    def __str__(self) -> str:
        rows = []
        costs = self.estimated_cost()
        for i, (s, c) in enumerate(zip(self.steps, costs)):
            params = ", ".join(
                f"{k}={v}" for k, v in jsonable(s.params).items() if v is not None
            )
            name = " else ".join([s.unlearner, *(_with_changes(n, p) for n, p in s.fallbacks)])
            rows.append([i, s.group, len(s.indices), name, c, params])
        title = f"Plan ({self.policy}, {len(self.steps)} step(s), {self.n_forget} forget items)"
        text = table(
            ["step", "group", "items", "unlearner", "est. retain epochs", "params"], rows, title
        )
        if self.reason:
            text += f"\nwhy: {self.reason}"
        known = [c for c in costs if c is not None]
        if known and len(known) == len(costs):
            text += f"\nestimated total: {sum(known):.2f} retain epochs"
        elif not self.n_retain and self.steps:
            text += ("\nestimated cost: unknown without the retain set's size "
                     "(rum.plan(..., n_retain=len(retain_set)) or retain_set=...)")
        return text

    def to_networkx(self):
        """The steps as a directed path graph (node attributes: group, unlearner, size)."""
        import networkx as nx

        g = nx.DiGraph()
        for i, s in enumerate(self.steps):
            g.add_node(i, group=s.group, unlearner=s.unlearner, size=len(s.indices))
            if i:
                g.add_edge(i - 1, i)
        return g

    def to_dict(self) -> dict:
        out = {
            "policy": self.policy,
            "n_forget": self.n_forget,
            "n_retain": self.n_retain,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.search is not None:
            out["search"] = self.search.to_dict()
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(
            steps=tuple(Step.from_dict(s) for s in d["steps"]),
            policy=d.get("policy", "vanilla"),
            n_forget=int(d.get("n_forget", 0)),
            n_retain=int(d.get("n_retain", 0)),
            search=None if d.get("search") is None else SearchReport.from_dict(d["search"]),
            reason=str(d.get("reason", "")),
        )

    def save(self, path: str | Path) -> Path:
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_dict(load_json(path))
