"""auto's target: a short retrain that never saw the forget set, rescaled; or neighbour agreement."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import rum
from rum._data import as_data
from rum.demo import RECIPE
from rum.planner._targets import (
    AUTO_TARGET,
    AUTO_TARGET_MIN_PROGRESS,
    AUTO_TARGET_MIN_STEPS,
    calibration_error,
    holdout_indices,
    neighbour_targets,
    parse_target,
    reference_targets,
    target_accuracy,
)
from rum.policies import Auto

from ..conftest import accuracy, auto_search, state_equal

CPU = torch.device("cpu")


def _val_split(retain, n_val=150, seed=0):
    return np.sort(np.random.default_rng(seed).choice(len(retain), n_val, replace=False))


def test_a_full_length_reference_agrees_with_the_retrained_model(digits, oracle):
    """With the original recipe the reference is a retrain: its targets say what the oracle gets right."""
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    val_idx = _val_split(retain)
    full = rum.get_unlearner("retrain")(**RECIPE)
    targets, info = reference_targets(full, digits.model, forget, retain, val_idx, device=CPU,
                                      seed=0, n_classes=10)
    with torch.no_grad():
        oracle_right = (oracle(forget.X).argmax(1) == forget.y).numpy()
    ref_right = targets > 0
    assert (ref_right == oracle_right).mean() > 0.9  # two full retrains agree item by item
    flipped = np.asarray(digits.mislabeled)
    assert targets[flipped].mean() < 0.1 and targets[~flipped].mean() > 0.85
    # the scale is the slice's neighbour agreement over the reference's accuracy on the slice
    keep = np.setdiff1d(np.arange(len(retain)), val_idx)
    expected = neighbour_targets(digits.model, retain.subset(val_idx), retain.subset(keep)).mean()
    assert info["expected"] == pytest.approx(expected)
    assert info["scale"] == pytest.approx(expected / info["reference_accuracy"])
    assert set(np.round(np.unique(targets), 12)) <= {0.0, round(info["scale"], 12)}


def test_the_short_default_reference_is_closer_to_the_oracle_than_neighbours(digits, oracle):
    """On the memorised (flipped) items the neighbour target is too optimistic; the reference is not."""
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    targets, info = reference_targets(parse_target(None), digits.model, forget, retain,
                                      _val_split(retain), device=CPU, seed=0, n_classes=10)
    assert info["reference_accuracy"] < 0.97  # two epochs: short of a full model...
    assert info["scale"] > 1.0                # ...which the scale makes good
    neighbours = neighbour_targets(digits.model, forget, retain)
    flipped = np.asarray(digits.mislabeled)
    for part in (flipped, ~flipped):
        truth = accuracy(oracle, (forget.X[part].numpy(), forget.y[part].numpy()))
        assert abs(min(targets[part].mean(), 1.0) - truth) < 0.1
    truth = accuracy(oracle, digits.forget)
    assert abs(targets.mean() - truth) < abs(neighbours.mean() - truth)


def test_a_reference_far_from_a_trained_model_is_abandoned_for_neighbours(digits):
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    weak = rum.get_unlearner("retrain")(epochs=3, lr=1e-7)  # stays near chance
    targets, info = reference_targets(weak, digits.model, forget, retain, _val_split(retain),
                                      device=CPU, seed=0, n_classes=10)
    assert targets is None and "scale" not in info
    assert info["epochs"] == 1  # stopped after its first epoch, not three
    assert info["reference_accuracy"] - 0.1 < AUTO_TARGET_MIN_PROGRESS * (info["expected"] - 0.1)
    prof = rum.profile(digits.model, forget, retain, random_state=0)
    plan, _, search = auto_search(prof, digits.model, forget, retain, candidates=("noop",),
                                  repair=(), target=weak)
    assert plan.search.target == "neighbors" and plan.search.reference["epochs"] == 1
    np.testing.assert_allclose(search.targets, 1.0 - prof.memorization)


def test_the_default_reference_takes_enough_steps_an_epoch_on_small_data():
    for n_retain, batch in [(40, 8), (360, 32), (1132, 64), (100_000, 64)]:
        ref = parse_target(None, n_retain=n_retain)
        assert ref.batch_size == batch
        n_train = n_retain - len(holdout_indices(n_retain, seed=0))
        if batch > 8:  # above the floor an epoch takes at least the minimum number of steps
            assert n_train // batch >= AUTO_TARGET_MIN_STEPS
    assert parse_target(None).batch_size == 64  # no size given: the recipe as written
    # a recipe the user gives is used as given
    assert parse_target(("retrain", {"epochs": 2}), n_retain=360).batch_size == 64


@pytest.fixture(scope="module")
def cancer():
    """breast-cancer (400 items of it) and an MLP trained on 360: a data set of a few hundred."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    keep = np.random.default_rng(0).permutation(len(y))[:400]
    X, y = ((X - X.mean(0)) / X.std(0)).astype(np.float32)[keep], y[keep]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    rum.fit(model, (X[40:], y[40:]), epochs=150, batch_size=32, random_state=0)
    return model, as_data((X[:40], y[:40])), as_data((X[40:], y[40:]))


