"""Shared fixtures: a real trained model on scikit-learn's digits, and its retrain oracle."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import rum
from rum.demo import RECIPE, digits_scenario, make_mlp


@pytest.fixture(scope="session")
def digits():
    """The demo scenario: an MLP that memorised 5 % flipped labels; forget = flipped + ordinary."""
    return digits_scenario(seed=0)


@pytest.fixture(scope="session")
def oracle(digits):
    """The model retrained on the retain set only, with the recipe of the original."""
    res = rum.unlearn(
        digits.model, digits.forget, digits.retain, unlearner="retrain", random_state=1,
        device="cpu", progress=False, **RECIPE,
    )
    return res.model


@pytest.fixture()
def small():
    """A small, quickly trained model and data for API-level tests (fresh per test)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.8)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    rum.fit(model, (X, y), epochs=5, lr=0.01, device="cpu", random_state=0)
    return model, (X[:20], y[:20]), (X[20:], y[20:])


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def accuracy(model: torch.nn.Module, data) -> float:
    X, y = data
    with torch.no_grad():
        pred = model(torch.as_tensor(X)).argmax(1).numpy()
    return float((pred == np.asarray(y)).mean())


def untimed(report):
    """An auto search report (``result.search``) without its seconds, which differ from run to run."""
    import dataclasses

    return ([dataclasses.replace(t, seconds=0) for t in report.trials], report.target,
            report.target_accuracy, {k: v for k, v in report.reference.items() if k != "seconds"})


def planning_context(model, forget, retain, *, seed=0, profile=None, retain_guard=0.5):
    """A search policy's planning context on ``model`` and data, as ``rum.unlearn`` makes it."""
    from rum._model import prepare_call
    from rum.policies import PlanningContext

    prep = prepare_call(model, forget, retain, "cpu", seed)
    if profile is None:
        profile = rum.profile(model, forget, retain, random_state=seed)
    return PlanningContext.from_prepared(profile, prep, retain_guard=retain_guard, progress=False)


def auto_search(profile, model, forget, retain, *, seed=0, retain_guard=0.5, **auto):
    """The auto policy's search run directly on ``Auto(**auto)``: ``(plan, searched model, search)``;
    ``search.targets`` holds the per-item targets it aimed at."""
    from rum.planner.auto import _Search
    from rum.policies import Auto

    ctx = planning_context(model, forget, retain, seed=seed, profile=profile,
                           retain_guard=retain_guard)
    search = _Search(Auto(**auto), ctx)
    plan, searched, _ = search.run()
    return plan, searched, search


# -- the caller's state ------------------------------------------------------------------------
class CallerState:
    """Everything of the caller's that a call must leave as it found it."""

    def __init__(self, model: torch.nn.Module | None, *arrays):
        self.model = model
        if model is not None:
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.modes = [m.training for m in model.modules()]
            self.grads = [p.requires_grad for p in model.parameters()]
            self.hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
        self.arrays = [(a, a.copy() if isinstance(a, np.ndarray) else a.clone()) for a in arrays]
        self.torch_rng = torch.get_rng_state()
        self.np_rng = np.random.get_state()
        self.py_rng = random.getstate()

    def assert_unchanged(self, what: str = "") -> None:
        if self.model is not None:
            now = self.model.state_dict()
            assert now.keys() == self.weights.keys(), what
            assert all(torch.equal(now[k], v) for k, v in self.weights.items()), f"{what}: weights or buffers changed"
            assert [m.training for m in self.model.modules()] == self.modes, f"{what}: train/eval modes changed"
            assert [p.requires_grad for p in self.model.parameters()] == self.grads, f"{what}: requires_grad changed"
            assert [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in self.model.modules()] == self.hooks, \
                f"{what}: hooks changed"
        for now, was in self.arrays:
            same = np.array_equal(now, was) if isinstance(now, np.ndarray) else torch.equal(now, was)
            assert same, f"{what}: the caller's data changed"
        assert torch.equal(torch.get_rng_state(), self.torch_rng), f"{what}: torch's global RNG moved"
        np_now = np.random.get_state()
        assert np.array_equal(np_now[1], self.np_rng[1]) and np_now[2] == self.np_rng[2], \
            f"{what}: numpy's global RNG moved"
        assert random.getstate() == self.py_rng, f"{what}: Python's global RNG moved"


def items_unlearned(res):
    """Forget items the plan's steps covered: its group steps share the items out, and a step
    over the whole forget set (group -1, the repair) takes every one."""
    groups = sum(s.n_items for s in res.steps if s.group >= 0)
    whole = {s.n_items for s in res.steps if s.group < 0}
    assert len(whole) <= 1 and (not whole or not groups or whole == {groups})
    return groups or whole.pop()


__all__ = ["items_unlearned", "CallerState", "state_equal", "accuracy", "make_mlp", "untimed", "auto_search", "planning_context"]
