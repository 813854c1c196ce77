"""Convex (linear softmax / logistic) models: detection and training to the optimum.

The influence updates are exact up to the Taylor remainder only when the model
was trained to the optimum of the objective in :mod:`rum.influence.objective`.
:func:`fit_convex` trains a linear model that way (full batch, float64), and is
also the "exact retrain" reference of the tests and benchmarks.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rum._data import TensorData, as_data
from rum._model import check_model, fit_to_model
from rum.exceptions import InvalidParameterError
from rum.influence.hvp import ParamSpace, select_parameters
from rum.influence.linear import BinaryLogit, is_linear_model
from rum.influence.objective import Objective, Term
from rum.influence.solvers import solve_dense

__all__ = ["BinaryLogit", "is_linear_model", "fit_convex"]

def fit_convex(
    model: nn.Module,
    train_set: Any,
    *,
    weight_decay: float,
    penalized: Sequence[str] | None = None,
    perturbation: torch.Tensor | None = None,
    method: str = "newton",
    tol: float = 1e-10,
    max_iter: int = 100,
    init: str = "zeros",
) -> nn.Module:
    """Train a copy of a linear model to the optimum of mean CE + L2 (+ perturbation).

    Args:
        model: a linear model (see :func:`is_linear_model`); it is not modified.
        train_set: the training data.
        weight_decay: ``lambda`` of the objective (penalty ``lambda/2 ||theta||^2``).
        penalized: names of the penalised parameters (``None``: all).
        perturbation: objective-perturbation vector ``b`` (flat, all parameters).
        method: ``"newton"`` (exact Hessian, backtracking line search; for
            models up to a few thousand parameters) or ``"lbfgs"``.
        tol: stop when the gradient norm falls below this.
        max_iter: iteration cap.
        init: ``"zeros"`` (start from zero) or ``"current"`` (warm start).

    Returns:
        A trained copy in float64 (cast it back with ``.float()`` if needed).

    Examples:
        >>> import torch
        >>> X, y = torch.randn(50, 3), torch.randint(0, 2, (50,))
        >>> m = fit_convex(torch.nn.Linear(3, 2), (X, y), weight_decay=0.1)
        >>> m.weight.dtype
        torch.float64
    """
    check_model(model)
    if not is_linear_model(model):
        raise InvalidParameterError("fit_convex trains linear models only (one nn.Linear).")
    data = fit_to_model(model, {"train_set": as_data(train_set, "train_set")})[1]["train_set"]
    if method not in ("newton", "lbfgs"):
        raise InvalidParameterError(f"method must be 'newton' or 'lbfgs', got {method!r}.")
    work = copy.deepcopy(model).double().eval()
    if init == "zeros":
        with torch.no_grad():
            for p in work.parameters():
                p.zero_()
    space = ParamSpace.of(work, select_parameters(work))
    data = TensorData(data.X.double(), data.y)
    obj = Objective(
        work, space, [Term(data)], weight_decay=weight_decay, penalized=penalized,
        perturbation=perturbation, batch_size=4096,
    )
    theta = space.read(work)
    if method == "newton":
        theta = _newton(obj, theta, tol, max_iter)
    else:
        theta = _lbfgs(obj, theta, tol, max_iter)
    space.write(work, theta)
    return work


def _newton(obj: Objective, theta: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    loss = obj.loss(theta)
    for _ in range(max_iter):
        g = obj.grad(theta)
        if float(g.norm()) <= tol:
            break
        step, _ = solve_dense(obj.hessian(theta), g)
        t = 1.0
        while t > 1e-8:
            cand = theta - t * step
            new = obj.loss(cand)
            if new <= loss - 1e-4 * t * float(g @ step):
                break
            t *= 0.5
        if t <= 1e-8:
            break
        theta, loss = cand, new
    return theta


def _lbfgs(obj: Objective, theta: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    param = nn.Parameter(theta.clone())
    opt = torch.optim.LBFGS(
        [param], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-14,
        history_size=20, line_search_fn="strong_wolfe",
    )

    def closure():
        value = obj.loss(param.detach())
        param.grad = obj.grad(param.detach())
        return torch.tensor(value, dtype=param.dtype)

    opt.step(closure)
    return param.detach().clone()
