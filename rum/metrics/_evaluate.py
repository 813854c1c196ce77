"""``rum.evaluate``: how an unlearned model compares with a retrained one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rum._data import TensorData, as_data
from rum._model import check_model, fit_to_model, select_output
from rum._records import jsonable, table
from rum._validation import check_random_state
from rum.metrics.functional import (
    accuracy_from_logits,
    predict_logits,
    tow,
    tow_mia,
    true_label_confidence,
)
from rum.metrics.mia import mia_score

__all__ = ["evaluate", "EvaluationReport", "ModelScores"]


@dataclass(frozen=True)
class ModelScores:
    """Accuracies (fractions in [0, 1]) and MIA score of one model."""

    forget: float
    retain: float
    test: float
    mia: float

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> ModelScores:
        return cls(**{k: float("nan") if d.get(k) is None else float(d[k]) for k in ("forget", "retain", "test", "mia")})


@dataclass(frozen=True)
class EvaluationReport:
    """Scores of a model and, optionally, of the retrained reference.

    Attributes:
        model: the evaluated model's scores.
        reference: the retrained model's scores, or ``None``.
        tow: tug-of-war against the reference (``None`` without one).
        tow_mia: ToW with the MIA score in place of forget accuracy.
        gaps: absolute gaps ``|model - reference|`` per score.
        name: a label for the evaluated model, used when printing.

    Examples:
        >>> import numpy as np, torch, rum
        >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
        >>> y = (X[:, 0] > 0).astype(int)
        >>> net = rum.fit(torch.nn.Linear(4, 2), (X, y), epochs=20, lr=0.05, device="cpu")
        >>> rep = rum.evaluate(net, forget_set=(X[:10], y[:10]), retain_set=(X[10:40], y[10:40]),
        ...                    test_set=(X[40:], y[40:]), reference=net)
        >>> rep.tow, rep.reference is not None
        (1.0, True)
    """

    model: ModelScores
    reference: ModelScores | None = None
    tow: float | None = None
    tow_mia: float | None = None
    gaps: dict = field(default_factory=dict)
    name: str = "model"

    def __str__(self) -> str:
        return self.table([self])

    @staticmethod
    def table(reports: list[EvaluationReport], title: str | None = None) -> str:
        """Several reports as one table (the reference row is printed once, from the first)."""
        headers = ["model", "forget acc", "retain acc", "test acc", "MIA", "ToW", "ToW-MIA"]
        rows = []
        for r in reports:
            m = r.model
            rows.append([r.name, m.forget, m.retain, m.test, m.mia, r.tow, r.tow_mia])
        ref = next((r.reference for r in reports if r.reference is not None), None)
        if ref is not None:
            rows.append(["retrain (reference)", ref.forget, ref.retain, ref.test, ref.mia, 1.0, 1.0])
        return table(headers, rows, title)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model.to_dict(),
            "reference": None if self.reference is None else self.reference.to_dict(),
            "tow": jsonable(self.tow),
            "tow_mia": jsonable(self.tow_mia),
            "gaps": jsonable(self.gaps),
        }

    @classmethod
    def from_dict(cls, d: dict) -> EvaluationReport:
        """Rebuild a report from :meth:`to_dict` output (for example a saved JSON file)."""
        ref = d.get("reference")
        return cls(
            model=ModelScores.from_dict(d["model"]),
            reference=None if ref is None else ModelScores.from_dict(ref),
            tow=d.get("tow"),
            tow_mia=d.get("tow_mia"),
            gaps=dict(d.get("gaps") or {}),
            name=d.get("name", "model"),
        )


def _scores(model: torch.nn.Module, sets: dict[str, TensorData], seed: int, output: Any) -> ModelScores:
    _, sets = fit_to_model(model, sets, output)
    forget, retain, test = sets["forget_set"], sets["retain_set"], sets["test_set"]
    with select_output(model, output):
        lf = predict_logits(model, forget.X)
        lr = predict_logits(model, retain.X)
        lt = predict_logits(model, test.X)
    mia = mia_score(
        true_label_confidence(lr, retain.y),
        true_label_confidence(lt, test.y),
        true_label_confidence(lf, forget.y),
        random_state=seed,
    )
    return ModelScores(
        forget=accuracy_from_logits(lf, forget.y),
        retain=accuracy_from_logits(lr, retain.y),
        test=accuracy_from_logits(lt, test.y),
        mia=mia,
    )


def evaluate(
    model: Any,
    *,
    forget_set: Any,
    retain_set: Any,
    test_set: Any,
    reference: Any = None,
    name: str = "model",
    random_state: int = 0,
    output: Any = None,
) -> EvaluationReport:
    """Accuracies, a membership-inference score and, with a reference, ToW and ToW-MIA.

    The membership-inference attack trains an RBF SVC on the true-label
    confidence of retain items (members) against test items (non-members),
    and reports the fraction of forget items it judges non-members.

    Args:
        model: the model to evaluate (an ``nn.Module`` or an :class:`UnlearnResult`).
        forget_set: the forgotten items, in any form rum accepts.
        retain_set: the retained training data.
        test_set: held-out data (the non-members of the attack).
        reference: the model retrained without the forget set (or its
            :class:`UnlearnResult`). Adds gaps, ToW and ToW-MIA.
        name: a label for the printed table.
        random_state: seed for the attack's subsampling.
        output: which part of the models' output holds the logits, when it is not a
            tensor, an object with ``.logits`` or a dict with ``"logits"``: an index, a
            key, or a function of the output (the same for ``model`` and ``reference``).

    Examples:
        >>> import rum
        >>> report = rum.evaluate(model, forget_set=f, retain_set=r, test_set=t)  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
    """
    model = _unwrap(model, "model")
    forget = as_data(forget_set, "forget_set")
    retain = as_data(retain_set, "retain_set")
    test = as_data(test_set, "test_set")
    seed = check_random_state(random_state)
    sets = {"forget_set": forget, "retain_set": retain, "test_set": test}
    mine = _scores(model, sets, seed, output)
    if reference is None:
        return EvaluationReport(model=mine, name=name)
    ref = _scores(_unwrap(reference, "reference"), sets, seed, output)
    gaps = {k: abs(getattr(mine, k) - getattr(ref, k)) for k in ("forget", "retain", "test", "mia")}
    return EvaluationReport(
        model=mine,
        reference=ref,
        tow=tow((mine.forget, ref.forget), (mine.retain, ref.retain), (mine.test, ref.test)),
        tow_mia=tow_mia((mine.mia, ref.mia), (mine.retain, ref.retain), (mine.test, ref.test)),
        gaps=gaps,
        name=name,
    )


def _unwrap(model: Any, name: str) -> torch.nn.Module:
    if hasattr(model, "model") and isinstance(model.model, torch.nn.Module):
        model = model.model
    return check_model(model, name)
