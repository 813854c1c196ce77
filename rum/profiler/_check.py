"""What kind of forget set this is: a whole class, items that already look held out, or neither.

The profiler measures, without any retrained model, two things a planner needs
before it picks unlearners (:class:`ForgetSetCheck`, ``profile.check``):

* **class-wise**: the forget set holds all, or nearly all, of the items of some
  labels (:data:`CLASS_WISE_SHARE`). A model that never saw them does not
  predict those classes at all, so that is the target for those items.
* **like held-out**: the forget items are a sample of the training data like
  any other (their label mix matches the retain set's, :data:`LABEL_MIX_P`),
  and the model is no more accurate on them than a model that never saw them is
  expected to be (the gap is at most :data:`HELDOUT_TOLERANCE`). Retraining
  would then change little on them, and every unlearning step moves the
  retain and test accuracy too; doing nothing is the best plan.

"What a model that never saw them gets right" is estimated by neighbour
agreement: the share of each forget item's nearest retain items (cosine
similarity of penultimate-layer embeddings) that carry its label, the same
estimate as ``auto``'s ``target="neighbors"``. How often this check agrees with
the retrained model is measured in the benchmarks (``docs/benchmarks/scenarios.md``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from rum._records import fmt, jsonable

__all__ = [
    "ForgetSetCheck",
    "check_forget_set",
    "CLASS_WISE_SHARE",
    "HELDOUT_TOLERANCE",
    "LABEL_MIX_P",
    "label_mix_p",
]

#: A label whose items lie at least this share in the forget set (forget / (forget +
#: retain)) is forgotten class-wise, when the forget set as a whole is a small share of
#: the data (at most half) and holds at least :data:`CLASS_WISE_MIN_ITEMS` of them.
CLASS_WISE_SHARE = 0.9
#: A class-wise label needs at least this many forget items.
CLASS_WISE_MIN_ITEMS = 5
#: The forget set is "like held-out" when the model's forget accuracy exceeds the
#: estimate of a never-trained model's by at most this much, or by at most one standard
#: error of that estimate on the forget set's size when that is larger (a gap of one item
#: in twelve says little) ...
HELDOUT_TOLERANCE = 0.02
#: ... and a chi-square test does not reject (at this level) that its labels are drawn
#: like the retain set's: a sub-population (one class, a cluster) is not a random sample,
#: and neighbour agreement in the model's own embedding is too optimistic about it.
LABEL_MIX_P = 0.01

#: The kinds :func:`check_forget_set` tells apart.
KINDS = ("class-wise", "like-held-out", "to-unlearn", "unchecked")


@dataclass(frozen=True)
class ForgetSetCheck:
    """What kind of forget set a profile was made for (``profile.check``).

    Attributes:
        kind: ``"class-wise"`` (``classes`` are forgotten whole), ``"like-held-out"``
            (the model already behaves on the forget items as a model that never
            saw them is expected to: doing nothing is the plan), ``"to-unlearn"``
            (neither) or ``"unchecked"`` (no retain set to compare with).
        n_forget: forget items.
        forget_accuracy: the model's accuracy on them.
        heldout_estimate: the estimated accuracy on them of a model that never saw
            them (mean neighbour agreement); NaN when unchecked.
        label_mix_p: p-value of the chi-square test that the forget labels are drawn
            like the retain labels (NaN when unchecked).
        classes: the labels forgotten whole (class-wise), ascending.
        class_share: for each of ``classes``, the share of its items in the forget set.
        class_items: how many forget items carry one of ``classes``.
        tolerance: the accuracy gap still counted as "like held-out":
            :data:`HELDOUT_TOLERANCE`, or one standard error of the estimate,
            ``sqrt(e (1 - e) / n_forget)``, when that is larger.
        estimate: where ``heldout_estimate`` comes from: ``"neighbors"`` (the
            profiler's neighbour agreement) or ``"reference"`` (a short retrain
            that never saw the forget items, :meth:`with_estimate`).
        class_positions: forget-set positions of the items of ``classes``.

    Examples:
        >>> c = ForgetSetCheck("like-held-out", 100, 0.95, 0.94, 0.6)
        >>> c.gap, c.keep_model
        (0.01, True)
        >>> print(c.reason)  # doctest: +NORMALIZE_WHITESPACE
        the forget items already behave like held-out items: forget accuracy 0.9500,
        estimated held-out accuracy 0.9400 from neighbour agreement (gap 0.0100 <= 0.02),
        label mix like the retain set's (p = 0.6000); the model is kept
    """

    kind: str
    n_forget: int
    forget_accuracy: float
    heldout_estimate: float = float("nan")
    label_mix_p: float = float("nan")
    classes: tuple[int, ...] = ()
    class_share: tuple[float, ...] = ()
    class_items: int = 0
    tolerance: float = HELDOUT_TOLERANCE
    estimate: str = "neighbors"
    class_positions: tuple[int, ...] = ()

    @property
    def gap(self) -> float:
        """Forget accuracy minus the held-out estimate (positive: the model knows them better)."""
        return round(self.forget_accuracy - self.heldout_estimate, 12)

    @property
    def keep_model(self) -> bool:
        """Whether the model should be kept as it is (``kind == "like-held-out"``)."""
        return self.kind == "like-held-out"

    def with_estimate(self, heldout_estimate: float, source: str) -> ForgetSetCheck:
        """The same check judged again with another held-out estimate (class-wise stays).

        Examples:
            >>> c = ForgetSetCheck("like-held-out", 400, 1.0, 0.995, 0.5)
            >>> c.with_estimate(0.9, "reference").kind
            'to-unlearn'
        """
        kind, tol = self.kind, self.tolerance
        if kind in ("like-held-out", "to-unlearn"):
            tol = tolerance(heldout_estimate, self.n_forget)
            kind = _verdict(self.forget_accuracy, heldout_estimate, self.label_mix_p, tol)
        return dataclasses.replace(self, kind=kind, heldout_estimate=float(heldout_estimate),
                                   estimate=source, tolerance=tol)

    @property
    def reason(self) -> str:
        """One readable sentence: what was found and what it means for the plan."""
        source = "neighbour agreement" if self.estimate == "neighbors" else "a short retrain"
        acc = (f"forget accuracy {fmt(self.forget_accuracy)}, estimated held-out accuracy "
               f"{fmt(self.heldout_estimate)} from {source} (gap {fmt(self.gap)}")
        mix = f"p = {fmt(self.label_mix_p)}"
        if self.kind == "class-wise":
            shares = ", ".join(f"{c} ({100 * s:.0f} % of its items)"
                               for c, s in zip(self.classes, self.class_share))
            return (f"class-wise: the forget set holds all or nearly all items of class(es) "
                    f"{shares}; target for those {self.class_items} items: not predicted as "
                    "their class, every other class keeps its accuracy")
        if self.kind == "like-held-out":
            return (f"the forget items already behave like held-out items: {acc} <= "
                    f"{self.tolerance:g}), label mix like the retain set's ({mix}); the model "
                    "is kept")
        if self.kind == "unchecked":
            return "not checked against held-out behaviour (no retain set)"
        why = (f"{acc} > {self.tolerance:g})" if self.gap > self.tolerance
               else f"labels unlike the retain set's ({mix}): a sub-population")
        return f"to unlearn: {why}"

    def to_dict(self) -> dict:
        d = {k: jsonable(getattr(self, k)) for k in (
            "kind", "n_forget", "forget_accuracy", "heldout_estimate", "label_mix_p", "classes",
            "class_share", "class_items", "tolerance", "estimate", "class_positions")}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ForgetSetCheck:
        def num(key):
            v = d.get(key)
            return float("nan") if v is None else float(v)

        return cls(kind=d["kind"], n_forget=int(d["n_forget"]), forget_accuracy=num("forget_accuracy"),
                   heldout_estimate=num("heldout_estimate"), label_mix_p=num("label_mix_p"),
                   classes=tuple(int(c) for c in d.get("classes", ())),
                   class_share=tuple(float(s) for s in d.get("class_share", ())),
                   class_items=int(d.get("class_items", 0)),
                   tolerance=float(d.get("tolerance", HELDOUT_TOLERANCE)),
                   estimate=str(d.get("estimate", "neighbors")),
                   class_positions=tuple(int(i) for i in d.get("class_positions", ())))


def label_mix_p(forget_counts, retain_counts) -> float:
    """p-value of Pearson's chi-square test that the forget labels follow the retain
    labels' proportions (labels absent from the retain set count as a mismatch).

    Examples:
        >>> round(label_mix_p([10, 10], [100, 100]), 3)
        1.0
        >>> label_mix_p([20, 0], [100, 100]) < 0.01
        True
    """
    from scipy.stats import chi2

    f = np.asarray(forget_counts, dtype=np.float64)
    r = np.asarray(retain_counts, dtype=np.float64)
    n = f.sum()
    if n == 0 or r.sum() == 0:
        return float("nan")
    if np.any((f > 0) & (r == 0)):
        return 0.0
    present = r > 0
    expected = n * r[present] / r.sum()
    stat = float(np.sum((f[present] - expected) ** 2 / expected))
    dof = int(present.sum()) - 1
    if dof <= 0:
        return 1.0
    return float(chi2.sf(stat, dof))


def check_forget_set(forget_y, forget_correct, retain_counts=None, neighbour_agreement=None,
                     *, tolerance: float = HELDOUT_TOLERANCE) -> ForgetSetCheck:
    """Tell a class-wise forget set and one that already looks held out from the rest.

    Args:
        forget_y: the forget items' labels.
        forget_correct: 1 where the model predicts the forget item's label.
        retain_counts: items per label in the retain set (``None``: no retain set,
            nothing is checked).
        neighbour_agreement: per forget item, the share of its nearest retain items
            that carry its label (the held-out estimate).
        tolerance: the smallest tolerance: the accuracy gap still counted as "like
            held-out" is this or one standard error of the estimate (:func:`tolerance`).

    Examples:
        >>> y = np.repeat([0, 1], 10)
        >>> check_forget_set(y[:10], np.ones(10), [0, 50]).kind    # every item of class 0
        'class-wise'
        >>> check_forget_set(y, np.ones(20), [50, 50], np.full(20, 0.99)).kind
        'like-held-out'
        >>> check_forget_set(y, np.ones(20), [50, 50], np.full(20, 0.8)).kind
        'to-unlearn'
    """
    y = np.asarray(forget_y, dtype=np.int64).reshape(-1)
    correct = np.asarray(forget_correct, dtype=np.float64).reshape(-1)
    n = len(y)
    acc = float(correct.mean()) if n else float("nan")
    if retain_counts is None:
        return ForgetSetCheck("unchecked", n, acc, tolerance=tolerance)
    r = np.asarray(retain_counts, dtype=np.float64)
    size = max(int(y.max(initial=-1)) + 1, len(r))
    f = np.bincount(y, minlength=size).astype(np.float64)
    r = np.concatenate([r, np.zeros(size - len(r))])
    share = np.divide(f, f + r, out=np.zeros(size), where=(f + r) > 0)
    small = n <= 0.5 * (n + r.sum())
    whole = np.flatnonzero((share >= CLASS_WISE_SHARE) & (f >= CLASS_WISE_MIN_ITEMS)) if small else []
    est = float("nan") if neighbour_agreement is None else float(np.mean(neighbour_agreement))
    p = label_mix_p(f, r)
    common = dict(n_forget=n, forget_accuracy=acc, heldout_estimate=est, label_mix_p=p,
                  tolerance=tolerance)
    if len(whole):
        members = np.flatnonzero(np.isin(y, whole))
        return ForgetSetCheck("class-wise", classes=tuple(int(c) for c in whole),
                              class_share=tuple(float(share[c]) for c in whole),
                              class_items=len(members),
                              class_positions=tuple(int(i) for i in members), **common)
    if neighbour_agreement is None or math.isnan(est):
        return ForgetSetCheck("unchecked", **common)
    tol = max(tolerance, _standard_error(est, n))
    return ForgetSetCheck(_verdict(acc, est, p, tol), **{**common, "tolerance": tol})


def _standard_error(estimate: float, n: int) -> float:
    return math.sqrt(max(estimate * (1.0 - estimate), 0.0) / max(n, 1))


def tolerance(estimate: float, n_forget: int, floor: float = HELDOUT_TOLERANCE) -> float:
    """The accuracy gap still counted as "like held-out" for an estimate on ``n_forget`` items:
    ``floor``, or one standard error of the estimate when that is larger.

    Examples:
        >>> tolerance(0.99, 1000), round(tolerance(0.9, 25), 3)
        (0.02, 0.06)
    """
    return max(floor, _standard_error(estimate, n_forget))


def _verdict(accuracy: float, estimate: float, p: float, tolerance: float) -> str:
    """``"like-held-out"`` when the gap is within ``tolerance`` and the label mix is not rejected."""
    like = accuracy - estimate <= tolerance + 1e-12 and not (p < LABEL_MIX_P)
    return "like-held-out" if like else "to-unlearn"
