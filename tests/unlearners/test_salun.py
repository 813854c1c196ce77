from __future__ import annotations

import copy

import pytest
import torch

from rum._data import as_data
from rum._runtime.context import RunContext
from rum.exceptions import InvalidParameterError
from rum.testing import tiny_task
from rum.unlearners.salun import SalUn, forget_gradients, saliency_mask


def test_mask_keeps_largest_fraction_globally():
    g = {"a": torch.tensor([[0.5, -4.0], [0.1, 0.0]]), "b": torch.tensor([3.0, -0.2, 1.0, 2.0])}
    m = saliency_mask(g, 0.5)
    assert m["a"].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert m["b"].tolist() == [1.0, 0.0, 1.0, 1.0]
    low = saliency_mask(g, 0.5, largest=False)
    assert low["a"].tolist() == [[1.0, 0.0], [1.0, 1.0]]
    total = sum(int(v.sum()) for v in saliency_mask(g, 0.25).values())
    assert total == 2


def test_forget_gradients_match_full_batch_autograd():
    task = tiny_task()
    model = task.model
    forget = as_data(task.forget)
    grads = forget_gradients(model, forget, batch_size=5)
    loss = torch.nn.functional.cross_entropy(model(forget.X), forget.y, reduction="sum")
    ref = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), r in zip(model.named_parameters(), ref, strict=True):
        torch.testing.assert_close(grads[name], r, rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_masked_out_weights_do_not_change():
    task = tiny_task()
    model = task.model
    before = copy.deepcopy(model)
    forget, retain = as_data(task.forget), as_data(task.retain)
    mask = saliency_mask(forget_gradients(before, forget, 32), 0.3)
    u = SalUn(mask_ratio=0.3, epochs=2, lr=0.05, weight_decay=5e-3, momentum=0.9)
    u._unlearn(model, forget, retain, RunContext.simple(10))
    changed_frozen, changed_salient = 0, 0
    for (name, p), q in zip(model.named_parameters(), before.parameters(), strict=True):
        moved = p.detach() != q.detach()
        changed_frozen += int((moved & (mask[name] == 0)).sum())
        changed_salient += int((moved & (mask[name] == 1)).sum())
    assert changed_frozen == 0
    assert changed_salient > 0.5 * sum(int(m.sum()) for m in mask.values())


def test_mask_ratio_range():
    with pytest.raises(InvalidParameterError, match="'mask_ratio'.*\\(0, 1\\]"):
        SalUn(mask_ratio=0.0).validate_params()
