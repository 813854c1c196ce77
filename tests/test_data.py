"""The data adapter: every accepted form gives the same TensorData, bad input gives typed errors."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from rum._data import TensorData, as_data, count_items
from rum._model import check_fits_model
from rum.exceptions import (
    EmptyDataError,
    IncompatibleDataError,
    InvalidDataError,
    NotDataError,
)

X = np.arange(24, dtype=np.float32).reshape(6, 4)
Y = np.array([0, 1, 2, 0, 1, 2])


class PairDataset(torch.utils.data.Dataset):
    def __len__(self):
        return len(Y)

    def __getitem__(self, i):
        return X[i], int(Y[i])


class Bunch:
    data, target = X, Y


#: every form of data rum reads, holding the items X, Y
FORMS = [
    (X, Y),
    [X, Y],
    (torch.tensor(X), torch.tensor(Y)),
    (X.tolist(), Y.tolist()),
    PairDataset(),
    TensorDataset(torch.tensor(X), torch.tensor(Y)),
    DataLoader(PairDataset(), batch_size=4),
    DataLoader(TensorDataset(torch.tensor(X), torch.tensor(Y)), batch_size=5),
    Bunch(),
    (X, Y.reshape(-1, 1)),
]
FORM_IDS = ["tuple", "list", "tensors", "lists", "dataset", "tensordataset", "loader", "loader5",
            "bunch", "column-labels"]


@pytest.mark.parametrize("obj", FORMS, ids=FORM_IDS)
def test_every_form_gives_the_same_items(obj):
    d = as_data(obj, "forget_set")
    assert isinstance(d, TensorData)
    np.testing.assert_array_equal(d.X.numpy(), X)
    np.testing.assert_array_equal(d.y.numpy(), Y)
    assert d.X.dtype == torch.float32 and d.y.dtype == torch.int64


@pytest.mark.parametrize("obj", FORMS, ids=FORM_IDS)
def test_count_items_counts_every_form_like_as_data(obj):
    assert count_items(obj, "train_set") == len(as_data(obj, "train_set")) == len(Y)


def test_a_loader_is_read_once_per_item_in_a_fixed_order():
    """drop_last and shuffling never drop or reorder items; a sampler that names items is read
    in its order; a sampler that may skip or repeat items is refused."""
    from torch.utils.data import SubsetRandomSampler, WeightedRandomSampler

    ds = TensorDataset(torch.tensor(X), torch.tensor(Y))
    subset = DataLoader(ds, sampler=SubsetRandomSampler([4, 0, 2]))
    assert count_items(subset, "train_set") == 3
    assert as_data(subset, "train_set").y.tolist() == [Y[4], Y[0], Y[2]]
    for loader in (DataLoader(ds, batch_size=4, drop_last=True),
                   DataLoader(ds, batch_size=4, shuffle=True, drop_last=True)):
        d = as_data(loader, "train_set")
        assert count_items(loader, "train_set") == len(d) == len(Y)
        assert torch.equal(d.X, torch.tensor(X)) and d.y.tolist() == Y.tolist()
    weighted = DataLoader(ds, sampler=WeightedRandomSampler([1.0] * 6, 6))
    with pytest.raises(NotDataError, match="WeightedRandomSampler.*exactly once"):
        as_data(weighted, "forget_set")


def test_count_items_checks_pair_lengths():
    with pytest.raises(InvalidDataError, match="train_set: X has 6 rows but y has 5"):
        count_items((X, Y[:5]), "train_set")


def test_finite_values_whose_sum_overflows_are_accepted_and_nan_is_not():
    big = np.full((4, 2), 3e38, dtype=np.float32)  # finite, but the float32 sum is inf
    assert torch.equal(as_data((big, [0, 1, 0, 1])).X, torch.from_numpy(big))
    big[2, 1] = np.nan
    with pytest.raises(InvalidDataError, match="1 item"):
        as_data((big, [0, 1, 0, 1]))


def test_result_does_not_alias_the_callers_arrays():
    Xc, yc = X.copy(), Y.copy()
    d = as_data((Xc, yc))
    d.X.add_(100)
    d.y.zero_()
    np.testing.assert_array_equal(Xc, X)
    np.testing.assert_array_equal(yc, Y)
    t = torch.tensor(X)
    as_data((t, torch.tensor(Y))).X.mul_(0)
    assert torch.equal(t, torch.tensor(X))


def test_integer_features_keep_their_dtype_until_a_model_needs_floats():
    from rum._model import fit_to_model

    d = as_data((X.astype(np.int64), Y))
    assert d.X.dtype == torch.int64  # token ids and category codes stay integers
    assert as_data((X.astype(np.float64), Y)).X.dtype == torch.float64
    assert as_data((X > 3, Y)).X.dtype == torch.bool
    # a model that computes on floats gets them cast; one with an embedding keeps them
    mlp = torch.nn.Linear(4, 3)
    assert fit_to_model(mlp, {"forget_set": d})[1]["forget_set"].X.dtype == torch.float32
    emb = torch.nn.Sequential(torch.nn.Embedding(30, 2), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    assert fit_to_model(emb, {"forget_set": d})[1]["forget_set"].X.dtype == torch.int64


def test_batches_cover_every_item_once_and_shuffle_is_seeded():
    d = as_data((X, Y))
    seen = torch.cat([x[:, 0] for x, _ in d.batches(4, shuffle=True, generator=torch.Generator().manual_seed(1))])
    assert sorted(seen.tolist()) == sorted(X[:, 0].tolist())
    again = torch.cat([x[:, 0] for x, _ in d.batches(4, shuffle=True, generator=torch.Generator().manual_seed(1))])
    assert torch.equal(seen, again)
    assert d.n_batches(4) == 2


def test_subset_and_concat():
    d = as_data((X, Y))
    s = d.subset([5, 0])
    assert s.y.tolist() == [2, 0]
    assert len(d.concat(s)) == 8
    assert d.subset(np.array([True, False] * 3)).y.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    "obj, error, words",
    [
        (None, NotDataError, "forget_set is None"),
        ("data/forget.npz", NotDataError, "does not read files"),
        (pathlib.Path("forget.npz"), NotDataError, "does not read files"),
        ({"X": X, "y": Y}, NotDataError, "cannot read"),
        (42, NotDataError, "cannot read"),
        ((X, Y, Y), NotDataError, "length 3"),
        ((X, Y[:5]), InvalidDataError, "6 rows but y has 5"),
        ((X[:0], Y[:0]), EmptyDataError, "forget_set is empty"),
        ((np.where(X > 20, np.nan, X), Y), InvalidDataError, "NaN or infinite"),
        ((np.where(X > 20, np.inf, X), Y), InvalidDataError, "NaN or infinite"),
        ((X, Y.astype(float) + 0.5), InvalidDataError, "must be integers"),
        ((X, Y - 1), InvalidDataError, ">= 0"),
        ((X, np.eye(3)[Y]), InvalidDataError, "one-hot"),
        ((X, Y.astype(bool)), InvalidDataError, "must be integers"),
        ((np.array([["a"] * 4] * 6, dtype=object), Y), InvalidDataError, "dtype object"),
    ],
)
def test_bad_data_raises_a_typed_error_naming_the_argument(obj, error, words):
    with pytest.raises(error) as info:
        as_data(obj, "forget_set")
    assert "forget_set" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, (ValueError, TypeError))


def test_a_dataset_of_dicts_reads_its_labels_key_or_says_how():
    class Dicts(torch.utils.data.Dataset):
        def __init__(self, key):
            self.key = key

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"input_ids": X[i].astype(np.int64), "attention_mask": np.ones(4, int), self.key: Y[i]}

    d = as_data(Dicts("labels"), "retain_set")
    assert sorted(d.X.keys()) == ["attention_mask", "input_ids"] and d.y.tolist() == Y[:2].tolist()
    assert d.X["input_ids"].dtype == torch.int64 and len(d.X) == 2
    with pytest.raises(NotDataError, match="without a label: give it a 'labels' key"):
        as_data(Dicts("y"), "retain_set")


def test_empty_is_allowed_when_asked():
    assert len(as_data((X[:0], Y[:0]), allow_empty=True)) == 0


def test_check_fits_model_reports_shape_and_label_problems():
    model = torch.nn.Linear(4, 3)
    assert check_fits_model(model, {"forget_set": as_data((X, Y))}) == 3
    with pytest.raises(IncompatibleDataError, match=r"forget_set: items of shape \(5,\)"):
        check_fits_model(model, {"forget_set": as_data((np.ones((2, 5)), [0, 1]))})
    with pytest.raises(InvalidDataError, match="label 3, but the model outputs only 3 classes"):
        check_fits_model(model, {"retain_set": as_data((X, Y + 1))})
    model.train()
    check_fits_model(model, {"f": as_data((X, Y))})
    assert model.training  # mode restored