def test_on_small_data_the_default_reference_is_not_judged_on_a_few_steps(cancer):
    """Batch 64 gives 6 steps an epoch on 324 items: too few to judge the reference after one."""
    model, forget, retain = cancer
    kept = {}
    for name, ref in [("sized", parse_target(None, model, n_retain=len(retain))),
                      ("batch 64", parse_target(AUTO_TARGET, model))]:
        kept[name] = []
        for seed in range(5):
            targets, info = reference_targets(ref, model, forget, retain,
                                              holdout_indices(len(retain), seed), device=CPU,
                                              seed=seed, n_classes=2)
            kept[name].append(targets is not None)
            if targets is not None:  # well past the bar after its two epochs
                assert info["epochs"] == 2 and info["reference_accuracy"] > 0.8
    assert all(kept["sized"])
    assert not all(kept["batch 64"])


def test_calibration_error_caps_a_group_target_at_one():
    # a rescaled target above 1 asks for every item right, no more
    assert calibration_error([1, 1, 1], [1.4, 1.4, 0.0], [0, 0, 0]) == pytest.approx(1 - 2.8 / 3)
    assert calibration_error([1, 1], [1.4, 1.4], [0, 0]) == 0.0


def test_auto_with_neighbour_targets_uses_the_profile_scores(digits):
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    prof = rum.profile(digits.model, forget, retain, random_state=0)
    plan, _, search = auto_search(prof, digits.model, forget, retain, candidates=("noop",),
                                  repair=(), target="neighbors")
    assert plan.search.target == "neighbors"
    np.testing.assert_allclose(search.targets, 1.0 - prof.memorization)


def test_target_accuracy_is_what_the_search_aims_at():
    assert target_accuracy([1.5, 1.5, 0.0, 0.5], [0, 0, 1, 1]) == pytest.approx(0.625)
    assert calibration_error([1, 1, 0, 0], [1.5, 1.5, 0.0, 1.0], [0, 0, 1, 1]) == pytest.approx(0.25)
    # a model at each group's (capped) mean target has no calibration error
    assert calibration_error([1, 1, 1, 0], [1.5, 1.5, 0.0, 1.0], [0, 0, 1, 1]) == 0.0


def test_auto_result_reports_the_forget_accuracy_it_aimed_at(digits, oracle):
    res = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0)
    aimed = res.metrics["forget_acc_target"]
    # the oracle-free aim is close to what the retrained model gets right...
    assert abs(aimed - accuracy(oracle, digits.forget)) < 0.1
    # ...and the search lands near it
    assert abs(res.metrics["forget_acc_after"] - aimed) < 0.1
    assert "forget_acc_target=" in str(res)
    assert rum.UnlearnResult.from_dict(res.to_dict()).metrics["forget_acc_target"] == aimed


