from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rum
import rum.unlearners.unsir as unsir_module
from rum._data import TensorData, as_data
from rum._runtime.context import RunContext
from rum.exceptions import InvalidParameterError
from rum.testing import tiny_task
from rum.unlearners import UNSIR
from rum.unlearners.unsir import error_maximising_noise
from tests.unlearners.conftest import assert_forgets_the_class, classwise_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def two_class_split():
    """Forget every training item labelled 3 or 7; the retain set holds no 0, 3 or 7."""
    task = tiny_task()
    X = np.concatenate([task.forget[0], task.retain[0]])
    y = np.concatenate([task.forget[1], task.retain[1]])
    forget = np.isin(y, [3, 7])
    retain = ~np.isin(y, [0, 3, 7])
    return task, (X[forget], y[forget]), (X[retain], y[retain])


def test_the_noise_carries_the_forget_classes_labels_only():
    task, forget, retain = two_class_split()
    f = as_data(forget)
    noise = error_maximising_noise(task.model, f, as_data(retain), RunContext.simple(10), steps=3)
    labels, counts = torch.unique(noise.y, return_counts=True)
    assert labels.tolist() == [3, 7]
    assert counts.tolist() == [int((f.y == 3).sum()), int((f.y == 7).sum())]


def test_every_impair_batch_holds_noise_of_the_forget_classes_and_nothing_of_class_0(monkeypatch):
    """A widely copied implementation labels its noise 0; here the impair epoch sees the
    forget classes 3 and 7 (from the noise) and the retain labels, never a 0."""
    task, forget, retain = two_class_split()
    seen: list[list[int]] = []
    real = unsir_module.cross_entropy

    def recording(model, x, y):
        seen.append(sorted(set(y.tolist())))
        return real(model, x, y)

    monkeypatch.setattr(unsir_module, "cross_entropy", recording)
    rum.unlearn(task.model, forget, retain, unlearner="unsir", epochs=1, noise_steps=2, device="cpu",
                progress=False, retain_guard=None)
    labels = set().union(*map(set, seen))
    assert {3, 7} <= labels and 0 not in labels
    assert labels - {3, 7} == set(np.unique(retain[1]).tolist())


def test_the_learnt_noise_raises_the_models_loss_on_its_class():
    task, forget, retain = two_class_split()
    f, r = as_data(forget), as_data(retain)

    def loss(steps):
        noise = error_maximising_noise(task.model, f, r, RunContext.simple(10, seed=1), steps=steps)
        with torch.no_grad():
            return float(F.cross_entropy(task.model(noise.X), noise.y))

    assert loss(30) > loss(0) + 1.0


def test_noise_lives_on_the_data_scale_and_keeps_constant_features():
    torch.manual_seed(0)
    X = torch.randn(50, 4) * torch.tensor([1.0, 10.0, 0.0, 0.1]) + torch.tensor([0.0, 5.0, 2.0, -1.0])
    y = torch.tensor([1, 2] * 25)
    net = torch.nn.Linear(4, 3)
    noise = error_maximising_noise(net, TensorData(X[:6], y[:6]), TensorData(X, y),
                                   RunContext.simple(3), steps=5, per_class=2)
    assert len(noise) == 6
    assert bool((noise.X[:, 2] == 2.0).all())  # a feature that never varies stays put
    assert float(noise.X[:, 1].std()) > 10 * float(noise.X[:, 3].std())
    # at most per_class distinct inputs per class, cycled to one per forget item
    assert len(torch.unique(noise.X, dim=0)) == 4


def test_impair_epochs_cannot_exceed_epochs():
    with pytest.raises(InvalidParameterError, match="'impair_epochs'.*\\[0, 2\\]"):
        UNSIR(epochs=2, impair_epochs=3).validate_params()


def test_truncation_keeps_the_impair_epochs_first():
    assert UNSIR(epochs=4, impair_epochs=2).truncated(1).get_params()["impair_epochs"] == 1
    assert UNSIR(epochs=4, impair_epochs=2).truncated(3).get_params()["impair_epochs"] == 2


@pytest.mark.slow  # trains the class-wise oracle
def test_class_wise_forgetting_comes_close_to_the_exact_retrain(classwise_task):
    # measured: forget 0.0 on the class's training and test items (oracle 0), others 0.943 (0.963)
    assert_forgets_the_class(classwise_scores(classwise_task, "unsir"), max_forget=0.05)
