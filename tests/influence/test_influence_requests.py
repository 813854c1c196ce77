from __future__ import annotations

import numpy as np
import pytest
import torch

import rum
from rum.exceptions import EmptyDataError, InvalidDataError, InvalidParameterError


def _data():
    X = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [4.0, 5.0, 0.0], [0.0, 7.0, 1.0]], np.float32)
    y = np.array([0, 1, 1, 0])
    return X, y


def test_replace_features_defaults_to_rows_where_the_feature_is_present():
    X, y = _data()
    r = rum.requests.replace_features((X, y), columns=[0, 1])
    assert r.indices.tolist() == [0, 2, 3]
    assert torch.equal(r.before.X, torch.as_tensor(X[[0, 2, 3]]))
    assert r.after.X[:, :2].abs().sum() == 0
    assert torch.equal(r.after.X[:, 2], torch.as_tensor(X[[0, 2, 3], 2]))
    assert torch.equal(r.after.y, r.before.y)
    assert r.n_deleted == 0


def test_replace_features_with_values_and_rows():
    X, y = _data()
    r = rum.requests.replace_features((X, y), columns=[2], values=[9.0], rows=[1, 3])
    assert r.indices.tolist() == [1, 3]
    assert r.after.X[:, 2].tolist() == [9.0, 9.0]
    with pytest.raises(InvalidParameterError):
        rum.requests.replace_features((X, y), columns=[3])
    with pytest.raises(EmptyDataError):
        rum.requests.replace_features((np.zeros((2, 2)), [0, 1]), columns=[0])


def test_relabel_delete_and_combination():
    X, y = _data()
    r = rum.requests.relabel((X, y), [1, 2], [0, 0]) + rum.requests.delete((X, y), [0])
    assert len(r) == 3 and r.n_deleted == 1
    assert r.before.y.tolist() == [1, 1, 0]
    assert r.kept_after.y.tolist() == [0, 0]
    with pytest.raises(InvalidDataError):  # the same item twice
        rum.requests.delete((X, y), [1]) + rum.requests.relabel((X, y), [1], [0])
    with pytest.raises(InvalidParameterError):
        rum.requests.relabel((X, y), [1, 2], [0, 0, 0])
    with pytest.raises(InvalidParameterError):
        rum.requests.delete((X, y), [7])


def test_request_from_pairs_and_inputs_not_mutated():
    X, y = _data()
    X0 = X.copy()
    r = rum.requests.Request.from_pairs((X[:2], y[:2]), (X[:2] * 0, y[:2]))
    assert r.n_deleted == 0 and len(r) == 2
    rum.requests.replace_features((X, y), columns=[0])
    assert np.array_equal(X, X0)
    with pytest.raises(InvalidDataError):
        rum.requests.Request.from_pairs((X[:2], y[:2]), (X[:3], y[:3]))
