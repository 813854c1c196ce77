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
from rum.exceptions import (
    DivergenceWarning,
    InvalidDataError,
    InvalidParameterError,
    ModelOutputError,
    NotDataError,
    RumWarning,
)

from .conftest import CallerState, state_equal


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


# -- the bad-input matrix ----------------------------------------------------------------------
# Every case of the trust issue in one table. Each row either works as documented (and is
# checked for doing the right thing) or stops with a rum error (or the documented warning)
# that names the argument to change; in every row the caller's model (weights, buffers,
# modes, requires_grad flags, hooks), the input data and the global random states come back
# bit for bit as they were.
class NoLogits(nn.Module):
    """Returns a dict without ``"logits"``: rum cannot guess which entry holds them."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return {"scores": self.inner(x)}


@pytest.fixture(scope="module")
def world(digits, tokens, half_frozen):
    ids, mask, y = tokens
    train = ListDataset(_token_items(ids[:200], mask[:200], y[:200]))
    torch.manual_seed(0)
    bag = rum.fit(Bag(), train, epochs=30, lr=0.05, batch_size=32, device="cpu", random_state=0)
    X, yf = digits.forget
    Xr, yr = digits.retain
    tensors = [torch.as_tensor(a) for a in (X, yf, Xr, yr)]
    return dict(
        digits=digits, bag=bag, half_frozen=half_frozen, tokens=tokens,
        forget_ds=torch.utils.data.TensorDataset(tensors[0], tensors[1]),
        retain_ds=torch.utils.data.TensorDataset(tensors[2], tensors[3]),
        tensors=tensors,
    )


def _quick(**kw):
    return dict(unlearner="finetune", epochs=1, random_state=0, progress=False, **kw)


def _items_unlearned(res, n):
    assert [s.n_items for s in res.steps] == [n], "every forget item is unlearned"


def _case_drop_last(w):
    d = w["digits"]
    loader = DataLoader(w["forget_ds"], batch_size=50, drop_last=True)  # 126 items: 26 in a last batch
    res = rum.unlearn(d.model, loader, d.retain, **_quick())
    _items_unlearned(res, len(w["forget_ds"]))
    assert state_equal(res.model, rum.unlearn(d.model, d.forget, d.retain, **_quick()).model)


def _case_shuffled_loaders(w):
    d = w["digits"]
    forget = DataLoader(w["forget_ds"], batch_size=16, shuffle=True)
    retain = DataLoader(w["retain_ds"], batch_size=16, shuffle=True)
    res = rum.unlearn(d.model, forget, retain, **_quick())
    assert state_equal(res.model, rum.unlearn(d.model, d.forget, d.retain, **_quick()).model)


def _case_weighted_sampler(w):
    d = w["digits"]
    sampler = torch.utils.data.WeightedRandomSampler(torch.ones(len(w["forget_ds"])), 100)
    rum.unlearn(d.model, DataLoader(w["forget_ds"], sampler=sampler), d.retain, **_quick())


def _everything(w):
    d = w["digits"]
    return (np.concatenate([d.retain[0], d.forget[0]]), np.concatenate([d.retain[1], d.forget[1]]))


def _case_retain_holds_forget(w):
    rum.unlearn(w["digits"].model, w["digits"].forget, _everything(w), **_quick())


def _case_overlap_drop(w):
    d = w["digits"]
    res = rum.unlearn(d.model, d.forget, _everything(w), overlap="drop", **_quick())
    assert state_equal(res.model, rum.unlearn(d.model, d.forget, d.retain, **_quick()).model)


def _case_tuple_output_evaluate(w):
    d = w["digits"]
    rum.evaluate(TwoHeads(d.model), forget_set=d.forget, retain_set=d.retain, test_set=d.test)


def _case_tuple_output_unlearn(w):
    d = w["digits"]
    rum.unlearn(TwoHeads(d.model), d.forget, d.retain, **_quick())


def _case_tuple_output_selected(w):
    d = w["digits"]
    kw = dict(forget_set=d.forget, retain_set=d.retain, test_set=d.test)
    assert rum.evaluate(TwoHeads(d.model), output=1, **kw).model == rum.evaluate(d.model, **kw).model


def _case_output_out_of_range(w):
    d = w["digits"]
    rum.unlearn(TwoHeads(d.model), d.forget, d.retain, output=7, **_quick())


def _case_dict_without_logits(w):
    d = w["digits"]
    rum.evaluate(NoLogits(d.model), forget_set=d.forget, retain_set=d.retain, test_set=d.test)


def _token_sets(w):
    ids, mask, y = w["tokens"]
    return (ListDataset(_token_items(ids[:20], mask[:20], y[:20])),
            ListDataset(_token_items(ids[20:200], mask[20:200], y[20:200])))


def _case_named_integer_inputs(w):
    forget, retain = _token_sets(w)
    res = rum.unlearn(w["bag"], forget, retain, **_quick())
    assert res.model.emb.weight.dtype == torch.float32 and res.steps[0].status == "ok"


def _case_influence_on_named_inputs(w):
    forget, retain = _token_sets(w)
    rum.unlearn(w["bag"], forget, retain, unlearner="influence", progress=False)


def _case_frozen_layers(w):
    net, d = w["half_frozen"], w["digits"]
    res = rum.unlearn(net, d.forget, d.retain, **_quick())
    frozen = ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var")
    assert all(torch.equal(net.state_dict()[k], res.model.state_dict()[k]) for k in frozen)


def _case_float64_auto(w):
    d = w["digits"]
    model = copy.deepcopy(d.model).double()
    state = CallerState(model)
    res = rum.unlearn(model, d.forget, d.retain, policy=rum.policies.Auto(budget=5), random_state=0,
                      progress=False)
    assert next(res.model.parameters()).dtype == torch.float64
    state.assert_unchanged("float64 model")


def _case_bad_overlap(w):
    rum.unlearn(w["digits"].model, w["digits"].forget, w["digits"].retain, overlap="keep")


OK = "works"
MATRIX = {
    # case: (run, expected: OK, an error class, or a warning class; what the message must name)
    "forget loader with drop_last": (_case_drop_last, OK, None),
    "shuffled loaders": (_case_shuffled_loaders, OK, None),
    "loader with a weighted sampler": (_case_weighted_sampler, NotDataError, r"forget_set: .*WeightedRandomSampler"),
    "retain set holds forget items": (_case_retain_holds_forget, InvalidDataError, r"retain_set.*overlap="),
    "overlap='drop'": (_case_overlap_drop, RumWarning, r"126 retain item"),
    "overlap='keep'": (_case_bad_overlap, InvalidParameterError, r"overlap must be"),
    "tuple output, evaluate": (_case_tuple_output_evaluate, ModelOutputError, r"output="),
    "tuple output, unlearn": (_case_tuple_output_unlearn, ModelOutputError, r"output="),
    "tuple output with output=1": (_case_tuple_output_selected, OK, None),
    "output= out of range": (_case_output_out_of_range, ModelOutputError, r"output=7"),
    "dict output without logits": (_case_dict_without_logits, ModelOutputError, r"output="),
    "named integer inputs": (_case_named_integer_inputs, OK, None),
    "influence on named inputs": (_case_influence_on_named_inputs, InvalidDataError, r"named inputs"),
    "frozen layers and their BatchNorm": (_case_frozen_layers, OK, None),
    "float64 model, auto policy": (_case_float64_auto, OK, None),
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_bad_input_matrix(world, case):
    run, expected, match = MATRIX[case]
    models = [world["digits"].model, world["bag"], world["half_frozen"]]
    states = [CallerState(m) for m in models]
    data = CallerState(None, *world["tensors"], *(np.asarray(a) for a in (*world["digits"].forget,
                                                                             *world["digits"].retain)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        if expected is OK:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RumWarning)  # a case that works warns of nothing
                run(world)
        elif issubclass(expected, Warning):
            with pytest.warns(expected, match=match):
                run(world)
        else:
            with pytest.raises(expected, match=match):
                run(world)
    for state in states:
        state.assert_unchanged(case)
    data.assert_unchanged(case)
