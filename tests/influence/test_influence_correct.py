"""rum.correct on a convex model against the exact retrain, and on a small deep model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import InvalidParameterError, NotAModelError
from rum.influence import fit_convex
from tests.influence._helpers import LAM, flat


def _ratio(result_model, original, retrained):
    return float((flat(result_model) - flat(retrained)).norm() / (flat(original) - flat(retrained)).norm())


def test_second_order_deletion_of_3_percent_is_within_5_percent_of_retrain(cancer, cancer_model):
    X, y = cancer
    idx = np.random.default_rng(0).choice(len(y), int(0.03 * len(y)), replace=False)
    keep = np.setdiff1d(np.arange(len(y)), idx)
    retrained = fit_convex(torch.nn.Linear(30, 2), (X[keep], y[keep]), weight_decay=LAM)
    before = copy.deepcopy(cancer_model.state_dict())
    req = rum.requests.delete((X, y), idx)
    one = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, settings={"max_steps": 1})
    full = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM)
    first = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, settings={"order": 1})
    assert _ratio(one.model, cancer_model, retrained) < 0.05
    assert _ratio(full.model, cancer_model, retrained) < 1e-4
    # the paper's residual table: first-order residuals are orders of magnitude above second-order
    assert first.residual > 30 * one.residual
    assert full.residual < 1e-6 < first.residual
    # the caller's model is untouched; the result keeps its dtype
    for k, v in cancer_model.state_dict().items():
        assert torch.equal(v, before[k])
    assert full.model.weight.dtype == torch.float32
    assert full.settings.solver == "exact"


def test_label_repair_of_3_percent_poisoned_needs_iterated_newton(cancer):
    X, y = cancer
    rng = np.random.default_rng(1)
    idx = rng.choice(len(y), int(0.03 * len(y)), replace=False)
    y_poison = y.copy()
    y_poison[idx] = 1 - y_poison[idx]
    poisoned = fit_convex(torch.nn.Linear(30, 2), (X, y_poison), weight_decay=LAM).float()
    clean = fit_convex(torch.nn.Linear(30, 2), (X, y), weight_decay=LAM)
    req = rum.requests.relabel((X, y_poison), idx, y[idx])
    res = rum.correct(poisoned, req, train_set=(X, y_poison), weight_decay=LAM)
    assert _ratio(res.model, poisoned, clean) < 0.05
    assert res.steps >= 2
    assert res.residual < 1e-6
    assert res.accuracies["after_acc_after"] >= res.accuracies["after_acc_before"]


def test_feature_replacement_matches_retrain_on_edited_data(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.replace_features((X, y), columns=[3], values=0.0, rows=np.arange(0, 60))
    X_new = X.copy()
    X_new[:60, 3] = 0.0
    retrained = fit_convex(torch.nn.Linear(30, 2), (X_new, y), weight_decay=LAM)
    res = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, settings={"solver": "cg", "max_steps": 2, "batch_size": 4096})
    assert _ratio(res.model, cancer_model, retrained) < 1e-3


def test_deep_model_last_layers_with_cg_and_lissa_is_finite_and_untouched_input():
    torch.manual_seed(0)
    g = np.random.default_rng(0)
    X = g.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    rum.fit(model, (X, y), epochs=30, lr=1e-2, random_state=0)
    state = copy.deepcopy(model.state_dict())
    req = rum.requests.relabel((X, y), [0, 1, 2], 1 - y[:3])
    for solver in ("cg", "lissa"):
        res = rum.correct(model, req, train_set=(X, y), weight_decay=0.0, parameters=1,
                          random_state=0, settings={"solver": solver, "lissa_depth": 30, "cg_maxiter": 20, "scale": 50.0})
        assert all(torch.isfinite(p).all() for p in res.model.parameters())
        assert torch.equal(res.model[0].weight, model[0].weight)  # frozen layer unchanged
        assert not torch.equal(res.model[2].weight, model[2].weight)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_bad_inputs_are_refused_with_rum_errors(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.delete((X, y), [0])
    with pytest.raises(InvalidParameterError, match="weight_decay"):
        rum.correct(cancer_model, req, train_set=(X, y))
    with pytest.raises(InvalidParameterError, match="solver"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, settings={"solver": "newton"})
    with pytest.raises(InvalidParameterError, match="leave after=None"):
        rum.correct(cancer_model, req, (X[:1], y[:1]), train_set=(X, y), weight_decay=LAM)
    with pytest.raises(NotAModelError):
        rum.correct("model", req, train_set=(X, y), weight_decay=LAM)
