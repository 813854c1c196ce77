"""NegGrad+: ascent on the forget set balanced by descent on the retain set."""

from __future__ import annotations

from rum._data import batch_count
from rum._runtime.optim import (
    OPTIM_CONSTRAINTS,
    cycle_batches,
    make_optimizer,
    mixes_batch,
    optimise,
    paired_cross_entropy,
)
from rum._validation import NONE, Interval
from rum.unlearners._training import epoch_retain, epoch_retain_size
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("neggrad+")
class NegGradPlus(Unlearner):
    """Minimise ``alpha * CE(retain) - (1 - alpha) * CE(forget)``.

    Each optimiser step pairs a retain batch with a forget batch (the forget
    set is cycled); one epoch is one pass over the retain set, or over
    ``retain_per_epoch`` of its items drawn afresh each epoch.

    Args:
        alpha: weight of the retain loss, in (0, 1); ``1 - alpha`` weighs the
            forget (ascent) loss.
        epochs: passes over the retain set.
        retain_per_epoch: retain items per epoch, a new random sample each
            epoch (``None``: all of them). Caps the cost of an epoch on a large
            retain set.
        lr: learning rate, > 0, or ``"auto"`` (default): calibrated with a short probe
            on the data at hand, starting from the reference rate 0.01.
        batch_size: retain mini-batch size.
        forget_batch_size: forget mini-batch size (``None``: same as ``batch_size``).
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        max_grad_norm: clip the gradient norm (``None`` disables).

    Defaults follow NegGrad+ of Kurmanji et al. (NeurIPS 2023) as run in the
    RUM paper (SGD, momentum 0.9, retain weight close to 1).

    Examples:
        >>> import rum
        >>> rum.get_unlearner("neggrad+")(alpha=0.95)
        NegGradPlus(alpha=0.95)
    """

    tags = UnlearnerTags(requires_retain=True, cost="medium", source="Kurmanji et al., NeurIPS 2023",
                         suits=("class-wise", "sub-class", "random", "mixed"))
    reference_lr = 0.01
    _parameter_constraints = {
        **OPTIM_CONSTRAINTS,
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "forget_batch_size": [Interval(int, 1, None), NONE],
        "max_grad_norm": [Interval(float, 0, None, closed="neither"), NONE],
        "retain_per_epoch": [Interval(int, 1, None), NONE],
    }

    def __init__(
        self,
        alpha: float = 0.9,
        epochs: int = 5,
        lr: float | str = "auto",
        batch_size: int = 64,
        forget_batch_size: int | None = None,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        max_grad_norm: float | None = 5.0,
        retain_per_epoch: int | None = None,
    ):
        self.alpha = alpha
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.forget_batch_size = forget_batch_size
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.retain_per_epoch = retain_per_epoch

    def estimate_work(self, n_forget, n_retain):
        fb = self.forget_batch_size or self.batch_size
        n = epoch_retain_size(n_retain, self.retain_per_epoch)
        return float(self.epochs * (n + batch_count(n, self.batch_size) * fb))

    def _unlearn(self, model, forget, retain, ctx):
        opt = make_optimizer(model, self.optimizer, self.resolved_lr(), self.momentum, self.weight_decay)
        forget_batches = cycle_batches(forget, self.forget_batch_size or self.batch_size, ctx)
        per_epoch = epoch_retain_size(len(retain), self.retain_per_epoch)
        ctx.start(self.epochs * batch_count(per_epoch, self.batch_size))
        joint = not mixes_batch(model)  # one forward pass for both batches where that is exact
        model.train()
        for _ in range(self.epochs):
            batches = epoch_retain(retain, self.retain_per_epoch, ctx).batches(
                self.batch_size, shuffle=True, generator=ctx.generator)
            for xr, yr in batches:
                xf, yf = next(forget_batches)
                retain_loss, forget_loss = paired_cross_entropy(model, xr, yr, xf, yf, joint=joint)
                loss = self.alpha * retain_loss - (1 - self.alpha) * forget_loss
                optimise(opt, loss, ctx, max_grad_norm=self.max_grad_norm)
            if ctx.end_epoch(model):
                break
        return model

    @classmethod
    def _test_params(cls):
        return {"epochs": 2}
