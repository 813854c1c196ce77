"""What the ``auto`` policy's search tried and aimed at: a frozen record on its result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rum._records import fmt, jsonable, table

__all__ = ["SearchReport", "Trial"]


def _score(value) -> float:
    return math.inf if value is None else float(value)


def _stages(stages) -> str:
    """Stage ids as printed: group numbers, ``repair`` for -1."""
    return ", ".join("repair" if g == -1 else f"group {g}" for g in stages)


@dataclass(frozen=True)
class Trial:
    """One candidate unlearner tried on one stage of the search.

    Attributes:
        group: the profile group the candidate ran on; ``-1`` for the repair
            stage over the whole forget set.
        unlearner: the candidate's registered name.
        params: its hyper-parameters, as tried (the kept step is cut to ``epochs``).
        epochs: the epoch count of its best score (``-1`` when it is not
            epoch-based, ``0`` when no epoch scored).
        score: its best score (lower is better: the groups' distance from their
            target plus the retain accuracy lost on the retain guard's slice);
            ``inf`` when no epoch
            finished with a finite loss.
        baseline: the score of doing nothing at that stage, the bar to beat.
        seconds: what the trial cost, scoring included.
        kept: whether it became a step of the plan (when no trial is kept, the
            plan is a single ``noop`` step).
    """

    group: int
    unlearner: str
    params: dict
    epochs: int
    score: float
    baseline: float
    seconds: float
    kept: bool = False

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> Trial:
        return cls(**{**d, "score": _score(d["score"]), "baseline": _score(d["baseline"])})


@dataclass(frozen=True)
class SearchReport:
    """What the ``auto`` policy's search aimed at and tried (``result.search``).

    Attributes:
        trials: every candidate tried, in order, with the score of doing
            nothing beside it.
        target: where the per-item targets came from: the reference
            unlearner's repr, or ``"neighbors"``.
        reference: the short retrain behind the target, when one was trained:
            ``unlearner``, ``expected`` (what a trained model is expected to get
            right on the held-out slice), ``reference_accuracy`` (what the
            reference got right there), ``epochs``, ``seconds``, and ``scale``
            when it was used. A reference that was not used (``target`` is
            ``"neighbors"``) stopped too far from ``expected``.
        target_accuracy: the forget accuracy the search aimed at.
        seconds: the search's time, the target included.
        on_target: the stages (groups, ``-1`` for the repair) where doing
            nothing already scored 0: no candidate can score lower, so none ran.
        budget: the search's time limit in seconds (``budget=``), or ``None``.
        cut: the stages (groups, ``-1`` for the repair) where the budget
            stopped a trial before its length or patience did, or left a
            candidate untried. A reference it stopped has ``"cut": True``.

    Examples:
        >>> import rum
        >>> from rum.demo import digits_scenario
        >>> s = digits_scenario(seed=0)
        >>> res = rum.unlearn(s.model, s.forget, s.retain, policy="auto", random_state=0)
        >>> [t.unlearner for t in res.search.trials if t.kept] == [
        ...     st.unlearner for st in res.plan.steps]
        True
        >>> print(res.search)  # doctest: +SKIP
    """

    trials: tuple[Trial, ...]
    target: str
    reference: dict = field(default_factory=dict)
    target_accuracy: float = float("nan")
    seconds: float = 0.0
    on_target: tuple[int, ...] = ()
    budget: float | None = None
    cut: tuple[int, ...] = ()

    def summary(self) -> str:
        """One line: where the target came from, what it asked for, what the search cost."""
        ref = self.reference
        if not ref:
            source = "neighbour agreement (no reference trained)"
        elif self.target == "neighbors":
            source = (
                f"neighbour agreement: the reference {ref.get('unlearner')} was abandoned after "
                f"{ref.get('epochs')} epoch(s), held-out accuracy {fmt(ref.get('reference_accuracy'), 3)} "
                f"too far from the expected {fmt(ref.get('expected'), 3)}"
            )
        else:
            source = (
                f"a short retrain, {ref.get('unlearner')} (held-out accuracy "
                f"{fmt(ref.get('reference_accuracy'), 3)} of an expected {fmt(ref.get('expected'), 3)})"
            )
        skipped = ""
        if self.on_target:
            skipped = f"; already on target, not searched: {_stages(self.on_target)}"
        if self.budget is not None:
            cut = [*(["reference"] if ref.get("cut") else []), _stages(self.cut)]
            cut = ", ".join(c for c in cut if c)
            skipped += f"; budget {self.budget:.3g}s" + (f", cut short: {cut}" if cut else ", not reached")
        return (
            f"auto search: {len(self.trials)} trial(s) in {self.seconds:.2f}s, aiming at forget "
            f"accuracy {fmt(self.target_accuracy, 3)}; target from {source}{skipped}"
        )

    #: The headers of :meth:`rows`.
    COLUMNS = ("group", "unlearner", "best epochs", "score", "do nothing", "seconds", "kept")

    def rows(self) -> list[list]:
        """One row per trial, in the order of :data:`COLUMNS` (as printed)."""
        return [
            [t.group, t.unlearner, t.epochs, t.score, t.baseline, t.seconds, "yes" if t.kept else ""]
            for t in self.trials
        ]

    def __str__(self) -> str:
        return table(self.COLUMNS, self.rows(), self.summary())

    def to_dict(self) -> dict:
        return {
            "trials": [t.to_dict() for t in self.trials],
            "target": self.target,
            "reference": jsonable(self.reference),
            "target_accuracy": jsonable(self.target_accuracy),
            "seconds": self.seconds,
            "on_target": list(self.on_target),
            "budget": self.budget,
            "cut": list(self.cut),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SearchReport:
        acc = d.get("target_accuracy")
        return cls(
            trials=tuple(Trial.from_dict(t) for t in d.get("trials", ())),
            target=d["target"],
            reference=dict(d.get("reference") or {}),
            target_accuracy=float("nan") if acc is None else float(acc),
            seconds=float(d.get("seconds", 0.0)),
            on_target=tuple(int(g) for g in d.get("on_target", ())),
            budget=None if d.get("budget") is None else float(d["budget"]),
            cut=tuple(int(g) for g in d.get("cut", ())),
        )
