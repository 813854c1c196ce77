from __future__ import annotations

import copy

import pytest
import torch

import rum
from rum._data import as_data
from rum._runtime.context import RunContext
from rum.exceptions import InvalidParameterError
from rum.unlearners.l1_sparse import L1Sparse, l1_weight


def test_l1_weight_decays_linearly_then_stops():
    assert [l1_weight(2.0, e, 4) for e in range(4)] == [2.0, 1.5, 1.0, 0.5]
    assert [l1_weight(1.0, e, 4, 2) for e in range(4)] == [1.0, 0.5, 0.0, 0.0]


def test_one_step_matches_hand_computed_update():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    X, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    ref = copy.deepcopy(model)
    alpha, lr = 0.1, 0.5
    loss = torch.nn.functional.cross_entropy(ref(X), y)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    expected = [p.detach() - lr * (g + alpha * torch.sign(p.detach())) for p, g in zip(ref.parameters(), grads, strict=True)]
    u = L1Sparse(alpha=alpha, epochs=1, lr=lr, batch_size=5, momentum=0.0, weight_decay=0.0)
    u._unlearn(model, as_data((X[:1], y[:1])), as_data((X, y)), RunContext.simple(2))
    for p, e in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.detach(), e)


def test_no_l1_epochs_must_leave_an_l1_epoch():
    with pytest.raises(InvalidParameterError, match="'no_l1_epochs'.*\\[0, 2\\]"):
        L1Sparse(epochs=3, no_l1_epochs=3).validate_params()


def test_bad_alpha_names_range():
    with pytest.raises(InvalidParameterError, match="'alpha' parameter of L1Sparse must be a float in \\[0, inf\\)"):
        rum.get_unlearner("l1-sparse")(alpha=-1.0).validate_params()
