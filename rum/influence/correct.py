"""``rum.correct``: fix a trained model after some training items change or go.

The update (Warnecke et al., NDSS 2023, in rum's mean-loss convention; see
:mod:`rum.influence.objective`):

* the corrected training set is ``D~ = D - Z + Z~`` with ``n~`` items;
* ``G`` is the change of the objective's gradient at the trained weights,
  computed from the affected items only and assuming the model sits at the
  optimum of the original objective:
  ``G = (1/n~) sum_i [grad l(z~_i) - grad l(z_i)] - ((n - n~)/n~) lambda M theta``
  (the last term is there because deleting items re-normalises the mean);
* **first order**: ``theta - tau G`` (``tau`` is a step size on the mean objective);
* **second order**: ``theta - H^-1 G`` with ``H`` the Hessian of the *corrected*
  objective at ``theta`` (then one Newton step on D~ when the model was at
  the optimum). For convex (linear) models further Newton steps on the exact
  corrected gradient follow, with a backtracking line search, until the
  gradient residual ``||grad L~(theta)||`` is below ``tol``: a single step
  overshoots on confidently fitted points.
"""

from __future__ import annotations

import copy
import functools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from rum._validation import (
    BOOL,
    NONE,
    Interval,
    Options,
    check_random_state,
    resolve_device,
    validate_params,
)
from rum.data import TensorData, as_data, check_fits_model, check_model, count_items, model_dtype
from rum.exceptions import (
    DivergenceWarning,
    IneligibleModelError,
    InvalidDataError,
    InvalidParameterError,
    RumWarning,
)
from rum.influence import certified as cert
from rum.influence.cache import HessianCache
from rum.influence.hvp import select_parameters
from rum.influence.objective import Objective, Term
from rum.influence.requests import Request
from rum.influence.solvers import SolveInfo, solve_cg, solve_dense, solve_lissa, top_eigenvalue
from rum.influence.workspace import build_workspace, default_batch_size
from rum.unlearners.context import RunContext

__all__ = ["correct", "CORRECT_CONSTRAINTS", "Outcome"]

SOLVERS = ("auto", "exact", "cg", "lissa")

#: Largest parameter count for which ``solver="auto"`` builds the dense Hessian.
EXACT_MAX_PARAMS = 3000

CORRECT_CONSTRAINTS: dict[str, list] = {
    "order": [Options((1, 2))],
    "solver": [Options(SOLVERS)],
    "weight_decay": [Interval(float, 0, None)],
    "tau": [Interval(float, 0, None, closed="neither")],
    "damping": [Interval(float, 0, None), NONE],
    "scale": [Interval(float, 0, None, closed="neither"), NONE],
    "max_steps": [Interval(int, 1, None), NONE],
    "tol": [Interval(float, 0, None)],
    "cg_maxiter": [Interval(int, 1, None)],
    "lissa_depth": [Interval(int, 1, None)],
    "lissa_repeats": [Interval(int, 1, None)],
    "batch_size": [Interval(int, 1, None), NONE],
    "epsilon": [Interval(float, 0, None, closed="neither"), NONE],
    "delta": [Interval(float, 0, 1, closed="neither"), NONE],
    "verify": [BOOL],
}

#: Default damping for non-convex models (a Tikhonov term on the mean-loss Hessian).
DEEP_DAMPING = 0.1
#: Default cap on Newton steps for convex models.
CONVEX_MAX_STEPS = 25


