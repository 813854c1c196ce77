"""Record memorization while you train, in your own training loop, and profile with it.

The recorder keeps running per-item statistics (true-label confidence,
correctness, forgetting events...) from the logits your loop computes anyway.
Afterwards its scores rank training items by how memorized they are, and can
be handed to ``rum.profile`` / ``rum.unlearn`` as precomputed memorization.

Run with ``python examples/memorization_recorder.py`` (a few seconds).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

import rum
from rum.demo import make_mlp
from rum.profiler import MemorizationRecorder

QUICK = os.environ.get("RUM_EXAMPLE_QUICK") == "1"
EPOCHS = 30 if QUICK else 60

# Digits with 5 % of the labels flipped: the flipped items are what a model memorises.
X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X).astype(np.float32)
rng = np.random.default_rng(0)
flipped = rng.choice(len(y), int(0.05 * len(y)), replace=False)
y = y.copy()
y[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10
is_flipped = np.zeros(len(y), bool)
is_flipped[flipped] = True

# Your own training loop: the only addition is the `recorder(...)` line.
torch.manual_seed(0)
model = make_mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
recorder = MemorizationRecorder()
Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
gen = torch.Generator().manual_seed(0)
for epoch in range(EPOCHS):
    for idx in torch.randperm(len(y), generator=gen).split(64):
        logits = model(Xt[idx])
        recorder(epoch, idx, logits.detach(), yt[idx])  # <- record before the step
        loss = torch.nn.functional.cross_entropy(logits, yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
model.eval()

# How well does each recorded proxy find the flipped labels?
for proxy in ["confidence", "correctness", "learned_late", "forgetting"]:
    auc = roc_auc_score(is_flipped, recorder.scores(proxy))
    print(f"{proxy:>13}: AUC at finding flipped labels {auc:.3f}")

# Forget 10 % of the training set, profiling it with the recorded scores.
forget_idx = np.sort(np.concatenate([flipped, rng.choice(np.flatnonzero(~is_flipped), len(flipped), replace=False)]))
keep = np.setdiff1d(np.arange(len(y)), forget_idx)
forget, retain = (X[forget_idx], y[forget_idx]), (X[keep], y[keep])
scores = recorder.scores("confidence", forget_idx)  # one score per forget item, in forget order
profile = rum.profile(model, forget, retain, memorization=scores, random_state=0)
print(profile)
result = rum.unlearn(model, forget, retain, memorization=scores, random_state=0)
print(result)
acc = result.metrics["forget_acc_after"]
print(f"forget accuracy {result.metrics['forget_acc_before']:.3f} -> {acc:.3f}")
