"""A tiny, deterministic memorised task for the conformance kit, with its exact retrain oracle.

The task: 900 training images of scikit-learn's bundled digits (8x8, 10
classes), 27 of them with a wrong label, learnt by a two-hidden-layer MLP
(the demo's recipe) until it reproduces the training labels, the wrong ones
included (26 of 27). The forget set is exactly the 27 mislabeled items: the original model predicts
their (wrong) training label, a model retrained without them predicts the
true digit. So forget accuracy is about 1 for the original model and about
0 for the oracle, and an unlearner that forgets moves it down.

Training the original and the oracle takes about 3 seconds on one CPU core;
both are built once per process and handed out as copies.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["TinyTask", "tiny_task", "make_tiny_model", "TINY_RECIPE"]

#: How the original model and the retrain oracle are trained (full memorisation).
TINY_RECIPE = dict(epochs=60, lr=1e-3, batch_size=64, optimizer="adam")

N_TRAIN = 900
N_TEST = 400
N_MISLABELED = 27
HIDDEN = 128


def make_tiny_model(n_features: int = 64, n_classes: int = 10, hidden: int = HIDDEN) -> nn.Module:
    """The architecture of the tiny task: an MLP with two hidden ReLU layers."""
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )


@dataclass(frozen=True)
class TinyTask:
    """A trained model, its data and the model retrained without the forget set.

    Attributes:
        model: the original model (CPU, float32, eval mode).
        oracle: the same architecture trained with the same recipe and seed on
            ``retain`` only.
        forget: ``(X, y)`` numpy arrays of the mislabeled training items
            (``y`` holds their wrong training labels).
        retain: ``(X, y)`` of the other training items.
        test: ``(X, y)`` of held-out items.
        n_classes: number of classes (10).
    """

    model: nn.Module
    oracle: nn.Module
    forget: tuple[np.ndarray, np.ndarray]
    retain: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    n_classes: int = 10

    def copy(self) -> TinyTask:
        """A deep copy (models and arrays), safe to hand to code under test."""
        return TinyTask(
            model=copy.deepcopy(self.model),
            oracle=copy.deepcopy(self.oracle),
            forget=(self.forget[0].copy(), self.forget[1].copy()),
            retain=(self.retain[0].copy(), self.retain[1].copy()),
            test=(self.test[0].copy(), self.test[1].copy()),
            n_classes=self.n_classes,
        )


@functools.lru_cache(maxsize=1)
def _build() -> TinyTask:
    from sklearn.datasets import load_digits

    import rum

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    tr, te = order[:N_TRAIN], order[N_TRAIN : N_TRAIN + N_TEST]
    mean, std = X[tr].mean(0), X[tr].std(0) + 1.0
    X = ((X - mean) / std).astype(np.float32)
    X_tr, y_tr = X[tr], y[tr].astype(np.int64)
    noisy = rng.choice(N_TRAIN, N_MISLABELED, replace=False)
    y_tr[noisy] = (y_tr[noisy] + rng.integers(1, 10, N_MISLABELED)) % 10
    keep = np.ones(N_TRAIN, dtype=bool)
    keep[noisy] = False

    def train(X_, y_):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = make_tiny_model()
        rum.fit(net, (X_, y_), device="cpu", random_state=0, **TINY_RECIPE)
        return net.eval()

    model = train(X_tr, y_tr)
    oracle = train(X_tr[keep], y_tr[keep])
    return TinyTask(
        model=model,
        oracle=oracle,
        forget=(X_tr[noisy], y_tr[noisy]),
        retain=(X_tr[keep], y_tr[keep]),
        test=(X[te], y[te].astype(np.int64)),
    )


def _build_one_thread() -> TinyTask:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build()
    finally:
        torch.set_num_threads(before)


def tiny_task() -> TinyTask:
    """The tiny memorised task (built once per process; each call returns a fresh copy).

    Examples:
        >>> from rum.testing import tiny_task
        >>> task = tiny_task()
        >>> len(task.forget[1]), len(task.retain[1]), len(task.test[1])
        (27, 873, 400)
    """
    return _build_one_thread().copy()


def accuracy(model: nn.Module, data: tuple[np.ndarray, np.ndarray]) -> float:
    """Top-1 accuracy of ``model`` on ``(X, y)`` (eval mode, any device)."""
    from rum._runtime.predict import accuracy_from_logits, predict_logits

    X, y = data
    return accuracy_from_logits(predict_logits(model, torch.as_tensor(X)), torch.as_tensor(y))