def test_auto_default_target_is_the_short_retrain_and_replays(small):
    model, forget, retain = small
    res = rum.unlearn(model, forget, retain, policy="auto", random_state=0)
    default = rum.unlearn(model, forget, retain, policy=Auto(target=AUTO_TARGET), random_state=0)
    assert res.plan.steps == default.plan.steps and state_equal(res.model, default.model)
    replay = rum.execute(res.plan, model, forget, retain, random_state=0)
    assert state_equal(replay.model, res.model)
    prof = rum.profile(model, forget, retain, random_state=0)
    plan = rum.plan(prof, policy="auto", model=model, forget_set=forget, retain_set=retain,
                    random_state=0, device="cpu")
    assert plan.steps == res.plan.steps


def test_auto_target_choices_change_the_search(digits):
    forget, retain = as_data(digits.forget), as_data(digits.retain)
    prof = rum.profile(digits.model, forget, retain, random_state=0)
    reports, targets = {}, {}
    for name in ("neighbors", None, ("retrain", {"epochs": 1, "lr": 3e-3})):
        plan, _, search = auto_search(prof, digits.model, forget, retain, candidates=("noop",),
                                      repair=(), target=name)
        reports[str(name)], targets[str(name)] = plan.search, search.targets
    assert reports["neighbors"].target == "neighbors"
    assert reports["None"].target == "Retrain(epochs=2)"  # the demo's retain set keeps batch 64
    assert reports[str(("retrain", {"epochs": 1, "lr": 3e-3}))].target == "Retrain(epochs=1, lr=0.003)"
    assert not np.allclose(targets["None"], targets["neighbors"])


@pytest.mark.parametrize("target, error, match", [
    ("neighbours", rum.exceptions.UnknownNameError, "Did you mean 'neighbors'"),
    ("retrian", rum.exceptions.UnknownNameError, "Did you mean 'retrain'"),
    ("finetune", rum.exceptions.InvalidParameterError, "not exact"),
    (("retrain", {"epochs": 0}), rum.exceptions.InvalidParameterError, "target: .*'epochs'"),
    (("retrain", {"epoch": 3}), rum.exceptions.UnknownOptionError, "Did you mean 'epochs'"),
    (3, rum.exceptions.InvalidParameterError, "target must be"),
])
def test_bad_targets_fail_by_name_before_any_work(small, target, error, match):
    model, forget, retain = small
    before = copy.deepcopy(model.state_dict())
    X_before = forget[0].copy()
    with pytest.raises(error, match=match):
        rum.unlearn(model, forget, retain, policy=Auto(target=target))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    np.testing.assert_array_equal(forget[0], X_before)


def test_target_belongs_to_the_auto_policy_only(small):
    model, forget, retain = small
    with pytest.raises(rum.exceptions.UnknownOptionError, match="'target'"):
        rum.unlearn(model, forget, retain, target="neighbors")
    with pytest.raises(rum.exceptions.UnknownOptionError, match="'target'"):
        rum.policies.make_policy("uniform", {"unlearner": "finetune", "target": "neighbors"})


class _Scaled(torch.nn.Module):
    """A layer with parameters of its own and no ``reset_parameters``."""

    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n))

    def forward(self, x):
        return x * self.w


def test_models_retrain_cannot_reinitialise_fall_back_or_fail_clearly(small):
    model, forget, retain = small
    odd = torch.nn.Sequential(_Scaled(5), *copy.deepcopy(model))
    assert parse_target(None, odd) is None  # the default falls back to neighbour targets
    res = rum.unlearn(odd, forget, retain, policy="auto", random_state=0)
    assert res.plan.policy == "auto"
    with pytest.raises(rum.exceptions.InvalidParameterError, match=r"reset_parameters\): 0\..*init_fn"):
        rum.unlearn(odd, forget, retain, policy=Auto(target=("retrain", {"epochs": 1})))
    ok = parse_target(("retrain", {"epochs": 1, "init_fn": lambda m: None}), odd)
    assert ok is not None
