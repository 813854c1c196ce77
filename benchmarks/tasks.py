"""Benchmark tasks: real offline data, a model, and the recipe that trained it.

Every task flips ``noise`` of its training labels (deliberately mislabeled
items are what models memorise), trains the original model, and keeps the
recipe so the retrain oracle uses exactly the same one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

import rum

#: The benchmark tasks :func:`load_task` builds, in the order of a full run.
TASKS = ["digits", "tabular", "mnist1d", "bn-cnn"]
#: The tasks with a ``scale="large"`` setting (mnist1d generated with 40,000 samples).
LARGE_TASKS = ["mnist1d"]


@dataclass
class Task:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray  # with the flipped labels
    X_test: np.ndarray
    y_test: np.ndarray
    mislabeled: np.ndarray  # bool per training item
    make_model: Callable[[], nn.Module]
    recipe: dict
    model: nn.Module | None = None
    train_seconds: float = 0.0
    info: dict = field(default_factory=dict)
    recorder: Any = None  # a rum.profiler.MemorizationRecorder when trained with record=True
    scale: str = "small"  # "large": mnist1d with 40,000 samples


def digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def tabular_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


class Unsqueeze(nn.Module):
    def forward(self, x):
        return x.unsqueeze(1)


def mnist1d_cnn() -> nn.Module:
    return nn.Sequential(
        Unsqueeze(),
        nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(),
        nn.Conv1d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 10, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


#: The BatchNorm CNN's recipe: SGD with momentum and weight decay, as such models are trained.
BN_RECIPE = dict(epochs=30, lr=0.05, batch_size=64, optimizer="sgd", momentum=0.9,
                 weight_decay=5e-4)


def bn_cnn() -> nn.Module:
    """A small CNN with batch normalisation for 1x8x8 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 10),
    )



def digit_images(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits as standardised 1x8x8 images for :func:`bn_cnn`: ``(X_train,
    X_test, y_train, y_test)``, a stratified 70/30 split drawn with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    mu, sd = X_tr.mean(), X_tr.std()
    X_tr = ((X_tr - mu) / sd).astype(np.float32).reshape(-1, 1, 8, 8)
    X_te = ((X_te - mu) / sd).astype(np.float32).reshape(-1, 1, 8, 8)
    return X_tr, X_te, y_tr, y_te

def _flip(y: np.ndarray, noise: float, n_classes: int, rng: np.random.Generator):
    y = y.copy()
    n = int(round(noise * len(y)))
    idx = rng.choice(len(y), n, replace=False)
    y[idx] = (y[idx] + rng.integers(1, n_classes, n)) % n_classes
    mis = np.zeros(len(y), bool)
    mis[idx] = True
    return y, mis


def _standardise(X_tr, X_te):
    mu, sd = X_tr.mean(0), X_tr.std(0) + 1e-6
    return ((X_tr - mu) / sd).astype(np.float32), ((X_te - mu) / sd).astype(np.float32)


def load_task(name: str, seed: int, noise: float = 0.05, scale: str = "small") -> Task:
    """Build (but do not train) a task. ``scale="large"`` makes mnist1d 40,000 samples."""
    from sklearn.model_selection import train_test_split

    if scale not in ("small", "large") or (scale == "large" and name not in LARGE_TASKS):
        raise ValueError(f"scale={scale!r} for task {name!r}: 'large' exists for {', '.join(LARGE_TASKS)} only")
    rng = np.random.default_rng(seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        X_tr, X_te = _standardise(X_tr, X_te)
        n_classes, make, recipe = 10, digits_mlp, dict(epochs=60, lr=1e-3, batch_size=64, optimizer="adam")
    elif name == "bn-cnn":
        X_tr, X_te, y_tr, y_te = digit_images(seed)
        n_classes, make, recipe = 10, bn_cnn, dict(BN_RECIPE)
    elif name == "tabular":
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        X_tr, X_te = _standardise(X_tr, X_te)
        n_classes, make, recipe = 2, tabular_mlp, dict(epochs=150, lr=1e-3, batch_size=32, optimizer="adam")
    elif name == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = 40000 if scale == "large" else 4000
        args.seed = seed
        d = make_dataset(args)
        X_tr, X_te = _standardise(d["x"].astype(np.float32), d["x_test"].astype(np.float32))
        y_tr, y_te = np.asarray(d["y"]), np.asarray(d["y_test"])
        n_classes, make, recipe = 10, mnist1d_cnn, dict(epochs=40, lr=1e-3, batch_size=64, optimizer="adam")
    else:
        raise ValueError(f"unknown task {name!r}")
    y_tr, mis = _flip(np.asarray(y_tr), noise, n_classes, rng)
    return Task(name, X_tr, y_tr, X_te, np.asarray(y_te), mis, make, recipe, scale=scale)


def train(task: Task, seed: int, device: str = "cpu", record: bool = False) -> Task:
    """Train ``task``'s model with its recipe (``task.model``).

    With ``record=True`` a :class:`rum.profiler.MemorizationRecorder` watches the
    training (``task.recorder``); it reads the logits only, so the model is the same.
    """
    import time

    from rum.profiler import MemorizationRecorder

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = task.make_model()
    task.recorder = MemorizationRecorder(len(task.y_train)) if record else None
    t0 = time.perf_counter()
    rum.fit(model, (task.X_train, task.y_train), random_state=seed, device=device,
            callbacks=[task.recorder] if record else (), **task.recipe)
    task.train_seconds = time.perf_counter() - t0
    task.model = model
    return task
