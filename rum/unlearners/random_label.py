"""Random-label unlearning: train the forget items towards wrong labels, mixed with retain."""

from __future__ import annotations

from rum._runtime.optim import OPTIM_CONSTRAINTS, cross_entropy, make_optimizer, optimise
from rum._validation import Interval
from rum.unlearners._training import relabelled_mix, retain_sample_size
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("random-label")
class RandomLabel(Unlearner):
    """Relabel every forget item with a random wrong class and train on it together with retain.

    New wrong labels are drawn at the start of each epoch. The retain items
    (subsampled to ``retain_ratio`` times the forget size per epoch, so a
    large retain set does not dilute the forget signal) keep the model
    accurate on the rest of the data.

    Args:
        epochs: passes over the mixed set.
        lr: learning rate, > 0, or ``"auto"`` (default): calibrated with a short probe
            on the data at hand, starting from the reference rate 0.01.
        batch_size: mini-batch size.
        retain_ratio: retain items drawn per epoch, as a multiple of the forget
            set size (all retain items when the retain set is smaller).
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.

    Defaults follow the random-label baseline of Golatkar et al. (CVPR 2020)
    and Fan et al. (ICLR 2024), with wrong labels only, as in the latter.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("random-label")(epochs=2)
        RandomLabel(epochs=2)
    """

    tags = UnlearnerTags(
        requires_retain=False, cost="low", source="Golatkar et al., CVPR 2020; Fan et al., ICLR 2024",
        suits=("class-wise", "random", "mixed"),
    )
    reference_lr = 0.01
    _parameter_constraints = {
        **OPTIM_CONSTRAINTS,
        "retain_ratio": [Interval(float, 0, None)],
    }

    def __init__(
        self,
        epochs: int = 3,
        lr: float | str = "auto",
        batch_size: int = 32,
        retain_ratio: float = 4.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.retain_ratio = retain_ratio
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay

    def estimate_work(self, n_forget, n_retain):
        return float(self.epochs * (n_forget + min(n_retain, round(self.retain_ratio * n_forget))))

    def _unlearn(self, model, forget, retain, ctx):
        opt = make_optimizer(model, self.optimizer, self.resolved_lr(), self.momentum, self.weight_decay)
        n_retain = retain_sample_size(len(forget), retain, self.retain_ratio)
        ctx.start(self.epochs * max(1, -(-(len(forget) + n_retain) // self.batch_size)))
        model.train()
        for _ in range(self.epochs):
            mixed = relabelled_mix(forget, retain, n_retain, ctx)
            for x, y in mixed.batches(self.batch_size, shuffle=True, generator=ctx.generator):
                optimise(opt, cross_entropy(model, x, y), ctx)
            if ctx.end_epoch(model):
                break
        return model

    @classmethod
    def _test_params(cls):
        return {"epochs": 2}
