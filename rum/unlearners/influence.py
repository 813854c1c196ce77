"""Influence-function deletion: a Newton (or gradient) step that removes the forget set's influence."""

from __future__ import annotations

from rum._validation import NONE, Interval
from rum.influence.correct import CORRECT_CONSTRAINTS, Settings, run_correction
from rum.influence.objective import Objective, Term
from rum.influence.workspace import build_workspace
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("influence")
class Influence(Unlearner):
    """Remove the forget set with an influence-function update (Koh & Liang; Warnecke et al.).

    Assumes the model was trained on ``retain + forget`` by minimising the mean
    cross-entropy plus ``weight_decay/2 ||theta||^2`` (torch's weight-decay
    convention). The update is ``theta - H^-1 G`` (``order=2``) or
    ``theta - tau G`` (``order=1``), where ``G`` is the change of that
    objective's gradient when the forget items are deleted,
    ``G = -(1/n_r) sum_forget grad l - (n_f/n_r) weight_decay theta``, and ``H``
    is the Hessian of the objective on the retain set (``n_r`` retain items,
    ``n_f`` forget items). For a linear model further line-searched Newton
    steps follow until the retain-objective gradient norm is below ``tol``,
    which lands on the retrained optimum. For deep models the step is one
    damped solve (conjugate gradient by default), optionally on the last
    layers only: then the layers before them run once over the data, and a
    last ``nn.Linear`` gets the exact solver. This is :func:`rum.correct`
    with a deletion request, inside the executor.

    Args:
        order: 1 or 2.
        solver: ``"auto"``, ``"exact"``, ``"cg"`` or ``"lissa"``.
        weight_decay: the L2 coefficient the model was trained with.
        last_layers: update only the parameters of the last ``k`` layers
            (``None``: all).
        tau: first-order step size.
        damping: Tikhonov damping (default 0 for linear models, 0.1 otherwise).
        scale: LiSSA scale (default: estimated).
        max_steps: Newton steps (default 25 for linear models, else 1).
        tol: residual tolerance for the refinement.
        cg_maxiter, lissa_depth, lissa_repeats: solver budgets.
        batch_size: items per forward pass (default 512, 8192 when the
            updated part is linear).

    Example:
        >>> import rum
        >>> rum.get_unlearner("influence")(solver="cg", last_layers=1)
        Influence(solver='cg', last_layers=1)
    """

    tags = UnlearnerTags(
        requires_retain=True, stochastic=False, cost="medium",
        source="Koh & Liang, ICML 2017; Warnecke et al., NDSS 2023",
    )
    _parameter_constraints = {
        **{k: v for k, v in CORRECT_CONSTRAINTS.items() if k not in ("epsilon", "delta")},
        "last_layers": [Interval(int, 1, None), NONE],
    }

    def __init__(
        self,
        order: int = 2,
        solver: str = "auto",
        weight_decay: float = 0.0,
        last_layers: int | None = None,
        tau: float = 1.0,
        damping: float | None = None,
        scale: float | None = None,
        max_steps: int | None = None,
        tol: float = 1e-8,
        cg_maxiter: int = 100,
        lissa_depth: int = 500,
        lissa_repeats: int = 1,
        batch_size: int | None = None,
    ):
        self.order = order
        self.solver = solver
        self.weight_decay = weight_decay
        self.last_layers = last_layers
        self.tau = tau
        self.damping = damping
        self.scale = scale
        self.max_steps = max_steps
        self.tol = tol
        self.cg_maxiter = cg_maxiter
        self.lissa_depth = lissa_depth
        self.lissa_repeats = lissa_repeats
        self.batch_size = batch_size

    def _unlearn(self, model, forget, retain, ctx):
        ws = build_workspace(model, self.last_layers, [forget, retain], ctx.device, copy=False)
        forget_f, retain_f = ws.data
        s = Settings.from_params(self.get_params()).resolve(ws.convex, ws.space.size, ws.linear_tail)
        n_r, n_f = len(retain), len(forget)
        obj = Objective(ws.module, ws.space, [Term(retain_f)], weight_decay=self.weight_decay,
                        batch_size=s.batch_size)
        diff = Objective(ws.module, ws.space, [Term(forget_f, -1.0)],
                         weight_decay=self.weight_decay, batch_size=s.batch_size, n=n_r)
        out = run_correction(obj, diff, n_f / n_r, s, convex=ws.linear,
                             generator=ctx.generator, ctx=ctx)
        ws.space.write(ws.model, out.theta)
        return ws.finish()

    @classmethod
    def _test_params(cls):
        # A last-layer step with light damping: the all-parameter default barely
        # moves a small memorising network (see docs/benchmarks.md, influence).
        return {"solver": "cg", "last_layers": 1, "damping": 0.001, "cg_maxiter": 20}
