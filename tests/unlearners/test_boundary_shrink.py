from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import rum
from rum._data import TensorData, as_data
from rum._runtime.context import RunContext
from rum.exceptions import InvalidParameterError
from rum.testing import tiny_task
from rum.unlearners import BoundaryShrink
from rum.unlearners.boundary_shrink import neighbour_labels
from tests.unlearners.conftest import assert_forgets_the_class, classwise_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def neighbours_by_hand(model, X, y, epsilon):
    """One item at a time: an FGSM step of epsilon * std(X), then the best class other than y."""
    model = copy.deepcopy(model).eval()
    step = epsilon * float(X.std())
    out = []
    for i in range(len(y)):
        x = X[i : i + 1].clone().requires_grad_(True)
        F.cross_entropy(model(x), y[i : i + 1]).backward()
        with torch.no_grad():
            scores = model(x + step * x.grad.sign())[0]
        ranked = [int(c) for c in torch.argsort(scores, descending=True)]
        out.append(next(c for c in ranked if c != int(y[i])))
    return torch.tensor(out)


@pytest.mark.parametrize("epsilon", [0.05, 1.0])
def test_neighbour_labels_match_a_per_item_attack(epsilon):
    task = tiny_task()
    data = as_data(task.retain).subset(range(60))
    got = neighbour_labels(task.model, data, epsilon, batch_size=16)
    assert torch.equal(got, neighbours_by_hand(task.model, data.X, data.y, epsilon))
    assert bool((got != data.y).all())
    assert all(p.grad is None for p in task.model.parameters())


def test_a_long_enough_step_crosses_to_the_class_the_attack_reaches():
    """On a linear model the attack has a known answer: far along the gradient sign the
    prediction is the class whose weights grow fastest in that direction."""
    net = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    X = torch.tensor([[1.0, 0.2], [0.9, -0.1]])
    y = torch.tensor([0, 0])
    # the gradient sign of CE(class 0) points away from class 0: (-1, +1) for both items here;
    # far along it class 1 (weights (0, 1)) wins over class 2 (weights (-1, -1))
    labels = neighbour_labels(net, TensorData(X, y), epsilon=50.0)
    assert labels.tolist() == [1, 1]


def test_the_fine_tune_teaches_the_neighbour_labels():
    task = tiny_task()
    forget = as_data(task.forget)
    targets = neighbour_labels(task.model, forget, 0.1)
    model = copy.deepcopy(task.model)
    BoundaryShrink(epochs=10, retain_ratio=0.0)._unlearn(model, forget, as_data(task.retain),
                                                          RunContext.simple(10))
    with torch.no_grad():
        pred = model.eval()(forget.X).argmax(1)
    assert float((pred == targets).float().mean()) >= 0.9


def test_batch_norm_models_train_whatever_the_last_batch():
    """A last batch of one item cannot train batch normalisation; it joins the one before."""
    task = tiny_task()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    X, y = task.forget
    res = rum.unlearn(model, (X[:17], y[:17]), None, unlearner="boundary-shrink", batch_size=8,
                      device="cpu", progress=False)
    assert res.steps[0].status == "ok"


def test_parameters_are_validated():
    with pytest.raises(InvalidParameterError, match="'epsilon'"):
        BoundaryShrink(epsilon=0.0).validate_params()
    with pytest.raises(InvalidParameterError, match="'retain_ratio'"):
        BoundaryShrink(retain_ratio=-1.0).validate_params()


@pytest.mark.slow  # trains the class-wise oracle
def test_class_wise_forgetting_comes_close_to_the_exact_retrain(classwise_task):
    # measured: forget 0.0 on the class's training and test items (oracle 0), others 0.966 (0.963)
    assert_forgets_the_class(classwise_scores(classwise_task, "boundary-shrink"), max_forget=0.05)
