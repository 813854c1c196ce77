"""lr="auto": step-size calibration, back-off after a rolled-back step, on_failure, advice."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

import rum
from rum._runner import BACKOFF, BACKOFF_FACTOR, StepResult, retry_hint
from rum._runtime.calibrate import PROBE_BOUND, Calibration, calibrate_lr
from rum.exceptions import DivergenceWarning, UnlearningFailedError
from rum.planner.auto import AUTO_CANDIDATES
from rum.planner.policies import RUM_MAPPING

from ..conftest import state_equal

#: The registered unlearners whose lr defaults to "auto".
CALIBRATED = [n for n in rum.list_unlearners()
              if rum.get_unlearner(n)().get_params().get("lr") == "auto"]


# -- the search rule, on probes with a known answer ------------------------------------------
def threshold_probe(largest_safe: float, drop: float = 0.3):
    """A probe whose retain cost jumps past the bound above ``largest_safe``."""
    calls = []

    def probe(lr):
        calls.append(lr)
        return (0.0 if lr <= largest_safe * (1 + 1e-9) else 0.9), drop

    return probe, calls


@pytest.mark.parametrize("safe", [1.0, 0.1, 0.01, 2e-3])
def test_the_largest_rate_of_the_grid_within_the_bound_is_chosen(safe):
    probe, calls = threshold_probe(safe)
    cal = calibrate_lr(probe, 1.0)
    grid = [3.0 ** -k for k in range(7)]
    # the obvious reference: the largest grid rate that does not exceed the safe one
    assert cal.chosen == pytest.approx(max(g for g in grid if g <= safe * (1 + 1e-9)))
    assert calls == [p.lr for p in cal.probes]
    assert all(p.passed == (p.retain_lost <= PROBE_BOUND) for p in cal.probes)


def test_a_step_that_leaves_the_forget_set_alone_is_probed_larger():
    probe, calls = threshold_probe(10.0, drop=0.0)
    assert calibrate_lr(probe, 1.0).chosen == pytest.approx(9.0)  # two steps up at most
    assert calls == [1.0, 3.0, 9.0]
    probe, _ = threshold_probe(5.0, drop=0.0)
    assert calibrate_lr(probe, 1.0).chosen == pytest.approx(3.0)
    assert calibrate_lr(probe, 1.0, up=False).chosen == 1.0
    probe, _ = threshold_probe(1.0, drop=0.0)  # the larger rate costs too much: keep the reference
    assert calibrate_lr(probe, 1.0).chosen == 1.0
    probe, _ = threshold_probe(10.0, drop=0.3)  # the reference already moves the forget set
    assert calibrate_lr(probe, 1.0).chosen == 1.0


def test_diverged_probes_fail_and_without_a_passing_probe_the_smallest_is_kept():
    cal = calibrate_lr(lambda lr: None, 0.01)
    assert [p.passed for p in cal.probes] == [False] * 7
    assert cal.chosen == pytest.approx(0.01 / 3 ** 6) and math.isnan(cal.probes[0].retain_lost)
    assert "no probed lr" in cal.reason
    assert Calibration.from_dict(cal.to_dict()).chosen == cal.chosen


# -- on real models ----------------------------------------------------------------------------
def _run(model, digits, **kw):
    return rum.unlearn(model, digits.forget, digits.retain, random_state=0, progress=False, **kw)


def test_adam_steps_are_calibrated_smaller_than_sgd_steps_on_the_same_model(digits, one_thread):
    sgd = _run(digits.model, digits, unlearner="random-label").steps[0]
    adam = _run(digits.model, digits, unlearner="random-label", optimizer="adam").steps[0]
    # Adam's per-weight steps are about lr each: its probe at the SGD reference costs more
    # than the bound, and the search goes down the grid; SGD keeps the reference
    assert sgd.lr == rum.get_unlearner("random-label").reference_lr
    assert adam.lr < sgd.lr
    first = adam.calibration["probes"][0]
    assert first["lr"] == sgd.lr and first["retain_lost"] > PROBE_BOUND and not first["passed"]
    assert adam.status == sgd.status == "ok" and adam.backoffs == 0


def test_calibration_is_recorded_deterministic_and_leaves_the_caller_alone(digits, one_thread):
    before = {k: v.clone() for k, v in digits.model.state_dict().items()}
    rng = torch.get_rng_state()
    a = _run(digits.model, digits, unlearner="scrub")
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in digits.model.state_dict().items())
    b = _run(digits.model, digits, unlearner="scrub")
    cal = a.steps[0].calibration
    assert cal["probes"] and cal["reason"] and 0 < cal["seconds"] < a.steps[0].seconds
    assert a.steps[0].lr == b.steps[0].lr and state_equal(a.model, b.model)
    # the step replays exactly from the chosen lr given explicitly (nothing else was drawn)
    chosen = Calibration.from_dict(cal).chosen
    explicit = _run(digits.model, digits, unlearner="scrub", lr=chosen)
    assert explicit.steps[0].calibration is None
    if a.steps[0].backoffs == 0:
        assert state_equal(explicit.model, a.model)


def test_an_explicit_lr_is_used_untouched(digits, one_thread):
    res = _run(digits.model, digits, unlearner="random-label", lr=0.004)
    assert res.steps[0].lr == 0.004 and res.steps[0].calibration is None
    assert res.plan.steps[0].params["lr"] == 0.004


def test_a_direct_call_of_the_hook_reads_auto_as_the_reference_lr():
    u = rum.get_unlearner("scrub")()
    assert u.lr == "auto" and u.resolved_lr() == u.reference_lr == 0.02
    assert rum.get_unlearner("scrub")(lr=0.5).resolved_lr() == 0.5


# -- back-off and on_failure ---------------------------------------------------------------
def test_back_off_recovers_a_step_that_a_too_large_explicit_lr_collapses(digits, one_thread):
    with pytest.warns(DivergenceWarning):  # without retries the step is undone
        plain = rum.execute(rum.plan(rum.profile(digits.model, digits.forget, digits.retain),
                                     rum.policies.Vanilla(("random-label", {"lr": 0.5}))),
                            digits.model, digits.forget, digits.retain, random_state=0,
                            progress=False)
    assert plain.steps[0].status == "collapsed"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        res = _run(digits.model, digits, unlearner="random-label", lr=0.5)
    step = res.steps[0]
    assert step.status == "ok" and 1 <= step.backoffs <= BACKOFF
    assert step.lr == pytest.approx(0.5 * BACKOFF_FACTOR ** step.backoffs)
    assert "random-label: undone with lr=0.5 (collapsed)" in step.message
    assert not state_equal(res.model, digits.model)
    # the result's plan holds the lr the step ran with, so it replays without retries
    assert res.plan.steps[0].params["lr"] == step.lr
    replay = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0,
                         progress=False)
    assert replay.steps[0].status == "ok" and replay.steps[0].backoffs == 0
    assert state_equal(replay.model, res.model)


def test_a_step_that_still_fails_says_plainly_its_items_were_not_unlearned(digits, one_thread):
    with pytest.warns(DivergenceWarning, match="were NOT unlearned"):
        res = _run(digits.model, digits, unlearner="random-label", lr=3.0)
    step = res.steps[0]
    assert step.status == "collapsed" and step.backoffs == BACKOFF and not step.unlearned
    assert step.message.startswith(f"The {len(digits.forget[1])} forget item(s) of step 0 "
                                   "were NOT unlearned")
    assert state_equal(res.model, digits.model)
    with pytest.raises(UnlearningFailedError, match="NOT unlearned"):
        _run(digits.model, digits, unlearner="random-label", lr=3.0, on_failure="raise")
    with pytest.raises(rum.exceptions.InvalidParameterError, match="on_failure"):
        _run(digits.model, digits, unlearner="random-label", on_failure="ignore")


# -- advice, records, the pipeline ------------------------------------------------------------
_OPTION = re.compile(r"\b([a-z_]+)=")


@pytest.mark.parametrize("name", rum.list_unlearners())
def test_every_hint_names_only_options_its_unlearner_takes(name):
    u = rum.get_unlearner(name)()
    params = u.get_params()
    for candidate in (u, u.clone(lr=0.02) if "lr" in params else u):
        hint = retry_hint(candidate)
        assert set(_OPTION.findall(hint)) <= set(params), (name, hint)
        for word in ("lr", "epochs", "optimizer"):
            if word not in params:
                assert word not in hint, (name, hint)


def test_step_results_read_old_records_and_round_trip_new_ones():
    old = {"step": 0, "group": -1, "unlearner": "scrub", "n_items": 3, "seconds": 1.0,
           "iterations": 2, "final_loss": 0.5, "status": "ok", "message": ""}
    s = StepResult.from_dict(old)
    assert s.lr is None and s.calibration is None and s.backoffs == 0
    cal = calibrate_lr(lambda lr: (0.0, 0.5), 0.02).to_dict()
    new = StepResult(**{**old, "lr": 0.02, "calibration": cal, "backoffs": 1})
    assert StepResult.from_dict(new.to_dict()) == new


def test_the_pipeline_keeps_its_constant_learning_rates():
    def lrs(spec):
        if isinstance(spec, list):
            return [x for s in spec for x in lrs(s)]
        return [] if spec is None else [spec[1].get("lr")]

    for level, spec in RUM_MAPPING.items():
        assert all(isinstance(lr, float) for lr in lrs(spec)), level
    assert all(isinstance(p.get("lr"), float) for _, p in AUTO_CANDIDATES)


@pytest.mark.parametrize("name", CALIBRATED)
def test_every_calibrated_unlearner_has_a_reference_lr(name):
    cls = rum.get_unlearner(name)
    assert cls.reference_lr is not None and cls.reference_lr > 0


def test_auto_records_the_calibrated_lr_so_its_plan_replays_exactly(digits, one_thread):
    from rum.policies import Auto

    # a candidate whose steps the plan keeps (a plan that loses retain accuracy is replaced by noop)
    policy = Auto(candidates=[("neggrad+", {"epochs": 2})], repair=[], target="neighbors")
    res = rum.unlearn(digits.model, digits.forget, digits.retain, policy=policy, random_state=0,
                      progress=False)
    lrs = [s.params["lr"] for s in res.plan.steps]
    assert lrs and all(isinstance(lr, float) for lr in lrs)  # not "auto": what the trial ran
    replay = rum.execute(res.plan, digits.model, digits.forget, digits.retain, random_state=0,
                         progress=False)
    assert state_equal(replay.model, res.model)
