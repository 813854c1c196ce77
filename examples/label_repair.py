"""Repair a model trained on poisoned labels without retraining it.

A small MLP is trained on scikit-learn's digits with 20 % of the training
labels flipped. Once the flipped items and their true labels are known,
``rum.correct`` moves the weights towards the model retrained on clean labels
with one second-order (influence) update of the last layer.

Run: python examples/label_repair.py   (about 10 s on 2 CPU cores)
"""

import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import rum

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

rng = np.random.default_rng(0)
poisoned_idx = rng.choice(len(y_tr), int(0.2 * len(y_tr)), replace=False)
y_poisoned = y_tr.copy()
y_poisoned[poisoned_idx] = 9 - y_poisoned[poisoned_idx]

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
# weight_decay here is the lambda rum.correct must be told about
rum.fit(model, (X_tr, y_poisoned), epochs=30, lr=2e-3, weight_decay=1e-4, random_state=0)


def accuracy(m):
    with torch.no_grad():
        return (m(torch.as_tensor(X_te)).argmax(1).numpy() == y_te).mean()


# The request: these training items should have had these labels.
request = rum.requests.relabel((X_tr, y_poisoned), poisoned_idx, y_tr[poisoned_idx])

t = time.perf_counter()
result = rum.correct(
    model, request, train_set=(X_tr, y_poisoned),
    weight_decay=1e-4,   # the objective the model was trained on
    parameters=1,        # the last layer only: convex given the features
    settings={"solver": "cg", "damping": 0.01, "cg_maxiter": 20},
)
seconds = time.perf_counter() - t

print(f"test accuracy, poisoned model : {accuracy(model):.3f}")
print(f"test accuracy, corrected model: {accuracy(result.model):.3f}  ({seconds:.2f}s)")
print(f"accuracy on the repaired items: {result.accuracies['after_acc_before']:.3f} -> "
      f"{result.accuracies['after_acc_after']:.3f}")
print(f"gradient residual of the corrected objective: {result.residual_before:.2e}"
      f" -> {result.residual:.2e}")
