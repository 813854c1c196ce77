"""Influence-function deletion: a Newton (or gradient) step that removes the forget set's influence."""

from __future__ import annotations

from collections.abc import Mapping

from rum._validation import NONE, InstanceOf, Interval
from rum.influence._update import run_correction
from rum.influence.objective import Objective, Term
from rum.influence.settings import InfluenceSettings
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
        weight_decay: the L2 coefficient the model was trained with.
        parameters: which parameters to update: ``None`` (all), an int ``k``
            (the last ``k`` layers) or a list of names, as for :func:`rum.correct`.
        settings: how to solve for the update: a
            :class:`rum.influence.InfluenceSettings`, a dict of its fields
            (``{"solver": "cg", "damping": 0.01}``), or ``None`` for defaults
            chosen from the model (an exact solve with 25 Newton steps for linear
            models, one damped conjugate-gradient step otherwise).

    Examples:
        >>> import rum
        >>> rum.get_unlearner("influence")(parameters=1, settings={"solver": "cg"})
        Influence(parameters=1, settings={'solver': 'cg'})
    """

    tags = UnlearnerTags(
        requires_retain=True, stochastic=False, cost="medium",
        source="Koh & Liang, ICML 2017; Warnecke et al., NDSS 2023",
        suits=("random", "mixed"),
    )
    _parameter_constraints = {
        "weight_decay": [Interval(float, 0, None)],
        "parameters": [Interval(int, 1, None), NONE,
                       InstanceOf((list, tuple), "a list of parameter names")],
        "settings": [NONE, InstanceOf((InfluenceSettings, Mapping),
                                      "an InfluenceSettings or a dict of its fields")],
    }

    def __init__(self, weight_decay: float = 0.0, parameters=None, settings=None):
        self.weight_decay = weight_decay
        self.parameters = parameters
        self.settings = settings

    def validate_params(self) -> None:
        """Check the parameters, and every field of ``settings``."""
        super().validate_params()
        InfluenceSettings.coerce(self.settings, "the 'settings' parameter of Influence")

    def _unlearn(self, model, forget, retain, ctx):
        ws = build_workspace(model, self.parameters, [forget, retain], ctx.device, copy=False)
        forget_f, retain_f = ws.data
        s = InfluenceSettings.coerce(self.settings).resolve(ws.convex, ws.space.size, ws.linear_tail)
        n_r, n_f = len(retain), len(forget)
        obj = Objective(ws.module, ws.space, [Term(retain_f)], weight_decay=self.weight_decay,
                        batch_size=s.batch_size)
        diff = Objective(ws.module, ws.space, [Term(forget_f, -1.0)],
                         weight_decay=self.weight_decay, batch_size=s.batch_size, n=n_r)
        out = run_correction(obj, diff, n_f / n_r, s, convex=ws.linear,
                             generator=ctx.generator, ctx=ctx)
        ws.space.write(ws.net, out.theta)
        return ws.finish()

    @classmethod
    def _test_params(cls):
        # A last-layer step with light damping: the all-parameter default barely
        # moves a small memorising network (docs/benchmarks/influence.md).
        return {"parameters": 1, "settings": {"solver": "cg", "damping": 0.001, "cg_maxiter": 20}}