@dataclass
class Settings:
    """Resolved options of one correction (see :func:`correct`)."""

    order: int = 2
    solver: str = "auto"
    tau: float = 1.0
    damping: float | None = None
    scale: float | None = None
    max_steps: int | None = None
    tol: float = 1e-8
    cg_maxiter: int = 100
    lissa_depth: int = 500
    lissa_repeats: int = 1
    batch_size: int | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """The settings among ``params`` (other keys are ignored)."""
        return cls(**{f.name: params[f.name] for f in fields(cls)})

    def resolve(self, convex: bool, n_params: int, linear_tail: bool = False) -> Settings:
        """Fill in the defaults.

        ``convex``: the whole model is linear. ``linear_tail``: the updated
        parameters are one linear layer on fixed features (see
        :mod:`rum.influence.features`): its Hessian is cheap, so ``"auto"``
        picks the exact solver, but the damping and step defaults stay those
        of deep models (the features of a memorising network often separate
        the training set, where the undamped optimum runs off to infinity).
        """
        s = copy.copy(self)
        if s.batch_size is None:
            s.batch_size = default_batch_size(convex or linear_tail)
        if s.solver == "auto":
            small = n_params <= EXACT_MAX_PARAMS
            s.solver = "exact" if ((convex or linear_tail) and small) else "cg"
        if s.damping is None:
            s.damping = 0.0 if convex else DEEP_DAMPING
        if s.max_steps is None:
            s.max_steps = CONVEX_MAX_STEPS if (convex and s.order == 2) else 1
        if s.order == 1:
            s.max_steps = 1
        return s


@dataclass
class Outcome:
    """What a correction did (numbers for ``UnlearnResult.metrics``)."""

    theta: torch.Tensor
    steps: int = 0
    solver_iterations: int = 0
    residual_before: float = math.nan
    residual: float = math.nan
    loss_before: float = math.nan
    loss_after: float = math.nan
    diverged: bool = False
    negative_curvature: bool = False
    scale: float | None = None
    last: tuple | None = None  # (theta_prev, step, linear_residual) of the last Newton step
    infos: list[SolveInfo] = field(default_factory=list)


def _solve(obj: Objective, theta: torch.Tensor, v: torch.Tensor, s: Settings,
           gen: torch.Generator, H: torch.Tensor | None = None) -> tuple[torch.Tensor, SolveInfo]:
    if s.solver == "exact":
        return solve_dense(obj.hessian(theta) if H is None else H, v, s.damping)
    if s.solver == "cg":
        tol = 1e-10 if theta.dtype == torch.float64 else 1e-5
        return solve_cg(lambda u: obj.hvp(theta, u), v, damping=s.damping, tol=tol,
                        maxiter=s.cg_maxiter)

    def sampled(u):
        return obj.sampled_hvp(theta, u, gen, s.batch_size)

    scale = s.scale
    if scale is None:
        top = top_eigenvalue(sampled, theta.numel(), iters=20, generator=gen,
                             dtype=theta.dtype, device=theta.device)
        scale = 1.5 * (top + s.damping) + 1e-12
        s.scale = scale
    tol = 1e-9 if theta.dtype == torch.float64 else 1e-5
    return solve_lissa(sampled, v, damping=s.damping, scale=scale, depth=s.lissa_depth,
                       repeats=s.lissa_repeats, tol=tol)


#: Relative residual and iteration cap of the preconditioned CG solve used
#: with a cached Hessian (see :func:`run_correction`).
CACHED_CG_TOL = 1e-12
CACHED_CG_MAXITER = 100


