from __future__ import annotations

import pytest
import torch
from torch import nn

from rum.exceptions import EmbeddingLayerError
from rum.profiler.embeddings import EmbeddingCapture, embed, find_embedding_layer


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
        self.head = nn.Linear(5, 2)
        self.fail = False

    def forward(self, x):
        h = self.body(x)
        out = self.head(h)
        if self.fail:
            raise RuntimeError("boom")
        return out


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_auto_is_input_of_last_linear():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))
    x = torch.randn(10, 4)
    emb, logits = embed(net, _data(x))
    with torch.no_grad():
        net.eval()
        ref = net[:3](x)
        net.train()
    torch.testing.assert_close(emb, ref)
    assert logits.shape == (10, 3)


def _data(x):
    from rum._data import TensorData

    return TensorData(x, torch.zeros(len(x), dtype=torch.long))


def test_named_module_output_is_flattened():
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    name, mod, side = find_embedding_layer(net, "1")
    assert (name, side) == ("1", "output")
    emb, _ = embed(net, _data(torch.randn(4, 1, 6)), layer="1")
    assert emb.shape == (4, 8)
    assert find_embedding_layer(net, net[0])[0] == "0"


def test_hooks_removed_and_mode_restored_after_exception():
    net = Boom()
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        with EmbeddingCapture(net) as cap:
            assert not net.training  # eval forced inside
            net.fail = True
            cap(torch.zeros(2, 3))
    assert _hooks(net) == 0
    assert net.training
    net.fail = False
    net.eval()
    with EmbeddingCapture(net, "body") as cap:
        cap(torch.zeros(2, 3))
    assert _hooks(net) == 0 and not net.training


def test_eval_mode_makes_embeddings_deterministic():
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.9), nn.Linear(8, 2))
    net.train()
    x = torch.randn(6, 4)
    a, _ = embed(net, _data(x))
    b, _ = embed(net, _data(x))
    torch.testing.assert_close(a, b)
    assert net.training


def test_no_linear_lists_candidates():
    net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
    with pytest.raises(EmbeddingLayerError, match=r"Candidate modules: '0', '1', '2', '3'"):
        find_embedding_layer(net)


def test_unknown_name_suggests():
    net = Boom()
    with pytest.raises(EmbeddingLayerError, match="Did you mean 'head'"):
        find_embedding_layer(net, "haed")
    with pytest.raises(EmbeddingLayerError, match="not part of the model"):
        find_embedding_layer(net, nn.Linear(1, 1))


def test_unused_layer_is_reported():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 2)
            self.unused = nn.Linear(3, 2)

        def forward(self, x):
            return self.a(x)

    net = TwoHeads()
    with pytest.raises(EmbeddingLayerError, match="was not called"):
        embed(net, _data(torch.zeros(2, 3)))
    assert _hooks(net) == 0
