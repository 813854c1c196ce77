"""A Hugging Face text classifier, as users have it, through fit, unlearn and evaluate.

A tiny randomly initialised ``BertForSequenceClassification`` (nothing downloaded) on synthetic
token sequences: items are dicts with ``input_ids``, ``attention_mask`` and ``labels``, and the
model returns an object with ``.logits``. The references are a brute-force accuracy read from
the model's own outputs and a model retrained without the forget items.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import rum

from .conftest import CallerState, items_unlearned

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

N, LENGTH, VOCAB, CLASSES = 400, 12, 40, 3


class Sequences(torch.utils.data.Dataset):
    def __init__(self, ids, labels):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        ids = torch.as_tensor(self.ids[i])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": int(self.labels[i])}


def sequences(n, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(CLASSES + 2, VOCAB, size=(n, LENGTH))
    labels = rng.integers(0, CLASSES, size=n)
    ids[np.arange(n), rng.integers(0, LENGTH, size=n)] = labels + 1  # the class token
    return Sequences(ids, labels)


def part(data, index):
    return Sequences(data.ids[index], data.labels[index])


def bert(seed=0):
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=LENGTH, num_labels=CLASSES)
    torch.manual_seed(seed)
    return transformers.BertForSequenceClassification(config)


def train_bert(data, seed=0):
    return rum.fit(bert(seed), data, epochs=15, lr=3e-3, batch_size=32, device="cpu", random_state=seed)


def brute_force_accuracy(model, data):
    """Accuracy read item by item from the model's own ``.logits``."""
    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(len(data)):
            item = data[i]
            out = model(input_ids=item["input_ids"][None], attention_mask=item["attention_mask"][None])
            right += int(out.logits.argmax(1).item() == item["labels"])
    return right / len(data)


@pytest.fixture(scope="module")
def text():
    train, test = sequences(N, 0), sequences(100, 1)
    return train, test, train_bert(train)


def test_evaluate_reads_the_logits_of_a_transformers_model(text):
    train, test, model = text
    forget, retain = part(train, np.arange(40)), part(train, np.arange(40, N))
    rep = rum.evaluate(model, forget_set=forget, retain_set=retain, test_set=test)
    assert rep.model.forget == pytest.approx(brute_force_accuracy(model, forget))
    assert rep.model.test == pytest.approx(brute_force_accuracy(model, test))
    assert rep.model.test > 0.9  # the class token is learnt


def test_a_class_is_forgotten_like_a_retrain_and_the_caller_model_is_untouched(text):
    train, test, model = text
    forget_idx, retain_idx = np.flatnonzero(train.labels == 2), np.flatnonzero(train.labels != 2)
    forget, retain = part(train, forget_idx), part(train, retain_idx)
    state = CallerState(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rum.exceptions.RumWarning)
        res = rum.unlearn(model, forget, retain, random_state=0, progress=False)
    state.assert_unchanged("unlearn")
    assert items_unlearned(res) == len(forget_idx)
    assert type(res.model) is type(model)  # the caller's interface: an object with .logits
    retrained = train_bert(retain, seed=1)
    assert brute_force_accuracy(retrained, forget) == 0.0  # a retrain never predicts the lost class
    assert brute_force_accuracy(res.model, forget) <= 0.05
    assert brute_force_accuracy(res.model, retain) >= brute_force_accuracy(retrained, retain) - 0.05


def test_random_items_are_unlearned_through_a_loader_of_dicts(text):
    train, test, model = text
    gone = np.random.default_rng(0).choice(N, size=N // 20, replace=False)
    kept = np.setdiff1d(np.arange(N), gone)
    forget = torch.utils.data.DataLoader(part(train, gone), batch_size=8, shuffle=True, drop_last=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rum.exceptions.RumWarning)
        res = rum.unlearn(model, forget, part(train, kept), random_state=0, progress=False)
        again = rum.unlearn(model, part(train, gone), part(train, kept), random_state=0, progress=False)
    assert items_unlearned(res) == len(gone)  # drop_last dropped nothing
    sa, sb = res.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the loader's shuffle changed nothing
    before = brute_force_accuracy(model, test)
    assert brute_force_accuracy(res.model, test) >= before - 0.1


def test_influence_on_a_transformers_model_is_a_clear_error(text):
    train, _, model = text
    with pytest.raises(rum.exceptions.InvalidDataError, match="named inputs"):
        rum.unlearn(copy.deepcopy(model), part(train, np.arange(10)), part(train, np.arange(10, N)),
                    unlearner="influence", progress=False)
