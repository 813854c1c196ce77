"""Pure functions behind the per-example membership audit (:func:`rum.audit`) and its cheaper checks.

No models and no data loading here: statistics of logits, per-item Gaussian
fits over shadow models, the likelihood ratio of LiRA and its p-value under
the "never trained on it" hypothesis, ROC curves with weighted negatives, and
the Kullback-Leibler divergence between Gaussians. Tests check each against a
slow, obvious reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from rum.exceptions import InvalidParameterError

__all__ = [
    "logit_confidence",
    "margins",
    "fit_gaussians",
    "log_likelihood_ratio",
    "lr_log_pvalue",
    "gaussian_auc",
    "detectability",
    "gaussian_kl",
    "roc_curve",
    "roc_auc",
    "tpr_at_fpr",
    "VARIANCES",
]

#: How :func:`fit_gaussians` estimates the spread: one pooled value for every item, or one per item.
VARIANCES = ("global", "per-item")
#: The smallest standard deviation a fit returns (shadows that agree exactly would give 0).
MIN_SD = 1e-3
#: ``lr_log_pvalue`` never returns less than this (p = 0 happens at the likelihood ratio's maximum).
MIN_LOG_P = -700.0


def _logits_labels(logits: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits.detach().cpu() if hasattr(logits, "detach") else logits, dtype=np.float64)
    t = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y).astype(np.int64).reshape(-1)
    if z.ndim != 2 or z.shape[0] != t.shape[0]:
        raise InvalidParameterError(
            f"logits must have shape (items, classes) with one row per label; got {z.shape} "
            f"for {t.shape[0]} labels."
        )
    if z.shape[1] < 2:
        raise InvalidParameterError("logits need at least two classes to compare the true one with.")
    return z, t


def logit_confidence(logits: Any, y: Any) -> np.ndarray:
    """The logit-scaled confidence ``log(p / (1 - p))`` of the true label, computed stably.

    ``p`` is the softmax probability of label ``y``; the value equals the true
    label's logit minus the log-sum-exp of the other logits, which stays
    finite where ``p`` rounds to 1. This is LiRA's per-example statistic: its
    distribution over models is close to Gaussian.

    Examples:
        >>> logit_confidence([[2.0, 0.0], [0.0, 0.0]], [0, 1]).round(4).tolist()
        [2.0, 0.0]
    """
    z, t = _logits_labels(logits, y)
    rows = np.arange(len(t))
    true = z[rows, t]
    others = z.copy()
    others[rows, t] = -np.inf
    top = others.max(1)
    lse = top + np.log(np.exp(others - top[:, None]).sum(1))
    return true - lse


def margins(logits: Any, y: Any) -> np.ndarray:
    """The margin of the true label: its logit minus the largest other logit (positive when right).

    Examples:
        >>> margins([[3.0, 1.0, 2.0], [0.0, 1.0, 0.5]], [0, 0]).tolist()
        [1.0, -1.0]
    """
    z, t = _logits_labels(logits, y)
    rows = np.arange(len(t))
    others = z.copy()
    others[rows, t] = -np.inf
    return z[rows, t] - others.max(1)


def _masked_moments(stats: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-item count, mean and sum of squared deviations of ``stats`` where ``mask`` holds."""
    n = mask.sum(0).astype(np.float64)
    s = np.where(mask, stats, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    dev = np.where(mask, stats - np.where(np.isnan(mean), 0.0, mean), 0.0)
    return n, mean, (dev**2).sum(0)


def _pooled_sd(n: np.ndarray, ss: np.ndarray) -> float:
    dof = np.maximum(n - 1, 0).sum()
    return math.sqrt(ss[n > 1].sum() / dof) if dof > 0 else math.nan


def fit_gaussians(
    stats: Any, in_mask: Any, out_mask: Any, variance: str = "global"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-item Gaussians of a statistic over shadow models, with and without each item.

    Args:
        stats: ``(shadows, items)`` values of the statistic.
        in_mask: ``(shadows, items)``, true where the shadow counts as "with the item".
        out_mask: ``(shadows, items)``, true where it counts as "without it"
            (entries in neither mask are ignored).
        variance: ``"global"``: one standard deviation per side, pooled over
            every item (within-item deviations; robust with few shadows);
            ``"per-item"``: each item's own, falling back to the pooled value
            for an item with fewer than two observations on that side.

    Returns:
        ``(mu_in, sd_in, mu_out, sd_out)``, one value per item. A mean is NaN
        where the item has no observation on that side. Standard deviations
        are at least :data:`MIN_SD`; a side with no item observed twice borrows
        the other side's pooled value.

    Examples:
        >>> stats = np.array([[1.0, 5.0], [3.0, 7.0], [0.0, 0.0], [0.0, 2.0]])
        >>> inside = np.array([[1, 1], [1, 1], [0, 0], [0, 0]], bool)
        >>> mu_in, sd_in, mu_out, sd_out = fit_gaussians(stats, inside, ~inside)
        >>> mu_in.tolist(), sd_in.round(3).tolist(), mu_out.tolist(), sd_out.round(3).tolist()
        ([2.0, 6.0], [1.414, 1.414], [0.0, 1.0], [1.0, 1.0])
    """
    if variance not in VARIANCES:
        raise InvalidParameterError(f"variance must be one of {VARIANCES}, got {variance!r}.")
    x = np.asarray(stats, dtype=np.float64)
    mi, mo = np.asarray(in_mask, dtype=bool), np.asarray(out_mask, dtype=bool)
    if x.ndim != 2 or mi.shape != x.shape or mo.shape != x.shape:
        raise InvalidParameterError(
            f"stats, in_mask and out_mask must share one (shadows, items) shape; got {x.shape}, "
            f"{mi.shape} and {mo.shape}."
        )
    n_in, mu_in, ss_in = _masked_moments(x, mi)
    n_out, mu_out, ss_out = _masked_moments(x, mo)
    g_in, g_out = _pooled_sd(n_in, ss_in), _pooled_sd(n_out, ss_out)
    if math.isnan(g_in):
        g_in = g_out
    if math.isnan(g_out):
        g_out = g_in
    if math.isnan(g_in):  # no item seen twice on either side
        g_in = g_out = 1.0
    sd_in = np.full(x.shape[1], g_in)
    sd_out = np.full(x.shape[1], g_out)
    if variance == "per-item":
        with np.errstate(invalid="ignore", divide="ignore"):
            own_in = np.sqrt(ss_in / np.maximum(n_in - 1, 1))
            own_out = np.sqrt(ss_out / np.maximum(n_out - 1, 1))
        sd_in = np.where(n_in >= 2, own_in, sd_in)
        sd_out = np.where(n_out >= 2, own_out, sd_out)
    return mu_in, np.maximum(sd_in, MIN_SD), mu_out, np.maximum(sd_out, MIN_SD)


def _normal_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def log_likelihood_ratio(x: Any, mu_in: Any, sd_in: Any, mu_out: Any, sd_out: Any) -> np.ndarray:
    """``log N(x; mu_in, sd_in) - log N(x; mu_out, sd_out)``, element-wise.

    Positive values favour "the model was trained with the item"; with
    unlearned "in" shadows (U-LiRA), "trained with it, then unlearned".

    Examples:
        >>> float(log_likelihood_ratio(1.0, 1.0, 1.0, 0.0, 1.0))
        0.5
    """
    args = [np.asarray(a, dtype=np.float64) for a in (x, mu_in, sd_in, mu_out, sd_out)]
    x, mi, si, mo, so = args
    return _normal_logpdf(x, mi, si) - _normal_logpdf(x, mo, so)


def lr_log_pvalue(x: Any, mu_in: Any, sd_in: Any, mu_out: Any, sd_out: Any) -> np.ndarray:
    """The natural log of the likelihood ratio's p-value under "never trained on the item".

    For each item: ``P[LR(X) >= LR(x)]`` where ``X ~ N(mu_out, sd_out)`` is the
    statistic of a model that never saw the item and ``LR`` is
    :func:`log_likelihood_ratio`. Under that hypothesis the p-value is
    uniform whatever the item, which makes scores of different items (an
    atypical forget item, an ordinary test item) comparable; the raw ratio is
    not. With equal standard deviations it is the one-sided normal tail in the
    direction of ``mu_in``; otherwise the ratio is quadratic in ``X`` and the
    tail is one interval or two. Values are at least :data:`MIN_LOG_P`.

    Examples:
        >>> round(float(np.exp(lr_log_pvalue(1.6449, 1.0, 1.0, 0.0, 1.0))), 3)   # one-sided 5 %
        0.05
        >>> round(float(np.exp(lr_log_pvalue(-1.6449, -1.0, 1.0, 0.0, 1.0))), 3)  # "in" lies below
        0.05
    """
    x, mi, si, mo, so = np.broadcast_arrays(
        *[np.asarray(a, dtype=np.float64) for a in (x, mu_in, sd_in, mu_out, sd_out)]
    )
    u = (x - mo) / so
    delta = mi - mo
    a = 0.5 * (1.0 - (so / si) ** 2)
    b = so * delta / si**2
    out = np.zeros(u.shape)
    lin = a == 0
    # linear: LR increases with u when b > 0 (upper tail), decreases when b < 0; b = 0: p = 1
    out = np.where(lin & (b > 0), log_ndtr(-u), out)
    out = np.where(lin & (b < 0), log_ndtr(u), out)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        other = np.where(lin, u, -b / np.where(lin, 1.0, a) - u)
        lo, hi = np.minimum(u, other), np.maximum(u, other)
        # a > 0: the ratio opens upwards, {LR >= t} is both tails outside [lo, hi]
        two_tails = np.logaddexp(log_ndtr(lo), log_ndtr(-hi))
        # a < 0: it opens downwards, {LR >= t} is [lo, hi]; subtract in the smaller tail
        upper = lo > 0
        big = np.where(upper, log_ndtr(-lo), log_ndtr(hi))
        small = np.where(upper, log_ndtr(-hi), log_ndtr(lo))
        inside = big + np.log1p(-np.exp(np.minimum(small - big, 0.0)))
    out = np.where(~lin & (a > 0), two_tails, out)
    out = np.where(~lin & (a < 0), inside, out)
    out = np.where(np.isnan(out), 0.0, out)
    return np.maximum(out, MIN_LOG_P)


def gaussian_auc(mu_1: Any, sd_1: Any, mu_0: Any, sd_0: Any) -> np.ndarray:
    """The AUC of the best threshold on one side between ``N(mu_1, sd_1)`` and ``N(mu_0, sd_0)``.

    ``Phi(|mu_1 - mu_0| / sqrt(sd_1^2 + sd_0^2))``: 0.5 when the two coincide,
    towards 1 as they separate. Over shadow models it says how detectable an
    item is: how well one could tell a model trained with it (and, in U-LiRA,
    unlearned) from one that never saw it.

    Examples:
        >>> float(gaussian_auc(0.0, 1.0, 0.0, 1.0)), round(float(gaussian_auc(2.0, 1.0, 0.0, 1.0)), 3)
        (0.5, 0.921)
    """
    m1, s1, m0, s0 = (np.asarray(a, dtype=np.float64) for a in (mu_1, sd_1, mu_0, sd_0))
    return ndtr(np.abs(m1 - m0) / np.sqrt(s1**2 + s0**2))


def detectability(
    mu_in: Any, sd_in: Any, n_in: Any, mu_out: Any, sd_out: Any, n_out: Any
) -> np.ndarray:
    """:func:`gaussian_auc` of two fitted Gaussians, with the means' estimation noise taken out.

    With few shadows the fitted means differ by chance, and ``|mu_in - mu_out|``
    overstates the gap: its square exceeds the true one by
    ``sd_in^2 / n_in + sd_out^2 / n_out`` on average. That excess is subtracted
    (at 0 at least) before the AUC is computed, so two hypotheses that
    coincide score about 0.5 rather than above it.

    Examples:
        >>> float(detectability(0.1, 1.0, 8, 0.0, 1.0, 8))   # within the noise: no evidence
        0.5
        >>> round(float(detectability(2.0, 1.0, 8, 0.0, 1.0, 8)), 3)
        0.915
    """
    mi, si, ni, mo, so, no = (np.asarray(a, dtype=np.float64) for a in
                              (mu_in, sd_in, n_in, mu_out, sd_out, n_out))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap2 = (mi - mo) ** 2 - si**2 / ni - so**2 / no
    return ndtr(np.sqrt(np.maximum(gap2, 0.0)) / np.sqrt(si**2 + so**2))


def gaussian_kl(mu_p: Any, sd_p: Any, mu_q: Any, sd_q: Any) -> np.ndarray:
    """``KL(N(mu_p, sd_p^2) || N(mu_q, sd_q^2))`` in nats, element-wise.

    Examples:
        >>> float(gaussian_kl(0.0, 1.0, 0.0, 1.0)), float(gaussian_kl(1.0, 1.0, 0.0, 1.0))
        (0.0, 0.5)
    """
    mp, sp, mq, sq = (np.asarray(a, dtype=np.float64) for a in (mu_p, sd_p, mu_q, sd_q))
    return np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5


def _scores(pos: Any, neg: Any, neg_weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(pos, dtype=np.float64).reshape(-1)
    n = np.asarray(neg, dtype=np.float64).reshape(-1)
    w = np.ones(len(n)) if neg_weights is None else np.asarray(neg_weights, dtype=np.float64).reshape(-1)
    if len(p) == 0 or len(n) == 0:
        raise InvalidParameterError("an ROC needs at least one positive and one negative score.")
    if w.shape != n.shape or (w < 0).any() or w.sum() <= 0:
        raise InvalidParameterError(
            "neg_weights must be one non-negative weight per negative score, not all zero."
        )
    if np.isnan(p).any() or np.isnan(n).any():
        raise InvalidParameterError("scores must not be NaN.")
    return p, n, w / w.sum()


def roc_curve(pos: Any, neg: Any, neg_weights: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve of "score >= threshold means positive": ``(fpr, tpr)`` from (0, 0) to (1, 1).

    One point per distinct score, highest threshold first. ``neg_weights``
    reweights the negatives (their false-positive rate is a weighted fraction).

    Examples:
        >>> fpr, tpr = roc_curve([3.0, 2.0], [1.0, 2.0])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    p, n, w = _scores(pos, neg, neg_weights)
    thresholds = np.unique(np.concatenate([p, n]))[::-1]
    ps = np.sort(p)
    order = np.argsort(n)
    ns, cw = n[order], np.concatenate([[0.0], np.cumsum(w[order])])
    tpr = (len(ps) - np.searchsorted(ps, thresholds, side="left")) / len(ps)
    fpr = 1.0 - cw[np.searchsorted(ns, thresholds, side="left")]
    return np.concatenate([[0.0], np.clip(fpr, 0, 1)]), np.concatenate([[0.0], tpr])


def roc_auc(pos: Any, neg: Any, neg_weights: Any = None) -> float:
    """The area under the ROC curve: ``P[positive > negative] + P[tie] / 2`` (weighted negatives).

    Examples:
        >>> roc_auc([3.0, 2.0], [1.0, 2.0])
        0.875
    """
    p, n, w = _scores(pos, neg, neg_weights)
    order = np.argsort(n)
    ns, cw = n[order], np.concatenate([[0.0], np.cumsum(w[order])])
    below = cw[np.searchsorted(ns, p, side="left")]
    upto = cw[np.searchsorted(ns, p, side="right")]
    return float(np.mean(below + 0.5 * (upto - below)))


def tpr_at_fpr(pos: Any, neg: Any, fpr: float, neg_weights: Any = None) -> float:
    """The largest true-positive rate of a threshold whose false-positive rate is at most ``fpr``.

    With ``m`` (equally weighted) negatives the smallest false-positive rate
    above 0 is ``1 / m``: below that this is the rate at zero false positives.

    Examples:
        >>> tpr_at_fpr([5.0, 4.0, 0.5], [1.0, 2.0, 3.0, 0.0], 0.25)
        0.6666666666666666
        >>> tpr_at_fpr([5.0, 4.0, 0.5], [1.0, 2.0, 3.0, 0.0], 0.0)
        0.6666666666666666
    """
    if not 0.0 <= float(fpr) <= 1.0:
        raise InvalidParameterError(f"fpr must be a rate in [0, 1], got {fpr!r}.")
    f, t = roc_curve(pos, neg, neg_weights)
    return float(t[f <= float(fpr) + 1e-12].max())
