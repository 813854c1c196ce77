"""Certified corrections for L2-regularised binary logistic regression.

The recipe (Guo et al., ICML 2020, used by Warnecke et al. for features and labels):

1. **Train with objective perturbation**: minimise the *summed* objective
   ``sum_i l(z_i) + (n lambda / 2) ||theta||^2 + b^T theta`` with
   ``b ~ N(0, sigma^2 I)`` (:func:`fit_certified`; in rum's mean form this is
   mean CE + ``lambda/2 ||theta||^2 + b^T theta / n``). Every parameter,
   the intercept included, must be penalised so that the objective is
   strongly convex.
2. **Correct with Newton steps** (:func:`rum.correct`, ``order=2``). After the
   last step ``theta_K = theta_{K-1} + Delta``, the gradient residual of the
   summed corrected objective is bounded by
   ``beta = n ||g + H Delta|| + (kappa / 2) sum_t ||U_t||_2 ||U_t Delta||_inf ||U_t Delta||_2``
   where ``U_t`` holds the gradients of the logit margins of data term ``t``
   with respect to ``theta`` (rows ``[x_i, 1]`` for a logistic model), and
   ``kappa = 1 / (6 sqrt 3)`` is the Lipschitz constant of the logistic
   loss's second derivative. The first part is the linear-solve error
   (about zero with the exact solver); the second is the Taylor remainder.
   Terms removed from the data are bounded separately (triangle inequality),
   so ``beta`` is conservative. ``beta`` is computed from the data, as in
   Guo et al.'s data-dependent bound.
3. **Budget.** With ``c = sqrt(2 ln(1.5 / delta))``, a model trained with
   noise ``sigma`` stays (epsilon, delta)-certified while the *accumulated*
   bound of all corrections since training satisfies ``c * beta_total / sigma
   <= epsilon``. Equivalently the noise needed for a target budget is
   ``sigma = c * beta / epsilon`` (:func:`noise_scale`). Once the budget is
   spent, retrain.

Anything else (multi-class, deep models, unpenalised intercept, no weight
decay, first-order updates) is refused with :class:`IneligibleModelError`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, jacrev

from rum._data import as_data
from rum._model import check_model, fit_to_model
from rum._records import jsonable
from rum._validation import check_random_state
from rum.exceptions import IneligibleModelError, InvalidParameterError
from rum.influence.convex import fit_convex, is_linear_model
from rum.influence.hvp import ParamSpace, select_parameters
from rum.influence.objective import Objective

__all__ = [
    "Perturbation",
    "Certificate",
    "certificate_constant",
    "noise_scale",
    "epsilon_spent",
    "fit_certified",
    "newton_residual_bound",
    "KAPPA",
]

#: Lipschitz constant of the second derivative of the logistic loss, max |s(1-s)(1-2s)|.
KAPPA = 1.0 / (6.0 * math.sqrt(3.0))

#: Attribute under which a certified-trained model carries its perturbation.
ATTRIBUTE = "rum_perturbation"


@dataclass(frozen=True, eq=False)
class Perturbation:
    """The objective perturbation a model was trained with, and the budget spent since.

    Attributes:
        sigma: standard deviation of ``b``.
        b: the perturbation vector (flat, over all parameters in model order).
        weight_decay: ``lambda`` of the training objective.
        spent_bound: accumulated residual bound (summed-objective scale) of the
            corrections applied since training.
    """

    sigma: float
    b: torch.Tensor
    weight_decay: float
    spent_bound: float = 0.0


@dataclass(frozen=True)
class Certificate:
    """What a certified correction guarantees.

    Attributes:
        epsilon, delta: the requested guarantee.
        sigma: the training noise (``nan`` if the model was trained without).
        residual_bound: bound on the summed-objective gradient residual of this correction.
        cumulative_bound: the bound accumulated since training, this correction included.
        measured_residual: the actual summed-objective gradient residual.
        epsilon_spent: ``c * cumulative_bound / sigma``.
        required_sigma: the training noise this budget would need: ``c * cumulative_bound / epsilon``.
        certified: whether ``epsilon_spent <= epsilon`` (false also without training noise).
    """

    epsilon: float
    delta: float
    sigma: float
    residual_bound: float
    cumulative_bound: float
    measured_residual: float
    epsilon_spent: float
    required_sigma: float
    certified: bool

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def certificate_constant(delta: float) -> float:
    """``c = sqrt(2 ln(1.5 / delta))`` of the Gaussian mechanism in Guo et al.

    Examples:
        >>> round(certificate_constant(0.01), 4)
        3.1656
    """
    if not 0 < delta < 1.5:
        raise InvalidParameterError(f"delta must be in (0, 1.5), got {delta!r}.")
    return math.sqrt(2.0 * math.log(1.5 / delta))


def noise_scale(epsilon: float, delta: float, residual_bound: float) -> float:
    """Training noise ``sigma = c * residual_bound / epsilon`` for an (epsilon, delta) certificate.

    Examples:
        >>> round(noise_scale(0.1, 0.01, 0.23), 3)
        7.281
    """
    if not epsilon > 0:
        raise InvalidParameterError(f"epsilon must be > 0, got {epsilon!r}.")
    if residual_bound < 0:
        raise InvalidParameterError("residual_bound must be >= 0.")
    return certificate_constant(delta) * residual_bound / epsilon


def epsilon_spent(sigma: float, delta: float, residual_bound: float) -> float:
    """The epsilon a residual bound costs at training noise ``sigma``: ``c * bound / sigma``.

    Examples:
        >>> round(epsilon_spent(7.281, 0.01, 0.23), 3)
        0.1
    """
    if not sigma > 0:
        return math.inf
    return certificate_constant(delta) * residual_bound / sigma


def check_certifiable(model: torch.nn.Module, space: ParamSpace, n_classes: int,
                      weight_decay: float, penalized: Any, order: int) -> None:
    """Raise :class:`IneligibleModelError` unless the correction can be certified."""
    reasons = []
    if not is_linear_model(model):
        reasons.append("the model is not a single linear layer (certified mode is for convex models)")
    if n_classes != 2:
        reasons.append(f"it has {n_classes} classes (certified mode supports binary logistic regression)")
    if not weight_decay > 0:
        reasons.append("weight_decay is 0 (an L2 penalty is needed for strong convexity)")
    if penalized is not None and set(penalized) != set(space.names):
        reasons.append("some parameters (e.g. the intercept) are not penalised")
    all_names = select_parameters(model)
    if list(space.names) != all_names:
        reasons.append("only a subset of the parameters is updated")
    if order != 2:
        reasons.append("order=1 has no usable residual bound; use order=2")
    if reasons:
        raise IneligibleModelError(
            "certified mode refused: " + "; ".join(reasons) + ". Train an L2-regularised binary "
            "logistic model with rum.influence.fit_certified (or "
            "rum.influence.fit_certified_logistic_regression for scikit-learn) and correct it "
            "with order=2, or drop epsilon/delta for an uncertified correction."
        )


def _margin_fn(model, space, fixed, X):
    def z(theta):
        out = functional_call(model, {**fixed, **space.unflatten(theta)}, (X,))
        return out[:, 1] - out[:, 0]

    return z


def newton_residual_bound(
    obj: Objective, theta_prev: torch.Tensor, step: torch.Tensor, linear_residual: float
) -> float:
    """Bound on the summed-objective gradient residual after ``theta_prev + step``.

    Args:
        obj: the corrected objective (binary linear model).
        theta_prev: the parameters the last Newton step started from.
        step: that step, ``theta_new - theta_prev``.
        linear_residual: ``||g + H step||`` of the mean objective at ``theta_prev``.

    Returns:
        ``n * linear_residual + kappa/2 * sum_t ||U_t||_2 ||U_t step||_inf ||U_t step||_2``.
    """
    total = obj.n * float(linear_residual)
    for t in obj.terms:
        X = t.data.X
        z = _margin_fn(obj.model, obj.space, obj.fixed, X)
        with torch.no_grad():
            a = z(theta_prev + step) - z(theta_prev)
        U = jacrev(z)(theta_prev)
        if U.numel() <= 5e7:
            u_norm = float(torch.linalg.matrix_norm(U, ord=2))
        else:
            u_norm = float(torch.linalg.matrix_norm(U))  # Frobenius: a valid upper bound
        total += 0.5 * KAPPA * u_norm * float(a.abs().max()) * float(a.norm())
    return total


def fit_certified(
    model: torch.nn.Module,
    train_set: Any,
    *,
    weight_decay: float,
    sigma: float,
    random_state: Any = None,
    method: str = "newton",
    tol: float = 1e-10,
    max_iter: int = 100,
) -> torch.nn.Module:
    """Train a binary logistic model with objective perturbation, ready for certified correction.

    Minimises mean CE + ``weight_decay/2 ||theta||^2`` (all parameters,
    intercept included) + ``b^T theta / n`` with ``b ~ N(0, sigma^2 I)``. The
    returned copy (float64) carries the perturbation as ``model.rum_perturbation``,
    which :func:`rum.correct` reads and updates.

    Args:
        model: a linear binary model (``nn.Linear(d, 2)`` or :class:`BinaryLogit`).
        train_set: training data (labels 0/1).
        weight_decay: ``lambda > 0``.
        sigma: noise scale (``noise_scale(epsilon, delta, expected_bound)``).
        random_state: seed of ``b``.
        method: the solver, passed to :func:`rum.influence.fit_convex`.
        tol: its gradient-norm tolerance.
        max_iter: its iteration cap.

    Examples:
        >>> import torch
        >>> from rum.influence import BinaryLogit
        >>> X, y = torch.randn(40, 3), torch.randint(0, 2, (40,))
        >>> m = fit_certified(BinaryLogit(3), (X, y), weight_decay=0.1, sigma=1.0, random_state=0)
        >>> m.rum_perturbation.sigma
        1.0
    """
    check_model(model)
    n_classes, sets = fit_to_model(model, {"train_set": as_data(train_set, "train_set")})
    data = sets["train_set"]
    if not sigma >= 0:
        raise InvalidParameterError(f"sigma must be >= 0, got {sigma!r}.")
    space = ParamSpace.of(model, select_parameters(model))
    check_certifiable(model, space, n_classes, weight_decay, None, 2)
    seed = check_random_state(random_state)
    gen = torch.Generator().manual_seed(seed)
    b = sigma * torch.randn(space.size, generator=gen, dtype=torch.float64)
    trained = fit_convex(
        model, data, weight_decay=weight_decay, perturbation=b, method=method, tol=tol,
        max_iter=max_iter,
    )
    setattr(trained, ATTRIBUTE, Perturbation(float(sigma), b, float(weight_decay)))
    return trained


def attached(model: Any) -> Perturbation | None:
    """The perturbation a model (or estimator) carries, if any."""
    p = getattr(model, ATTRIBUTE, None)
    if p is None:
        p = getattr(model, ATTRIBUTE + "_", None)
    return p if isinstance(p, Perturbation) else None


def with_spent(p: Perturbation, extra: float) -> Perturbation:
    return Perturbation(p.sigma, p.b, p.weight_decay, p.spent_bound + float(extra))


def clone_perturbation(p: Perturbation) -> Perturbation:
    return copy.deepcopy(p)
