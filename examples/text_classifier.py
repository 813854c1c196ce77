"""A Hugging Face text classifier forgets a class and a random subset, with no wrapper code.

The model is a tiny ``BertForSequenceClassification`` built from its config (random weights,
nothing downloaded) and trained on synthetic token sequences: each sequence carries one
"class token" among random ones. rum takes the model and the data as the ecosystem has them:
items are dicts of ``input_ids`` and ``attention_mask`` with a ``labels`` entry, and the model
returns an object with ``.logits``.

Needs ``pip install "rum[text]"``. Run: python examples/text_classifier.py  (under a minute on a
laptop CPU).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

import rum

QUICK = os.environ.get("RUM_EXAMPLE_QUICK") == "1"
N, LENGTH, VOCAB, CLASSES = (400 if QUICK else 1000), 12, 40, 3
SEED = 0


class Sequences(torch.utils.data.Dataset):
    """Token sequences as a tokenizer gives them, one dict per item, the label under "labels"."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray):
        self.ids, self.labels = ids, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        ids = torch.as_tensor(self.ids[i])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": int(self.labels[i])}


def synthetic_sequences(n: int, seed: int) -> Sequences:
    """Random tokens with one class token (ids 1..CLASSES) at a random place in each sequence."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(CLASSES + 2, VOCAB, size=(n, LENGTH))
    labels = rng.integers(0, CLASSES, size=n)
    ids[np.arange(n), rng.integers(0, LENGTH, size=n)] = labels + 1
    return Sequences(ids, labels)


def part(data: Sequences, index) -> Sequences:
    return Sequences(data.ids[index], data.labels[index])


train, test = synthetic_sequences(N, SEED), synthetic_sequences(N // 4, SEED + 1)
config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=LENGTH, num_labels=CLASSES)
torch.manual_seed(SEED)
model = rum.fit(BertForSequenceClassification(config), train, epochs=15, lr=3e-3, batch_size=32,
                random_state=SEED)

# Class-wise forgetting: every item of class 2 goes.
forget, retain = np.flatnonzero(train.labels == 2), np.flatnonzero(train.labels != 2)
print(rum.evaluate(model, forget_set=part(train, forget), retain_set=part(train, retain), test_set=test,
                   name="original"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", rum.exceptions.RumWarning)
    result = rum.unlearn(model, part(train, forget), part(train, retain), random_state=SEED)
print(result.profile)
print(rum.evaluate(result.model, forget_set=part(train, forget), retain_set=part(train, retain),
                   test_set=test))

# Random forgetting: 5 % of the items, all classes.
rng = np.random.default_rng(SEED)
gone = rng.choice(len(train), size=len(train) // 20, replace=False)
kept = np.setdiff1d(np.arange(len(train)), gone)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", rum.exceptions.RumWarning)
    result = rum.unlearn(model, part(train, gone), part(train, kept), random_state=SEED)
print(rum.evaluate(result.model, forget_set=part(train, gone), retain_set=part(train, kept),
                   test_set=test))
