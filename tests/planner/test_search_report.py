"""result.search (= plan.search): what auto's search aimed at and tried, as a frozen record."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import rum
from rum.executor.result import UnlearnResult
from rum.planner import SearchReport, Trial
from rum.policies import Auto

from ..conftest import auto_search, untimed


@pytest.fixture(scope="module")
def searched(digits):
    return rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0)


def test_the_kept_trials_are_the_plan_and_each_beat_doing_nothing(searched):
    report = searched.search
    kept = [t for t in report.trials if t.kept]
    assert [(t.group, t.unlearner) for t in kept] == [
        (s.group, s.unlearner) for s in searched.plan.steps]
    for t, step in zip(kept, searched.plan.steps):
        assert t.score < t.baseline
        if t.epochs > 0:  # the step is the trial cut at its best epoch
            assert step.params["epochs"] == t.epochs <= t.params["epochs"]
    for g in {t.group for t in report.trials if t.group != -1}:
        stage = [t for t in report.trials if t.group == g]
        assert len({t.baseline for t in stage}) == 1  # one bar per stage
        best = min(stage, key=lambda t: t.score)
        # the best candidate is kept exactly when it beat doing nothing
        assert best.kept == (best.score < best.baseline)
        assert sum(t.kept for t in stage) == int(best.kept)
    assert report.target_accuracy == searched.metrics["forget_acc_target"]
    assert report.target == report.reference["unlearner"] == "Retrain(epochs=2)"
    assert 0 < report.reference["reference_accuracy"] <= report.reference["expected"] <= 1
    assert 0 < report.seconds <= searched.timings["plan"]


def test_the_report_prints_as_a_table_and_round_trips_through_json(searched, tmp_path):
    text = str(searched.search)
    lines = text.splitlines()
    assert lines[0] == searched.search.summary()
    assert "short retrain" in lines[0] and "aiming at forget accuracy" in lines[0]
    assert lines[1].split() == ["group", "unlearner", "best", "epochs", "score", "do", "nothing",
                                "seconds", "kept"]
    assert len(lines) == 3 + len(searched.search.trials)
    assert searched.search.summary() in str(searched)  # the result says what was searched

    back = UnlearnResult.load(searched.save(tmp_path / "result.json"))
    assert back.search == searched.search
    # the report belongs to the plan: saved with it, and not part of a plan's equality
    assert searched.search is searched.plan.search
    plan = rum.Plan.load(searched.plan.save(tmp_path / "plan.json"))
    assert plan.search == searched.search and plan == searched.plan
    assert dataclasses.replace(plan, search=None) == plan
    assert "search" not in rum.plan(searched.profile).to_dict()
    # a trial that never finished an epoch scores inf, which JSON has no word for
    odd = dataclasses.replace(searched.search,
                              trials=(Trial(0, "scrub", {"epochs": 2}, 0, math.inf, 0.3, 0.1),))
    assert SearchReport.from_dict(odd.to_dict()) == odd


def test_other_policies_have_no_search(digits, tmp_path):
    res = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0)
    assert res.search is None and res.plan.search is None and "auto search" not in str(res)
    assert UnlearnResult.load(res.save(tmp_path / "r.json")).search is None


def test_rum_plan_returns_the_search_that_rum_unlearn_runs(digits, searched):
    prof = rum.profile(digits.model, digits.forget, digits.retain, random_state=0)
    plan = rum.plan(prof, policy="auto", model=digits.model, forget_set=digits.forget,
                    retain_set=digits.retain, random_state=0, device="cpu")
    assert plan == searched.plan and untimed(plan.search) == untimed(searched.search)


def test_an_abandoned_reference_is_reported(digits):
    res = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0,
                      policy=Auto(target=("retrain", {"epochs": 3, "lr": 1e-7})))
    report = res.search
    assert report.target == "neighbors" and report.reference["epochs"] == 1
    assert "scale" not in report.reference
    assert "abandoned after 1 epoch(s)" in report.summary()
    none = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0,
                       policy=Auto(target="neighbors"))
    assert none.search.reference == {} and "no reference trained" in none.search.summary()
    # the neighbour target is the same either way, so the two searches agree
    np.testing.assert_allclose([t.score for t in none.search.trials],
                               [t.score for t in report.trials])


def _profile_with_targets(n_items: int, groups, targets) -> rum.Profile:
    """A profile whose neighbour-scored memorization makes auto's per-item target ``targets``."""
    from rum.profiler._profile import GroupSummary

    groups = np.asarray(groups)
    return rum.Profile(
        memorization=1.0 - np.asarray(targets, dtype=float), entanglement=np.zeros(n_items),
        groups=groups, summary=tuple(GroupSummary(int(g), int((groups == g).sum()))
                                     for g in np.unique(groups)),
        scorers={"memorization": "neighbors"}, seed=0,
    )


def test_a_stage_already_on_target_is_not_searched(digits):
    from rum._data import as_data
    from rum.metrics.functional import predict_logits

    forget, retain = as_data(digits.forget), as_data(digits.retain)
    right = (predict_logits(digits.model, forget.X).argmax(1) == forget.y).numpy()
    keep = np.flatnonzero(right)  # items the model gets right: a target of 1 is met there
    forget = forget.subset(keep)
    n = len(keep)
    half = np.arange(n) >= n // 2

    def search(targets):
        profile = _profile_with_targets(n, half.astype(int), targets)
        return auto_search(profile, digits.model, forget, retain, target="neighbors")[0]

    # group 0 asks for what the model already does (score 0, nothing can score lower); group 1
    # asks for every item to be forgotten, so its stage is searched
    plan = search(np.where(half, 0.0, 1.0))
    assert plan.search.on_target == (0,)
    assert {t.group for t in plan.search.trials} >= {1} and 0 not in {t.group for t in plan.search.trials}
    assert 0 not in {s.group for s in plan.steps}
    assert "already on target, not searched: group 0" in plan.search.summary()
    assert SearchReport.from_dict(plan.search.to_dict()) == plan.search
    # every stage on target: no trial at all, and the plan does nothing
    plan = search(np.ones(n))
    assert plan.search.on_target == (0, 1, -1) and plan.search.trials == ()
    assert [s.unlearner for s in plan.steps] == ["noop"]
    assert "not searched: group 0, group 1, repair" in plan.search.summary()
