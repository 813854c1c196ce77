"""A small, deterministic training loop for classifiers.

Used by the ``retrain`` oracle's default recipe and by the examples. It is
enough to train the small models rum is tested on; bring your own loop for
anything larger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from rum._data import TensorData, as_data
from rum._model import check_model, fit_to_model, forward, model_dtype, pick_logits, select_output
from rum._runtime.batchnorm import single_item_batchnorm
from rum._runtime.context import RunContext
from rum._runtime.optim import OPTIM_CONSTRAINTS, make_optimizer, optimise
from rum._runtime.seeding import seeded
from rum._validation import Interval, check_random_state, resolve_device, validate_params

__all__ = ["fit", "fit_loop", "BatchCallback"]

#: ``callback(epoch, indices, logits, targets)`` after each training batch.
BatchCallback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]

#: The recipe's allowed values: those of every optimiser-driven unlearner, with a numeric ``lr``.
FIT_CONSTRAINTS: dict[str, list] = {**OPTIM_CONSTRAINTS,
                                    "lr": [Interval(float, 0, None, closed="neither")]}


def fit_loop(
    model: torch.nn.Module,
    data: TensorData,
    ctx: RunContext,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    optimizer: str = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    callbacks: Sequence[BatchCallback] = (),
) -> torch.nn.Module:
    """Train ``model`` in place with cross-entropy; ``data`` must already be on ``ctx.device``."""
    opt = make_optimizer(model, optimizer, lr, momentum, weight_decay)
    ctx.start(epochs * data.n_batches(batch_size))
    model.train()
    for epoch in range(epochs):
        for idx in data.shuffled_batches(batch_size, ctx.generator):
            x, y = data.X[idx], data.y[idx]
            out = pick_logits(forward(model, x))
            loss = F.cross_entropy(out, y)
            for cb in callbacks:
                cb(epoch, idx, out.detach(), y)
            optimise(opt, loss, ctx)
        if ctx.end_epoch(model):
            break
    model.eval()
    return model


def fit(
    model: torch.nn.Module,
    train_set: Any,
    *,
    epochs: int = 60,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: str = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    device: Any = "auto",
    random_state: Any = 0,
    callbacks: Sequence[BatchCallback] = (),
    output: Any = None,
) -> torch.nn.Module:
    """Train a classifier in place with cross-entropy and return it (in eval mode).

    Args:
        model: the classifier to train (modified in place, like scikit-learn's ``fit``).
        train_set: training data in any form rum accepts.
        epochs: passes over ``train_set``.
        lr: learning rate.
        batch_size: items per optimiser step.
        optimizer: ``"adam"`` or ``"sgd"``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``; the model
            is moved there.
        random_state: seed for shuffling and dropout; the caller's global RNG
            state is left as it was.
        callbacks: functions ``cb(epoch, indices, logits, targets)`` called on every
            batch before the optimiser step; ``indices`` are positions in ``train_set``.
        output: which part of the model's output holds the logits, when it is not a
            tensor, an object with ``.logits`` or a dict with ``"logits"``: an index, a
            key, or a function of the output.

    Examples:
        >>> import torch, numpy as np, rum
        >>> X = np.random.default_rng(0).normal(size=(40, 2)).astype("float32")
        >>> y = (X[:, 0] > 0).astype(int)
        >>> net = torch.nn.Linear(2, 2)
        >>> net = rum.fit(net, (X, y), epochs=50, lr=0.05, device="cpu")
        >>> float((net(torch.tensor(X)).argmax(1).numpy() == y).mean()) > 0.9
        True
    """
    check_model(model)
    validate_params(
        dict(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            momentum=momentum,
            weight_decay=weight_decay,
        ),
        FIT_CONSTRAINTS,
        "rum.fit",
    )
    data = as_data(train_set, "train_set")
    dev = resolve_device(device)
    seed = check_random_state(random_state)
    model.to(dev)
    n_classes, sets = fit_to_model(model, {"train_set": data}, output)
    data = sets["train_set"]
    data = data.to(dev, model_dtype(model))
    with seeded(seed, dev) as gen, single_item_batchnorm(model), select_output(model, output):
        ctx = RunContext(device=dev, generator=gen, seed=seed, n_classes=n_classes)
        fit_loop(
            model,
            data,
            ctx,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            momentum=momentum,
            weight_decay=weight_decay,
            callbacks=callbacks,
        )
    return model
