from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rum


def make_net(d: int = 2, c: int = 3, h: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c))


@pytest.fixture(scope="session")
def blobs():
    """Three Gaussian blobs in 10-D with 12 flipped labels, and a net that memorized them.

    Returns a dict with X, y (noisy), mislabeled mask, the trained model and its
    MemorizationRecorder.
    """
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=2.0, size=(3, 10))
    y = np.repeat(np.arange(3), 80)
    X = (centres[y] + rng.normal(size=(len(y), 10))).astype(np.float32)
    mis = np.zeros(len(y), bool)
    flip = rng.choice(len(y), 12, replace=False)
    mis[flip] = True
    y = y.copy()
    y[flip] = (y[flip] + 1) % 3
    torch.manual_seed(0)
    net = make_net(d=10, h=64)
    rec = rum.profiler.MemorizationRecorder()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threads only add overhead on a shared machine
    try:
        rum.fit(net, (X, y), epochs=100, lr=1e-2, batch_size=64, device="cpu", random_state=0,
                callbacks=[rec])
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        fitted = (net(torch.tensor(X)).argmax(1).numpy() == y)[mis].mean()
    assert fitted == 1.0  # the net memorized every flipped label
    return dict(X=X, y=y, mislabeled=mis, model=net, recorder=rec)
