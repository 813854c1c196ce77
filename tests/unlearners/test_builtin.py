"""Each built-in unlearner moves a real memorised model towards the retrain oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum.demo import RECIPE
from rum.exceptions import InvalidParameterError
from rum.unlearners._training import random_wrong_labels, reinitialise
from rum.unlearners.scrub import distillation_kl

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


def _kl_on(data, start, model) -> float:
    """KL(start || model) on the rows of ``data``, averaged."""
    X = torch.as_tensor(data[0])
    with torch.no_grad():
        return float(distillation_kl(model(X), start(X), 1.0))


def test_anchored_finetune_holds_the_forget_predictions_and_repairs_retain(digits):
    # a relabelling step forgets and costs some retain accuracy; the repair fine-tunes on retain
    start = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="random-label",
                        random_state=0).model
    kw = dict(unlearner="finetune", optimizer="adam", lr=1e-3, epochs=5, random_state=0)
    plain = rum.unlearn(start, digits.forget, digits.retain, **kw).model
    held = rum.unlearn(start, digits.forget, digits.retain, anchor=1.0, **kw).model
    # the plain fine-tune moves the forget items' predictions; the anchored one keeps them
    assert _kl_on(digits.forget, start, plain) > 0.5
    assert _kl_on(digits.forget, start, held) < 0.1 * _kl_on(digits.forget, start, plain)
    # ...and still repairs the retain set
    assert accuracy(start, digits.retain) < 0.99 <= accuracy(held, digits.retain)


def test_finetune_without_anchor_never_looks_at_the_forget_set(digits):
    X, y = digits.forget
    noise = np.random.default_rng(0).normal(size=X.shape).astype(X.dtype)
    kw = dict(unlearner="finetune", epochs=1, random_state=0)
    a = rum.unlearn(digits.model, digits.forget, digits.retain, **kw).model
    b = rum.unlearn(digits.model, (noise, y), digits.retain, **kw).model
    assert state_equal(a, b)
    c = rum.unlearn(digits.model, (noise, y), digits.retain, anchor=1.0, **kw).model
    assert not state_equal(a, c)  # with the anchor, the forget items do matter


def test_finetune_rejects_a_negative_anchor():
    with pytest.raises(InvalidParameterError, match="'anchor'"):
        rum.get_unlearner("finetune")(anchor=-1.0).validate_params()


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
        return rum._runtime.training.fit_loop(model, retain, ctx, epochs=2, lr=1e-3, batch_size=64)

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


def _batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g),
            torch.randn(3, 5, generator=g), torch.randint(0, 3, (3,), generator=g))


@pytest.mark.parametrize("norm, mixes", [
    (torch.nn.Identity, False), (lambda n: torch.nn.LayerNorm(n), False),
    (lambda n: torch.nn.Dropout(0.0), False), (lambda n: torch.nn.BatchNorm1d(n), True),
])
def test_one_joint_forward_pass_gives_the_two_separate_losses_unless_the_model_mixes_the_batch(
    norm, mixes
):
    from rum._runtime.optim import cross_entropy, mixes_batch, paired_cross_entropy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), norm(16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model.train()
    xr, yr, xf, yf = _batches()
    assert mixes_batch(model) is mixes
    separate = (cross_entropy(model, xr, yr), cross_entropy(model, xf, yf))
    joint = paired_cross_entropy(model, xr, yr, xf, yf, joint=True)
    same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(separate, joint))
    assert same is not mixes  # batch statistics over both batches change a BN model's losses
    chosen = paired_cross_entropy(model, xr, yr, xf, yf, joint=not mixes_batch(model))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(separate, chosen))


@pytest.mark.parametrize("batchnorm", [False, True])
def test_neggrad_plus_takes_the_textbook_step_with_or_without_batch_norm(batchnorm):
    """One NegGrad+ step equals alpha * retain CE - (1 - alpha) * forget CE, each batch on its own."""
    import copy

    torch.manual_seed(0)
    layers = [torch.nn.Linear(5, 16)] + ([torch.nn.BatchNorm1d(16)] if batchnorm else [])
    model = torch.nn.Sequential(*layers, torch.nn.ReLU(), torch.nn.Linear(16, 3))
    xr, yr, xf, yf = _batches(1)
    alpha, lr = 0.9, 0.1
    res = rum.unlearn(model, (xf.numpy(), yf.numpy()), (xr.numpy(), yr.numpy()), unlearner="neggrad+",
                      epochs=1, batch_size=8, forget_batch_size=3, alpha=alpha, lr=lr, momentum=0.0,
                      weight_decay=0.0, optimizer="sgd", max_grad_norm=None, random_state=0)
    ref = copy.deepcopy(model).train()
    ce = torch.nn.functional.cross_entropy
    loss = alpha * ce(ref(xr), yr) - (1 - alpha) * ce(ref(xf), yf)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    with torch.no_grad():
        for p, g in zip(ref.parameters(), grads):
            p -= lr * g
    for (name, a), b in zip(res.model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_anchored_finetune_gives_the_same_model_when_the_forget_logits_do_not_fit(monkeypatch):
    import rum.unlearners._distillation as distillation
    from rum.testing import tiny_task

    task = tiny_task()
    kw = dict(unlearner="finetune", anchor=1.0, epochs=2, random_state=0, device="cpu",
              progress=False, retain_guard=None)
    cached = rum.unlearn(task.model, task.forget, task.retain, **kw).model
    monkeypatch.setattr(distillation, "TEACHER_CACHE_BYTES", 0)  # a frozen copy answers per batch
    streamed = rum.unlearn(task.model, task.forget, task.retain, **kw).model
    for a, b in zip(cached.parameters(), streamed.parameters()):
        torch.testing.assert_close(a, b)
    assert not state_equal(cached, task.model)


_RETAIN_EPOCH_CASES = [("finetune", {}), ("finetune", {"anchor": 1.0}), ("neggrad+", {"forget_batch_size": 4})]


def _id_task(n_forget: int = 12, n_retain: int = 100):
    """A small model and data whose first feature is each item's id (retain ids from n_forget)."""
    rng = np.random.default_rng(0)
    n = n_forget + n_retain
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[:, 0] = np.arange(n)
    y = (X[:, 1] > 0).astype(np.int64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return model, (X[:n_forget], y[:n_forget]), (X[n_forget:], y[n_forget:])


def _retain_ids_trained_on(name: str, params: dict, epochs: int) -> list[int]:
    """The retain ids in every training forward pass of a run with ``retain_per_epoch=30``."""
    model, forget, retain = _id_task()
    seen: list[int] = []

    def record(module, inputs):
        if module.training:  # not the retain guard's evaluation passes
            seen.extend(i for i in inputs[0][:, 0].round().long().tolist() if i >= len(forget[0]))

    hook = model[0].register_forward_pre_hook(record)
    try:
        # an explicit lr: the calibration of lr="auto" would train copies of the model (and
        # its hook) on retain items of its own
        res = rum.unlearn(model, forget, retain, unlearner=name, epochs=epochs, batch_size=8,
                          retain_per_epoch=30, random_state=0, progress=False, retain_guard=None,
                          lr=0.01, **params)
    finally:
        hook.remove()
    assert not state_equal(res.model, model)
    return seen


@pytest.mark.parametrize("name, params", _RETAIN_EPOCH_CASES)
def test_retain_per_epoch_trains_on_that_many_distinct_retain_items_drawn_afresh_each_epoch(name, params):
    one = _retain_ids_trained_on(name, params, epochs=1)
    assert len(one) == 30 and len(set(one)) == 30  # 30 of the 100 retain items, none twice
    three = _retain_ids_trained_on(name, params, epochs=3)
    assert len(three) == 90 and len(set(three)) > 30  # each epoch draws its own sample
    assert all(len(set(three[i:i + 30])) == 30 for i in (0, 30, 60))


@pytest.mark.parametrize("name, params", _RETAIN_EPOCH_CASES)
def test_retain_per_epoch_that_covers_the_retain_set_is_the_uncapped_run_exactly(name, params):
    model, forget, retain = _id_task()
    kw = dict(unlearner=name, epochs=2, batch_size=8, random_state=0, progress=False, **params)
    full = rum.unlearn(model, forget, retain, **kw).model
    for cap in (len(retain[0]), 10**6):
        assert state_equal(rum.unlearn(model, forget, retain, retain_per_epoch=cap, **kw).model, full)
    assert not state_equal(rum.unlearn(model, forget, retain, retain_per_epoch=50, **kw).model, full)


@pytest.mark.parametrize("name", ["finetune", "neggrad+"])
def test_retain_per_epoch_caps_the_estimated_work_and_is_validated(name):
    u = rum.get_unlearner(name)
    capped, full = u(epochs=2, retain_per_epoch=100), u(epochs=2)
    assert capped.estimate_work(10, 1000) < full.estimate_work(10, 1000)
    assert capped.estimate_work(10, 1000) == full.estimate_work(10, 100)
    assert capped.estimate_work(10, 50) == full.estimate_work(10, 50)
    with pytest.raises(InvalidParameterError, match="'retain_per_epoch'"):
        u(retain_per_epoch=0).validate_params()
