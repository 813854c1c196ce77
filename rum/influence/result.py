"""The record :func:`rum.correct` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rum._records import fmt, jsonable, load_json, save_json, table
from rum.influence.certified import Certificate
from rum.influence.settings import InfluenceSettings

__all__ = ["CorrectionResult"]


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class CorrectionResult:
    """What :func:`rum.correct` did: the corrected copy and how close it is to retraining.

    Attributes:
        model: the corrected copy (a fitted estimator for scikit-learn input;
            the caller's model is never modified). ``None`` after :meth:`load`.
        residual: the gradient norm of the corrected training objective after
            the update (0 at the retrained optimum); ``nan`` with ``verify=False``.
        residual_before: the same before the update.
        steps: Newton (or gradient) steps taken.
        solver_iterations: iterations of the linear solver, over all steps.
        objective_before, objective_after: the corrected objective's value before
            and after (``objective_after`` is ``nan`` with ``verify=False``).
        accuracies: the model's accuracy on the affected items as they were
            (``forget_acc_*``) and as they are now (``after_acc_*``), before and
            after the correction.
        settings: the solver settings as resolved for this model (no ``None`` left
            but ``scale``, which only LiSSA estimates).
        parameters: the names of the parameters the correction updated.
        weight_decay: the training objective's L2 coefficient it assumed.
        n_items: items in the request; ``n_deleted`` of them were deleted.
        certificate: for a certified correction (``epsilon=``), what it
            guarantees; otherwise ``None``.
        diverged: the solve blew up; the weights were left unchanged.
        seconds: the correction's wall-clock time.
        seed, device: the seed it used and where it ran.

    Examples:
        >>> import numpy as np, rum
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
        >>> clf = LogisticRegression().fit(X, y)
        >>> res = rum.correct(clf, rum.requests.delete((X, y), [0, 1]), train_set=(X, y))
        >>> res.residual < 1e-6, res.certificate is None
        (True, True)
    """

    model: Any
    residual: float
    residual_before: float
    steps: int
    solver_iterations: int
    objective_before: float
    objective_after: float
    accuracies: dict
    settings: InfluenceSettings
    parameters: tuple[str, ...]
    weight_decay: float
    n_items: int
    n_deleted: int
    certificate: Certificate | None = None
    diverged: bool = False
    seconds: float = 0.0
    seed: int | None = None
    device: str = "cpu"

    def __str__(self) -> str:
        title = (f"Correction of {self.n_items} item(s) ({self.n_deleted} deleted) on {self.device}, "
                 f"{self.steps} step(s) with the {self.settings.solver} solver, {self.seconds:.3f}s"
                 + (" - DIVERGED, weights unchanged" if self.diverged else ""))
        rows = [
            ["gradient residual", self.residual_before, self.residual],
            ["objective", self.objective_before, self.objective_after],
            ["accuracy on the items as they were", self.accuracies.get("forget_acc_before"),
             self.accuracies.get("forget_acc_after")],
            ["accuracy on the items as they are", self.accuracies.get("after_acc_before"),
             self.accuracies.get("after_acc_after")],
        ]
        out = table(["", "before", "after"], rows, title)
        c = self.certificate
        if c is not None:
            out += (f"\ncertificate: ({fmt(c.epsilon, 3)}, {fmt(c.delta, 3)}) requested, epsilon spent "
                    f"{fmt(c.epsilon_spent, 3)}: {'certified' if c.certified else 'NOT certified'}")
        return out

    def to_dict(self) -> dict:
        """Everything but the model, JSON-ready."""
        return {
            "residual": jsonable(self.residual),
            "residual_before": jsonable(self.residual_before),
            "steps": self.steps,
            "solver_iterations": self.solver_iterations,
            "objective_before": jsonable(self.objective_before),
            "objective_after": jsonable(self.objective_after),
            "accuracies": jsonable(self.accuracies),
            "settings": self.settings.to_dict(),
            "parameters": list(self.parameters),
            "weight_decay": self.weight_decay,
            "n_items": self.n_items,
            "n_deleted": self.n_deleted,
            "certificate": None if self.certificate is None else self.certificate.to_dict(),
            "diverged": self.diverged,
            "seconds": self.seconds,
            "seed": self.seed,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, d: dict, model: Any = None) -> CorrectionResult:
        cert = d.get("certificate")
        return cls(
            model=model,
            residual=_num(d["residual"]),
            residual_before=_num(d["residual_before"]),
            steps=int(d["steps"]),
            solver_iterations=int(d["solver_iterations"]),
            objective_before=_num(d["objective_before"]),
            objective_after=_num(d["objective_after"]),
            accuracies={k: _num(v) for k, v in (d.get("accuracies") or {}).items()},
            settings=InfluenceSettings.from_dict(d["settings"]),
            parameters=tuple(d.get("parameters", ())),
            weight_decay=float(d["weight_decay"]),
            n_items=int(d["n_items"]),
            n_deleted=int(d["n_deleted"]),
            certificate=None if cert is None else Certificate(**{
                k: (bool(v) if k == "certified" else _num(v)) for k, v in cert.items()}),
            diverged=bool(d.get("diverged", False)),
            seconds=float(d.get("seconds", 0.0)),
            seed=d.get("seed"),
            device=d.get("device", "cpu"),
        )

    def save(self, path: str | Path) -> Path:
        """Write everything but the model as JSON."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path, model: Any = None) -> CorrectionResult:
        return cls.from_dict(load_json(path), model=model)
