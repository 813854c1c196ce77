"""Models and data as users have them: outputs that are not a tensor, named inputs, integer
features, loaders with their own order, retain sets that contain forget items, frozen layers."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import rum
from rum.exceptions import InvalidDataError, InvalidParameterError, ModelOutputError, RumWarning

from .conftest import state_equal


class TwoHeads(nn.Module):
    """Returns ``(features, logits)``, as many research models do."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        h = self.inner[:-1](x)
        return h, self.inner[-1](h)


class DictOut(nn.Module):
    """Returns ``{"logits": ...}``, as a Hugging Face model does with return_dict."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"logits": self.inner(x), "hidden": x}


def test_a_tuple_output_needs_output_and_gives_the_right_numbers_with_it(digits):
    model = TwoHeads(copy.deepcopy(digits.model))
    kw = dict(forget_set=digits.forget, retain_set=digits.retain, test_set=digits.test)
    with pytest.raises(ModelOutputError, match="tuple of 2.*output=1"):
        rum.evaluate(model, **kw)
    with pytest.raises(ModelOutputError, match="tuple of 2"):
        rum.unlearn(model, digits.forget, digits.retain, unlearner="finetune")
    # with output=1 every number is the plain model's
    plain = rum.evaluate(digits.model, **kw)
    named = rum.evaluate(model, output=1, **kw)
    assert named.model == plain.model
    by_fn = rum.evaluate(model, output=lambda out: out[1], **kw)
    assert by_fn.model == plain.model
    a = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune", epochs=1,
                    random_state=0, progress=False)
    b = rum.unlearn(model, digits.forget, digits.retain, unlearner="finetune", epochs=1,
                    random_state=0, progress=False, output=1)
    assert state_equal(a.model, b.model.inner)
    assert isinstance(b.model(torch.as_tensor(digits.forget[0])), tuple)  # the caller's interface
    assert not b.model._forward_hooks  # nothing of rum's left on the result
    with pytest.raises(InvalidParameterError, match="output must be None, an index"):
        rum.evaluate(model, output=1.5, **kw)
    with pytest.raises(ModelOutputError, match="output=7 does not select"):
        rum.evaluate(model, output=7, **kw)


def test_a_dict_output_with_logits_is_read_as_is(digits):
    model = DictOut(copy.deepcopy(digits.model))
    kw = dict(unlearner="scrub", epochs=1, msteps=1, random_state=0, progress=False)
    res = rum.unlearn(model, digits.forget, digits.retain, **kw)
    ref = rum.unlearn(digits.model, digits.forget, digits.retain, **kw)
    assert state_equal(res.model.inner, ref.model)
    assert isinstance(res.model(torch.as_tensor(digits.forget[0])), dict)


class Bag(nn.Module):
    """A bag-of-tokens classifier: integer token ids in, named inputs like a text model's."""

    def __init__(self, vocab=20, n_classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.out = nn.Linear(8, n_classes)

    def forward(self, input_ids, attention_mask=None):
        h = self.emb(input_ids)
        if attention_mask is None:
            return self.out(h.mean(1))
        w = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.out((h * w).sum(1) / w.sum(1).clamp(min=1))


@pytest.fixture(scope="module")
def tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 20, size=(240, 6))
    y = rng.integers(0, 3, size=240)
    ids[:, 0] = y  # the label's token comes first
    mask = np.ones_like(ids)
    return ids, mask, y


