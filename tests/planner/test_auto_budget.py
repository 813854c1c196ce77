"""auto's ``budget=``: each stage gets a share of the time left, trials stop at their deadline.

The search's clock is driven here by the epochs themselves (one "second" per
epoch of the candidates below), so every cut is exact and the tests do not
depend on how fast this machine is.
"""

from __future__ import annotations

import pytest

import rum
from rum.planner import SearchReport, auto
from rum.planner.auto import stage_deadline
from rum.policies import Auto
from rum.unlearners.registry import UNLEARNERS

from ..conftest import state_equal


class EpochClock:
    """A clock that moves one unit per finished epoch of a ticking unlearner."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ticking(base: type, clock: EpochClock, runs: list) -> type:
    """``base`` with a clock tick after each epoch; each run's epoch count goes to ``runs``."""

    class Ticking(base):
        def _unlearn(self, model, forget, retain, ctx):
            inner, runs_i = ctx.on_epoch_end, len(runs)
            runs.append(0)

            def tick(epoch, m):
                clock.now += 1.0
                runs[runs_i] = epoch
                return inner(epoch, m) if inner is not None else False

            ctx.on_epoch_end = tick
            return super()._unlearn(model, forget, retain, ctx)

    return Ticking


@pytest.fixture()
def ticking_run(digits, monkeypatch):
    """Run auto on digits with ticking candidates (registered, so the plan replays)."""
    clock, runs = EpochClock(), []
    monkeypatch.setattr(auto, "_clock", clock)
    names = {"tick-random-label": rum.get_unlearner("random-label"),
             "tick-finetune": rum.get_unlearner("finetune")}
    for name, base in names.items():
        rum.register_unlearner(name)(ticking(base, clock, runs))

    # the candidates name an lr: calibrating lr="auto" would run (and tick) probes of them
    def run(budget, **options):
        runs.clear()
        clock.now = 0.0
        options.setdefault("candidates", [("tick-random-label", {"epochs": 10, "lr": 0.01})])
        options.setdefault("repair", [("tick-finetune", {"epochs": 10, "lr": 0.01})])
        res = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0,
                          policy=Auto(budget=budget, target="neighbors", **options))
        return res, list(runs)

    yield run
    for name in names:
        UNLEARNERS.unregister(name)


def test_stage_deadline_shares_the_time_left():
    assert stage_deadline(0.0, 8.0, 4) == 2.0
    # a stage that finished early leaves its time to the next ones
    assert stage_deadline(1.0, 8.0, 3) == pytest.approx(1.0 + 7.0 / 3)
    assert stage_deadline(5.0, 8.0, 1) == 8.0  # the last stage gets all that is left
    assert stage_deadline(9.0, 8.0, 2) == 9.0  # past the end: no time at all
    assert stage_deadline(3.0, None, 2) is None


def test_each_stage_stops_at_its_share_of_the_budget_and_replays(digits, ticking_run):
    res, runs = ticking_run(None)
    n_groups = len(res.profile.summary)
    # without a budget every trial runs until its patience stops it, well past 2 epochs
    assert len(runs) == n_groups + 1 and min(runs) >= 3
    assert res.search.budget is None and res.search.cut == ()
    assert "budget" not in res.search.summary()

    budget = 2.0 * (n_groups + 1)  # 2 epochs a stage
    res, runs = ticking_run(budget)
    assert runs == [2] * (n_groups + 1)  # every trial cut after exactly its share
    report = res.search
    assert report.budget == budget
    assert report.cut == (*[s.group for s in res.profile.summary], -1)
    assert f"budget {budget:.3g}s, cut short: group 0" in report.summary()
    assert all(t.epochs <= 2 for t in report.trials)
    assert SearchReport.from_dict(report.to_dict()) == report  # budget and cuts round-trip
    # a cut trial keeps its best epoch so far, and the plan replays to the searched model
    replay = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0)
    assert state_equal(replay.model, res.model)


def test_unused_time_rolls_over_to_the_repair(ticking_run):
    # one candidate that stops after 1 epoch by itself: the repair inherits the rest
    res, runs = ticking_run(100.0, candidates=[("tick-random-label", {"epochs": 1, "lr": 0.01})],
                            repair=[("tick-finetune", {"epochs": 10, "lr": 0.01})])
    n_groups = len(res.profile.summary)
    assert runs[:n_groups] == [1] * n_groups
    assert runs[-1] >= 3  # the repair stopped by its patience, not by the budget
    assert res.search.cut == ()
    assert "budget 100s, not reached" in res.search.summary()


def test_a_spent_budget_leaves_later_candidates_untried(ticking_run):
    res, runs = ticking_run(1.0, candidates=[("tick-random-label", {"epochs": 10, "lr": 0.01}),
                                             ("tick-finetune", {"epochs": 10, "lr": 0.01})], repair=[])
    # the first group's share is under one epoch, and that epoch spends the whole budget
    assert runs == [1]
    assert [t.unlearner for t in res.search.trials] == ["tick-random-label"]
    assert res.search.cut == tuple(s.group for s in res.profile.summary)


def test_the_reference_stops_at_its_share(digits, monkeypatch):
    clock, runs = EpochClock(), []
    monkeypatch.setattr(auto, "_clock", clock)
    reference = ticking(rum.get_unlearner("retrain"), clock, runs)(epochs=4)
    res = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0,
                      policy=Auto(target=reference, budget=1e-6, repair=[]))
    assert runs == [1]  # one epoch always runs; the budget stops the reference after it
    assert res.search.reference["epochs"] == 1 and res.search.reference["cut"] is True
    assert "cut short: reference" in res.search.summary()
    # with no time left no candidate starts: the model is unchanged
    assert [s.unlearner for s in res.plan.steps] == ["noop"]
    assert state_equal(res.model, digits.model)


def test_the_search_shows_a_progress_bar_only_when_asked(digits, capsys):
    quiet = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0,
                        progress=False)
    assert capsys.readouterr().err == ""
    shown = rum.unlearn(digits.model, digits.forget, digits.retain, policy=Auto(budget=60.0),
                        random_state=0, progress=True)
    err = capsys.readouterr().err
    n = 1 + len(shown.profile.summary) + 1  # the reference, each group, the repair
    assert f"{n}/{n}" in err and "auto search" in err
    assert "random-label" in err and "score=" in err and "budget left=" in err
    # the bar changes nothing: same plan, same weights
    assert state_equal(shown.model, quiet.model)
    assert [s.unlearner for s in shown.plan.steps] == [s.unlearner for s in quiet.plan.steps]


def test_budget_belongs_to_the_auto_policy_only(small):
    model, forget, retain = small
    with pytest.raises(rum.exceptions.UnknownOptionError, match="'budget'"):
        rum.unlearn(model, forget, retain, budget=5.0)
    with pytest.raises(rum.exceptions.UnknownOptionError, match="'budget'"):
        rum.policies.make_policy("uniform", {"budget": 5.0})
    with pytest.raises(rum.exceptions.InvalidParameterError, match="'budget' parameter"):
        Auto(budget=0)
    # the shorthand's options come from the policy itself
    assert rum.policies.make_policy("auto", {"budget": 5.0}).budget == 5.0
