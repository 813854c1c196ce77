"""The auto policy: oracle-free targets, exact replay, and a real improvement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

import rum
from rum._data import as_data
from rum.planner._targets import neighbour_targets
from rum.policies import Auto
from rum.profiler.embeddings import embed

from ..conftest import auto_search, planning_context, state_equal


def test_neighbour_targets_match_a_brute_force_knn(digits):
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    got = neighbour_targets(digits.model, forget, retain, k=7)
    ef, er = embed(digits.model, forget)[0].numpy(), embed(digits.model, retain)[0].numpy()
    nn = NearestNeighbors(n_neighbors=7, metric="cosine").fit(er)
    idx = nn.kneighbors(ef, return_distance=False)
    want = (retain.y.numpy()[idx] == forget.y.numpy()[:, None]).mean(1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # the flipped labels disagree with their neighbours
    assert roc_auc_score(digits.mislabeled, -got) > 0.95


@pytest.fixture(scope="module")
def auto_result(digits):
    return rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0)


def test_auto_plan_replays_to_the_same_model(digits, auto_result):
    replay = rum.execute(auto_result.plan, digits.model, digits.forget, digits.retain, random_state=0)
    assert state_equal(replay.model, auto_result.model)
    assert auto_result.plan.policy == "auto" and auto_result.timings["plan"] > 0


def test_auto_gets_close_to_the_oracle(digits, oracle, auto_result):
    kw = dict(forget_set=digits.forget, retain_set=digits.retain, test_set=digits.test,
              reference=oracle)
    auto = rum.evaluate(auto_result.model, **kw)
    noop = rum.evaluate(digits.model, **kw)
    assert auto.tow > noop.tow + 0.3
    # 0.90 here: auto lands on its target, 0.59, which is above the oracle's forget accuracy,
    # 0.49, on this set (0.94 when it matched targets item by item; over the RUM suite's 81
    # runs matching them per group scores higher: benchmarks/NOTES.md)
    assert auto.tow > 0.88


def test_auto_rejects_a_fixed_mapping_and_needs_retain(small):
    model, forget, retain = small
    with pytest.raises(rum.exceptions.InvalidParameterError, match="per group itself.*RUM or Mapping"):
        Auto(candidates={"high": "salun"})
    with pytest.raises(rum.exceptions.InvalidParameterError, match="needs retain_set"):
        rum.unlearn(model, forget, None, policy="auto")


def test_auto_respects_a_tiny_budget(small):
    model, forget, retain = small
    res = rum.unlearn(model, forget, retain, policy=Auto(budget=1e-9), random_state=0)
    # nothing could be tried: the model is unchanged
    assert [s.unlearner for s in res.plan.steps] == ["noop"]
    assert state_equal(res.model, model)
    torch.manual_seed(0)


def _run_with_snapshots(u, model, forget, retain):
    import copy

    from rum._runner import run_step

    snaps = {}

    def on_epoch(epoch, m, ctx):
        snaps[epoch] = {k: v.detach().clone() for k, v in m.state_dict().items()}
        return False

    run = run_step(u, copy.deepcopy(model), forget, retain, seed=7, device=torch.device("cpu"),
                   n_classes=3, on_epoch=on_epoch)
    return run.model, snaps, run.unlearner


@pytest.mark.parametrize("name, extra", [
    *[(n, {}) for n in rum.list_unlearners() if "epochs" in rum.get_unlearner(n)._param_names()],
    ("finetune", {"retain_per_epoch": 30}), ("neggrad+", {"retain_per_epoch": 30}),
])
def test_truncated_unlearners_replay_their_first_epochs_exactly(small, name, extra):
    model, forget, retain = small
    forget, retain = as_data(forget), as_data(retain)
    cls = rum.get_unlearner(name)
    u = cls(**{**cls._test_params(), **extra, "epochs": 3})
    _, snaps, ran = _run_with_snapshots(u, model, forget, retain)
    assert sorted(snaps) == [1, 2, 3], "epoch-based unlearners must call ctx.end_epoch(model)"
    for k in (1, 2, 3):
        # the unlearner as it ran: lr="auto" resolved, as auto records it in the plan
        short = ran.truncated(k)
        if short is None:
            continue
        replay, _, _ = _run_with_snapshots(short, model, forget, retain)
        state = replay.state_dict()
        assert all(torch.equal(state[key], snaps[k][key]) for key in state), (name, k)


def test_auto_reuses_the_profiles_neighbour_scores(digits):
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    prof = rum.profile(digits.model, digits.forget, digits.retain, random_state=0)
    assert prof.scorers["memorization"] == "neighbors"
    np.testing.assert_allclose(1.0 - prof.memorization,
                               neighbour_targets(digits.model, forget, retain), atol=1e-6)


def test_auto_result_reports_its_steps_without_replaying(auto_result):
    assert auto_result.timings["execute"] == 0.0
    assert len(auto_result.steps) == len(auto_result.plan.steps)
    assert all(s.status == "ok" and s.seconds >= 0 for s in auto_result.steps)
    assert auto_result.metrics["forget_acc_after"] < auto_result.metrics["forget_acc_before"]


def test_rum_plan_auto_finds_the_same_plan_as_unlearn(digits, auto_result):
    prof = rum.profile(digits.model, digits.forget, digits.retain, random_state=0)
    plan = rum.plan(prof, policy="auto", model=digits.model, forget_set=digits.forget,
                    retain_set=digits.retain, random_state=0, device="cpu")
    assert plan.steps == auto_result.plan.steps
    assert plan.n_retain == auto_result.plan.n_retain == len(digits.retain[1])  # for the cost
    with pytest.raises(rum.exceptions.InvalidParameterError, match="strict retain policy"):
        rum.plan(prof, policy="auto", model=digits.model, forget_set=digits.forget,
                 retain_set=digits.retain, retain_policy="progressive")


def _scripted_trial(small, scores, guard=None):
    """A six-epoch fine-tune trial whose epochs score ``scores`` in turn: (record, the retain
    accuracy handed to each score read)."""
    from rum.planner.auto import _trial

    model, forget, retain = small
    calls = []

    def score(m, retain_acc):
        calls.append(retain_acc)
        return scores[len(calls) - 1]

    u = rum.get_unlearner("finetune")(epochs=6)
    ctx = planning_context(model, forget, retain)
    return _trial(ctx, u, ctx.model, ctx.forget, 0, score, guard), calls


@pytest.mark.parametrize("scores, ran, best", [
    ([3.0, 2.0, 1.0, 0.5, 0.4, 0.3], 6, 6),   # keeps improving: all epochs run
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 1),   # never improves after epoch 1: stops after 3
    ([2.0, 1.0, 3.0, 0.5, 4.0, 5.0], 6, 4),   # improves late: patience restarts at epoch 4
])
def test_auto_trials_stop_after_patience_epochs_without_improvement(small, scores, ran, best):
    from rum.planner.auto import AUTO_PATIENCE

    assert AUTO_PATIENCE == 2
    rec, calls = _scripted_trial(small, scores)
    assert calls == [None] * ran  # unguarded: the scorer measures the retain slice itself
    assert rec["epochs"] == best and rec["score"] == min(scores[:ran])


class _ScriptedGuard:
    """The part of the executor's RetainGuard a trial reads, with its verdicts scripted per epoch."""

    data = "a retain slice"

    def __init__(self, hits, stop_at=None):
        self.hits, self.stop_at, self.seen = hits, stop_at, []

    def start_step(self):
        self.seen.clear()

    def on_epoch_end(self, epoch, model):
        self.seen.append(epoch)
        self.hit = self.hits[epoch - 1]
        self.last = 0.5 + epoch / 100  # the accuracy it "measured" on its slice
        return epoch == self.stop_at

    def after_step(self, model):  # the verdict at the end: the trial reads the epochs' only
        return None


