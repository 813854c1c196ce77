"""Quick start: make a digits classifier forget mislabeled and ordinary training items.

Run with ``python examples/quickstart.py`` (about 10 seconds on a laptop CPU).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import rum

SEED = 0

# 1. Data: digits with 5 % of the training labels flipped (a stand-in for bad data).
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train).astype(np.float32)
X_test = scaler.transform(X_test).astype(np.float32)
rng = np.random.default_rng(SEED)
order = rng.permutation(len(y_train))
flipped, ordinary = order[:63], order[63:126]
y_train[flipped] = (y_train[flipped] + rng.integers(1, 10, len(flipped))) % 10

# 2. A model that memorises its training set, flipped labels included.
torch.manual_seed(SEED)
model = torch.nn.Sequential(
    torch.nn.Linear(64, 128), torch.nn.ReLU(),
    torch.nn.Linear(128, 128), torch.nn.ReLU(),
    torch.nn.Linear(128, 10),
)
rum.fit(model, (X_train, y_train), epochs=60, lr=1e-3, random_state=SEED)

# 3. The deletion request: the flipped items plus as many ordinary ones.
forget_idx = np.concatenate([flipped, ordinary])
keep = np.setdiff1d(np.arange(len(y_train)), forget_idx)
forget = (X_train[forget_idx], y_train[forget_idx])
retain = (X_train[keep], y_train[keep])
test = (X_test, y_test)

# 4. Unlearn with the default pipeline (profile -> plan -> execute).
result = rum.unlearn(model, forget, retain, random_state=SEED)
print(result.profile)
print(result.plan)
print(result)

# 5. Compare with retraining from scratch (the oracle) and with one single unlearner.
oracle = rum.unlearn(model, forget, retain, unlearner="retrain", epochs=60, lr=1e-3,
                     random_state=SEED)
finetuned = rum.unlearn(model, forget, retain, unlearner="finetune", random_state=SEED)
reports = [
    rum.evaluate(m, forget_set=forget, retain_set=retain, test_set=test,
                 reference=oracle.model, name=name)
    for name, m in [("original", model), ("rum", result.model), ("finetune", finetuned.model)]
]
print(rum.EvaluationReport.table(reports, title="Against the retrained model"))
print(f"rum took {result.timings['total']:.2f}s, retraining {oracle.timings['total']:.2f}s")
