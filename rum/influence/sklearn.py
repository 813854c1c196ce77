"""scikit-learn's ``LogisticRegression`` in and out of :func:`rum.correct`.

scikit-learn minimises ``C * sum_i l(z_i) + 1/2 ||W||^2`` with the intercept
unpenalised. Divided by ``C n`` this is rum's mean objective with
``weight_decay = 1 / (C n)`` on the coefficients only. The penalty is fixed in
the *summed* objective, so refitting after deleting items (same ``C``) uses
``1 / (C n~)``; the correction follows that. A fitted estimator converts
exactly: a binary model becomes a :class:`BinaryLogit`, a
multinomial one an ``nn.Linear(d, K)``. The corrected coefficients are written
into a *copy* of the estimator; the caller's estimator is never modified.

Assumptions (checked where the estimator says so): L2 penalty (or none),
``class_weight=None``, no ``sample_weight`` at fit time, a solver other than
``liblinear`` (which penalises the intercept and is one-vs-rest), and the
estimator fitted to (close to) the optimum on exactly ``train_set``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from rum._data import TensorData, as_data
from rum._model import is_logistic_regression
from rum.exceptions import IneligibleModelError, InvalidDataError, InvalidParameterError
from rum.influence import certified as cert
from rum.influence.linear import BinaryLogit
from rum.influence.requests import Request

__all__ = [
    "is_logistic_regression",
    "estimator_to_torch",
    "encode_labels",
    "l2_lambda",
    "fit_certified_logistic_regression",
]


def l2_lambda(est: Any, n: int) -> float:
    penalty = getattr(est, "penalty", "l2")
    l1_ratio = getattr(est, "l1_ratio", None)
    if penalty in (None, "none"):
        return 0.0
    if penalty not in ("l2", "deprecated"):
        raise IneligibleModelError(
            f"rum.correct supports L2-penalised LogisticRegression only, got penalty={penalty!r}."
        )
    if l1_ratio not in (None, 0, 0.0) and penalty != "l2":
        raise IneligibleModelError(
            f"rum.correct supports the L2 penalty only (l1_ratio=0), got l1_ratio={l1_ratio!r}."
        )
    C = float(est.C)
    return 0.0 if math.isinf(C) else 1.0 / (C * n)


def _check_estimator(est: Any) -> None:
    if not hasattr(est, "coef_"):
        raise InvalidParameterError(
            "the LogisticRegression is not fitted; call .fit(X, y) before rum.correct."
        )
    if getattr(est, "class_weight", None) is not None:
        raise IneligibleModelError(
            "rum.correct does not support class_weight (it changes the objective per class); "
            "refit with class_weight=None."
        )
    if getattr(est, "solver", "lbfgs") == "liblinear":
        raise IneligibleModelError(
            "solver='liblinear' penalises the intercept and fits one-vs-rest; refit with "
            "solver='lbfgs' (or 'newton-cholesky') to use rum.correct."
        )
    if getattr(est, "multi_class", "auto") == "ovr" and len(est.classes_) > 2:
        raise IneligibleModelError(
            "one-vs-rest multi-class LogisticRegression is not supported; refit the multinomial "
            "model (the default)."
        )


def estimator_to_torch(est: Any) -> tuple[nn.Module, list[str]]:
    """A float64 torch model with the estimator's coefficients, and the names of the penalised parameters.

    Examples:
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.random.default_rng(0).normal(size=(30, 2)); y = (X[:, 0] > 0).astype(int)
        >>> m, pen = estimator_to_torch(LogisticRegression().fit(X, y))
        >>> type(m).__name__, pen
        ('BinaryLogit', ['linear.weight'])
    """
    _check_estimator(est)
    coef = torch.as_tensor(np.asarray(est.coef_, dtype=np.float64))
    fit_intercept = bool(getattr(est, "fit_intercept", True))
    intercept = torch.as_tensor(np.asarray(est.intercept_, dtype=np.float64)).reshape(-1)
    d = coef.shape[1]
    if len(est.classes_) == 2:
        model: nn.Module = BinaryLogit(d, bias=fit_intercept).double()
        lin = model.linear
        names = ["linear.weight"]
    else:
        model = nn.Linear(d, coef.shape[0], bias=fit_intercept).double()
        lin = model
        names = ["weight"]
    with torch.no_grad():
        lin.weight.copy_(coef)
        if fit_intercept:
            lin.bias.copy_(intercept)
    return model.eval(), names


def encode_labels(est: Any, data: Any, name: str, allow_empty: bool = False):
    """Turn raw labels into positions in ``est.classes_`` (data already converted passes through)."""
    if isinstance(data, (TensorData, Request)) or data is None:
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
        y = np.asarray(y).reshape(-1)
        classes = np.asarray(est.classes_)
        pos = np.searchsorted(classes, y)
        pos = np.clip(pos, 0, len(classes) - 1)
        if not np.all(classes[pos] == y):
            bad = y[classes[pos] != y][:5]
            raise InvalidDataError(
                f"{name}: labels {bad.tolist()} are not among the estimator's classes_ "
                f"{classes.tolist()}."
            )
        return as_data((X, pos.astype(np.int64)), name, allow_empty=allow_empty)
    return data


def fit_certified_logistic_regression(X: Any, y: Any, *, C: float = 1.0, sigma: float,
                                      random_state: Any = None, max_iter: int = 100):
    """Fit a binary ``LogisticRegression`` with objective perturbation (for certified correction).

    scikit-learn cannot add the perturbation term itself, so rum fits the
    coefficients (L2 on all of them, no intercept: add a constant column to
    ``X`` if you need one) and returns a fitted ``LogisticRegression(C=C,
    fit_intercept=False)`` carrying ``rum_perturbation_``. It predicts like any
    fitted estimator, and :func:`rum.correct` certifies corrections of it.

    Examples:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
        >>> clf = fit_certified_logistic_regression(X, y, C=1.0, sigma=0.5, random_state=0)
        >>> clf.predict(X[:3]).shape, clf.rum_perturbation_.sigma
        ((3,), 0.5)
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).reshape(-1)
    classes = np.unique(y)
    if len(classes) != 2:
        raise IneligibleModelError(
            f"certified training supports binary classification only; y has {len(classes)} classes."
        )
    data = as_data((X, np.searchsorted(classes, y)), "X, y")
    n, d = len(data), int(np.prod(data.feature_shape))
    lam = 1.0 / (float(C) * n)
    model = cert.fit_certified(
        BinaryLogit(d, bias=False), data, weight_decay=lam, sigma=sigma,
        random_state=random_state, max_iter=max_iter,
    )
    est = LogisticRegression(C=C, fit_intercept=False, max_iter=max_iter)
    est.coef_ = model.linear.weight.detach().numpy().copy()
    est.intercept_ = np.zeros(1)
    est.classes_ = classes
    est.n_features_in_ = d
    est.n_iter_ = np.array([max_iter], dtype=np.int32)
    est.rum_perturbation_ = model.rum_perturbation
    return est