def _token_items(ids, mask, y):
    return [{"input_ids": torch.as_tensor(i), "attention_mask": torch.as_tensor(m), "labels": int(c)}
            for i, m, c in zip(ids, mask, y)]


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_named_integer_inputs_train_unlearn_and_evaluate_without_a_wrapper(tokens):
    ids, mask, y = tokens
    train = ListDataset(_token_items(ids[:200], mask[:200], y[:200]))
    torch.manual_seed(0)
    model = rum.fit(Bag(), train, epochs=30, lr=0.05, batch_size=32, device="cpu", random_state=0)
    forget = ListDataset(_token_items(ids[:20], mask[:20], y[:20]))
    retain = DataLoader(ListDataset(_token_items(ids[20:200], mask[20:200], y[20:200])), batch_size=16,
                        shuffle=True, drop_last=True)
    test = (({"input_ids": ids[200:], "attention_mask": mask[200:]}), y[200:])  # a tokenizer's output
    rep = rum.evaluate(model, forget_set=forget, retain_set=retain, test_set=test)
    assert rep.model.test > 0.9
    res = rum.unlearn(model, forget, retain, random_state=0, progress=False)
    assert all(s.status in ("ok", "fallback") for s in res.steps)
    assert res.profile.scorers["embedding_layer"] == "out"  # the layer it picked, named
    again = rum.unlearn(model, forget, retain, random_state=0, progress=False)
    assert state_equal(res.model, again.model)  # a shuffled loader is read in a fixed order
    with pytest.raises(InvalidDataError, match="named inputs"):
        rum.unlearn(model, forget, retain, unlearner="influence")


def test_integer_features_into_a_float_model_are_cast_as_before(digits):
    X, y = digits.forget
    Xi = (X * 16).round().astype(np.int64)
    Xr, yr = digits.retain
    ints = rum.unlearn(digits.model, (Xi, y), ((Xr * 16).round().astype(np.int64), yr),
                       unlearner="finetune", epochs=1, random_state=0, progress=False)
    floats = rum.unlearn(digits.model, (Xi.astype(np.float32), y), ((Xr * 16).round().astype(np.float32), yr),
                         unlearner="finetune", epochs=1, random_state=0, progress=False)
    assert state_equal(ints.model, floats.model)


def test_a_retain_set_that_holds_forget_items_is_refused_or_cleaned(digits):
    X, y = digits.forget
    Xr, yr = digits.retain
    everything = (np.concatenate([Xr, X]), np.concatenate([yr, y]))
    with pytest.raises(InvalidDataError, match=r"retain_set holds 126 item\(s\) equal to forget items"):
        rum.unlearn(digits.model, digits.forget, everything, unlearner="finetune")
    with pytest.warns(RumWarning, match="126 retain item"):
        dropped = rum.unlearn(digits.model, digits.forget, everything, unlearner="finetune", epochs=1,
                              random_state=0, progress=False, overlap="drop")
    clean = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune", epochs=1,
                        random_state=0, progress=False)
    assert state_equal(dropped.model, clean.model)
    # same features with another label is another item
    relabelled = (np.concatenate([Xr, X[:3]]), np.concatenate([yr, (y[:3] + 1) % 10]))
    rum.unlearn(digits.model, digits.forget, relabelled, unlearner="noop", progress=False)
    with pytest.raises(InvalidParameterError, match="overlap must be"):
        rum.unlearn(digits.model, digits.forget, digits.retain, overlap="keep")


@pytest.fixture(scope="module")
def half_frozen(digits):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    net = rum.fit(net, digits.retain, epochs=3, device="cpu")
    for p in list(net[0].parameters()) + list(net[1].parameters()):
        p.requires_grad_(False)
    return net


@pytest.mark.parametrize("name", ["finetune"] + [
    pytest.param(n, marks=pytest.mark.slow) for n in ("neggrad+", "random-label", "scrub", "salun")])
def test_what_the_caller_froze_stays_frozen_buffers_included(digits, half_frozen, name):
    net = half_frozen
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rum.unlearn(net, digits.forget, digits.retain, unlearner=name, random_state=0, progress=False)
    before, after = net.state_dict(), res.model.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["3.weight"], after["3.weight"])


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_every_unlearner_runs_on_models_of_other_precisions_or_says_why(digits, dtype):
    model = copy.deepcopy(digits.model).to(dtype)
    for name in rum.list_unlearners():
        cls = rum.get_unlearner(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = rum.unlearn(model, digits.forget, digits.retain, unlearner=name, random_state=0,
                              progress=False, **cls._test_params())
        assert next(res.model.parameters()).dtype == dtype, name