@pytest.mark.parametrize("scores, hits, stop_at, ran, best", [
    # epochs 1-2 dip below the guard's limit, then the step climbs back: kept at epoch 5,
    # and the dip's improving scores keep the trial going (patience counts every epoch)
    ([3.0, 2.0, 1.0, 0.5, 0.4, 0.6], [1, 1, 0, 0, 0, 0], None, 6, 5),
    # the best score is on an epoch the guard would undo: the best epoch it lets through wins
    ([3.0, 0.1, 1.0, 2.0, 2.5, 2.6], [0, 1, 0, 0, 0, 0], None, 4, 3),
    # the executor would stop the step at epoch 3 and undo it: nothing from there on counts
    ([3.0, 2.0, 0.1, 0.05, 0.01, 0.0], [0, 0, 1, 1, 1, 1], 3, 2, 2),
    # every epoch over the limit: nothing is kept
    ([3.0, 2.0, 1.0, 0.5, 0.4, 0.3], [1, 1, 1, 1, 1, 1], None, 6, 0),
])
def test_auto_trials_keep_only_epochs_the_retain_guard_lets_through(small, scores, hits, stop_at, ran, best):
    guard = _ScriptedGuard(hits, stop_at)
    rec, calls = _scripted_trial(small, scores, guard)
    assert len(calls) == ran
    assert rec["epochs"] == best
    if best:
        assert rec["score"] == scores[best - 1] and rec["state"] is not None
    else:
        assert rec["state"] is None
    # the guard sees every epoch that ran, scored or not, as in the executor
    assert len(guard.seen) == (stop_at or len(calls))
    # each score reuses the retain accuracy the guard measured after that epoch
    assert calls == [0.5 + e / 100 for e in range(1, len(calls) + 1)]


