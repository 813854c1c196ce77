"""The audit's math against slow, obvious references: loops, Monte Carlo, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rum.exceptions import InvalidParameterError
from rum.metrics.membership import (
    MIN_SD,
    fit_gaussians,
    gaussian_auc,
    gaussian_kl,
    log_likelihood_ratio,
    logit_confidence,
    lr_log_pvalue,
    margins,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)


# -- statistics of logits -----------------------------------------------------------------------
def test_logit_confidence_is_log_odds_of_the_softmax_probability():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4)) * 3
    y = rng.integers(0, 4, 50)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    py = p[np.arange(50), y]
    np.testing.assert_allclose(logit_confidence(z, y), np.log(py / (1 - py)), rtol=1e-9)


def test_logit_confidence_stays_finite_where_the_probability_rounds_to_one():
    phi = logit_confidence([[100.0, 0.0, -5.0]], [0])
    assert phi[0] == pytest.approx(100.0 - np.log(1 + np.exp(-5.0)), rel=1e-12)


def test_margins_by_hand():
    np.testing.assert_array_equal(margins([[1.0, 4.0, 2.0]], [1]), [2.0])
    np.testing.assert_array_equal(margins([[1.0, 4.0, 2.0]], [2]), [-2.0])
    with pytest.raises(InvalidParameterError, match="two classes"):
        margins([[1.0], [2.0]], [0, 0])


# -- Gaussian fits ------------------------------------------------------------------------------
def _loops(stats, inside, outside):
    """Per-item means and standard deviations by explicit loops (the reference)."""
    K, n = stats.shape
    res = {}
    for side, mask in (("in", inside), ("out", outside)):
        mu, sd, pooled_num, pooled_dof = [], [], 0.0, 0
        for i in range(n):
            vals = [stats[k, i] for k in range(K) if mask[k, i]]
            m = sum(vals) / len(vals) if vals else math.nan
            mu.append(m)
            if len(vals) >= 2:
                ss = sum((v - m) ** 2 for v in vals)
                sd.append(math.sqrt(ss / (len(vals) - 1)))
                pooled_num += ss
                pooled_dof += len(vals) - 1
            else:
                sd.append(None)
        res[side] = (mu, sd, math.sqrt(pooled_num / pooled_dof))
    return res


def test_fit_gaussians_matches_loops_for_both_variances():
    rng = np.random.default_rng(1)
    stats = rng.normal(size=(9, 6)) * rng.uniform(0.5, 3, 6) + rng.normal(size=6)
    inside = rng.random((9, 6)) < 0.5
    inside[0, 2] = inside[1, 2] = True  # column 5: one observation "in"
    inside[:, 5] = False
    inside[0, 5] = True
    outside = ~inside
    ref = _loops(stats, inside, outside)
    mi, si, mo, so = fit_gaussians(stats, inside, outside, "global")
    np.testing.assert_allclose(mi, ref["in"][0])
    np.testing.assert_allclose(mo, ref["out"][0])
    np.testing.assert_allclose(si, ref["in"][2])
    np.testing.assert_allclose(so, ref["out"][2])
    mi, si, mo, so = fit_gaussians(stats, inside, outside, "per-item")
    want_in = [ref["in"][2] if s is None else s for s in ref["in"][1]]
    np.testing.assert_allclose(si, want_in)  # column 5 falls back to the pooled value
    np.testing.assert_allclose(so, [ref["out"][2] if s is None else s for s in ref["out"][1]])


def test_fit_gaussians_floors_identical_shadows_and_flags_empty_sides():
    stats = np.ones((4, 2))
    inside = np.array([[1, 0], [1, 0], [0, 0], [0, 0]], bool)
    mi, si, mo, so = fit_gaussians(stats, inside, ~inside)
    assert np.isnan(mi[1]) and mi[0] == 1.0
    assert (si == MIN_SD).all() and (so == MIN_SD).all()
    with pytest.raises(InvalidParameterError, match="variance"):
        fit_gaussians(stats, inside, ~inside, "local")
    with pytest.raises(InvalidParameterError, match="shape"):
        fit_gaussians(stats, inside[:2], ~inside)


# -- the likelihood ratio and its p-value -------------------------------------------------------
def test_log_likelihood_ratio_is_a_difference_of_normal_log_densities():
    from scipy.stats import norm

    x, mi, si, mo, so = 0.3, 1.0, 0.7, -0.5, 1.4
    want = norm.logpdf(x, mi, si) - norm.logpdf(x, mo, so)
    assert float(log_likelihood_ratio(x, mi, si, mo, so)) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("case", [
    (1.0, 1.0, 0.0, 1.0, 0.7),   # equal spreads: one upper tail
    (-1.0, 1.0, 0.0, 1.0, 0.2),  # "in" below: one lower tail
    (1.0, 0.5, 0.0, 1.0, 0.9),   # in narrower: an interval
    (1.0, 0.5, 0.0, 1.0, 3.0),
    (1.0, 2.0, 0.0, 1.0, 0.3),   # in wider: two tails
    (-2.0, 2.0, 0.0, 1.0, -1.0),
    (3.0, 0.3, 0.0, 1.0, 2.9),
    (0.0, 1.0, 0.0, 1.0, 0.4),   # identical hypotheses: p = 1
])
def test_lr_pvalue_matches_monte_carlo(case):
    mi, si, mo, so, x = case
    X = np.random.default_rng(2).normal(mo, so, 400_000)
    mc = np.mean(log_likelihood_ratio(X, mi, si, mo, so) >= log_likelihood_ratio(x, mi, si, mo, so))
    assert float(np.exp(lr_log_pvalue(x, mi, si, mo, so))) == pytest.approx(mc, abs=3e-3)


def test_lr_pvalue_is_uniform_under_never_trained():
    """The calibration the audit relies on: draws from the "out" Gaussian give uniform p-values."""
    rng = np.random.default_rng(3)
    for mi, si in [(2.0, 1.0), (0.5, 0.4), (-1.0, 2.5)]:
        x = rng.normal(0.0, 1.0, 20_000)
        p = np.exp(lr_log_pvalue(x, mi, si, 0.0, 1.0))
        hist = np.histogram(p, bins=10, range=(0, 1))[0] / len(p)
        assert np.abs(hist - 0.1).max() < 0.01


def test_lr_pvalue_keeps_resolution_far_in_the_tail():
    # a memorised item 40 standard deviations out: p is about 1e-350 in exact arithmetic
    logp = lr_log_pvalue(40.0, 40.0, 1.0, 0.0, 1.0)
    assert -800 < float(logp) < -600 or float(logp) == -700.0


@settings(max_examples=60, deadline=None)
@given(st.floats(-3, 3), st.floats(0.2, 3), st.floats(-3, 3), st.floats(0.2, 3), st.floats(-6, 6))
def test_lr_pvalue_is_a_probability(mi, si, mo, so, x):
    p = float(np.exp(lr_log_pvalue(x, mi, si, mo, so)))
    assert 0.0 <= p <= 1.0 + 1e-12


# -- Gaussian summaries -------------------------------------------------------------------------
def test_gaussian_auc_matches_pairwise_sampling():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 0.5, 3000), rng.normal(0.0, 1.2, 3000)
    assert float(gaussian_auc(1.0, 0.5, 0.0, 1.2)) == pytest.approx(np.mean(a[:, None] > b[None, :]), abs=0.01)


def test_gaussian_kl_matches_numerical_integration():
    mp, sp, mq, sq = 0.4, 0.8, -0.3, 1.5
    x = np.linspace(-12, 12, 200_001)
    p = np.exp(-0.5 * ((x - mp) / sp) ** 2) / (sp * np.sqrt(2 * np.pi))
    q = np.exp(-0.5 * ((x - mq) / sq) ** 2) / (sq * np.sqrt(2 * np.pi))
    want = np.sum(p * np.log(p / q)) * (x[1] - x[0])
    assert float(gaussian_kl(mp, sp, mq, sq)) == pytest.approx(want, rel=1e-6)


# -- ROC ----------------------------------------------------------------------------------------
def _brute_auc(pos, neg, w):
    num = sum(wj * ((p > n) + 0.5 * (p == n)) for p in pos for n, wj in zip(neg, w))
    return num / (len(pos) * sum(w))


def _brute_tpr_at(pos, neg, w, rate):
    best = 0.0
    for t in sorted(set(pos) | set(neg) | {math.inf}):
        fpr = sum(wj for n, wj in zip(neg, w) if n >= t) / sum(w)
        if fpr <= rate + 1e-12:
            best = max(best, sum(p >= t for p in pos) / len(pos))
    return best


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 6), st.integers(1, 3)), min_size=1, max_size=12),
    st.sampled_from([0.0, 0.01, 0.2, 0.5]),
)
def test_roc_figures_match_brute_force(pos, negw, rate):
    neg = [n for n, _ in negw]
    w = [float(v) for _, v in negw]
    assert roc_auc(pos, neg, w) == pytest.approx(_brute_auc(pos, neg, w))
    assert tpr_at_fpr(pos, neg, rate, w) == pytest.approx(_brute_tpr_at(pos, neg, w, rate))
    fpr, tpr = roc_curve(pos, neg, w)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == 1
    assert (np.diff(fpr) >= -1e-12).all() and (np.diff(tpr) >= 0).all()
    # the curve's area (trapezoids, ties as diagonals) is the AUC
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(pos, neg, w))


def test_roc_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="one positive"):
        roc_auc([], [1.0])
    with pytest.raises(InvalidParameterError, match="neg_weights"):
        roc_auc([1.0], [1.0, 2.0], [1.0])
    with pytest.raises(InvalidParameterError, match="NaN"):
        roc_auc([np.nan], [1.0])
    with pytest.raises(InvalidParameterError, match="fpr"):
        tpr_at_fpr([1.0], [0.0], 2.0)


def test_detectability_removes_most_of_the_noise_of_few_shadows():
    from rum.metrics.membership import detectability

    rng = np.random.default_rng(5)
    for gap in (0.0, 1.0, 2.0):
        want = float(gaussian_auc(gap, 1.0, 0.0, 1.0))
        fixed, naive = [], []
        for _ in range(2000):
            a, b = rng.normal(gap, 1.0, 8).mean(), rng.normal(0.0, 1.0, 8).mean()
            fixed.append(float(detectability(a, 1.0, 8, b, 1.0, 8)))
            naive.append(float(gaussian_auc(a, 1.0, b, 1.0)))
        if gap == 0.0:  # the question it answers: does the algorithm leave a trace at all?
            assert np.mean(fixed) < 0.56 < np.mean(naive)
        else:
            assert abs(np.mean(fixed) - want) < 0.06
