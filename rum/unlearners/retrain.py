"""Retraining from scratch on the retain set: the oracle every method is measured against."""

from __future__ import annotations

from rum._runtime.training import FIT_CONSTRAINTS, fit_loop
from rum._validation import CALLABLE, NONE
from rum.exceptions import InvalidParameterError
from rum.unlearners._training import reinitialise
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("retrain")
class Retrain(Unlearner):
    """Re-initialise the weights and train on the retain set only.

    The exact answer to an unlearning request, and the reference that
    :func:`rum.evaluate` compares with. It costs a full training run.

    With the default recipe the model is trained with Adam for ``epochs``
    passes. To reproduce your own recipe, pass ``train_fn(model, retain, ctx)``:
    it receives the freshly initialised model (on ``ctx.device``), the retain
    data as a :class:`rum.TensorData` (use ``retain.batches(64,
    shuffle=True, generator=ctx.generator)``) and the run context, and returns
    the trained model. Modules without ``reset_parameters`` need ``init_fn(model)``.

    Args:
        epochs: passes over the retain set (default recipe).
        lr: learning rate (default recipe).
        batch_size: mini-batch size (default recipe).
        optimizer: ``"adam"`` or ``"sgd"`` (default recipe).
        momentum: SGD momentum (default recipe).
        weight_decay: L2 penalty (default recipe).
        train_fn: your own training function; replaces the default recipe.
        init_fn: your own re-initialisation ``init_fn(model)``; replaces
            calling ``reset_parameters`` on every module.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("retrain")(epochs=100)
        Retrain(epochs=100)
    """

    tags = UnlearnerTags(requires_retain=True, exact=True, cost="high", source="oracle",
                         suits=("class-wise", "sub-class", "random", "mixed"))
    _parameter_constraints = {**FIT_CONSTRAINTS, "train_fn": [CALLABLE, NONE], "init_fn": [CALLABLE, NONE]}

    def __init__(
        self,
        epochs: int = 60,
        lr: float = 1e-3,
        batch_size: int = 64,
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        train_fn=None,
        init_fn=None,
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.train_fn = train_fn
        self.init_fn = init_fn

    def estimate_work(self, n_forget, n_retain):
        return None if self.train_fn is not None else float(self.epochs * n_retain)

    def _unlearn(self, model, forget, retain, ctx):
        if self.init_fn is not None:
            self.init_fn(model)
        else:
            stuck = reinitialise(model)
            if stuck:
                raise InvalidParameterError(
                    "Retrain cannot re-initialise these modules (no reset_parameters): "
                    + ", ".join(stuck)
                    + ". Pass init_fn=<function that re-initialises the model>."
                )
        if self.train_fn is not None:
            out = self.train_fn(model, retain, ctx)
            return model if out is None else out
        fit_loop(
            model,
            retain,
            ctx,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        return model

    @classmethod
    def _test_params(cls):
        return {"epochs": 20}
