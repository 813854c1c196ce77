"""Metrics against hand-computed values, and rum.evaluate on a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import InvalidParameterError
from rum.metrics import accuracy_gap, tow, tow_mia
from rum.metrics.functional import predict_logits, skill_lost, true_label_confidence
from rum.metrics.mia import mia_score

from ..conftest import accuracy


def test_tow_by_hand():
    # (1 - |0.8 - 0.5|) * (1 - |0.99 - 1.0|) * (1 - |0.90 - 0.95|) = 0.7 * 0.99 * 0.95
    assert tow((0.8, 0.5), (0.99, 1.0), (0.90, 0.95)) == pytest.approx(0.7 * 0.99 * 0.95)
    assert tow((0.3, 0.3), (1, 1), (0.5, 0.5)) == 1.0
    assert tow((1.0, 0.0), (1, 1), (1, 1)) == 0.0


def test_tow_mia_by_hand():
    assert tow_mia((0.2, 0.6), (0.9, 1.0), (0.8, 0.8)) == pytest.approx(0.6 * 0.9 * 1.0)
    assert accuracy_gap(0.25, 0.75) == 0.5


def test_fractions_outside_0_1_are_rejected():
    with pytest.raises(InvalidParameterError, match="fraction in \\[0, 1\\]"):
        tow((80, 50), (1, 1), (1, 1))


def test_skill_lost_by_hand():
    # 0.9 above a floor of 0.1 is 0.8 of skill; falling to 0.5 loses 0.4 of it
    assert skill_lost(0.9, 0.5, 0.1) == pytest.approx(0.5)
    assert skill_lost(0.9, 0.1, 0.1) == pytest.approx(1.0)
    assert skill_lost(0.9, 0.9, 0.1) == 0.0
    assert skill_lost(0.8, 0.9, 0.6) == pytest.approx(-0.5)  # an improvement
    assert skill_lost(0.5, 0.2, 0.5) == 0.0  # nothing above the floor to lose
    with pytest.raises(InvalidParameterError, match="after must be a fraction"):
        skill_lost(0.9, 1.5, 0.1)


def test_true_label_confidence_by_hand():
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]])
    conf = true_label_confidence(logits, torch.tensor([1, 0]))
    np.testing.assert_allclose(conf, [0.5, 0.75], rtol=1e-6)


def test_mia_separates_confident_members_from_unconfident_non_members():
    rng = np.random.default_rng(1)
    members = rng.uniform(0.95, 1.0, 500)
    non_members = rng.uniform(0.2, 0.7, 500)
    assert mia_score(members, non_members, rng.uniform(0.96, 1.0, 50)) < 0.1
    assert mia_score(members, non_members, rng.uniform(0.2, 0.6, 50)) > 0.9
    half = np.r_[rng.uniform(0.96, 1.0, 25), rng.uniform(0.25, 0.6, 25)]
    assert mia_score(members, non_members, half) == pytest.approx(0.5, abs=0.05)
    assert np.isnan(mia_score(members, non_members, np.array([])))


def test_evaluate_matches_direct_computation_and_reference_of_itself(digits, oracle):
    rep = rum.evaluate(digits.model, forget_set=digits.forget, retain_set=digits.retain,
                       test_set=digits.test, reference=digits.model)
    assert rep.model.forget == pytest.approx(accuracy(digits.model, digits.forget))
    assert rep.model.test == pytest.approx(accuracy(digits.model, digits.test))
    assert rep.tow == 1.0 and rep.tow_mia == 1.0 and rep.gaps["forget"] == 0.0

    rep = rum.evaluate(digits.model, forget_set=digits.forget, retain_set=digits.retain,
                       test_set=digits.test, reference=oracle, name="original")
    fo, fr = accuracy(digits.model, digits.forget), accuracy(oracle, digits.forget)
    ro, rr = accuracy(digits.model, digits.retain), accuracy(oracle, digits.retain)
    to, tr = accuracy(digits.model, digits.test), accuracy(oracle, digits.test)
    assert rep.tow == pytest.approx((1 - abs(fo - fr)) * (1 - abs(ro - rr)) * (1 - abs(to - tr)))
    assert rep.tow < 0.6  # the original still remembers the flipped labels
    # the retrained model finds the forget items less member-like than the original does
    assert rep.reference.mia > rep.model.mia
    text = str(rep)
    assert "original" in text and "retrain (reference)" in text and "ToW-MIA" in text
    json.dumps(rep.to_dict())


def test_evaluate_accepts_an_unlearn_result_and_needs_no_reference(small):
    model, forget, retain = small
    res = rum.unlearn(model, forget, retain, unlearner="noop", random_state=0)
    rep = rum.evaluate(res, forget_set=forget, retain_set=retain, test_set=retain)
    assert rep.reference is None and rep.tow is None
    assert "retrain" not in str(rep)


def test_predict_logits_restores_train_mode():
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5))
    m.train()
    a = predict_logits(m, torch.ones(4, 3))
    b = predict_logits(m, torch.ones(4, 3))
    assert torch.equal(a, b)  # eval mode: dropout off
    assert m.training