def test_auto_with_capped_repair_epochs_keeps_the_cap_and_replays_to_its_model(digits):
    from rum.planner.auto import AUTO_REPAIR

    repair = [(name, {**params, "retain_per_epoch": 300}) for name, params in AUTO_REPAIR]
    res = rum.unlearn(digits.model, digits.forget, digits.retain, policy=Auto(repair=repair),
                      random_state=0)
    (step,) = [s for s in res.plan.steps if s.group == -1]  # the demo scenario keeps a repair
    assert step.params["retain_per_epoch"] == 300
    replay = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0)
    assert state_equal(replay.model, res.model)
    # each capped repair epoch takes 300 / 64 -> 5 optimizer steps, not a pass over the retain set
    assert res.steps[-1].iterations == 5 * step.params["epochs"]


def test_auto_searches_only_the_candidates_it_is_given(small):
    model, forget, retain = small
    res = rum.unlearn(model, forget, retain, random_state=0,
                      policy=Auto(candidates=["neggrad", ("finetune", {"epochs": 2})]))
    assert {s.unlearner for s in res.plan.steps if s.group != -1} <= {"neggrad", "finetune", "noop"}
    # candidates are the group candidates only: the repair is searched among the defaults
    from rum.planner.auto import AUTO_REPAIR

    assert {s.unlearner for s in res.plan.steps if s.group == -1} <= {n for n, _ in AUTO_REPAIR} | {"noop"}
    replay = rum.execute(res.plan, model, forget, retain, random_state=0)
    assert state_equal(replay.model, res.model)
    # the repair can be dropped, and set on its own
    res = rum.unlearn(model, forget, retain, random_state=0,
                      policy=Auto(candidates="neggrad", repair=[]))
    assert all(s.group != -1 or s.unlearner == "noop" for s in res.plan.steps)
    res = rum.unlearn(model, forget, retain, random_state=0,
                      policy=Auto(candidates="noop", repair=("neggrad", {"epochs": 1})))
    assert {s.unlearner for s in res.plan.steps} <= {"neggrad", "noop"}


def test_auto_keeps_the_candidate_with_the_lowest_search_score(digits):
    from rum._data import as_data
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    profile = rum.profile(digits.model, forget, retain, random_state=0)

    cands = (("random-label", {"epochs": 3}), ("neggrad", {"epochs": 3}), ("scrub", {"epochs": 2, "msteps": 2}))
    plan, _, _ = auto_search(profile, digits.model, forget, retain, candidates=cands, repair=())
    chosen = {s.group: s.unlearner for s in plan.steps}
    for g in {r.group for r in plan.search.trials}:
        rows = [r for r in plan.search.trials if r.group == g]
        assert [r.unlearner for r in rows] == ["random-label", "neggrad", "scrub"]
        best = min(rows, key=lambda r: r.score)
        # a group gets a step only when a candidate beat doing nothing, and then the best one
        if g in chosen:
            assert chosen[g] == best.unlearner
    assert chosen, "no candidate improved on doing nothing on the flipped labels"


