"""scikit-learn LogisticRegression in, updated estimator out, against sklearn's own refit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import rum
from rum.exceptions import IneligibleModelError, InvalidParameterError
from rum.influence import estimator_to_torch


def _flat(est):
    # softmax is unchanged by a common shift of the (unpenalised) intercepts: compare them centred
    b = est.intercept_.ravel()
    return np.concatenate([est.coef_.ravel(), b - b.mean() if len(b) > 1 else b])


def _fit(X, y, C):
    return LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("binary", [True, False])
def test_deletion_matches_sklearn_refit_and_estimator_is_untouched(wine, binary):
    X, y = wine
    if binary:
        y = (y == 1).astype(int)
    else:
        y = np.array(["a", "b", "c"])[y]  # arbitrary class labels are mapped through classes_
    C = 0.5
    est = _fit(X, y, C)
    coef0 = est.coef_.copy()
    idx = np.random.default_rng(0).choice(len(y), 6, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), idx)
    refit = _fit(X[keep], y[keep], C)
    labels = np.searchsorted(est.classes_, y)
    req = rum.requests.delete((X, labels), idx)
    res = rum.correct(est, req, train_set=(X, y))
    new = res.model
    assert isinstance(new, LogisticRegression) and new is not est
    assert np.array_equal(est.coef_, coef0)
    ratio = np.linalg.norm(_flat(new) - _flat(refit)) / np.linalg.norm(_flat(est) - _flat(refit))
    assert ratio < 0.01
    assert np.array_equal(new.predict(X[:20]), refit.predict(X[:20]))


def test_sklearn_objective_convention_is_mean_ce_plus_lambda_over_two(wine):
    """At sklearn's optimum the gradient of mean CE + 1/(2Cn)||W||^2 (intercept free) vanishes."""
    from rum._data import as_data
    from rum.influence import Objective, ParamSpace, Term, select_parameters

    X, y = wine
    C = 0.3
    est = _fit(X, y, C)
    model, penalized = estimator_to_torch(est)
    space = ParamSpace.of(model, select_parameters(model))
    data = as_data((X, y)).to(dtype=model.weight.dtype)
    obj = Objective(model, space, [Term(data)], weight_decay=1 / (C * len(y)), penalized=penalized)
    assert float(obj.grad(space.read(model)).norm()) < 1e-6


def test_relabel_with_raw_pairs_and_refusals(wine):
    X, y = wine
    yb = (y == 1).astype(int)
    est = _fit(X, yb, 1.0)
    idx = np.arange(5)
    res = rum.correct(est, (X[idx], yb[idx]), (X[idx], 1 - yb[idx]), train_set=(X, yb))
    y_new = yb.copy()
    y_new[idx] = 1 - y_new[idx]
    refit = _fit(X, y_new, 1.0)
    assert np.allclose(_flat(res.model), _flat(refit), atol=1e-5)
    with pytest.raises(InvalidParameterError, match="taken from the estimator"):
        rum.correct(est, (X[idx], yb[idx]), train_set=(X, yb), weight_decay=0.1)
    with pytest.raises(IneligibleModelError, match="class_weight"):
        rum.correct(LogisticRegression(class_weight="balanced").fit(X, yb), (X[idx], yb[idx]),
                    train_set=(X, yb))
    with pytest.raises(IneligibleModelError, match="liblinear"):
        rum.correct(LogisticRegression(solver="liblinear").fit(X, yb), (X[idx], yb[idx]),
                    train_set=(X, yb))
    unfitted = copy.deepcopy(LogisticRegression())
    with pytest.raises(InvalidParameterError, match="not fitted"):
        rum.correct(unfitted, (X[idx], yb[idx]), train_set=(X, yb))
