"""The base class every unlearner derives from, and its capability tags."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from rum._data import TensorData
from rum._runtime.context import RunContext
from rum._validation import check_options, validate_params
from rum.exceptions import InvalidParameterError

__all__ = ["SCENARIOS", "Unlearner", "UnlearnerTags"]

#: The forget scenarios an unlearner's ``tags.suits`` may name: every item of
#: some classes (``"class-wise"``), a sub-population of one class
#: (``"sub-class"``), items drawn at random (``"random"``), and forget sets that
#: mix memorized (e.g. mislabeled) items with ordinary ones, as in the RUM paper
#: (``"mixed"``).
SCENARIOS = ("class-wise", "sub-class", "random", "mixed")


@dataclass(frozen=True)
class UnlearnerTags:
    """What an unlearner can do and needs, for planners and the conformance kit.

    Attributes:
        requires_retain: it cannot run without retain data.
        stochastic: its result depends on the random seed.
        exact: it yields exactly a retrained model (only ``retrain``).
        cost: rough relative cost: ``"none"``, ``"low"``, ``"medium"``, ``"high"``
            (``"high"`` is about a full retrain).
        source: the paper the method comes from.
        suits: the forget scenarios it is made for or was shown to work on in
            its source papers, from :data:`SCENARIOS` (``"class-wise"``,
            ``"sub-class"``, ``"random"``, ``"mixed"``); empty: not stated.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("retrain").tags.exact, rum.get_unlearner("finetune").tags.requires_retain
        (True, True)
        >>> rum.get_unlearner("neggrad+").tags.suits
        ('class-wise', 'sub-class', 'random', 'mixed')
    """

    requires_retain: bool = False
    stochastic: bool = True
    exact: bool = False
    cost: str = "low"
    source: str = ""
    suits: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


class Unlearner(ABC):
    """Base class of all unlearning algorithms.

    Subclasses declare their hyper-parameters as keyword arguments of
    ``__init__``, store them unchanged under the same names, list their
    allowed values in ``_parameter_constraints`` and implement
    :meth:`_unlearn`. Nothing else: validation, copying the model, seeding,
    device placement, timing, progress, the NaN guard and the retain guard are
    done for them. Run one with ``rum.unlearn(model, forget_set, retain_set,
    unlearner=...)`` (a registered name, the class or an instance).

    Examples:
        >>> import torch, rum
        >>> from rum.unlearners import Interval
        >>> class ScaleDown(rum.Unlearner):
        ...     '''Shrink every weight a little (a toy, for illustration).'''
        ...     _parameter_constraints = {"factor": [Interval(float, 0, 1)]}
        ...     def __init__(self, factor=0.9):
        ...         self.factor = factor
        ...     def _unlearn(self, model, forget, retain, ctx):
        ...         with torch.no_grad():
        ...             for p in model.parameters():
        ...                 p.mul_(self.factor)
        ...         return model
        >>> ScaleDown(factor=0.5)
        ScaleDown(factor=0.5)
    """

    tags: ClassVar[UnlearnerTags] = UnlearnerTags()
    _parameter_constraints: ClassVar[dict[str, list]] = {}
    #: The registry name, filled in by :func:`rum.register_unlearner`.
    name: ClassVar[str | None] = None
    #: Where the calibration of ``lr="auto"`` starts, and the learning rate a direct call
    #: of ``_unlearn`` uses for ``"auto"`` (``None``: the unlearner has no ``lr``).
    reference_lr: ClassVar[float | None] = None

    # -- parameters --------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        sig = inspect.signature(init)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ must list its hyper-parameters explicitly; "
                    "*args and **kwargs are not allowed."
                )
            names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Unlearner:
        """Set hyper-parameters by name; unknown names raise."""
        check_options(params, self._param_names(), f"{type(self).__name__}.set_params()")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def clone(self, **overrides: Any) -> Unlearner:
        """A new unlearner of the same class with the same (or overridden) parameters."""
        params = {**self.get_params(), **overrides}
        return type(self)(**params)

    def validate_params(self) -> None:
        """Check every hyper-parameter against ``_parameter_constraints``."""
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)

    def __repr__(self) -> str:
        defaults = {}
        try:
            sig = inspect.signature(type(self).__init__)
            defaults = {
                p.name: p.default for p in sig.parameters.values() if p.default is not p.empty
            }
        except (TypeError, ValueError):  # pragma: no cover
            pass
        shown = []
        for k, v in self.get_params().items():
            if k in defaults and _same(defaults[k], v):
                continue
            shown.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    def resolved_lr(self) -> float:
        """``lr``, with ``"auto"`` read as :attr:`reference_lr`.

        :func:`rum.unlearn` (and every plan step) replaces ``"auto"`` by a calibrated
        value before the hook runs; this is what a direct call of ``_unlearn`` uses.
        """
        lr = self.get_params().get("lr")
        if lr == "auto":
            if self.reference_lr is None:
                raise InvalidParameterError(
                    f"{type(self).__name__} has lr='auto' but no reference_lr to start from.")
            return float(self.reference_lr)
        return lr

    # -- running -----------------------------------------------------------------------------
    def _check_can_run(self, retain: TensorData | None) -> None:
        self.validate_params()
        if self.tags.requires_retain and (retain is None or len(retain) == 0):
            raise InvalidParameterError(
                f"{type(self).__name__} needs retain data: pass retain_set=(X_retain, y_retain)."
            )

    @abstractmethod
    def _unlearn(
        self,
        model: torch.nn.Module,
        forget: TensorData,
        retain: TensorData | None,
        ctx: RunContext,
    ) -> torch.nn.Module:
        """Modify ``model`` (a private copy, already on ``ctx.device``) and return it.

        ``forget`` and ``retain`` are already validated and on ``ctx.device``.
        Report each iteration's loss with ``ctx.step(loss)`` so the executor
        can show progress and stop a diverging step.
        """

    def truncated(self, epochs: int) -> Unlearner | None:
        """An unlearner that runs exactly this one's first ``epochs`` epochs, or ``None``.

        The ``auto`` policy stops a candidate at its best epoch and must be able
        to replay exactly that. The default clones with ``epochs=epochs``, which
        is right when epoch ``e`` does not depend on the total number of epochs;
        override it (or return ``None``) when a schedule does.
        """
        if "epochs" not in self.get_params():
            return None
        return self.clone(epochs=epochs)

    def estimate_work(self, n_forget: int, n_retain: int) -> float | None:
        """Rough number of per-item gradient evaluations this unlearner will make.

        Used by :func:`rum.plan` to print a cost estimate before anything runs;
        ``None`` means unknown. Override in subclasses.
        """
        return None

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        """Cheap settings for the test suite (override to make tests fast)."""
        return {}

    @classmethod
    def _expected_failed_checks(cls) -> dict[str, str]:
        """Conformance checks this unlearner is known to fail: ``{check name: reason}``.

        See :mod:`rum.testing`; the kit reports them as expected failures.
        """
        return {}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001
        return False
