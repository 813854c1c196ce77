"""Profile, Plan and UnlearnResult: frozen, printable, JSON round-trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import rum
from rum.executor.result import UnlearnResult
from rum.planner._plan import Plan, Step


def test_profile_round_trips_and_prints(tmp_path):
    p = rum.Profile.from_groups(
        np.array([0.1, 0.9, 0.5, 0.2]), np.array([1.0, np.nan, 2.0, 3.0]), np.array([0, 1, 1, 0]),
        es={0: 4.5}, scorers={"memorization": "confidence"}, seed=7,
    )
    assert p.summary[0].size == 2 and p.summary[0].memorization == pytest.approx(0.15)
    assert p.summary[1].entanglement == pytest.approx(2.0)  # NaN ignored
    assert p.indices(1).tolist() == [1, 2]
    q = rum.Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q == p and np.isnan(q.entanglement[1])
    assert rum.Profile.load(p.save(tmp_path / "p.json")) == p
    text = str(p)
    assert "Profile of 4 forget items" in text and "memorization" in text
    with pytest.raises(ValueError):
        p.memorization[0] = 3.0  # read-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.seed = 1


def test_profile_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per forget item"):
        rum.Profile(np.zeros(3), np.zeros(2), np.zeros(3), ())


def test_plan_round_trips_prints_and_gives_a_graph(tmp_path):
    plan = Plan(
        (Step(0, [0, 2], "noop"), Step(1, np.array([1, 3]), "neggrad+", {"alpha": 0.9})),
        policy="manual",
        n_forget=4,
    )
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert Plan.load(plan.save(tmp_path / "plan.json")) == plan
    assert "neggrad+" in str(plan) and "alpha=0.9" in str(plan)
    g = plan.to_networkx()
    assert list(g.edges) == [(0, 1)] and g.nodes[1]["unlearner"] == "neggrad+"
    assert plan.steps[1].build().alpha == 0.9


def test_unlearn_result_round_trips_without_the_model(small, tmp_path):
    model, forget, retain = small
    res = rum.unlearn(model, forget, retain, unlearner="finetune", epochs=1, random_state=0)
    d = json.loads(json.dumps(res.to_dict()))
    back = UnlearnResult.from_dict(d, model=res.model)
    assert back.plan == res.plan and back.profile == res.profile and back.steps == res.steps
    assert back.seed == 0
    assert UnlearnResult.load(res.save(tmp_path / "r.json")).steps == res.steps
    text = str(res)
    assert "finetune" in text and "forget_acc_after" in text
    assert res.metrics["forget_acc_before"] == pytest.approx(1.0 * res.metrics["forget_acc_before"])


def test_a_plan_step_runs_an_unlearner_class_defined_in_a_function(small):
    model, forget, retain = small

    class Local(rum.Unlearner):
        def __init__(self, scale: float = 0.5):
            self.scale = scale

        def _unlearn(self, model, forget, retain, ctx):
            import torch

            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(self.scale)
            return model

    res = rum.unlearn(model, forget, retain, unlearner=Local(scale=0.0), random_state=0)
    assert all(float(p.detach().abs().sum()) == 0.0 for p in res.model.parameters())
    assert "<locals>.Local" in res.plan.steps[0].unlearner
