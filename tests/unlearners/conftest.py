"""A class-wise forgetting task on the conformance kit's tiny model, with its exact retrain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import rum
from rum.testing import tiny_task
from rum.testing.fixtures import TINY_RECIPE, make_tiny_model

#: The class the class-wise task forgets.
FORGOTTEN = 3


@dataclass
class ClasswiseTask:
    model: torch.nn.Module
    oracle: torch.nn.Module
    forget: tuple[np.ndarray, np.ndarray]
    retain: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


@pytest.fixture()
def one_thread():
    """Tiny models: torch's threads only add overhead, and on a shared machine a lot of it.

    Not automatic: a test that compares weights bit for bit with a session fixture built
    under another thread count would see float sums rounded differently."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def classwise_task() -> ClasswiseTask:
    """Forget every training item labelled 3 from the tiny task's model; the oracle is the same
    MLP trained with the same recipe on the other items (it has never seen the label 3)."""
    task = tiny_task()
    X = np.concatenate([task.forget[0], task.retain[0]])
    y = np.concatenate([task.forget[1], task.retain[1]])
    out = y == FORGOTTEN
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        oracle = make_tiny_model()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rum.fit(oracle, (X[~out], y[~out]), device="cpu", random_state=0, **TINY_RECIPE)
    finally:
        torch.set_num_threads(before)
    return ClasswiseTask(task.model, oracle.eval(), (X[out], y[out]), (X[~out], y[~out]), task.test)


def classwise_scores(task: ClasswiseTask, unlearner: str, **params) -> dict:
    """Run ``unlearner`` (retain guard on) and score it and the oracle on the class-wise task:
    accuracy on the forgotten training items, on the test items of the forgotten class and
    on the test items of the other classes."""
    from rum.testing.fixtures import accuracy

    res = rum.unlearn(task.model, task.forget, task.retain, unlearner=unlearner, random_state=0,
                      device="cpu", progress=False, **params)
    X, y = task.test
    gone, kept = (X[y == FORGOTTEN], y[y == FORGOTTEN]), (X[y != FORGOTTEN], y[y != FORGOTTEN])
    out = {"status": res.steps[0].status}
    for who, model in (("", res.model), ("oracle_", task.oracle), ("original_", task.model)):
        out[who + "forget"] = accuracy(model, task.forget)
        out[who + "test_forgotten"] = accuracy(model, gone)
        out[who + "test_other"] = accuracy(model, kept)
    return out


def assert_forgets_the_class(s: dict, max_forget: float = 0.25, max_other_drop: float = 0.05) -> None:
    """Close to the exact retrain: the class is forgotten (the oracle is at 0), the others kept."""
    assert s["status"] == "ok", s
    assert s["original_forget"] > 0.95 and s["oracle_forget"] == 0.0, s
    assert s["forget"] <= max_forget and s["test_forgotten"] <= max_forget, s
    assert s["test_other"] >= s["oracle_test_other"] - max_other_drop, s
