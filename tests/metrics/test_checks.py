"""The two cheap forgetting checks: margin KL against retrained models, and a linear probe."""

from __future__ import annotations

import numpy as np
import pytest

import rum
from rum.exceptions import InvalidParameterError
from rum.metrics.margins import margin_kl_from_margins
from rum.metrics.probe import cross_fitted_probe

from ..test_audit import Task, fit_ridge


def _brute_kl(audited, refs):
    """Per-item Gaussian KL with spreads pooled over items, by loops."""
    R, n = refs.shape

    def fit(rows):
        mu = [sum(rows[k][i] for k in range(len(rows))) / len(rows) for i in range(n)]
        ss = sum((rows[k][i] - mu[i]) ** 2 for k in range(len(rows)) for i in range(n))
        return mu, (ss / (n * (len(rows) - 1))) ** 0.5

    mu_r, sd_r = fit(refs)
    if len(audited) == 1:
        mu_a, sd_a = list(audited[0]), sd_r
    else:
        mu_a, sd_a = fit(audited)
    return np.array([np.log(sd_r / sd_a) + (sd_a**2 + (mu_a[i] - mu_r[i]) ** 2) / (2 * sd_r**2) - 0.5
                     for i in range(n)])


def test_margin_kl_matches_loops():
    rng = np.random.default_rng(0)
    refs = rng.normal(size=(4, 7))
    one = rng.normal(size=(1, 7)) + 1
    many = rng.normal(size=(3, 7)) * 2
    np.testing.assert_allclose(margin_kl_from_margins(one, refs)[0], _brute_kl(one, refs))
    np.testing.assert_allclose(margin_kl_from_margins(many, refs)[0], _brute_kl(many, refs))
    floor = np.mean([_brute_kl(refs[i:i + 1], np.delete(refs, i, 0)).mean() for i in range(4)])
    assert margin_kl_from_margins(one, refs)[1] == pytest.approx(floor)
    assert np.isnan(margin_kl_from_margins(one, refs[:2])[1])
    with pytest.raises(InvalidParameterError, match="two retrained"):
        margin_kl_from_margins(one, refs[:1])


def test_margin_kl_puts_a_retrain_at_the_floor_and_the_original_far_above_it():
    import torch

    t = Task(0)
    refs = []
    for seed in (11, 12, 13):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            refs.append(fit_ridge(t.retain))
    res = rum.metrics.margin_kl(t.retrained, t.forget, refs, test_set=t.test)
    orig = rum.metrics.margin_kl(t.model, t.forget, refs, test_set=t.test)
    floor = res.summary["forget"]["floor"]
    assert res.summary["forget"]["mean"] < 2 * floor
    assert orig.summary["forget"]["mean"] > 1.5 * floor
    assert orig.kl["forget"][:40].mean() > 3 * floor  # the flipped items most
    assert orig.kl["forget"][:40].mean() > 3 * orig.kl["forget"][40:].mean()
    assert set(orig.summary) == {"forget", "test"} and "retrain floor" in str(orig)
    with pytest.raises(InvalidParameterError, match="at least two"):
        rum.metrics.margin_kl(t.model, t.forget, [refs[0]])


def test_cross_fitted_probe_never_predicts_an_item_it_was_trained_on():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    Xr, yr = rng.normal(size=(80, 3)), rng.integers(0, 3, 80)
    Xf, yf = rng.normal(size=(11, 3)), rng.integers(0, 3, 11)
    pred = cross_fitted_probe(Xr, yr, Xf, yf, seed=4)
    half = np.zeros(11, bool)
    half[np.random.default_rng(4).permutation(11)[:5]] = True
    for fit_on in (half, ~half):
        X, y = np.r_[Xr, Xf[fit_on]], np.r_[yr, yf[fit_on]]
        s = StandardScaler().fit(X)
        want = LogisticRegression(max_iter=2000).fit(s.transform(X), y).predict(s.transform(Xf[~fit_on]))
        np.testing.assert_array_equal(pred[~fit_on], want)


def test_linear_probe_rejects_bad_arguments(small):
    model, forget, retain = small
    with pytest.raises(InvalidParameterError, match="max_retain"):
        rum.metrics.linear_probe(model, forget, retain, max_retain=0)
    with pytest.raises(rum.exceptions.EmbeddingLayerError):
        rum.metrics.linear_probe(model, forget, retain, embedding_layer="nope")


@pytest.mark.slow  # four probes on the digits MLPs
def test_the_probe_reads_memorised_labels_from_the_original_not_from_a_retrain(digits, oracle):
    res = rum.metrics.linear_probe(digits.model, digits.forget, digits.retain, reference=oracle)
    flipped = (digits.forget[0][digits.mislabeled], digits.forget[1][digits.mislabeled])
    on_flipped = rum.metrics.linear_probe(digits.model, flipped, digits.retain, reference=oracle)
    assert res.probe_accuracy > res.reference_probe_accuracy + 0.2
    assert on_flipped.probe_accuracy > 0.5 > on_flipped.reference_probe_accuracy + 0.3
    assert "probe accuracy" in str(res) and res.gap > 0.2
