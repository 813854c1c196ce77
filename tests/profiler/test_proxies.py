from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

import rum
from rum.exceptions import InvalidParameterError
from rum.profiler.proxies import (
    DYNAMICS_PROXIES,
    MemorizationRecorder,
    StreamingTopK,
    confidence_score,
    input_curvature,
    margin_score,
    neighbor_disagreement,
)


def test_confidence_and_margin_values():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    y = torch.tensor([0, 0])
    np.testing.assert_allclose(confidence_score(logits, y), [0.3, 0.9])
    np.testing.assert_allclose(margin_score(logits, y), [0.2 - 0.7, 0.6 - 0.1])


def test_curvature_matches_autograd_reference():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    X, y = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    got = input_curvature(net, X, y, h=0.3, batch_size=2)
    for i in range(5):
        def g(x, yi=y[i : i + 1]):
            x = x.clone().requires_grad_(True)
            return torch.autograd.grad(F.cross_entropy(net(x[None]), yi), x)[0]

        g0 = g(X[i])
        z = 0.3 * torch.sign(g0) / torch.sign(g0).norm()
        assert got[i] == pytest.approx(float((g(X[i] + z) - g0).norm()), rel=1e-4, abs=1e-7)
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(0, 1000))
def test_streaming_topk_equals_brute_force(batch, k, seed):
    g = torch.Generator().manual_seed(seed)
    q, keys = torch.randn(9, 4, generator=g), torch.randn(37, 4, generator=g)
    labels = torch.arange(37)
    knn = StreamingTopK(q, k, chunk=4)
    for s in range(0, 37, batch):
        knn.update(keys[s : s + batch], labels[s : s + batch])
    sims = F.normalize(q) @ F.normalize(keys).T
    ref = torch.topk(sims, k, dim=1).indices
    assert torch.equal(knn.labels, ref)


def test_neighbor_disagreement():
    assert neighbor_disagreement(np.array([[0, 1, 1, 1], [2, 2, 2, 2]]), [1, 2]).tolist() == [0.25, 0.0]


def _auc(blobs, scores):
    return roc_auc_score(blobs["mislabeled"], scores)


@pytest.mark.parametrize("name", ["confidence", "margin", "curvature", "neighbors"])
def test_posthoc_proxy_orientation(blobs, name):
    """Flipped labels score higher than ordinary items (higher = more memorized)."""
    X, y = blobs["X"], blobs["y"]
    # score the first half as forget, the second half as retain, and vice versa
    half = np.arange(len(y)) % 2 == 0
    scores = np.empty(len(y))
    for f in (half, ~half):
        p = rum.profile(blobs["model"], (X[f], y[f]), (X[~f], y[~f]), memorization=name,
                        random_state=0)
        scores[f] = p.memorization
    assert _auc(blobs, scores) > 0.85


@pytest.mark.parametrize("name", DYNAMICS_PROXIES)
def test_dynamics_proxy_orientation(blobs, name):
    s = blobs["recorder"].scores(name)
    assert not np.isnan(s).any()
    assert _auc(blobs, s) > 0.7


def test_recorder_bookkeeping_against_hand_computation():
    rec = MemorizationRecorder()
    lg = torch.log(torch.tensor([[0.9, 0.1], [0.4, 0.6]]))
    rec(0, torch.tensor([0, 2]), lg, torch.tensor([0, 0]))  # item 0 right, item 2 wrong
    rec(1, torch.tensor([0, 2]), lg.flip(0), torch.tensor([0, 0]))  # item 0 wrong, item 2 right
    assert rec.n_items == 3
    np.testing.assert_allclose(rec.scores("confidence"), [1 - 0.65, np.nan, 1 - 0.65])
    np.testing.assert_allclose(rec.scores("correctness"), [0.5, np.nan, 0.5])
    np.testing.assert_allclose(rec.scores("forgetting"), [1.0, np.nan, 0.0])
    np.testing.assert_allclose(rec.scores("learned_late"), [1.0, np.nan, 0.5])
    np.testing.assert_allclose(rec.scores("max_confidence", [0]), [1 - 0.75])
    ent = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1) + 0.4 * np.log(0.4) + 0.6 * np.log(0.6)) / 2
    np.testing.assert_allclose(rec.scores("entropy", [2]), [ent])
    back = MemorizationRecorder.from_dict(rec.to_dict())
    np.testing.assert_allclose(back.scores("learned_late"), rec.scores("learned_late"))
    with pytest.raises(InvalidParameterError, match="Did you mean 'confidence'"):
        rec.scores("confidance")
    with pytest.raises(InvalidParameterError, match="repeated"):
        rec(2, torch.tensor([1, 1]), lg, torch.tensor([0, 0]))
