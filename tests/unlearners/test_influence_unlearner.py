"""The registered `influence` unlearner: exact on a convex model, safe on a small MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum.influence import fit_convex
from rum.unlearners import Influence


def test_registered_and_params_round_trip():
    u = rum.get_unlearner("influence")(parameters=2, settings={"solver": "cg", "damping": 0.5})
    assert isinstance(u, Influence)
    assert u.clone() == u and eval(repr(u), {"Influence": Influence}) == u
    assert u.get_params()["parameters"] == 2
    Influence(**Influence._test_params()).validate_params()
    # the solver options are the ones rum.correct takes: one record, checked by name
    with pytest.raises(rum.exceptions.InvalidParameterError, match="'settings'.*'damping'"):
        Influence(settings={"damping": -1.0}).validate_params()
    with pytest.raises(rum.exceptions.UnknownOptionError, match="Did you mean 'solver'"):
        Influence(settings={"solve": "cg"}).validate_params()


def test_convex_deletion_through_rum_unlearn_equals_retrain():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    lam = 1e-2
    model = fit_convex(torch.nn.Linear(30, 2), (X, y), weight_decay=lam).float()
    idx = np.random.default_rng(3).choice(len(y), 17, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), idx)
    retrained = fit_convex(torch.nn.Linear(30, 2), (X[keep], y[keep]), weight_decay=lam)
    res = rum.unlearn(model, (X[idx], y[idx]), (X[keep], y[keep]), unlearner="influence",
                      weight_decay=lam, device="cpu", random_state=0)
    assert res.model.weight.dtype == torch.float32
    assert torch.allclose(res.model.weight.double(), retrained.weight, atol=1e-5)
    assert torch.allclose(res.model.bias.double(), retrained.bias, atol=1e-5)
    assert not res.diverged


def test_memorised_mlp_moves_towards_forgetting_without_wrecking_test_accuracy():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    X_tr, y_tr, X_te, y_te = X[:600], y[:600].copy(), X[1000:], y[1000:]
    flip = rng.choice(600, 30, replace=False)
    y_tr[flip] = (y_tr[flip] + 1) % 10  # memorised mislabelled items = the forget set
    keep = np.setdiff1d(np.arange(600), flip)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    rum.fit(model, (X_tr, y_tr), epochs=100, lr=3e-3, random_state=0)
    common = dict(device="cpu", random_state=0)
    noop = rum.unlearn(model, (X_tr[flip], y_tr[flip]), (X_tr[keep], y_tr[keep]), unlearner="noop", **common)
    res = rum.unlearn(model, (X_tr[flip], y_tr[flip]), (X_tr[keep], y_tr[keep]),
                      unlearner="influence", **common)

    def acc(m, X_, y_):
        with torch.no_grad():
            return float((m(torch.as_tensor(X_)).argmax(1).numpy() == y_).mean())

    assert acc(noop.model, X_tr[flip], y_tr[flip]) > 0.9
    assert acc(res.model, X_tr[flip], y_tr[flip]) < acc(noop.model, X_tr[flip], y_tr[flip])
    assert acc(res.model, X_te, y_te) > acc(noop.model, X_te, y_te) - 0.03
