"""The fast paths of rum.correct give the results of the slow ones.

* a last-layer correction of an ``nn.Sequential`` runs on features computed
  once; it must equal the same correction through the whole network, and its
  iterated form must land on the exact retrain of the last layer on those
  features;
* a Hessian cached over the training set must give the same correction as
  building the Hessian from scratch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum._data import TensorData
from rum.exceptions import InvalidParameterError, RumWarning
from rum.influence import HessianCache, cache_hessian, fit_convex
from rum.influence.features import split_frozen_prefix, tail_view
from rum.influence.workspace import build_workspace
from tests.influence._helpers import LAM, flat


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(30, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )


@pytest.fixture(scope="module")
def deep(cancer):
    X, y = cancer
    model = _mlp()
    rum.fit(model, (X, y), epochs=30, lr=1e-2, batch_size=64, optimizer="adam",
            weight_decay=LAM, random_state=0)
    return model, X, y


def test_split_frozen_prefix_finds_the_first_updated_module():
    m = _mlp()
    assert split_frozen_prefix(m, ["2.weight"]) == 2
    assert split_frozen_prefix(m, ["0.bias", "2.weight"]) is None
    assert split_frozen_prefix(torch.nn.Linear(3, 2), ["weight"]) is None
    tied = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    assert split_frozen_prefix(tied, ["1.bias"]) is None


def test_tail_view_features_are_the_prefix_outputs(deep):
    model, X, y = deep
    data = TensorData(torch.as_tensor(X), torch.as_tensor(y))
    tail, (f,) = tail_view(model.eval(), ["2.weight", "2.bias"], [data], 100)
    with torch.no_grad():
        assert torch.allclose(f.X, model[:2](data.X))
        assert torch.allclose(tail(f.X), model(data.X), atol=1e-6)


def _relabel(X, y, k=15, seed=0):
    idx = np.random.default_rng(seed).choice(len(y), k, replace=False)
    return rum.requests.relabel((X, y), idx, 1 - y[idx]), idx


def test_last_layer_correction_on_cached_features_equals_the_whole_network(deep, monkeypatch):
    model, X, y = deep
    req, _ = _relabel(X, y)
    kw = dict(train_set=(X, y), weight_decay=LAM, parameters=1, settings={"solver": "cg", "damping": 0.01})
    fast = rum.correct(model, req, **kw)
    monkeypatch.setattr("rum.influence.workspace.tail_view", lambda *a, **k: None)
    slow = rum.correct(model, req, **kw)
    assert fast.parameters == ("2.weight", "2.bias")
    gap = float((flat(fast.model) - flat(slow.model)).norm())
    moved = float((flat(slow.model) - flat(model)).norm())
    assert moved > 1e-2
    assert gap < 1e-3 * moved  # fast runs the tail in float64, slow the network in float32
    assert torch.equal(fast.model[0].weight, model[0].weight)


def test_iterated_last_layer_correction_is_the_exact_last_layer_retrain(deep):
    model, X, y = deep
    req, idx = _relabel(X, y)
    res = rum.correct(model, req, train_set=(X, y), weight_decay=LAM, parameters=1, settings={"damping": 0.0, "max_steps": 25, "tol": 1e-10})
    assert res.settings.solver == "exact"
    y_new = y.copy()
    y_new[idx] = 1 - y[idx]
    with torch.no_grad():
        feats = model[:2](torch.as_tensor(X))
    ref = fit_convex(torch.nn.Linear(16, 2), (feats.numpy(), y_new), weight_decay=LAM, tol=1e-12)
    got = torch.cat([res.model[2].weight.detach().double().reshape(-1), res.model[2].bias.detach().double()])
    want = torch.cat([ref.weight.detach().reshape(-1), ref.bias.detach()])
    start = torch.cat([model[2].weight.detach().double().reshape(-1), model[2].bias.detach().double()])
    assert float((got - want).norm()) < 1e-4 * float((start - want).norm())


def test_hessian_cache_gives_the_uncached_correction(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.delete((X, y), np.arange(0, len(y), 30))
    cache = cache_hessian(cancer_model, (X, y))
    assert isinstance(cache, HessianCache) and cache.n == len(y)
    for settings in (None, {"max_steps": 1}):
        plain = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, settings=settings)
        fast = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM,
                           hessian_cache=cache, settings=settings)
        assert torch.allclose(flat(fast.model), flat(plain.model), atol=1e-6)
        for key in ("residual", "residual_before", "objective_before", "objective_after"):
            assert getattr(fast, key) == pytest.approx(getattr(plain, key), rel=1e-6, abs=1e-12)


def test_hessian_cache_works_for_scikit_learn_and_deep_last_layers(cancer, deep):
    from sklearn.linear_model import LogisticRegression

    X, y = cancer
    clf = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(X, y)
    req = rum.requests.delete((X, y), [1, 2, 3])
    res = rum.correct(clf, req, train_set=(X, y), hessian_cache=cache_hessian(clf, (X, y)))
    ref = rum.correct(clf, req, train_set=(X, y))
    assert np.allclose(res.model.coef_, ref.model.coef_, atol=1e-8)

    model, X, y = deep
    req, _ = _relabel(X, y)
    cache = cache_hessian(model, (X, y), parameters=1)
    assert cache.parameters == ("2.weight", "2.bias")
    a = rum.correct(model, req, train_set=(X, y), weight_decay=LAM, parameters=1, hessian_cache=cache)
    b = rum.correct(model, req, train_set=(X, y), weight_decay=LAM, parameters=1)
    assert torch.allclose(flat(a.model), flat(b.model), atol=1e-6)
    c = rum.correct(model, req, train_set=(X, y), weight_decay=LAM, parameters=1,
                    hessian_cache=cache, verify=False)  # deep models take one step anyway
    assert torch.allclose(flat(c.model), flat(a.model), atol=1e-6)


def test_a_mismatched_hessian_cache_is_refused_where_it_cannot_serve(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.delete((X, y), [0])
    cache = cache_hessian(cancer_model, (X, y))
    other = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM).model
    for kw in ({"verify": False}, {"settings": {"max_steps": 1}}):
        with pytest.raises(InvalidParameterError, match="weights differ"):
            rum.correct(other, req, train_set=(X, y), weight_decay=LAM, hessian_cache=cache, **kw)
    with pytest.raises(InvalidParameterError, match="training items"):
        rum.correct(cancer_model, rum.requests.delete((X[:-1], y[:-1]), [0]),
                    train_set=(X[:-1], y[:-1]), weight_decay=LAM, hessian_cache=cache, verify=False)
    with pytest.raises(InvalidParameterError, match="covers parameters"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, parameters=["bias"],
                    hessian_cache=cache)
    with pytest.raises(InvalidParameterError, match="exact second-order"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM,
                    hessian_cache=cache, settings={"solver": "cg"})
    with pytest.raises(InvalidParameterError, match="HessianCache"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, hessian_cache="cache")


def test_a_cache_from_an_earlier_model_serves_a_chain_of_verified_corrections(
        cancer, cancer_model, monkeypatch):
    """The second link of a chain reuses the first model's cache and still lands on the optimum."""
    from rum.influence.objective import Objective

    X, y = cancer
    cache = cache_hessian(cancer_model, (X, y))
    first = rum.correct(cancer_model, rum.requests.delete((X, y), np.arange(0, 40, 2)),
                        train_set=(X, y), weight_decay=LAM, hessian_cache=cache)
    keep = np.setdiff1d(np.arange(len(y)), np.arange(0, 40, 2))
    X1, y1 = X[keep], y[keep]
    req = rum.requests.delete((X1, y1), np.arange(100, 130))
    plain = rum.correct(first.model, req, train_set=(X1, y1), weight_decay=LAM)

    def no_full_hessian(self, theta, chunk=256):
        raise AssertionError("the exact Hessian was rebuilt")

    monkeypatch.setattr(Objective, "hessian", no_full_hessian)
    chained = rum.correct(first.model, req, train_set=(X1, y1), weight_decay=LAM, hessian_cache=cache)
    assert chained.residual < 1e-8 and chained.solver_iterations > 0
    assert torch.allclose(flat(chained.model), flat(plain.model), atol=1e-6)


