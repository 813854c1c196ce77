from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rum.exceptions import InvalidParameterError
from rum.profiler.entanglement import (
    ClassCentroids,
    MomentAccumulator,
    centroid_distance,
    class_margin,
    entanglement_score,
    mmd,
)


def brute_es(r: np.ndarray, s: np.ndarray, centroid: str) -> float:
    """The ES formula written out term by term with Python loops."""
    mu_r = sum(r) / len(r)
    mu_s = sum(s) / len(s)
    if centroid == "midpoint":
        mu = (mu_r + mu_s) / 2
    else:
        mu = (sum(r) + sum(s)) / (len(r) + len(s))
    within = sum(float(np.dot(x - mu_r, x - mu_r)) for x in r) / len(r)
    within += sum(float(np.dot(x - mu_s, x - mu_s)) for x in s) / len(s)
    between = 0.5 * (float(np.dot(mu_r - mu, mu_r - mu)) + float(np.dot(mu_s - mu, mu_s - mu)))
    return within / between


@pytest.mark.parametrize("centroid", ["midpoint", "weighted"])
def test_es_matches_brute_force(centroid):
    rng = np.random.default_rng(1)
    r = rng.normal(size=(57, 5))
    s = rng.normal(loc=0.8, size=(13, 5))
    assert entanglement_score(r, s, centroid) == pytest.approx(brute_es(r, s, centroid), rel=1e-10)


def test_conventions_differ_and_midpoint_is_size_invariant():
    rng = np.random.default_rng(2)
    r = rng.normal(size=(200, 3))
    s = rng.normal(loc=1.0, size=(10, 3))
    mid, wtd = entanglement_score(r, s), entanglement_score(r, s, "weighted")
    assert mid != pytest.approx(wtd, rel=1e-3)
    # duplicating every retain row changes neither mean nor spread: midpoint ES is unchanged
    assert entanglement_score(np.concatenate([r, r]), s) == pytest.approx(mid, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=8), st.integers(0, 10_000))
def test_streamed_moments_are_exact(batch_sizes, seed):
    """Uneven batches (including a short last one) give exact means and spreads."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=3.0, scale=2.0, size=(sum(batch_sizes), 4))
    acc = MomentAccumulator()
    start = 0
    for b in batch_sizes:
        acc.update(x[start : start + b])
        start += b
    assert acc.n == len(x)
    np.testing.assert_allclose(acc.mean.numpy(), x.mean(0), rtol=1e-12, atol=1e-12)
    assert acc.ssd == pytest.approx(((x - x.mean(0)) ** 2).sum(), rel=1e-10)
    half = len(batch_sizes) // 2
    cut = sum(batch_sizes[:half])
    merged = MomentAccumulator.of(x[:cut]).merge(MomentAccumulator.of(x[cut:]))
    assert merged.ssd == pytest.approx(acc.ssd, rel=1e-10)


def test_streamed_es_equals_full_es():
    rng = np.random.default_rng(3)
    r, s = rng.normal(size=(101, 6)), rng.normal(loc=0.5, size=(17, 6))
    acc = MomentAccumulator()
    for i in range(0, 101, 32):  # 32, 32, 32, 5: per-batch averaging would be biased here
        acc.update(r[i : i + 32])
    assert entanglement_score(acc, s) == pytest.approx(brute_es(r, s, "midpoint"), rel=1e-10)


def test_es_edge_cases():
    s = np.ones((3, 2))
    assert np.isnan(entanglement_score(np.zeros((0, 2)), s))
    assert entanglement_score(np.array([[0.0, 0.0], [2.0, 2.0]]), np.array([[1.0, 1.0]])) == np.inf
    with pytest.raises(InvalidParameterError, match="centroid"):
        entanglement_score(s, s, "median")


def test_class_centroids_and_margin_against_loops():
    rng = np.random.default_rng(4)
    e = rng.normal(size=(60, 3))
    y = rng.integers(0, 4, 60)
    cc = ClassCentroids()
    for i in range(0, 60, 7):
        cc.update(e[i : i + 7], y[i : i + 7])
    cent, present = cc.centroids()
    for c in range(4):
        np.testing.assert_allclose(cent[c], e[y == c].mean(0), rtol=1e-12)
    q = rng.normal(size=(9, 3))
    qy = rng.integers(0, 4, 9)
    got = class_margin(q, qy, cent, present)
    for i in range(9):
        d = [np.linalg.norm(q[i] - cent[c]) for c in range(4)]
        own = d[qy[i]]
        other = min(d[c] for c in range(4) if c != qy[i])
        assert got[i] == pytest.approx(own / (own + other))


def test_class_margin_missing_classes_give_nan():
    cent = np.array([[0.0], [np.nan], [4.0]])
    out = class_margin(np.array([[1.0], [1.0]]), np.array([0, 1]), cent)
    assert out[0] == pytest.approx(0.25) and np.isnan(out[1])


def test_centroid_distance_orientation():
    acc = MomentAccumulator.of(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    s = centroid_distance(np.array([[0.0, 0.0], [3.0, 0.0]]), acc)
    assert s[0] > s[1]  # closer to the retain centre = more entangled


def test_mmd_chunked_equals_dense():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(23, 3)), rng.normal(loc=0.5, size=(17, 3))

    def k(p, q):
        return np.exp(-0.5 * ((p[:, None] - q[None]) ** 2).sum(-1))

    dense = np.sqrt(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())
    assert mmd(a, b, gamma=0.5, chunk=5) == pytest.approx(dense, rel=1e-9)
    assert mmd(torch.tensor(a), torch.tensor(a)) == pytest.approx(0.0, abs=1e-6)
