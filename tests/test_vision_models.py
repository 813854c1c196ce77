"""A torchvision ResNet-18, as users have it, through fit, unlearn and evaluate.

Built from its config (``resnet18(num_classes=4)``, random weights, nothing downloaded) and
trained on synthetic 32x32 images whose class is a coloured stripe pattern under noise; it
has BatchNorm layers throughout. The references are a brute-force accuracy read from the
model's outputs and a model retrained without the forget items. Skipped where torchvision is
not installed (``pip install "rum-unlearn[vision]"``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import rum

from .conftest import CallerState, items_unlearned

models = pytest.importorskip("torchvision.models")
pytestmark = pytest.mark.slow

PER_CLASS, CLASSES, SIZE = 60, 4, 32


def images(per_class, seed):
    rng = np.random.default_rng(seed)
    grid = np.arange(SIZE)
    X, y = [], []
    for c in range(CLASSES):
        stripes = np.sin(grid[:, None] * 0.8) if c % 2 else np.sin(grid[None, :] * 0.8)
        pattern = np.zeros((3, SIZE, SIZE))
        pattern[c % 3] = np.broadcast_to(stripes, (SIZE, SIZE))
        X.append(pattern + rng.normal(size=(per_class, 3, SIZE, SIZE)))
        y.append(np.full(per_class, c))
    return np.concatenate(X).astype(np.float32), np.concatenate(y)


def train_resnet(data, seed=0):
    torch.manual_seed(seed)
    return rum.fit(models.resnet18(num_classes=CLASSES), data, epochs=8, lr=0.02, batch_size=32,
                   device="cpu", random_state=seed)


def brute_force_accuracy(model, data):
    X, y = data
    model.eval()
    with torch.no_grad():
        return float((model(torch.as_tensor(X)).argmax(1).numpy() == y).mean())


@pytest.fixture(scope="module")
def vision():
    train, test = images(PER_CLASS, 0), images(PER_CLASS // 2, 1)
    return train, test, train_resnet(train)


def test_a_class_is_forgotten_like_a_retrain_and_the_caller_model_is_untouched(vision):
    (X, y), test, model = vision
    forget, retain = (X[y == 3], y[y == 3]), (X[y != 3], y[y != 3])
    assert brute_force_accuracy(model, test) > 0.9
    rep = rum.evaluate(model, forget_set=forget, retain_set=retain, test_set=test)
    assert rep.model.test == pytest.approx(brute_force_accuracy(model, test))
    state = CallerState(model, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rum.exceptions.RumWarning)
        res = rum.unlearn(model, forget, retain, random_state=0, progress=False)
    state.assert_unchanged("unlearn")  # BatchNorm running statistics included
    assert items_unlearned(res) == len(forget[1])
    retrained = train_resnet(retain, seed=1)
    assert brute_force_accuracy(retrained, forget) == 0.0
    assert brute_force_accuracy(res.model, forget) <= 0.05
    assert brute_force_accuracy(res.model, retain) >= brute_force_accuracy(retrained, retain) - 0.05


def test_random_items_are_unlearned_from_a_dataset(vision):
    (X, y), test, model = vision
    gone = np.random.default_rng(0).choice(len(y), size=len(y) // 20, replace=False)
    kept = np.setdiff1d(np.arange(len(y)), gone)
    data = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rum.exceptions.RumWarning)
        res = rum.unlearn(model, torch.utils.data.Subset(data, gone.tolist()),
                          torch.utils.data.Subset(data, kept.tolist()), random_state=0, progress=False)
    assert items_unlearned(res) == len(gone)
    assert brute_force_accuracy(res.model, test) >= brute_force_accuracy(model, test) - 0.1