def _hessian_operator(obj: Objective, theta: torch.Tensor, diff: Objective | None = None,
                      cached: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> H~ v`` for the corrected objective at ``theta`` without forming ``H~``.

    With ``cached`` (the training set's summed data Hessian) the data part is
    that matrix plus ``diff``'s items; otherwise products run over ``obj``'s
    data (closed form for linear models: ``O(n p)`` each). The regulariser is
    added as in :meth:`Objective.hessian_from_data`.
    """
    items = (obj if cached is None else diff).data_hvp_operator(theta)
    reg = obj.weight_decay * obj.mask

    def matvec(v: torch.Tensor) -> torch.Tensor:
        data = items(v) if cached is None else cached @ v + items(v)
        return data / obj.n + reg * v

    return matvec


#: A refinement step keeps the previous Hessian while it shrinks the residual at
#: least this much; otherwise the Hessian is recomputed at the current weights.
CHORD_CONTRACTION = 0.1


def run_correction(
    obj: Objective,
    diff: Objective,
    shrink: float,
    s: Settings,
    *,
    convex: bool,
    generator: torch.Generator,
    ctx: RunContext | None = None,
    track_last: bool = False,
    base: tuple[float, torch.Tensor, torch.Tensor] | None = None,
    approx_hessian: torch.Tensor | None = None,
    precondition: Callable[[torch.Tensor], torch.Tensor] | None = None,
    verify: bool = True,
) -> Outcome:
    """The update itself on flat parameters; pure apart from reading the objectives.

    Args:
        obj: the corrected objective ``L~`` (on D~).
        diff: the objective over the affected items only, ``(Z, -1), (Z~, +1)``
            with the normaliser ``n~``.
        shrink: ``(n - n~) / n~`` (deletions re-normalise the mean).
        s: resolved settings.
        convex: refine with line-searched Newton steps.
        generator: randomness for LiSSA.
        ctx: reports each step's objective value (NaN stops the run).
        track_last: keep what the certificate needs.
        base: the summed data loss, gradient and Hessian of the *original*
            training set at the current weights (see
            :class:`rum.influence.HessianCache`). The corrected objective's
            value, gradient and (exact solver) Hessian at those weights are
            then the base plus the affected items' part: no pass over the
            training set before the first step.
        approx_hessian: without ``base``, a summed data Hessian of the
            training set at *other* weights (a stale cache, from an earlier
            model in a chain of corrections). With the affected items' part
            at the current weights it stands in for the exact Hessian of the
            first (chord) steps; the residual passes and refinement keep the
            result exact, and the exact Hessian is computed only if those
            steps stop contracting.
        precondition: with ``base`` or ``approx_hessian``, an approximate
            inverse of the corrected Hessian
            (:meth:`rum.influence.HessianCache.preconditioner`). The
            exact solver then never forms the corrected Hessian: it applies
            it as ``base`` times a vector plus the affected items' products,
            by preconditioned CG to a relative residual of
            :data:`CACHED_CG_TOL` (``O(k p)`` per product for ``k`` affected
            items, instead of ``O(k p^2 + p^3)``), and falls back to the dense
            solve where that does not converge.
        verify: measure the objective and gradient residual after the step
            (a pass over ``obj``'s data). Without it (one step, with ``base``)
            nothing touches the training set: ``loss_after`` and ``residual``
            are NaN.

    With the exact solver, refinement steps reuse the Hessian of the previous
    step (a chord Newton method) while each step shrinks the gradient residual
    by at least :data:`CHORD_CONTRACTION`; the line search and the residual
    test always use the exact corrected objective.
    """
    theta0 = obj.space.read(obj.model).to(obj.mask.dtype)
    out = Outcome(theta=theta0)
    diff_loss, diff_grad = diff.data_sums(theta0)
    G = diff_grad / diff.n - shrink * diff.weight_decay * obj.mask * theta0
    if base is None:
        out.loss_before, g = obj.value_and_grad(theta0)
    else:
        out.loss_before, g = obj.from_data_sums(theta0, base[0] + diff_loss, base[1] + diff_grad)
    out.residual_before = float(g.norm())
    theta = theta0
    H = None
    chord = None  # the corrected Hessian at theta0 as a function (from a cache, with precondition)
    cached = base[2] if base is not None else approx_hessian  # the training set's summed part

    def dense_at_start() -> torch.Tensor:
        return obj.hessian_from_data(cached + diff.data_hessian(theta0))

    dense_of_chord = dense_at_start  # the dense matrix the chord operator applies
    if s.solver == "exact" and s.order == 2:
        if cached is not None and precondition is not None:
            chord = _hessian_operator(obj, theta0, diff, cached)
        elif cached is not None:
            H = dense_at_start()
        else:
            H = obj.hessian(theta0)
    if ctx is not None:
        ctx.start(s.max_steps)
    loss = out.loss_before
    prev_norm = math.inf
    for k in range(s.max_steps):
        if k == 0:
            v = G
        else:
            v = g
            norm = float(v.norm())
            if norm <= s.tol:
                break
            if (H is not None or chord is not None) and norm > CHORD_CONTRACTION * prev_norm:
                if chord is not None:  # Newton-CG on the exact Hessian here, same preconditioner
                    chord = _hessian_operator(obj, theta)
                    dense_of_chord = functools.partial(obj.hessian, theta)
                else:
                    H = obj.hessian(theta)
            prev_norm = norm
        if s.order == 1:
            step = -s.tau * v
            info = SolveInfo("first-order", 0, math.nan, 0.0)
        else:
            info = None
            if chord is not None:
                x, info = solve_cg(chord, v, damping=s.damping, tol=CACHED_CG_TOL,
                                   maxiter=CACHED_CG_MAXITER, precondition=precondition)
                if info.diverged or info.negative_curvature or info.residual > CACHED_CG_TOL:
                    H, chord, info = dense_of_chord(), None, None
            if info is None:
                x, info = _solve(obj, theta, v, s, generator, H)
            step = -x
        out.infos.append(info)
        out.solver_iterations += info.iterations
        out.negative_curvature |= info.negative_curvature
        if info.diverged:
            out.diverged = True
            break
        t = 1.0
        if k > 0 and convex:  # backtracking line search on the corrected objective
            slope = float(v @ step)
            while t > 1e-6:
                cand_loss, cand_g = obj.value_and_grad(theta + t * step)
                if cand_loss <= loss + 1e-4 * t * slope:
                    break
                t *= 0.5
            if t <= 1e-6:
                break
            new_loss, new_g = cand_loss, cand_g
        else:
            new_loss, new_g = None, None
        step = t * step
        if track_last:  # g is the gradient at theta (before this step)
            lin = g + obj.hvp(theta, step)
            out.last = (theta, step, float(lin.norm()))
        theta = theta + step
        out.steps += 1
        if new_loss is None:
            if not verify:
                loss, g = math.nan, None
                if not torch.isfinite(theta).all():
                    out.diverged = True
                break
            new_loss, new_g = obj.value_and_grad(theta)
        if k == 0:
            prev_norm = float(G.norm())
        loss, g = new_loss, new_g
        if ctx is not None:
            ctx.step(loss)
        if not math.isfinite(loss) or not torch.isfinite(theta).all():
            out.diverged = True
            break
    out.theta = theta0 if out.diverged else theta
    out.loss_after = out.loss_before if out.diverged else loss
    if out.diverged:
        out.residual = out.residual_before
    elif g is not None:
        out.residual = float(g.norm())
    else:
        out.residual = math.nan  # not verified
    out.scale = s.scale
    return out


# ------------------------------------------------------------------------------------------
# the public call


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
        out = model(data.X)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return float((out.argmax(1) == data.y).float().mean())


def correct(
    model: Any,
    before: Any,
    after: Any = None,
    *,
    train_set: Any,
    order: int = 2,
    solver: str = "auto",
    weight_decay: float | None = None,
    parameters: Any = None,
    tau: float = 1.0,
    damping: float | None = None,
    scale: float | None = None,
    max_steps: int | None = None,
    tol: float = 1e-8,
    cg_maxiter: int = 100,
    lissa_depth: int = 500,
    lissa_repeats: int = 1,
    batch_size: int | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    hessian_cache: Any = None,
    verify: bool = True,
    device: Any = "cpu",
    random_state: Any = None,
):
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
        order: 1 (``theta - tau G``) or 2 (``theta - H^-1 G``).
        solver: ``"auto"`` (exact for linear models up to 3000 parameters,
            else ``"cg"``), ``"exact"`` (dense Hessian), ``"cg"`` or ``"lissa"``.
        weight_decay: ``lambda`` of the training objective (mean CE +
            ``lambda/2 ||theta||^2``, torch's weight-decay convention). Required
            for torch models; taken from ``C`` for scikit-learn.
        parameters: which parameters to update: ``None`` (all), an int ``k``
            (the last ``k`` layers) or a list of names. When only the last
            layers of an ``nn.Sequential`` change, the layers before them are
            run once over the data and the correction works on their outputs;
            a last layer that is one ``nn.Linear`` then gets the exact solver.
        tau: first-order step size (on the mean objective).
        damping: Tikhonov term added to the Hessian (default 0 for linear
            models, 0.1 otherwise: with 0.01 a single step wrecked a small
            MLP trained to near-zero loss, whose Hessian is almost flat).
        scale: LiSSA scale (default: 1.5 x the top eigenvalue, by power iteration).
        max_steps: Newton steps (default 25 for linear models, stopping at
            ``tol``; 1 otherwise).
        tol: stop refining when the gradient residual norm is below this.
        cg_maxiter: CG iterations per solve.
        lissa_depth: LiSSA recursion depth.
        lissa_repeats: LiSSA repetitions (their results are averaged).
        batch_size: items per forward pass (and LiSSA mini-batch size);
            default 512, or 8192 when the updated part is linear.
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
            answering many small deletion requests). ``residual_norm`` and
            ``objective_after`` are then NaN; not available for certified
            corrections, whose bound needs the training set.
        device: where to compute (``"cpu"`` by default; ``"auto"`` picks CUDA).
        random_state: seed for LiSSA's sampling.

    Returns:
        UnlearnResult: ``.model`` is the corrected copy (an estimator for
        scikit-learn input). ``.metrics`` holds ``residual_norm`` (the
        gradient norm of the corrected objective after the update),
        ``residual_norm_before``, ``newton_steps``, ``solver_iterations``,
        ``damping``, ``objective_before``/``after``, accuracies on the items
        before and after correction, and for certified runs ``epsilon_spent``,
        ``residual_bound``, ``required_sigma`` and ``certified`` (1 or 0). The
        resolved solver and every option are in ``.plan.steps[0].params``.

    Example:
        >>> import numpy as np, rum
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
        >>> clf = LogisticRegression().fit(X, y)
        >>> res = rum.correct(clf, rum.requests.relabel((X, y), [0, 1], [1 - y[0], 1 - y[1]]), train_set=(X, y))
        >>> type(res.model).__name__, res.metrics["residual_norm"] < 1e-6
        ('LogisticRegression', True)
    """
    from rum.influence import sklearn as skl

    settings = Settings(
        order=order, solver=solver, tau=tau, damping=damping, scale=scale, max_steps=max_steps,
        tol=tol, cg_maxiter=cg_maxiter, lissa_depth=lissa_depth, lissa_repeats=lissa_repeats,
        batch_size=batch_size,
    )
    params = {**settings.__dict__, "weight_decay": 0.0 if weight_decay is None else weight_decay,
              "epsilon": epsilon, "delta": delta, "verify": verify}
    validate_params(params, CORRECT_CONSTRAINTS, "rum.correct")
    if (epsilon is None) != (delta is None):
        raise InvalidParameterError("pass both epsilon and delta for a certificate, or neither.")
    if skl.is_logistic_regression(model):
        return skl.correct_estimator(
            model, before, after, train_set=train_set, settings=settings,
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
        model, request, train, settings=settings, weight_decay=float(weight_decay),
        parameters=parameters, penalized=None, epsilon=epsilon, delta=delta,
        device=resolve_device(device), seed=check_random_state(random_state),
        hessian_cache=_check_cache(hessian_cache), verify=verify,
    )


def _check_unverified(cache: HessianCache | None, settings: Settings, epsilon: float | None,
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
    settings: Settings,
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
    from rum.executor.result import StepResult, UnlearnResult
    from rum.planner._plan import Plan, Step
    from rum.profiler._profile import Profile

    t_start = time.perf_counter()
    sets = {"before": request.before}
    if isinstance(train, TensorData):
        sets["train_set"] = train
    if len(request.kept_after):
        sets["after"] = request.kept_after
    n_classes = check_fits_model(model, sets)
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
        settings = copy.copy(settings)
        settings.max_steps = 1
        # the training set is never read: only the affected items go into the workspace
        ws = build_workspace(model, parameters, [request.before, request.kept_after], device)
        train_f, (before_f, after_f) = None, ws.data
    else:
        ws = build_workspace(model, parameters, [train, request.before, request.kept_after], device)
        train_f, before_f, after_f = ws.data
    work, space, convex = ws.model, ws.space, ws.convex
    if hessian_cache is not None and settings.solver == "auto":
        settings = copy.copy(settings)
        settings.solver = "exact"
    s = settings.resolve(convex, space.size, ws.linear_tail)
    stale = False
    if hessian_cache is not None:
        if s.solver != "exact" or s.order != 2:
            raise InvalidParameterError(
                "hessian_cache is used by the exact second-order solver only; leave solver='auto' "
                "(or 'exact') and order=2, or drop hessian_cache."
            )
        refines = verify and s.max_steps > 1 and epsilon is None and perturb is None
        stale = hessian_cache.check(space, space.read(work), n_old, stale_ok=refines)

    if epsilon is not None:
        cert.check_certifiable(work, space, n_classes, weight_decay, penalized, s.order)
        if s.solver == "lissa":
            raise InvalidParameterError("certified mode needs solver 'exact' or 'cg' (LiSSA is stochastic).")
    b = None
    if perturb is not None:
        if list(space.names) != select_parameters(work) or perturb.b.numel() != space.size:
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
    before_d = request.before.to(device, dtype)
    after_d = request.kept_after.to(device, dtype)
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
    space.write(work, out.theta)
    metrics = {
        "residual_norm": out.residual,
        "residual_norm_before": out.residual_before,
        "newton_steps": float(out.steps),
        "solver_iterations": float(out.solver_iterations),
        "damping": float(s.damping),
        "objective_before": out.loss_before,
        "objective_after": out.loss_after,
        **acc,
        "forget_acc_after": _accuracy(work, before_d),
        "after_acc_after": _accuracy(work, after_d),
    }
    if s.solver == "lissa":
        metrics["scale"] = float(out.scale)
    bound = math.nan
    if epsilon is not None or perturb is not None:
        try:
            cert.check_certifiable(work, space, n_classes, weight_decay, penalized, s.order)
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
        metrics.update(
            residual_bound=bound, cumulative_bound=cumulative, epsilon_spent=eps_spent,
            required_sigma=certificate.required_sigma, sigma=sigma,
            certified=float(certificate.certified),
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
    elapsed = time.perf_counter() - t_start
    m = len(request)
    step_params = {
        "order": s.order, "solver": s.solver, "weight_decay": weight_decay, "tau": s.tau,
        "damping": s.damping, "scale": s.scale, "max_steps": s.max_steps, "tol": s.tol,
        "parameters": list(space.names), "n_deleted": request.n_deleted,
        "epsilon": epsilon, "delta": delta, "verify": verify,
    }
    plan = Plan((Step(-1, np.arange(m), "influence", step_params),), policy="correct", n_forget=m)
    profile = Profile.single_group(np.full(m, np.nan), scorers={"correct": "request"}, seed=seed)
    status = "diverged" if out.diverged else "ok"
    step = StepResult(
        step=0, group=0, unlearner="influence", n_items=m, seconds=elapsed,
        iterations=out.steps, final_loss=out.loss_after, status=status,
        message="the solve diverged; weights unchanged" if out.diverged else "",
    )
    return UnlearnResult(
        model=work, plan=plan, profile=profile, steps=(step,),
        timings={"profile": 0.0, "plan": 0.0, "execute": elapsed, "total": elapsed},
        metrics=metrics, seed=seed, device=str(device),
    )
