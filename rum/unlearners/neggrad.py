"""Gradient ascent on the forget set."""

from __future__ import annotations

from rum._runtime.optim import OPTIM_CONSTRAINTS, cross_entropy, make_optimizer, optimise
from rum._validation import NONE, Interval
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("neggrad")
class NegGrad(Unlearner):
    """Maximise the loss on the forget set (gradient ascent).

    Needs no retain data. Ascent is unbounded, so it is kept short and the
    gradient norm is clipped; too many epochs destroy the model.

    Args:
        epochs: passes over the forget set.
        lr: learning rate, > 0, or ``"auto"`` (default): calibrated with a short probe
            on the data at hand, starting from the reference rate 0.01.
        batch_size: mini-batch size.
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        max_grad_norm: clip the gradient norm to this value (``None`` disables).

    Defaults: a single short pass with SGD (momentum 0.9) and clipping, after
    the "GA" baseline of Thudi et al. and Jia et al. (NeurIPS 2023).

    Examples:
        >>> import rum
        >>> rum.get_unlearner("neggrad")(lr=0.001)
        NegGrad(lr=0.001)
    """

    tags = UnlearnerTags(cost="low", source="Thudi et al., EuroS&P 2022; Jia et al., NeurIPS 2023",
                         suits=("class-wise", "random", "mixed"))
    reference_lr = 0.01
    _parameter_constraints = {
        **OPTIM_CONSTRAINTS,
        "max_grad_norm": [Interval(float, 0, None, closed="neither"), NONE],
    }

    def __init__(
        self,
        epochs: int = 2,
        lr: float | str = "auto",
        batch_size: int = 32,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        max_grad_norm: float | None = 5.0,
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm

    def estimate_work(self, n_forget, n_retain):
        return float(self.epochs * n_forget)

    def _unlearn(self, model, forget, retain, ctx):
        opt = make_optimizer(model, self.optimizer, self.resolved_lr(), self.momentum, self.weight_decay)
        ctx.start(self.epochs * forget.n_batches(self.batch_size))
        model.train()
        for _ in range(self.epochs):
            for x, y in forget.batches(self.batch_size, shuffle=True, generator=ctx.generator):
                loss = -cross_entropy(model, x, y)
                optimise(opt, loss, ctx, max_grad_norm=self.max_grad_norm)
            if ctx.end_epoch(model):
                break
        return model

    @classmethod
    def _test_params(cls):
        return {"epochs": 3, "lr": 0.05}