def test_workspace_leaves_the_callers_model_alone(deep):
    model, X, y = deep
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ws = build_workspace(model, 1, [TensorData(torch.as_tensor(X), torch.as_tensor(y))], "cpu")
    assert ws.linear_tail and ws.model is not model
    ws.space.write(ws.model, torch.zeros(ws.space.size, dtype=torch.float64))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert ws.finish()[2].weight.dtype == torch.float32


class _Unreadable(torch.utils.data.Dataset):
    """A training set of known size whose items must never be read."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        raise AssertionError("the training set was read")


def test_unverified_correction_is_the_one_step_correction_without_reading_train_set(
        cancer, cancer_model):
    X, y = cancer
    idx = np.arange(0, len(y), 33)  # about 3 %
    req = rum.requests.delete((X, y), idx)
    cache = cache_hessian(cancer_model, (X, y))
    with pytest.warns(RumWarning, match="residual is still"):  # one step is not the optimum
        one = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM,
                          hessian_cache=cache, settings={"max_steps": 1})
    fast = rum.correct(cancer_model, req, train_set=_Unreadable(len(y)), weight_decay=LAM,
                       hessian_cache=cache, verify=False)
    assert torch.allclose(flat(fast.model), flat(one.model), atol=1e-7)
    assert np.isnan(fast.residual) and np.isnan(fast.objective_after)
    assert fast.steps == 1
    assert fast.residual_before == pytest.approx(one.residual_before)
    # one step from the cache lands near the exact retrain; verified refinement lands on it
    keep = np.setdiff1d(np.arange(len(y)), idx)
    torch.manual_seed(0)
    ref = fit_convex(torch.nn.Linear(X.shape[1], 2), (X[keep], y[keep]), weight_decay=LAM)
    full = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, hessian_cache=cache)

    def ratio(model):
        return float((flat(model) - flat(ref)).norm() / (flat(cancer_model) - flat(ref)).norm())

    assert ratio(full.model) < 1e-3 < ratio(fast.model) < 0.1


def test_unverified_correction_of_a_scikit_learn_model():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = LogisticRegression(C=1.0, tol=1e-10, max_iter=2000).fit(X, y)
    req = rum.requests.delete((X, y), np.arange(0, len(y), 40))
    cache = cache_hessian(clf, (X, y))
    a = rum.correct(clf, req, train_set=(X, y), hessian_cache=cache, settings={"max_steps": 1})
    b = rum.correct(clf, req, train_set=(X, y), hessian_cache=cache, verify=False)
    assert np.allclose(a.model.coef_, b.model.coef_, atol=1e-10)
    assert np.allclose(a.model.intercept_, b.model.intercept_, atol=1e-10)


def test_unverified_correction_is_refused_where_it_cannot_hold(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.delete((X, y), [0, 1])
    with pytest.raises(InvalidParameterError, match="needs a hessian_cache"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, verify=False)
    cache = cache_hessian(cancer_model, (X, y))
    with pytest.raises(InvalidParameterError, match="max_steps=3"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, hessian_cache=cache,
                    verify=False, settings={"max_steps": 3})
    with pytest.raises(InvalidParameterError, match="certified"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, hessian_cache=cache,
                    verify=False, epsilon=1.0, delta=1e-5)
    with pytest.raises(InvalidParameterError, match="verify"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, verify="no")


def test_cached_hessian_solve_by_preconditioned_cg_equals_the_dense_solve(cancer, cancer_model,
                                                                        monkeypatch):
    """The cache's solve never forms the corrected Hessian; it must give the dense solve's step."""
    import importlib

    mod = importlib.import_module("rum.influence._update")
    X, y = cancer
    # a deletion: a relabelling leaves a binary logistic Hessian unchanged (it does not
    # depend on the labels), so the cached preconditioner would be exact
    req = rum.requests.delete((X, y), np.arange(0, 60, 3))
    cache = cache_hessian(cancer_model, (X, y))
    kw = dict(train_set=(X, y), weight_decay=LAM, hessian_cache=cache, settings={"max_steps": 1})
    pcg = rum.correct(cancer_model, req, **kw)
    assert pcg.solver_iterations > 0  # the CG path ran
    monkeypatch.setattr(HessianCache, "preconditioner", lambda self, reg, n: None)
    dense = rum.correct(cancer_model, req, **kw)
    assert dense.solver_iterations == 0
    assert torch.allclose(flat(pcg.model), flat(dense.model), atol=1e-7)
    monkeypatch.undo()
    # a solve that does not converge in time falls back to the dense one
    monkeypatch.setattr(mod, "CACHED_CG_MAXITER", 1)
    fallback = rum.correct(cancer_model, req, **kw)
    assert fallback.solver_iterations == 0
    assert torch.allclose(flat(fallback.model), flat(dense.model), atol=1e-7)


def test_preconditioner_is_refused_for_a_singular_hessian():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(X, y)  # multinomial, unpenalised intercept
    p = len(clf.classes_) * (X.shape[1] + 1)
    mask = torch.ones(p, dtype=torch.float64)
    mask[-3:] = 0.0  # the intercepts: softmax is unchanged by adding one constant to all three
    assert cache_hessian(clf, (X, y)).preconditioner(1e-3 * mask, len(y)) is None
    full = 1e-3 * torch.ones(p, dtype=torch.float64)
    assert cache_hessian(clf, (X, y)).preconditioner(full, len(y)) is not None
