"""Forget scenarios the planner recognises: a forget set the model already treats as held
out (doing nothing is the plan), and a whole class (it is taken out of the output layer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import IncompatibleDataError, InvalidParameterError
from rum.profiler import ForgetSetCheck
from rum.profiler._check import check_forget_set, label_mix_p

from .conftest import accuracy, state_equal


@pytest.fixture(scope="module")
def blobs():
    """Three well separated blobs and an MLP that classifies them all: nothing is memorised."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=600, centers=3, n_features=5, cluster_std=1.0, random_state=0)
    X = X.astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    rum.fit(model, (X, y), epochs=20, lr=1e-2, optimizer="adam", device="cpu", random_state=0)
    return model, X, y


@pytest.mark.parametrize("policy", ["rum", "auto"])
def test_a_random_sample_the_model_generalises_on_keeps_the_model(blobs, policy):
    model, X, y = blobs
    assert accuracy(model, (X, y)) == 1.0
    idx = np.random.default_rng(0).choice(len(y), 30, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), idx)
    res = rum.unlearn(model, (X[idx], y[idx]), (X[keep], y[keep]), policy=policy,
                      random_state=0, progress=False)
    assert res.profile.check.kind == "like-held-out"
    assert [s.unlearner for s in res.plan.steps] == ["noop"]
    assert state_equal(res.model, model)  # bit-identical: the model is kept
    assert "the model is kept" in res.plan.reason and "why this plan" in str(res)
    assert rum.Plan.from_dict(res.plan.to_dict()).reason == res.plan.reason


def test_a_memorised_forget_set_is_unlearned():
    from rum.demo import digits_scenario

    sc = digits_scenario(seed=0)  # mislabeled items the model memorised, and ordinary ones
    res = rum.unlearn(sc.model, sc.forget, sc.retain, random_state=0, progress=False)
    check = res.profile.check
    assert check.kind == "to-unlearn" and check.gap > check.tolerance
    assert not state_equal(res.model, sc.model) and res.plan.reason == ""


@pytest.mark.parametrize("policy", ["rum", "auto"])
def test_a_whole_class_is_recognised_and_never_predicted_again(policy):
    from rum.demo import digits_scenario

    sc = digits_scenario(seed=0)
    X = np.concatenate([sc.forget[0], sc.retain[0]])
    y = np.concatenate([sc.forget[1], sc.retain[1]])
    c = 3
    forget, retain = (X[y == c], y[y == c]), (X[y != c], y[y != c])
    res = rum.unlearn(sc.model, forget, retain, policy=policy, random_state=0, progress=False)
    check = res.profile.check
    assert check.kind == "class-wise" and check.classes == (c,)
    assert check.class_items == len(forget[1]) and "class-wise" in res.plan.reason
    assert [s.unlearner for s in res.plan.steps] == ["forget-class"]
    with torch.no_grad():
        pred = res.model(torch.as_tensor(forget[0])).argmax(1)
        pred_retain = res.model(torch.as_tensor(retain[0])).argmax(1)
    assert not (pred == c).any()  # the class is never predicted
    assert not (pred_retain == c).any()
    # the other classes keep their accuracy (an item the original put in class c can only
    # move to another class, so retain accuracy cannot fall)
    assert accuracy(res.model, retain) >= accuracy(sc.model, retain)
    assert res.timings["total"] < 5.0


@pytest.mark.parametrize("policy", ["rum", "auto"])
def test_a_whole_class_on_a_model_without_an_output_bias_gets_the_usual_plan_and_a_warning(policy):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)[:1000]
    y = y[:1000]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10, bias=False))
    net = rum.fit(net, (X, y), epochs=20, device="cpu", random_state=0)
    forget, retain = (X[y == 3], y[y == 3]), (X[y != 3], y[y != 3])
    with pytest.warns(rum.exceptions.RumWarning, match=r"class\(es\) \[3\].*no output layer"):
        res = rum.unlearn(net, forget, retain, policy=policy, random_state=0, progress=False)
    assert "forget-class" not in [s.unlearner for s in res.plan.steps]
    assert accuracy(res.model, forget) < accuracy(net, forget) - 0.5  # the class is unlearned


def test_a_class_with_other_items_gets_the_class_step_and_the_groups():
    from rum.demo import digits_scenario

    sc = digits_scenario(seed=0)
    X = np.concatenate([sc.forget[0], sc.retain[0]])
    y = np.concatenate([sc.forget[1], sc.retain[1]])
    extra = np.flatnonzero(y != 3)[:20]
    sel = np.zeros(len(y), bool)
    sel[y == 3] = True
    sel[extra] = True
    res = rum.unlearn(sc.model, (X[sel], y[sel]), (X[~sel], y[~sel]), random_state=0,
                      progress=False)
    steps = res.plan.steps
    assert steps[0].unlearner == "forget-class" and len(steps) > 1
    class_items = set(steps[0].indices)
    assert all(not (set(s.indices) & class_items) for s in steps[1:])
    assert set().union(*(s.indices for s in steps)) == set(range(int(sel.sum())))


