"""Certified mode: formulas, the residual bound holds, the budget accumulates, refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import IneligibleModelError, RumWarning
from rum.influence import (
    BinaryLogit,
    certificate_constant,
    epsilon_spent,
    fit_certified,
    fit_certified_logistic_regression,
    noise_scale,
)

LAM = 1e-2


def test_noise_scale_formula():
    c = math.sqrt(2 * math.log(1.5 / 0.01))
    assert certificate_constant(0.01) == pytest.approx(c)
    assert noise_scale(0.1, 0.01, 0.5) == pytest.approx(c * 0.5 / 0.1)
    assert epsilon_spent(noise_scale(0.3, 1e-4, 2.0), 1e-4, 2.0) == pytest.approx(0.3)


@pytest.fixture(scope="module")
def certified(cancer):
    X, y = cancer
    Xb = np.hstack([X, np.ones((len(X), 1), np.float32)])  # penalised intercept as a feature
    model = fit_certified(BinaryLogit(Xb.shape[1], bias=False), (Xb, y), weight_decay=LAM,
                          sigma=5.0, random_state=0)
    return Xb, y, model


def test_bound_holds_and_budget_accumulates(certified):
    Xb, y, model = certified
    idx = np.arange(10)
    req = rum.requests.delete((Xb, y), idx)
    # one Newton step leaves a visible residual, which the bound must cover
    one = rum.correct(model, req, train_set=(Xb, y), weight_decay=LAM,
                      epsilon=2.0, delta=1e-4, settings={"max_steps": 1})
    n_new = len(y) - len(idx)
    measured = one.residual * n_new
    assert measured > 1e-6
    assert measured <= one.certificate.residual_bound
    assert one.certificate.certified == 1.0
    assert one.certificate.epsilon_spent == pytest.approx(
        epsilon_spent(5.0, 1e-4, one.certificate.residual_bound))
    assert one.model.rum_perturbation.spent_bound == pytest.approx(one.certificate.residual_bound)
    # a second correction of the corrected model adds to the spent bound
    keep = np.setdiff1d(np.arange(len(y)), idx)
    req2 = rum.requests.relabel((Xb[keep], y[keep]), [0, 1], 1 - y[keep][:2])
    two = rum.correct(one.model, req2, train_set=(Xb[keep], y[keep]), weight_decay=LAM,
                      epsilon=2.0, delta=1e-4)
    assert two.certificate.cumulative_bound == pytest.approx(
        one.certificate.residual_bound + two.certificate.residual_bound)
    # with a tiny epsilon the budget is exceeded: no certificate, a warning
    with pytest.warns(RumWarning, match="budget"):
        tight = rum.correct(model, req, train_set=(Xb, y), weight_decay=LAM,
                            epsilon=1e-6, delta=1e-4, settings={"max_steps": 1})
    assert tight.certificate.certified == 0.0


def test_ineligible_models_are_refused(cancer, cancer_model):
    X, y = cancer
    req = rum.requests.delete((X, y), [0, 1])
    mlp = torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(IneligibleModelError, match="not a single linear layer"):
        rum.correct(mlp, req, train_set=(X, y), weight_decay=LAM, epsilon=1.0, delta=1e-4)
    with pytest.raises(IneligibleModelError, match="order=1"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM,
                    epsilon=1.0, delta=1e-4, settings={"order": 1})
    with pytest.raises(IneligibleModelError, match="weight_decay is 0"):
        rum.correct(cancer_model, req, train_set=(X, y), weight_decay=0.0, epsilon=1.0, delta=1e-4)
    three = torch.nn.Linear(30, 3)
    with pytest.raises(IneligibleModelError, match="3 classes"):
        rum.correct(three, req, train_set=(X, y), weight_decay=LAM, epsilon=1.0, delta=1e-4)
    # no training noise: the correction runs but claims no certificate
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = rum.correct(cancer_model, req, train_set=(X, y), weight_decay=LAM, epsilon=1.0, delta=1e-4)
    assert res.certificate.certified == 0.0 and res.certificate.required_sigma >= 0
    assert any("not trained with objective perturbation" in str(x.message) for x in w)


def test_certified_sklearn_estimator_round_trip(cancer):
    X, y = cancer
    est = fit_certified_logistic_regression(X, y, C=1.0, sigma=2.0, random_state=0)
    assert (est.predict(X) == y).mean() > 0.9
    res = rum.correct(est, rum.requests.delete((X, y), [0, 1, 2]), train_set=(X, y),
                      epsilon=1.0, delta=1e-4)
    assert res.certificate.certified == 1.0
    assert res.model.rum_perturbation_.spent_bound == pytest.approx(res.certificate.residual_bound)
    assert est.rum_perturbation_.spent_bound == 0.0


def test_a_correction_result_prints_as_a_table_and_round_trips_through_json(cancer, tmp_path):
    X, y = cancer
    est = fit_certified_logistic_regression(X, y, C=1.0, sigma=2.0, random_state=0)
    res = rum.correct(est, rum.requests.delete((X, y), [0, 1, 2]), train_set=(X, y),
                      epsilon=1.0, delta=1e-4, random_state=0)
    text = str(res)
    assert "Correction of 3 item(s) (3 deleted)" in text and "gradient residual" in text
    assert "certificate: (1.000, 1.00e-04) requested" in text and text.endswith(": certified")
    back = rum.CorrectionResult.load(res.save(tmp_path / "correction.json"))
    assert back.model is None and back.certificate == res.certificate
    assert back.settings == res.settings and back.parameters == res.parameters
    for key in ("residual", "residual_before", "steps", "solver_iterations", "objective_before",
                "objective_after", "accuracies", "n_items", "n_deleted", "seed", "diverged"):
        assert getattr(back, key) == getattr(res, key), key
    # without a certificate, and unverified: NaNs come back as NaNs
    from sklearn.linear_model import LogisticRegression

    plain = LogisticRegression(max_iter=1000).fit(X, y)
    cache = rum.influence.cache_hessian(plain, (X, y))
    quick = rum.correct(plain, rum.requests.delete((X, y), [5]), train_set=(X, y),
                        hessian_cache=cache, verify=False)
    again = rum.CorrectionResult.from_dict(quick.to_dict())
    assert again.certificate is None and math.isnan(again.residual) and math.isnan(quick.residual)
