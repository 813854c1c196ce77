"""``rum.correct``: fix a trained model after some training items change or go.

The update (Warnecke et al., NDSS 2023, in rum's mean-loss convention; see
:mod:`rum.influence.objective` and :mod:`rum.influence._update`): ``theta - H^-1 G``
(second order) or ``theta - tau G`` (first order), with further line-searched Newton
steps for linear models until the gradient residual is small. This module checks the
call's inputs, sets up the objectives and the certificate, and returns a
:class:`~rum.CorrectionResult`; fitted scikit-learn ``LogisticRegression`` models go
through a torch copy and come back as estimators.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from typing import Any

import numpy as np
import torch

from rum._data import TensorData, as_data, count_items
from rum._model import (
    check_model,
    fit_to_model,
    forward,
    is_logistic_regression,
    model_dtype,
    pick_logits,
)
from rum._validation import (
    BOOL,
    NONE,
    Interval,
    check_random_state,
    resolve_device,
    validate_params,
)
from rum.exceptions import (
    DivergenceWarning,
    IneligibleModelError,
    InvalidDataError,
    InvalidParameterError,
    RumWarning,
)
from rum.influence import certified as cert
from rum.influence._update import run_correction
from rum.influence.cache import HessianCache
from rum.influence.hvp import select_parameters
from rum.influence.linear import BinaryLogit
from rum.influence.objective import Objective, Term
from rum.influence.requests import Request
from rum.influence.result import CorrectionResult
from rum.influence.settings import InfluenceSettings
from rum.influence.sklearn import encode_labels, estimator_to_torch, l2_lambda
from rum.influence.workspace import build_workspace

__all__ = ["correct", "CORRECT_CONSTRAINTS"]

#: The call's own options (the solver's are :class:`~rum.influence.InfluenceSettings`).
CORRECT_CONSTRAINTS: dict[str, list] = {
    "weight_decay": [Interval(float, 0, None)],
    "epsilon": [Interval(float, 0, None, closed="neither"), NONE],
    "delta": [Interval(float, 0, 1, closed="neither"), NONE],
    "verify": [BOOL],
}


def _as_request(before: Any, after: Any) -> Request:
    if isinstance(before, Request):
        if after is not None:
            raise InvalidParameterError(
                "before is already a rum request (pairs included); leave after=None."
            )
        return before
    if isinstance(after, Request):
        raise InvalidParameterError("pass a request as `before` (the first argument), not `after`.")
    return Request.from_pairs(before, after)


def _check_cache(cache: Any) -> HessianCache | None:
    if cache is None or isinstance(cache, HessianCache):
        return cache
    raise InvalidParameterError(
        f"hessian_cache must be a rum.influence.HessianCache (from rum.influence.cache_hessian), "
        f"got {type(cache).__name__}."
    )


def _accuracy(model: torch.nn.Module, data: TensorData) -> float:
    if len(data) == 0:
        return math.nan
    with torch.no_grad():
        out = pick_logits(forward(model, data.X))
        return float((out.argmax(1) == data.y).float().mean())


def correct(
    model: Any,
    before: Any,
    after: Any = None,
    *,
    train_set: Any,
    weight_decay: float | None = None,
    parameters: Any = None,
    settings: Any = None,
    epsilon: float | None = None,
    delta: float | None = None,
    hessian_cache: Any = None,
    verify: bool = True,
    device: Any = "cpu",
    random_state: Any = None,
) -> CorrectionResult:
    """Correct a trained model for changed or removed training items, without retraining.

    Args:
        model: the trained classifier (``torch.nn.Module`` returning logits),
            or a fitted scikit-learn ``LogisticRegression`` (binary or
            multinomial, L2 penalty); it is never modified.
        before: the affected training items as they were, or a
            :class:`rum.requests.Request` (then leave ``after`` out).
        after: their corrected versions, in the same order; ``None`` deletes
            every item of ``before``.
        train_set: the data the model was trained on (the affected items
            included, in their original form).
        weight_decay: ``lambda`` of the training objective (mean CE +
            ``lambda/2 ||theta||^2``, torch's weight-decay convention). Required
            for torch models; taken from ``C`` for scikit-learn.
        parameters: which parameters to update: ``None`` (all), an int ``k``
            (the last ``k`` layers) or a list of names. When only the last
            layers of an ``nn.Sequential`` change, the layers before them are
            run once over the data and the correction works on their outputs;
            a last layer that is one ``nn.Linear`` then gets the exact solver.
        settings: how to solve for the update: a
            :class:`rum.influence.InfluenceSettings`, a dict of its fields
            (``{"order": 1, "tau": 0.5}``, ``{"solver": "cg"}``...), or ``None``
            for defaults chosen from the model.
        epsilon: request an (epsilon, delta) certificate with this epsilon
            (binary L2-regularised logistic models only; see
            :mod:`rum.influence.certified`).
        delta: the certificate's delta (pass it with ``epsilon``).
        hessian_cache: a :class:`rum.influence.HessianCache` of this model
            on ``train_set`` (:func:`rum.influence.cache_hessian`): the exact
            solver then applies the corrected Hessian as the cached one plus
            the affected items' part (by CG preconditioned with the cache),
            instead of a pass over the training set. A cache of an earlier
            model (a chain of corrections) still serves verified corrections
            that refine, as an approximate Hessian and preconditioner.
        verify: measure the gradient residual (and refine, for linear
            models) with passes over ``train_set``. ``verify=False`` needs a
            ``hessian_cache`` and makes one Newton step from it that touches
            only the affected items: its cost no longer grows with the
            training set (the classic influence-function update, for
            answering many small deletion requests). ``residual`` and
            ``objective_after`` are then NaN; not available for certified
            corrections, whose bound needs the training set.
        device: where to compute (``"cpu"`` by default; ``"auto"`` picks CUDA).
        random_state: seed for LiSSA's sampling.

    Returns:
        CorrectionResult: ``.model`` is the corrected copy (an estimator for
        scikit-learn input); ``.residual`` the gradient norm of the corrected
        objective after the update, ``.settings`` the solver settings as
        resolved, ``.certificate`` what a certified correction guarantees.

    Examples:
        >>> import numpy as np, rum
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
        >>> clf = LogisticRegression().fit(X, y)
        >>> res = rum.correct(clf, rum.requests.relabel((X, y), [0, 1], [1 - y[0], 1 - y[1]]), train_set=(X, y))
        >>> type(res.model).__name__, res.residual < 1e-6
        ('LogisticRegression', True)
    """
    validate_params(
        {"weight_decay": 0.0 if weight_decay is None else weight_decay, "epsilon": epsilon,
         "delta": delta, "verify": verify},
        CORRECT_CONSTRAINTS, "rum.correct",
    )
    s = InfluenceSettings.coerce(settings, "settings")
    if (epsilon is None) != (delta is None):
        raise InvalidParameterError("pass both epsilon and delta for a certificate, or neither.")
    if is_logistic_regression(model):
        return correct_estimator(
            model, before, after, train_set=train_set, settings=s,
            weight_decay=weight_decay, parameters=parameters, epsilon=epsilon, delta=delta,
            device=device, random_state=random_state, hessian_cache=hessian_cache,
            verify=verify,
        )
    check_model(model)
    if weight_decay is None:
        raise InvalidParameterError(
            "rum.correct needs weight_decay: the L2 coefficient lambda of the objective the model "
            "was trained on (mean cross-entropy + lambda/2 ||theta||^2; torch optimisers' "
            "weight_decay). Pass weight_decay=0.0 if there was none."
        )
    request = _as_request(before, after)
    train = as_data(train_set, "train_set") if verify else count_items(train_set, "train_set")
    return correct_torch(
        model, request, train, settings=s, weight_decay=float(weight_decay),
        parameters=parameters, penalized=None, epsilon=epsilon, delta=delta,
        device=resolve_device(device), seed=check_random_state(random_state),
        hessian_cache=_check_cache(hessian_cache), verify=verify,
    )


def _check_unverified(cache: HessianCache | None, settings: InfluenceSettings, epsilon: float | None,
                      perturbed: bool) -> None:
    """Refuse ``verify=False`` where a pass over the training set is needed anyway."""
    if cache is None:
        raise InvalidParameterError(
            "verify=False needs a hessian_cache: without one the Hessian itself is a pass over "
            "train_set. Build it with rum.influence.cache_hessian(model, train_set), or leave "
            "verify=True."
        )
    if settings.max_steps not in (None, 1):
        raise InvalidParameterError(
            f"verify=False makes one Newton step (refining needs the residual on train_set); "
            f"got max_steps={settings.max_steps}. Leave max_steps=None, or set verify=True."
        )
    if epsilon is not None or perturbed:
        raise InvalidParameterError(
            "verify=False is not available for certified corrections: the certificate's bound "
            "is computed on train_set. Leave verify=True."
        )


def correct_torch(
    model: torch.nn.Module,
    request: Request,
    train: TensorData | int,
    *,
    settings: InfluenceSettings,
    weight_decay: float,
    parameters: Any,
    penalized: list[str] | None,
    epsilon: float | None,
    delta: float | None,
    device: torch.device,
    seed: int,
    fixed_sum_penalty: bool = False,
    hessian_cache: HessianCache | None = None,
    verify: bool = True,
):
    """:func:`correct` on validated inputs (shared by the scikit-learn path).

    ``weight_decay`` is lambda of the *original* objective (mean loss over
    ``train``). ``train`` is only the training set's size with ``verify=False``
    (which never reads it). With ``fixed_sum_penalty`` the penalty is fixed in the summed
    objective (scikit-learn's ``C * sum l + 1/2 ||w||^2``), so after deletions
    the mean-form lambda of the corrected objective grows to
    ``lambda * n / n~``; otherwise (torch's convention) it stays ``lambda``.
    """
    t_start = time.perf_counter()
    sets = {"before": request.before}
    if isinstance(train, TensorData):
        sets["train_set"] = train
    if len(request.kept_after):
        sets["after"] = request.kept_after
    n_classes, sets = fit_to_model(model, sets)  # integer features cast where the model needs
    before, kept_after = sets["before"], sets.get("after", request.kept_after)
    train = sets.get("train_set", train)
    n_old = len(train) if isinstance(train, TensorData) else int(train)
    n_new = n_old - request.n_deleted
    if request.n_deleted >= n_old:
        raise InvalidDataError(
            f"the request deletes {request.n_deleted} items but train_set has only {n_old}; "
            "nothing would be left to train on."
        )
    if len(request) > n_old:
        raise InvalidDataError("the request has more items than train_set; pass the full training set.")
    perturb = cert.attached(model)
    if not verify:
        _check_unverified(hessian_cache, settings, epsilon, perturb is not None)
        settings = dataclasses.replace(settings, max_steps=1)
        # the training set is never read: only the affected items go into the workspace
        ws = build_workspace(model, parameters, [before, kept_after], device)
        train_f, (before_f, after_f) = None, ws.data
    else:
        ws = build_workspace(model, parameters, [train, before, kept_after], device)
        train_f, before_f, after_f = ws.data
    work, net, space, convex = ws.model, ws.net, ws.space, ws.convex
    if hessian_cache is not None and settings.solver == "auto":
        settings = dataclasses.replace(settings, solver="exact")
    s = settings.resolve(convex, space.size, ws.linear_tail)
    stale = False
    if hessian_cache is not None:
        if s.solver != "exact" or s.order != 2:
            raise InvalidParameterError(
                "hessian_cache is used by the exact second-order solver only; leave solver='auto' "
                "(or 'exact') and order=2, or drop hessian_cache."
            )
        refines = verify and s.max_steps > 1 and epsilon is None and perturb is None
        stale = hessian_cache.check(space, space.read(net), n_old, stale_ok=refines)

    if epsilon is not None:
        cert.check_certifiable(net, space, n_classes, weight_decay, penalized, s.order)
        if s.solver == "lissa":
            raise InvalidParameterError("certified mode needs solver 'exact' or 'cg' (LiSSA is stochastic).")
    b = None
    if perturb is not None:
        if list(space.names) != select_parameters(net) or perturb.b.numel() != space.size:
            raise InvalidParameterError(
                "the model was trained with objective perturbation over all parameters; "
                "correct all of them (parameters=None)."
            )
        b = perturb.b

    if fixed_sum_penalty:
        new_decay, shrink = weight_decay * n_old / n_new, 0.0
    else:
        new_decay, shrink = weight_decay, (n_old - n_new) / n_new
    dtype = model_dtype(work)
    before_d = before.to(device, dtype)
    after_d = kept_after.to(device, dtype)
    terms = [Term(before_f, -1.0), Term(after_f, 1.0)]
    obj = Objective(
        ws.module, space, terms if train_f is None else [Term(train_f, 1.0), *terms],
        weight_decay=new_decay, penalized=penalized, perturbation=b, batch_size=s.batch_size,
        n=n_new,
    )
    diff = Objective(
        ws.module, space, terms, weight_decay=weight_decay, penalized=penalized,
        batch_size=s.batch_size, n=n_new,
    )
    gen = torch.Generator().manual_seed(seed)
    acc = {
        "forget_acc_before": _accuracy(work, before_d),
        "after_acc_before": _accuracy(work, after_d),
    }
    base = approx = precondition = None
    if hessian_cache is not None:
        base = hessian_cache.on(device, dtype)
        precondition = hessian_cache.preconditioner(obj.weight_decay * obj.mask + s.damping, obj.n)
        if stale:  # its sums describe another model: only its Hessian helps, rescaled to n
            approx, base = base[2] * (n_old / hessian_cache.n), None
    out = run_correction(
        obj, diff, shrink, s, convex=ws.linear, generator=gen,
        track_last=epsilon is not None or perturb is not None,
        base=base, approx_hessian=approx, precondition=precondition, verify=verify,
    )
    if out.diverged:
        warnings.warn(
            "rum.correct: the solve diverged (NaN or blow-up); the weights were left unchanged. "
            "Increase damping, or use solver='cg'.",
            DivergenceWarning,
            stacklevel=3,
        )
    if convex and s.order == 2 and out.residual > max(s.tol, 1e-6) * 100 and not out.diverged:
        warnings.warn(
            f"rum.correct: the gradient residual is still {out.residual:.3g} after {out.steps} "
            "step(s); the result may be far from retraining. Raise max_steps or check that the "
            "model was trained to the optimum with this weight_decay.",
            RumWarning,
            stacklevel=3,
        )
    space.write(net, out.theta)
    acc.update(forget_acc_after=_accuracy(work, before_d), after_acc_after=_accuracy(work, after_d))
    certificate = None
    bound = math.nan
    if epsilon is not None or perturb is not None:
        try:
            cert.check_certifiable(net, space, n_classes, weight_decay, penalized, s.order)
            bound = cert.newton_residual_bound(obj, *out.last) if out.last is not None else 0.0
            if ws.dtype_out != dtype:  # the released weights are rounded: bound that change exactly
                rounded = out.theta.to(ws.dtype_out).to(dtype)
                bound += obj.n * float((obj.grad(rounded) - obj.grad(out.theta)).norm())
        except IneligibleModelError:
            bound = math.inf  # no bound: a perturbed model's budget is gone
        if perturb is not None:
            setattr(work, cert.ATTRIBUTE, cert.with_spent(perturb, bound))
    if epsilon is not None:
        spent_before = perturb.spent_bound if perturb is not None else 0.0
        cumulative = spent_before + bound
        sigma = perturb.sigma if perturb is not None else math.nan
        eps_spent = cert.epsilon_spent(sigma, delta, cumulative) if perturb is not None else math.inf
        certificate = cert.Certificate(
            epsilon=float(epsilon), delta=float(delta), sigma=sigma, residual_bound=bound,
            cumulative_bound=cumulative, measured_residual=out.residual * obj.n,
            epsilon_spent=eps_spent,
            required_sigma=cert.noise_scale(epsilon, delta, cumulative),
            certified=bool(perturb is not None and eps_spent <= epsilon),
        )
        if perturb is None:
            warnings.warn(
                "rum.correct: the model was not trained with objective perturbation, so no "
                f"certificate holds (certified=0). Training with sigma >= "
                f"{certificate.required_sigma:.4g} (rum.influence.fit_certified) would make this "
                "correction (epsilon, delta)-certified.",
                RumWarning,
                stacklevel=3,
            )
        elif not certificate.certified:
            warnings.warn(
                f"rum.correct: the certification budget is spent (epsilon used {eps_spent:.4g} > "
                f"{epsilon}); the corrected model is not certified. Retrain.",
                RumWarning,
                stacklevel=3,
            )
    work = ws.finish()
    return CorrectionResult(
        model=work, residual=out.residual, residual_before=out.residual_before, steps=out.steps,
        solver_iterations=out.solver_iterations, objective_before=out.loss_before,
        objective_after=out.loss_after, accuracies=acc,
        settings=dataclasses.replace(s, scale=out.scale), parameters=tuple(space.names),
        weight_decay=float(weight_decay), n_items=len(request), n_deleted=request.n_deleted,
        certificate=certificate, diverged=out.diverged, seconds=time.perf_counter() - t_start,
        seed=seed, device=str(device),
    )


def correct_estimator(est, before, after, *, train_set, settings, weight_decay, parameters,
                      epsilon, delta, device, random_state, hessian_cache=None,
                      verify=True) -> CorrectionResult:
    """:func:`rum.correct` for a fitted ``LogisticRegression``; returns an updated copy in ``result.model``."""
    if weight_decay is not None:
        raise InvalidParameterError(
            "weight_decay is taken from the estimator's C (lambda = 1 / (C n)); do not pass it "
            "with a scikit-learn model."
        )
    if parameters is not None:
        raise InvalidParameterError("parameters must be None for a scikit-learn model.")
    model, penalized = estimator_to_torch(est)
    request = _as_request(encode_labels(est, before, "before"), encode_labels(est, after, "after"))
    if verify:
        train = as_data(encode_labels(est, train_set, "train_set"), "train_set")
        if train.X.shape[1:] != (model_in := torch.Size([est.coef_.shape[1]])):
            raise InvalidDataError(
                f"train_set has features of shape {tuple(train.X.shape[1:])}, the estimator "
                f"expects {tuple(model_in)}."
            )
        n_train = len(train)
    else:  # never read: only its size matters
        train = n_train = count_items(train_set, "train_set")
    lam = l2_lambda(est, n_train)
    perturb = cert.attached(est)
    if perturb is not None:
        setattr(model, cert.ATTRIBUTE, perturb)
    if not getattr(est, "fit_intercept", True):
        penalized = None  # every parameter is penalised
    res = correct_torch(
        model, request, train, settings=settings, weight_decay=lam, parameters=None,
        penalized=penalized, epsilon=epsilon, delta=delta, device=resolve_device(device),
        seed=check_random_state(random_state), fixed_sum_penalty=True,
        hessian_cache=_check_cache(hessian_cache), verify=verify,
    )
    new = copy.deepcopy(est)
    fitted = res.model.double().cpu()
    lin = fitted.linear if isinstance(fitted, BinaryLogit) else fitted
    new.coef_ = lin.weight.detach().numpy().astype(np.float64).copy()
    if getattr(est, "fit_intercept", True):
        new.intercept_ = lin.bias.detach().numpy().astype(np.float64).copy()
    p = cert.attached(fitted)
    if p is not None:
        new.rum_perturbation_ = p
    return dataclasses.replace(res, model=new)
