"""The influence update itself, on flat parameters: the math behind :func:`rum.correct`
and the ``influence`` unlearner.

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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from rum._runtime.context import RunContext
from rum.influence.objective import Objective
from rum.influence.settings import InfluenceSettings
from rum.influence.solvers import SolveInfo, solve_cg, solve_dense, solve_lissa, top_eigenvalue

__all__ = ["Outcome", "run_correction"]


@dataclass
class Outcome:
    """What a correction did (the numbers of a :class:`~rum.CorrectionResult`)."""

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


def _solve(obj: Objective, theta: torch.Tensor, v: torch.Tensor, s: InfluenceSettings,
           gen: torch.Generator, H: torch.Tensor | None = None,
           scale: float | None = None) -> tuple[torch.Tensor, SolveInfo, float | None]:
    """``H^-1 v`` with the settings' solver; ``scale`` is LiSSA's (estimated once, then reused)."""
    if s.solver == "exact":
        return (*solve_dense(obj.hessian(theta) if H is None else H, v, s.damping), scale)
    if s.solver == "cg":
        tol = 1e-10 if theta.dtype == torch.float64 else 1e-5
        return (*solve_cg(lambda u: obj.hvp(theta, u), v, damping=s.damping, tol=tol,
                          maxiter=s.cg_maxiter), scale)

    def sampled(u):
        return obj.sampled_hvp(theta, u, gen, s.batch_size)

    if scale is None:
        top = top_eigenvalue(sampled, theta.numel(), iters=20, generator=gen,
                             dtype=theta.dtype, device=theta.device)
        scale = 1.5 * (top + s.damping) + 1e-12
    tol = 1e-9 if theta.dtype == torch.float64 else 1e-5
    x, info = solve_lissa(sampled, v, damping=s.damping, scale=scale, depth=s.lissa_depth,
                          repeats=s.lissa_repeats, tol=tol)
    return x, info, scale


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
    s: InfluenceSettings,
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
    scale = s.scale
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
                x, info, scale = _solve(obj, theta, v, s, generator, H, scale)
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
    out.scale = scale
    return out


