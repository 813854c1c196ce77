"""The solver settings of an influence correction: one record, shared by :func:`rum.correct`
and the ``influence`` unlearner."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rum._records import jsonable
from rum._validation import NONE, Interval, Options, check_options, validate_params
from rum.exceptions import InvalidParameterError
from rum.influence.workspace import default_batch_size

__all__ = ["InfluenceSettings", "SOLVERS", "EXACT_MAX_PARAMS", "DEEP_DAMPING", "CONVEX_MAX_STEPS"]

SOLVERS = ("auto", "exact", "cg", "lissa")
#: Largest parameter count for which ``solver="auto"`` builds the dense Hessian.
EXACT_MAX_PARAMS = 3000
#: Default damping for non-convex models (a Tikhonov term on the mean-loss Hessian).
DEEP_DAMPING = 0.1
#: Default cap on Newton steps for convex models.
CONVEX_MAX_STEPS = 25


def _allowed(*constraints) -> dict:
    return {"allowed": list(constraints)}


@dataclass(frozen=True)
class InfluenceSettings:
    """How an influence correction solves for its update (``None`` fields: chosen from the model).

    Attributes:
        order: 1 (``theta - tau G``, a gradient step) or 2 (``theta - H^-1 G``,
            a Newton step).
        solver: ``"auto"`` (exact for linear models and linear last layers of up
            to 3,000 parameters, else ``"cg"``), ``"exact"`` (dense Hessian),
            ``"cg"`` (conjugate gradient on Hessian-vector products) or
            ``"lissa"`` (stochastic, for very large models).
        tau: the first-order step size (on the mean objective).
        damping: Tikhonov term added to the Hessian (default 0 for linear
            models, 0.1 otherwise: with 0.01 a single step wrecked a small MLP
            trained to near-zero loss, whose Hessian is almost flat).
        scale: LiSSA's scale (default: 1.5 x the top eigenvalue, by power iteration).
        max_steps: Newton steps (default 25 for linear models, stopping at
            ``tol``; 1 otherwise).
        tol: stop refining when the gradient residual's norm is below this.
        cg_maxiter: conjugate-gradient iterations per solve.
        lissa_depth: LiSSA's recursion depth.
        lissa_repeats: LiSSA repetitions (their results are averaged).
        batch_size: items per forward pass (and LiSSA's mini-batch); default
            512, or 8,192 when the updated part is linear.

    Examples:
        >>> from rum.influence import InfluenceSettings
        >>> s = InfluenceSettings(solver="cg", damping=0.01)
        >>> s
        InfluenceSettings(solver='cg', damping=0.01)
        >>> InfluenceSettings.coerce({"solver": "cg", "damping": 0.01}) == s
        True
    """

    order: int = field(default=2, metadata=_allowed(Options((1, 2))))
    solver: str = field(default="auto", metadata=_allowed(Options(SOLVERS)))
    tau: float = field(default=1.0, metadata=_allowed(Interval(float, 0, None, closed="neither")))
    damping: float | None = field(default=None, metadata=_allowed(Interval(float, 0, None), NONE))
    scale: float | None = field(
        default=None, metadata=_allowed(Interval(float, 0, None, closed="neither"), NONE))
    max_steps: int | None = field(default=None, metadata=_allowed(Interval(int, 1, None), NONE))
    tol: float = field(default=1e-8, metadata=_allowed(Interval(float, 0, None)))
    cg_maxiter: int = field(default=100, metadata=_allowed(Interval(int, 1, None)))
    lissa_depth: int = field(default=500, metadata=_allowed(Interval(int, 1, None)))
    lissa_repeats: int = field(default=1, metadata=_allowed(Interval(int, 1, None)))
    batch_size: int | None = field(default=None, metadata=_allowed(Interval(int, 1, None), NONE))

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def constraints(cls) -> dict[str, list]:
        """The allowed values of each field, as ``validate_params`` reads them."""
        return {f.name: f.metadata["allowed"] for f in fields(cls)}

    def validate(self, owner: str = "InfluenceSettings") -> None:
        """Check every field; :class:`~rum.exceptions.InvalidParameterError` names the first bad one."""
        validate_params({f.name: getattr(self, f.name) for f in fields(self)}, self.constraints(), owner)

    @classmethod
    def coerce(cls, value: Any, argument: str = "settings") -> InfluenceSettings:
        """``None`` (the defaults), an :class:`InfluenceSettings` or a mapping of its fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            check_options(value, [f.name for f in fields(cls)], argument)
            try:
                return cls(**dict(value))
            except InvalidParameterError as err:
                raise InvalidParameterError(f"{argument}: {err}") from None
        raise InvalidParameterError(
            f"{argument} must be None, a rum.influence.InfluenceSettings or a dict of its fields "
            f"(e.g. {{'solver': 'cg', 'damping': 0.01}}), got {type(value).__name__}."
        )

    def resolve(self, convex: bool, n_params: int, linear_tail: bool = False) -> InfluenceSettings:
        """These settings with every ``None`` (and ``solver="auto"``) filled in for the model at hand.

        ``convex``: the whole model is linear. ``linear_tail``: the updated
        parameters are one linear layer on fixed features (see
        :mod:`rum.influence.features`): its Hessian is cheap, so ``"auto"``
        picks the exact solver, but the damping and step defaults stay those
        of deep models (the features of a memorising network often separate
        the training set, where the undamped optimum runs off to infinity).

        Examples:
            >>> InfluenceSettings().resolve(convex=True, n_params=10).solver
            'exact'
            >>> InfluenceSettings().resolve(convex=False, n_params=10).max_steps
            1
        """
        changes: dict[str, Any] = {}
        if self.batch_size is None:
            changes["batch_size"] = default_batch_size(convex or linear_tail)
        if self.solver == "auto":
            small = n_params <= EXACT_MAX_PARAMS
            changes["solver"] = "exact" if ((convex or linear_tail) and small) else "cg"
        if self.damping is None:
            changes["damping"] = 0.0 if convex else DEEP_DAMPING
        if self.max_steps is None:
            changes["max_steps"] = CONVEX_MAX_STEPS if (convex and self.order == 2) else 1
        if self.order == 1:
            changes["max_steps"] = 1
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != f.default]
        return f"InfluenceSettings({', '.join(changed)})"

    def to_dict(self) -> dict:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InfluenceSettings:
        return cls.coerce(d)