def test_the_repair_keeps_the_first_candidate_that_improves_and_skips_the_rest(digits):
    """Repair candidates are tried in order: later ones are fallbacks, not rivals."""

    forget, retain = as_data(digits.forget), as_data(digits.retain)
    profile = rum.profile(digits.model, forget, retain, random_state=0)
    cands = (("random-label", {"epochs": 3}),)
    repair = ("noop", ("finetune", {"epochs": 2, "optimizer": "adam", "lr": 1e-3}),
              ("neggrad+", {"epochs": 2}))
    plan, _, _ = auto_search(profile, digits.model, forget, retain, candidates=cands, repair=repair)
    tried = [r.unlearner for r in plan.search.trials if r.group == -1]
    # doing nothing never beats doing nothing, so the fine-tune runs; it improves, so
    # NegGrad+ is never tried
    assert tried == ["noop", "finetune"]
    assert plan.steps[-1].group == -1 and plan.steps[-1].unlearner == "finetune"
    # the groups' candidates are still rivals: every one runs on every group
    plan, _, _ = auto_search(profile, digits.model, forget, retain, candidates=cands + repair[1:], repair=())
    for g in {r.group for r in plan.search.trials}:
        assert [r.unlearner for r in plan.search.trials if r.group == g] == [
            "random-label", "finetune", "neggrad+"]


def test_the_anchored_repair_is_skipped_when_no_group_step_was_kept(digits):
    """An anchor would hold the original model's predictions: the opposite of forgetting."""

    forget, retain = as_data(digits.forget), as_data(digits.retain)
    profile = rum.profile(digits.model, forget, retain, random_state=0)
    anchored = ("finetune", {"epochs": 2, "optimizer": "adam", "lr": 1e-3, "anchor": 1.0})
    plain = ("finetune", {"epochs": 2, "optimizer": "adam", "lr": 1e-3})

    def repair_rows(candidates):
        plan, _, _ = auto_search(profile, digits.model, forget, retain, candidates=candidates, repair=(anchored, plain))
        return plan, [r for r in plan.search.trials if r.group == -1]

    # doing nothing is never kept as a group step, so only the plain fine-tune is tried
    plan, rows = repair_rows(("noop",))
    assert [r.params["anchor"] for r in rows] == [0.0]
    assert all(s.group == -1 for s in plan.steps)
    # once relabelling is kept on the flipped labels, the anchored fine-tune runs first
    plan, rows = repair_rows((("random-label", {"epochs": 3}),))
    assert any(s.group != -1 for s in plan.steps)
    assert rows[0].params["anchor"] == 1.0


@pytest.mark.parametrize("bad, match", [
    ({"candidates": []}, r"candidates is empty: .*\['random-label', 'scrub'\]"),
    ({"repair": "nope"}, r"repair\[0\]"),
    ({"candidates": ["random-label", "no-such-unlearner"]}, r"candidates\[1\]"),
    ({"candidates": [("scrub", {"epochs": -1})]}, r"candidates\[0\]: .*epochs"),
    ({"budget": 0}, r"'budget' parameter of Auto"),
    ({"target": "neighbours"}, r"Did you mean 'neighbors'"),
])
def test_auto_candidates_are_checked_before_any_work(small, bad, match, monkeypatch):
    import rum._api

    model, forget, retain = small

    def no_profiling(*a, **k):
        raise AssertionError("profiled before checking unlearners")

    monkeypatch.setattr(rum._api, "_profile_data", no_profiling)
    with pytest.raises((rum.exceptions.InvalidParameterError, rum.exceptions.UnknownNameError), match=match):
        rum.unlearn(model, forget, retain, policy=Auto(**bad))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1), st.integers(-1, 3)), max_size=30))
def test_calibration_error_matches_a_loop_over_groups(items):
    from rum.planner._targets import calibration_error

    correct = [float(c) for c, _, _ in items]
    targets = [t for _, t, _ in items]
    groups = [g for _, _, g in items]
    want = 0.0
    for g in set(groups):
        members = [i for i, gi in enumerate(groups) if gi == g]
        acc = sum(correct[i] for i in members) / len(members)
        tgt = sum(targets[i] for i in members) / len(members)
        want += len(members) * abs(acc - tgt) / len(items)
    assert calibration_error(correct, targets, groups) == pytest.approx(want, abs=1e-12)


