from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from rum.exceptions import InvalidParameterError
from rum.profiler import FZResult, SklearnTrainer, feldman_zhang
from rum.profiler.feldman_zhang import fz_estimate, subset_mask

# 1-NN on a line: an item the model trained on is always right (distance 0); without it,
# its nearest neighbours decide. Item 6 is a label-1 point inside the label-0 cluster.
X = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.1], [0.15], [5.2]])
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
NN1 = SklearnTrainer(KNeighborsClassifier(n_neighbors=1))


def reference(n_runs, fraction, seed):
    """The estimator with explicit loops and explicit retrains."""
    n = len(Y)
    ins, outs = [[] for _ in range(n)], [[] for _ in range(n)]
    for r in range(n_runs):
        m = subset_mask(n, fraction, seed, r)
        clf = KNeighborsClassifier(1).fit(X[m], Y[m])
        pred = clf.predict(X)
        for i in range(n):
            (ins if m[i] else outs)[i].append(pred[i] == Y[i])
    return np.array([np.mean(a) - np.mean(b) for a, b in zip(ins, outs, strict=True)])


def test_tiny_deterministic_case():
    res = feldman_zhang(NN1, (X, Y), n_runs=30, subset_fraction=0.75, random_state=3)
    np.testing.assert_allclose(res.memorization, reference(30, 0.75, 3))
    assert res.memorization[6] == 1.0  # always right when in, never when out
    assert (res.memorization[[4, 5, 7]] == 0).all()  # typical items of the far cluster
    assert (res.n_in + res.n_out == 30).all()
    back = FZResult.from_dict(res.to_dict())
    np.testing.assert_allclose(back.memorization, res.memorization)
    assert "Feldman-Zhang" in str(res)


def test_fz_estimate_nan_when_never_out():
    masks = np.array([[1, 1], [1, 0]], bool)
    mem = fz_estimate(masks, np.ones((2, 2), bool))[0]
    assert np.isnan(mem[0]) and mem[1] == 0.0


class Flaky:
    """Trains like NN1 but fails after ``fail_after`` calls, counting calls."""

    def __init__(self, fail_after=None):
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, X, y, seed):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return NN1(X, y, seed)


def test_resume_from_checkpoint(tmp_path):
    ck = tmp_path / "fz.npz"
    full = feldman_zhang(NN1, (X, Y), n_runs=12, random_state=1)
    with pytest.raises(KeyboardInterrupt):
        feldman_zhang(Flaky(fail_after=5), (X, Y), n_runs=12, random_state=1, checkpoint=ck)
    again = Flaky()
    res = feldman_zhang(again, (X, Y), n_runs=12, random_state=1, checkpoint=ck)
    assert again.calls == 7  # only the missing runs
    np.testing.assert_array_equal(res.memorization, full.memorization)
    with pytest.raises(InvalidParameterError, match="checkpoint"):
        feldman_zhang(NN1, (X, Y), n_runs=12, random_state=2, checkpoint=ck)


@pytest.mark.slow  # starts worker processes
def test_process_pool_matches_sequential():
    seq = feldman_zhang(NN1, (X, Y), n_runs=6, random_state=0)
    par = feldman_zhang(NN1, (X, Y), n_runs=6, random_state=0, n_jobs=2)
    np.testing.assert_array_equal(seq.memorization, par.memorization)


def test_bad_arguments():
    with pytest.raises(InvalidParameterError, match="backend"):
        feldman_zhang(NN1, (X, Y), backend="spark")
    with pytest.raises(InvalidParameterError, match="train_fn"):
        feldman_zhang("not callable", (X, Y))
    with pytest.raises(InvalidParameterError, match="predict"):
        feldman_zhang(lambda X, y, s: object(), (X, Y), n_runs=1)


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_missing_gives_install_hint():
    with pytest.raises(ImportError, match="distributed"):
        feldman_zhang(NN1, (X, Y), n_runs=2, backend="ray")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
@pytest.mark.slow  # starts worker processes
def test_ray_backend_matches_sequential():  # pragma: no cover - needs ray
    seq = feldman_zhang(NN1, (X, Y), n_runs=4, random_state=0)
    par = feldman_zhang(NN1, (X, Y), n_runs=4, random_state=0, backend="ray")
    np.testing.assert_array_equal(seq.memorization, par.memorization)
