from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rum
from rum.exceptions import InvalidParameterError
from rum.testing import tiny_task
from rum.unlearners.scrub import distillation_kl


def test_distillation_kl_matches_torch_kl_div():
    torch.manual_seed(0)
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    T = 3.0
    ref = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    torch.testing.assert_close(distillation_kl(s, t, T), ref)
    assert float(distillation_kl(t, t, T)) == pytest.approx(0.0, abs=1e-7)


def test_student_moves_away_on_forget_and_stays_on_retain():
    task = tiny_task()
    res = rum.unlearn(task.model, task.forget, task.retain, unlearner="scrub", random_state=0,
                      device="cpu", progress=False)
    Xf, Xr = torch.as_tensor(task.forget[0]), torch.as_tensor(task.retain[0])
    with torch.no_grad():
        kl_f = float(distillation_kl(res.model(Xf), task.model(Xf), 1.0))
        kl_r = float(distillation_kl(res.model(Xr), task.model(Xr), 1.0))
    assert kl_f > 5 * kl_r


def test_msteps_cannot_exceed_epochs():
    with pytest.raises(InvalidParameterError, match="'msteps'.*\\[0, 2\\]"):
        rum.get_unlearner("scrub")(epochs=2, msteps=3).validate_params()


def test_cached_teacher_logits_give_the_same_model_as_a_teacher_pass_per_batch(monkeypatch):
    import rum.unlearners._distillation as distillation

    task = tiny_task()
    kw = dict(unlearner="scrub", random_state=3, device="cpu", progress=False, retain_guard=None)
    cached = rum.unlearn(task.model, task.forget, task.retain, **kw).model
    monkeypatch.setattr(distillation, "TEACHER_CACHE_BYTES", 0)  # every set streams through the teacher
    assert distillation.frozen_logits(task.model, torch.zeros(2, task.forget[0].shape[1])) is None
    streamed = rum.unlearn(task.model, task.forget, task.retain, **kw).model
    for a, b in zip(cached.parameters(), streamed.parameters()):
        torch.testing.assert_close(a, b)
    moved = max(float((a - b).detach().abs().max()) for a, b in zip(cached.parameters(), task.model.parameters()))
    assert moved > 1e-3  # SCRUB did change the model, so the comparison means something
