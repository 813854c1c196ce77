"""Influence-based correction of trained models (Warnecke et al., NDSS 2023).

Remove, relabel or edit training items after training by a first- or
second-order update of the weights, with certified removal for L2-regularised
binary logistic regression. The entry point is :func:`rum.correct`; requests
are built with :mod:`rum.requests`, solver options are an :class:`InfluenceSettings`
(shared with the ``influence`` unlearner), and the result is a :class:`CorrectionResult`.
"""

from rum.influence.cache import HessianCache, cache_hessian
from rum.influence.certified import (
    Certificate,
    Perturbation,
    certificate_constant,
    epsilon_spent,
    fit_certified,
    newton_residual_bound,
    noise_scale,
)
from rum.influence.convex import BinaryLogit, fit_convex, is_linear_model
from rum.influence.hvp import ParamSpace, hvp, select_parameters
from rum.influence.objective import Objective, Term
from rum.influence.requests import Request, delete, relabel, replace_features
from rum.influence.result import CorrectionResult
from rum.influence.settings import InfluenceSettings
from rum.influence.sklearn import estimator_to_torch, fit_certified_logistic_regression
from rum.influence.solvers import SolveInfo, solve_cg, solve_dense, solve_lissa, top_eigenvalue

__all__ = [
    "InfluenceSettings",
    "CorrectionResult",
    "cache_hessian",
    "HessianCache",
    "Request",
    "replace_features",
    "relabel",
    "delete",
    "Objective",
    "Term",
    "ParamSpace",
    "select_parameters",
    "hvp",
    "SolveInfo",
    "solve_dense",
    "solve_cg",
    "solve_lissa",
    "top_eigenvalue",
    "BinaryLogit",
    "is_linear_model",
    "fit_convex",
    "Perturbation",
    "Certificate",
    "certificate_constant",
    "noise_scale",
    "epsilon_spent",
    "fit_certified",
    "newton_residual_bound",
    "estimator_to_torch",
    "fit_certified_logistic_regression",
]
