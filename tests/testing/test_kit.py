"""The conformance kit catches each kind of non-conforming unlearner, and passes good ones."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import UnknownNameError
from rum.testing import (
    ConformanceError,
    all_checks,
    check_unlearner,
    parametrize_with_checks,
    tiny_task,
)
from rum.testing.checks import hook_state
from rum.unlearners import Interval


class _Base(rum.Unlearner):
    """A well-behaved unlearner (a few retain fine-tuning steps) the bad ones derive from."""

    tags = rum.UnlearnerTags(requires_retain=True, source="test double")
    _parameter_constraints = {"lr": [Interval(float, 0, None, closed="neither")]}

    def __init__(self, lr: float = 0.05):
        self.lr = lr

    def _unlearn(self, model, forget, retain, ctx):
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        model.train()
        for x, y in retain.batches(64, shuffle=True, generator=ctx.generator):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            ctx.step(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model


class Mutates(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        retain.X.mul_(0.5)
        return model


class SeedsNumpy(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        np.random.seed(0)
        return model


class Counts(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        self.lr = self.lr / 2
        return model


class Unseeded(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        noise = np.random.default_rng().normal(size=1)[0]
        with torch.no_grad():
            next(model.parameters()).add_(float(noise))
        return model


class LeavesHook(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        model.register_forward_hook(lambda m, i, o: None)
        return model


class NoFinally(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        handles = [p.register_hook(lambda g: g) for p in model.parameters()]
        out = super()._unlearn(model, forget, retain, ctx)  # may raise
        for h in handles:
            h.remove()
        return out


class ToFloat32(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        return model.float()


class Loose(_Base):
    def __init__(self, lr: float = 0.05, steps: int = 1):
        self.lr = lr
        self.steps = steps


class Derived(_Base):
    def __init__(self, lr: float = 0.05):
        self.lr = lr
        self.scaled = lr * 2


class _Epochs(_Base):
    """Epochs of retain fine-tuning at a learning rate that decays over ``epochs``."""

    _parameter_constraints = {**_Base._parameter_constraints, "epochs": [Interval(int, 1, None)]}

    def __init__(self, lr: float = 0.05, epochs: int = 3):
        self.lr = lr
        self.epochs = epochs

    def _unlearn(self, model, forget, retain, ctx):
        opt = torch.optim.SGD(model.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=self.epochs)
        for _ in range(self.epochs):
            for x, y in retain.batches(64, shuffle=True, generator=ctx.generator):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                ctx.step(loss)
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            if self._end_epoch(ctx, model):
                break
        return model

    def _end_epoch(self, ctx, model):
        return ctx.end_epoch(model)

    def truncated(self, epochs):
        return None  # the schedule spans all epochs: a shorter run is another run


class ClaimsReplay(_Epochs):
    """Says a shorter run replays its first epochs, but the schedule depends on ``epochs``."""

    def truncated(self, epochs):
        return self.clone(epochs=epochs)


class SkipsEpochHook(_Epochs):
    """Never tells its context that an epoch ended."""

    def _end_epoch(self, ctx, model):
        return False


class Lies(_Base):
    tags = rum.UnlearnerTags(requires_retain=False, source="test double")


class UnknownScenario(_Base):
    tags = rum.UnlearnerTags(requires_retain=True, source="test double", suits=("classwise",))


class Idle(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        return model


class Wrecks(_Base):
    def _unlearn(self, model, forget, retain, ctx):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=ctx.generator))
        return model


def _failed(u, check):
    with pytest.raises(ConformanceError) as info:
        check_unlearner(u, checks=[check])
    assert check in info.value.failures
    return info.value.failures[check]


def test_good_double_passes_mechanical_checks():
    names = [c.__name__ for c in all_checks() if c.__name__ != "check_behaviour"]
    result = check_unlearner(_Base(), checks=names)
    assert set(result.values()) == {"passed"}


def test_mutating_retain_is_caught():
    msg = _failed(Mutates(), "check_inputs_not_mutated")
    assert "retain.X" in msg and "To comply" in msg


def test_seeding_global_numpy_is_caught():
    assert "numpy random state" in _failed(SeedsNumpy(), "check_inputs_not_mutated")


def test_changing_own_params_is_caught():
    assert "hyper-parameters changed" in _failed(Counts(), "check_inputs_not_mutated")


def test_unseeded_randomness_is_caught():
    assert "ctx.generator" in _failed(Unseeded(), "check_same_seed_same_weights")


def test_leftover_hook_is_caught():
    assert "normal run" in _failed(LeavesHook(), "check_no_hooks_left")


def test_hook_left_after_exception_is_caught():
    assert "after an exception" in _failed(NoFinally(), "check_no_hooks_left")


def test_hook_state_sees_parameter_hooks():
    model = tiny_task().model
    before = hook_state(model)
    h = next(model.parameters()).register_hook(lambda g: g)
    assert hook_state(model) != before
    h.remove()
    assert hook_state(model) == before


def test_dtype_change_is_caught():
    assert "float64" in _failed(ToFloat32(), "check_output_model")


def test_unconstrained_param_is_caught():
    assert "['steps']" in _failed(Loose(), "check_params_validated")


def test_attribute_set_in_init_is_caught():
    assert "scaled" in _failed(Derived(), "check_params_roundtrip")


def test_a_broken_epoch_contract_is_caught():
    """What the auto policy relies on: every epoch reported, and truncated runs that replay."""
    assert "reported epochs [] to the epoch hook" in _failed(SkipsEpochHook(), "check_epoch_hook")
    assert "truncated(2) did not replay" in _failed(ClaimsReplay(), "check_truncation_replays")
    # an honest unlearner that cannot replay (truncated returns None) passes both
    assert check_unlearner(_Epochs(), checks=["check_epoch_hook", "check_truncation_replays"]) == {
        "check_epoch_hook": "passed", "check_truncation_replays": "passed"}


def test_untruthful_requires_retain_is_caught():
    assert "requires_retain" in _failed(Lies(), "check_tags")


def test_an_unknown_scenario_in_suits_is_caught():
    msg = _failed(UnknownScenario(), "check_tags")
    assert "tags.suits is ('classwise',)" in msg and "class-wise, sub-class, random, mixed" in msg


def test_behaviour_catches_doing_nothing_and_wrecking():
    assert "forget accuracy" in _failed(Idle(), "check_behaviour")
    msg = _failed(Wrecks(), "check_behaviour")
    assert "forget accuracy" in msg or "test accuracy" in msg


def test_expected_failures_are_reported_not_raised():
    out = check_unlearner(
        Idle(), checks=["check_behaviour"], expected_failed_checks={"check_behaviour": "idle"}
    )
    assert out == {"check_behaviour": "xfail"}
    assert check_unlearner("noop", checks=["check_behaviour"]) == {"check_behaviour": "xfail"}


def test_unknown_check_name_suggests():
    with pytest.raises(UnknownNameError, match="check_tags"):
        check_unlearner("noop", checks=["check_tag"])


def test_parametrize_ids_and_xfail_marks():
    mark = parametrize_with_checks(["noop", "finetune"])
    params = mark.args[1]
    ids = [p.id for p in params]
    assert "noop-check_behaviour" in ids and "finetune-check_tags" in ids
    assert len(ids) == 2 * len(all_checks())
    noop_beh = params[ids.index("noop-check_behaviour")]
    assert [m.name for m in noop_beh.marks] == ["xfail"]
    assert params[ids.index("finetune-check_behaviour")].marks in ((), [])


@pytest.mark.slow  # a real process
def test_import_does_not_need_pytest():
    code = "import sys, rum.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tiny_task_is_memorised_and_copied():
    from rum.testing.fixtures import accuracy

    a, b = tiny_task(), tiny_task()
    assert a.model is not b.model and a.forget[0] is not b.forget[0]
    assert accuracy(a.model, a.forget) >= 0.9
    assert accuracy(a.oracle, a.forget) <= 0.1
