"""Shared fixtures: a real trained model on scikit-learn's digits, and its retrain oracle."""

from __future__ import annotations

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


__all__ = ["state_equal", "accuracy", "make_mlp", "untimed", "auto_search", "planning_context"]