def test_check_tells_the_kinds_apart():
    y = np.repeat([0, 1, 2], 10)
    ones = np.ones(30)
    # a whole class
    c = check_forget_set(y[:10], ones[:10], [0, 40, 40])
    assert c.kind == "class-wise" and c.classes == (0,) and c.class_positions == tuple(range(10))
    # nearly all of it (90 %) still counts; 80 % does not
    assert check_forget_set(y[:10], ones[:10], [1, 40, 40]).kind == "class-wise"
    assert check_forget_set(y[:10], ones[:10], [3, 40, 40], np.ones(10)).kind != "class-wise"
    # a forget set that is most of the data is not class-wise (a small retain sample)
    assert check_forget_set(y, ones, [1, 1, 1], np.ones(30)).kind != "class-wise"
    # like held-out only within the tolerance
    assert check_forget_set(y, ones, [40, 40, 40], np.full(30, 0.985)).keep_model
    assert not check_forget_set(y, ones, [40, 40, 40], np.full(30, 0.9)).keep_model
    # a sub-population (one class, part of it) is never "like held-out", whatever the estimate
    sub = check_forget_set(np.zeros(15, int), np.ones(15), [40, 40, 40], np.ones(15))
    assert sub.kind == "to-unlearn" and "sub-population" in sub.reason
    # no retain set: unchecked
    assert check_forget_set(y, ones).kind == "unchecked"


def test_check_with_a_reference_estimate_and_json():
    c = ForgetSetCheck("like-held-out", 100, 1.0, 0.995, 0.5)
    assert c.with_estimate(0.9, "reference").kind == "to-unlearn"
    assert c.with_estimate(0.99, "reference").keep_model
    assert "short retrain" in c.with_estimate(0.99, "reference").reason
    assert ForgetSetCheck.from_dict(c.to_dict()) == c


def test_label_mix_against_a_reference_test():
    from scipy.stats import chisquare

    f, r = np.array([12, 5, 9]), np.array([300, 250, 310])
    expected = f.sum() * r / r.sum()
    assert label_mix_p(f, r) == pytest.approx(chisquare(f, expected).pvalue)


def test_profile_keeps_its_check_through_json(small):
    model, forget, retain = small
    p = rum.profile(model, forget, retain, random_state=0)
    assert p.check is not None and p.check.n_forget == 20
    assert rum.Profile.from_dict(p.to_dict()) == p
    assert "forget set:" in str(p)


def test_forget_class_validates_and_needs_an_output_bias():
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with pytest.raises(InvalidParameterError, match="classes"):
        rum.unlearn(model, (X[:20], y[:20]), (X[20:], y[20:]), unlearner="forget-class",
                    classes=[5], progress=False)
    no_bias = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False))
    with pytest.raises(IncompatibleDataError, match="bias"):
        rum.unlearn(no_bias, (X[:20], y[:20]), (X[20:], y[20:]), unlearner="forget-class",
                    progress=False)
    res = rum.unlearn(model, (X[:20], y[:20]), (X[20:], y[20:]), unlearner="forget-class",
                      progress=False)
    with torch.no_grad():
        assert not (res.model(torch.as_tensor(X)).argmax(1) == 0).any()
    # a forget set holding no class the retain set lacks would change nothing: an error
    mixed, rest = np.r_[0:10, 20:30], np.r_[10:20, 30:40]
    with pytest.raises(rum.exceptions.InvalidDataError, match="no class to take out.*classes="):
        rum.unlearn(model, (X[mixed], y[mixed]), (X[rest], y[rest]), unlearner="forget-class",
                    progress=False)


def test_a_plan_that_wrecks_the_retain_set_is_not_kept():
    from rum._api import MAX_RETAIN_LOSS
    from rum.demo import digits_scenario
    from rum.policies import RUM

    sc = digits_scenario(seed=0)
    wreck = RUM({"low": ("neggrad", {"epochs": 5, "lr": 1.0}), "medium": "noop",
                 "high": "noop", "repair": None})
    res = rum.unlearn(sc.model, sc.forget, sc.retain, policy=wreck, retain_guard=None,
                      random_state=0, progress=False)
    assert state_equal(res.model, sc.model)  # the original, bit for bit
    assert [s.unlearner for s in res.plan.steps] == ["noop"]
    assert "neggrad" in res.plan.reason and "lost" in res.plan.reason
    assert res.metrics["retain_acc_after"] == res.metrics["retain_acc_before"]
    # the same steps without the policy's check: they do lose that much
    ran = rum.execute(rum.plan(res.profile, wreck, retain_set=sc.retain), sc.model, sc.forget,
                      sc.retain, retain_guard=None, random_state=0, progress=False)
    assert ran.metrics["retain_acc_before"] - ran.metrics["retain_acc_after"] > MAX_RETAIN_LOSS
