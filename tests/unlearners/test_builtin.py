"""Each built-in unlearner moves a real memorised model towards the retrain oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum.demo import RECIPE
from rum.exceptions import InvalidParameterError
from rum.unlearners._training import random_wrong_labels, reinitialise

from ..conftest import accuracy, state_equal


@pytest.fixture(scope="module")
def noop_scores(digits):
    return accuracy(digits.model, digits.forget), accuracy(digits.model, digits.test)


@pytest.mark.parametrize(
    "name, params",
    [("finetune", {"epochs": 10}), ("neggrad", {}), ("neggrad+", {}), ("random-label", {})],
)
def test_forget_accuracy_moves_towards_the_oracle_without_wrecking_test_accuracy(
    digits, oracle, noop_scores, name, params
):
    noop_forget, noop_test = noop_scores
    target = accuracy(oracle, digits.forget)
    # the original model has memorised the flipped labels; the oracle has not
    assert noop_forget > 0.95 and target < 0.7
    res = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner=name,
                      random_state=0, **params)
    got = accuracy(res.model, digits.forget)
    assert abs(got - target) < abs(noop_forget - target) - 0.03, (name, got, target)
    assert accuracy(res.model, digits.test) > noop_test - 0.08, name


def test_neggrad_raises_the_forget_loss(digits):
    res = rum.unlearn(digits.model, digits.forget, None, unlearner="neggrad", random_state=0)
    X, y = (torch.as_tensor(a) for a in digits.forget)
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(res.model(X), y) > 2 * ce(digits.model(X), y)


def test_random_label_forgets_the_flipped_labels_and_keeps_retain(digits):
    res = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="random-label",
                      random_state=0)
    X, y = digits.forget
    flipped = digits.mislabeled
    assert accuracy(res.model, (X[flipped], y[flipped])) < 0.6
    assert accuracy(res.model, digits.retain) > 0.95


def test_random_wrong_labels_are_always_wrong_and_cover_other_classes():
    y = torch.arange(10).repeat(200)
    new = random_wrong_labels(y, 10, torch.Generator().manual_seed(0))
    assert not (new == y).any()
    counts = torch.bincount(new[y == 3], minlength=10)
    assert counts[3] == 0 and (counts[np.r_[0:3, 4:10]] > 0).all()


def test_retrain_matches_its_oracle_and_is_the_reference(digits, oracle):
    # the oracle fixture is a retrain with random_state=1: the same call gives the same weights
    again = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="retrain",
                        random_state=1, **RECIPE)
    assert state_equal(again.model, oracle)
    X, y = digits.forget
    flipped = digits.mislabeled
    # a model that never saw the flipped items does not predict their wrong labels
    assert accuracy(oracle, (X[flipped], y[flipped])) < 0.15
    assert accuracy(oracle, digits.test) > 0.93


def test_retrain_uses_a_user_recipe_on_freshly_initialised_weights(digits):
    seen = {}

    def train_fn(model, retain, ctx):
        seen["n"] = len(retain)
        seen["same_as_original"] = state_equal(model, digits.model)
        seen["device"] = ctx.device
        return rum.training.fit_loop(model, retain, ctx, epochs=2, lr=1e-3, batch_size=64)

    res = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="retrain",
                      train_fn=train_fn, random_state=0)
    assert seen == {"n": len(digits.retain[1]), "same_as_original": False,
                    "device": torch.device("cpu")}
    assert res.steps[0].iterations == 2 * int(np.ceil(seen["n"] / 64))


def test_retrain_refuses_modules_it_cannot_reinitialise(small):
    model, forget, retain = small

    class Scaled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.inner(x) * self.scale

    wrapped = Scaled(model)
    with pytest.raises(InvalidParameterError, match="init_fn"):
        rum.unlearn(wrapped, forget, retain, unlearner="retrain", epochs=1)
    res = rum.unlearn(wrapped, forget, retain, unlearner="retrain", epochs=1,
                      init_fn=lambda m: reinitialise(m.inner))
    assert res.steps[0].status == "ok"
