"""Planning policies for :func:`rum.unlearn` and :func:`rum.plan`.

A policy turns the forget set's profile into an ordered plan of steps, and carries
its own choices::

    from rum.policies import RUM, Uniform, Mapping, Auto
    rum.unlearn(model, forget, retain, policy=RUM({"high": "salun"}))
    rum.unlearn(model, forget, retain, policy=Auto(budget=30))

A name is a shorthand for a policy with its defaults (``policy="auto"``).
Subclass :class:`Policy` (or :class:`SearchPolicy`, to try unlearners on the
data) and register it with :func:`register_policy` to add your own.
"""

from rum.planner.auto import AUTO_CANDIDATES, AUTO_REPAIR, Auto
from rum.planner.policies import (
    DEFAULT_UNLEARNER,
    RUM,
    RUM_MAPPING,
    Mapping,
    PlanningContext,
    Policy,
    SearchOutcome,
    SearchPolicy,
    Shuffle,
    Uniform,
    Vanilla,
    get_policy,
    list_policies,
    make_policy,
    register_policy,
)

__all__ = [
    "Policy",
    "SearchPolicy",
    "PlanningContext",
    "SearchOutcome",
    "RUM",
    "Uniform",
    "Vanilla",
    "Shuffle",
    "Mapping",
    "Auto",
    "register_policy",
    "get_policy",
    "list_policies",
    "make_policy",
    "RUM_MAPPING",
    "DEFAULT_UNLEARNER",
    "AUTO_CANDIDATES",
    "AUTO_REPAIR",
]