def test_calibration_error_aims_at_the_groups_mean_target_not_at_each_item():
    from rum.planner._targets import calibration_error

    # ten items a retrained model gets right with probability 0.6
    targets, groups = np.full(10, 0.6), np.zeros(10, dtype=int)
    at_target = np.array([1] * 6 + [0] * 4)
    untouched = np.ones(10)
    assert calibration_error(at_target, targets, groups) == pytest.approx(0.0)
    assert calibration_error(untouched, targets, groups) == pytest.approx(0.4)
    # matching item by item would rank them the other way round (0.48 against 0.4)
    assert np.abs(at_target - targets).mean() > np.abs(untouched - targets).mean()


def test_the_search_score_is_group_calibration_plus_retain_accuracy_lost():
    from rum.planner._targets import calibration_error
    from rum.planner.auto import _Scorer

    # a linear model over one-hot inputs predicts a chosen class for every item
    n = 8

    def predicting(pred):
        m = torch.nn.Linear(n, 2, bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.as_tensor(np.stack([pred == 0, pred == 1]).astype(np.float32)))
        return m

    pred = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    model = predicting(pred)
    X = torch.eye(n)
    y = torch.as_tensor([1, 1, 0, 0, 0, 1, 1, 1])  # forget labels: right on items 0, 1, 3, 4, 6
    targets = np.array([0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 0.2, 0.2])
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    val_y = pred.copy()
    val_y[:2] = 1 - val_y[:2]  # the model is right on 6 of the 8 retain items...
    before = predicting(val_y)  # ...where the model before the search was right on all of them
    scorer = _Scorer(before, as_data((X, y)), targets, groups, as_data((X, torch.as_tensor(val_y))))
    correct = (pred == y.numpy()).astype(float)
    for done in ([0], [0, 1], [0, 1, 2]):
        mask = np.isin(groups, done)
        want = calibration_error(correct[mask], targets[mask], groups[mask]) + (1.0 - 6 / 8)
        assert scorer(model, done) == pytest.approx(want)
    # group 0: accuracy 2/3 against 0.5; group 1: 2/3 against 1.0; group 2: 1/2 against 0.2
    assert scorer(model, [0, 1, 2]) == pytest.approx((3 / 6 + 3 / 3 + 2 * 0.3) / 8 + 0.25)
    # a retain accuracy already measured (by the retain guard) is used as given
    assert scorer(model, [0, 1, 2], retain_acc=0.5) == pytest.approx((3 / 6 + 3 / 3 + 2 * 0.3) / 8 + 0.5)
    assert scorer(model, [0, 1, 2], retain_acc=1.0) == pytest.approx((3 / 6 + 3 / 3 + 2 * 0.3) / 8)


@pytest.mark.parametrize("guard", [0.02, None])
def test_auto_keeps_only_steps_the_retain_guard_lets_through(digits, guard):
    # a strict guard: relabelling costs this MLP more than 2 % of its retain accuracy, so
    # the executor would undo such a step; the search must not keep it, or rum.execute on the
    # returned plan would give another model than rum.unlearn returned
    res = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0,
                      retain_guard=guard)
    replay = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0,
                         retain_guard=guard)
    assert [s.status for s in replay.steps] == ["ok"] * len(res.plan)
    assert state_equal(replay.model, res.model)
    if guard is not None:  # with the guard off the replay above is already unguarded
        unguarded = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0,
                                retain_guard=None)
        assert state_equal(unguarded.model, res.model)


def test_plan_takes_retain_guard_for_search_policies_only(small):
    from rum.policies import Uniform

    model, forget, retain = small
    prof = rum.profile(model, forget, retain, random_state=0)
    with pytest.raises(rum.exceptions.InvalidParameterError, match="search policy's trials"):
        rum.plan(prof, Uniform("finetune"), retain_guard=0.2)
    with pytest.raises(rum.exceptions.InvalidParameterError, match="retain_guard"):
        rum.plan(prof, policy="auto", model=model, forget_set=forget, retain_set=retain,
                 retain_guard=2.0)
    # the default is the executor's, so other policies accept it as it is
    assert rum.plan(prof, Uniform("finetune"), retain_guard=0.5) == rum.plan(prof, Uniform("finetune"))
