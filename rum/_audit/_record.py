"""The record :func:`rum.audit` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rum._records import float_array, frozen_array, jsonable, load_json, save_json, table
from rum.metrics.membership import roc_auc, roc_curve, tpr_at_fpr

__all__ = ["Audit", "attack_summary", "FLAG_SCORE"]

#: A forget item is "flagged" when its p-value is below 1 % (score above 2).
FLAG_SCORE = 2.0
#: The false-positive rates the attack's true-positive rate is reported at.
FPRS = {"tpr@1%fpr": 0.01, "tpr@0.1%fpr": 0.001}


def attack_summary(pos: Any, neg: Any, neg_weights: Any = None) -> dict:
    """The attack's figures: AUC, TPR at 1 % and 0.1 % FPR, and the fraction of positives flagged.

    Examples:
        >>> s = attack_summary([3.0, 2.5, 0.1], [0.2, 0.4, 0.1, 0.3])
        >>> round(s["auc"], 4), round(s["tpr@1%fpr"], 4), round(s["flagged"], 4)
        (0.7083, 0.6667, 0.6667)
    """
    pos = np.asarray(pos, dtype=np.float64)
    out = {"auc": roc_auc(pos, neg, neg_weights)}
    for key, rate in FPRS.items():
        out[key] = tpr_at_fpr(pos, neg, rate, neg_weights)
    out["flagged"] = float(np.mean(pos > FLAG_SCORE))
    return out


def _array(v: Any) -> np.ndarray | None:
    return None if v is None else float_array(v)


@dataclass(frozen=True, eq=False)
class Audit:
    """The outcome of :func:`rum.audit`: per forget item, how strongly the model still gives it away.

    Every per-item array is in the order of the forget set you passed.

    Attributes:
        scores: per forget item, ``-log10`` of the p-value of its likelihood
            ratio under "the model never trained on it": a model retrained
            without the forget set scores each item like a draw from
            ``-log10(uniform)`` (mean 0.43); 2 means a retrained model would
            look this much like a trained one for only 1 % of items.
        log_lr: per forget item, the log likelihood ratio of the model's
            statistic under "trained with it" (U-LiRA: "trained with it, then
            unlearned") against "never trained on it". Above 0 favours the
            first. Not comparable across items; ``scores`` are.
        detectability: per forget item, the AUC with which the shadows
            themselves tell the two hypotheses apart (0.5: indistinguishable).
            With ``unlearn`` it describes the unlearning algorithm, not the
            audited model.
        memorization: per forget item, accuracy of the shadows trained with
            the forget set minus that of those retrained without it (a
            Feldman-Zhang-style estimate for removing the forget set).
        negative_scores: ``scores`` of the held-out negatives (test items).
        negatives: the negatives' positions in the test set.
        negative_weights: the negatives' weights in the ROC (they bring the
            negatives' label mix to the forget set's where the test set has
            too few items of a label; all 1 otherwise).
        attack: the audited model's ``auc``, ``tpr@1%fpr``, ``tpr@0.1%fpr``
            (forget items against the negatives, higher ``scores`` meaning
            "forget item") and ``flagged`` (fraction of forget items with a
            p-value under 1 %).
        reference_scores, reference_negative_scores, reference_attack: the
            same for the retrained reference, when one was given.
        mode: ``"lira"`` (shadows only trained) or ``"u-lira"`` (the in
            shadows unlearned with ``unlearn`` first).
        unlearn: a description of ``unlearn`` (``None`` for LiRA).
        n_shadows: shadow models (half trained with the forget set, half without).
        variance: ``"global"`` or ``"per-item"`` Gaussian spreads.
        seed: the audit's seed.
        timings: seconds: ``train`` and ``unlearn`` (summed over shadows,
            including any from a checkpoint), ``retrain`` (one shadow
            retrained on the retain set, the mean), ``shadows`` (wall time of
            the shadows run by this call), ``total``.

    Examples:
        >>> import numpy as np, rum
        >>> a = rum.Audit(scores=np.array([3.0, 0.2]), log_lr=np.array([4.0, -1.0]),
        ...               detectability=np.array([0.9, 0.6]), memorization=np.array([1.0, 0.0]),
        ...               negative_scores=np.array([0.1, 0.5]), negatives=np.array([7, 9]),
        ...               negative_weights=np.ones(2),
        ...               attack={"auc": 0.75, "tpr@1%fpr": 0.5, "tpr@0.1%fpr": 0.5, "flagged": 0.5},
        ...               n_shadows=16)
        >>> a.at_risk.tolist(), rum.Audit.from_dict(a.to_dict()).auc
        ([0, 1], 0.75)
    """

    scores: np.ndarray
    log_lr: np.ndarray
    detectability: np.ndarray
    memorization: np.ndarray
    negative_scores: np.ndarray
    negatives: np.ndarray
    negative_weights: np.ndarray
    attack: dict
    reference_scores: np.ndarray | None = None
    reference_negative_scores: np.ndarray | None = None
    reference_attack: dict | None = None
    mode: str = "lira"
    unlearn: str | None = None
    n_shadows: int = 0
    variance: str = "global"
    seed: int | None = None
    timings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("scores", "log_lr", "detectability", "memorization", "negative_scores",
                     "negative_weights", "reference_scores", "reference_negative_scores"):
            object.__setattr__(self, name, _array(getattr(self, name)))
        object.__setattr__(self, "negatives", frozen_array(self.negatives, np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    # -- the figures ------------------------------------------------------------------------
    @property
    def auc(self) -> float:
        """The attack's AUC on the audited model (0.5: forget items look like test items)."""
        return float(self.attack["auc"])

    @property
    def reference_auc(self) -> float | None:
        """The attack's AUC on the retrained reference (``None`` without one)."""
        return None if self.reference_attack is None else float(self.reference_attack["auc"])

    @property
    def at_risk(self) -> np.ndarray:
        """Forget-set positions of the ten items most at risk, highest score first."""
        return self.most_at_risk(10)

    def most_at_risk(self, k: int = 10) -> np.ndarray:
        """Forget-set positions of the ``k`` items with the highest scores (ties: larger ``log_lr``)."""
        order = np.lexsort((-np.nan_to_num(self.log_lr, nan=-np.inf), -self.scores))
        return order[: max(0, int(k))]

    def roc(self, reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(fpr, tpr)`` of the attack on the audited model (or on the reference)."""
        pos, neg = self.scores, self.negative_scores
        if reference:
            if self.reference_scores is None:
                raise ValueError("this audit was run without a reference model.")
            pos, neg = self.reference_scores, self.reference_negative_scores
        return roc_curve(pos, neg, self.negative_weights)

    @property
    def cost_retrains(self) -> float:
        """The shadows' compute (training and unlearning) in retrains on the retain set."""
        t = self.timings
        one = t.get("retrain") or math.nan
        return (float(t.get("train", math.nan)) + float(t.get("unlearn", 0.0))) / one

    # -- printing and saving ----------------------------------------------------------------
    def __str__(self) -> str:
        how = "U-LiRA" if self.mode == "u-lira" else "LiRA"
        half = self.n_shadows // 2
        title = (
            f"Audit ({how}{'' if self.unlearn is None else ', unlearn=' + self.unlearn}): "
            f"{len(self)} forget items against {len(self.negatives)} test items; "
            f"{self.n_shadows} shadows ({self.n_shadows - half} trained with the forget set, "
            f"{half} retrained without it), {self.variance} variance, seed {self.seed}"
        )
        rows = [("audited model", *(self.attack.get(k) for k in _COLUMNS))]
        if self.reference_attack is not None:
            rows.append(("retrained reference", *(self.reference_attack.get(k) for k in _COLUMNS)))
        out = table(["model", "AUC", "TPR@1%FPR", "TPR@0.1%FPR", "flagged (p<1%)"], rows, title)
        top = self.most_at_risk(5)
        if len(top):
            out += "\n\n" + table(
                ["forget index", "score", "log LR", "detectability", "memorization"],
                [(int(i), self.scores[i], self.log_lr[i], self.detectability[i], self.memorization[i])
                 for i in top],
                "Most at risk",
            )
        t = self.timings
        if "total" in t:
            out += (f"\nshadow compute {float(t.get('train', 0)) + float(t.get('unlearn', 0)):.1f}s "
                    f"({self.cost_retrains:.1f} retrains); this call {float(t['total']):.1f}s")
        return out

    def to_dict(self) -> dict:
        d = {k: jsonable(v) for k, v in self.__dict__.items()}
        d["record"] = "audit"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Audit:
        """Rebuild an audit from :meth:`to_dict` output (for example a saved JSON file)."""
        def attack(v: Any) -> dict | None:
            return None if v is None else {k: (math.nan if x is None else float(x)) for k, x in v.items()}

        return cls(
            scores=d["scores"], log_lr=d["log_lr"], detectability=d["detectability"],
            memorization=d["memorization"], negative_scores=d["negative_scores"],
            negatives=d["negatives"], negative_weights=d["negative_weights"],
            attack=attack(d["attack"]), reference_scores=d.get("reference_scores"),
            reference_negative_scores=d.get("reference_negative_scores"),
            reference_attack=attack(d.get("reference_attack")), mode=d.get("mode", "lira"),
            unlearn=d.get("unlearn"), n_shadows=int(d.get("n_shadows", 0)),
            variance=d.get("variance", "global"), seed=d.get("seed"),
            timings=dict(d.get("timings") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write the audit as JSON."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Audit:
        return cls.from_dict(load_json(path))


_COLUMNS = ("auc", "tpr@1%fpr", "tpr@0.1%fpr", "flagged")
