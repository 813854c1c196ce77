"""Unlearn a leaking feature from a logistic regression, exactly, without retraining.

A tabular data set (breast_cancer) gets a planted column that leaks the label
in 30 % of the training rows. ``rum.requests.replace_features`` zeroes it
wherever it is present, and ``rum.correct`` updates the weights with Newton
steps on the corrected objective until the gradient residual is ~0, i.e. to
the model retraining on the edited data would give.

Run: python examples/feature_unlearning.py   (a few seconds)
"""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import rum
from rum.influence import fit_convex

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
rng = np.random.default_rng(0)
leak = np.zeros(len(y))
rows = rng.choice(len(y), int(0.3 * len(y)), replace=False)
leak[rows] = 2 * y[rows] - 1                       # the label, in plain sight
X = np.hstack([X, leak[:, None]]).astype(np.float32)

lam = 1e-2  # mean cross-entropy + lam/2 ||theta||^2
model = fit_convex(torch.nn.Linear(X.shape[1], 2), (X, y), weight_decay=lam).float()

request = rum.requests.replace_features((X, y), columns=[X.shape[1] - 1], values=0.0)
print(request)                                     # only rows where the feature was present

first = rum.correct(model, request, train_set=(X, y), weight_decay=lam, settings={"order": 1})
second = rum.correct(model, request, train_set=(X, y), weight_decay=lam)   # order=2

X_clean = X.copy()
X_clean[:, -1] = 0.0
retrained = fit_convex(torch.nn.Linear(X.shape[1], 2), (X_clean, y), weight_decay=lam)


def leak_weight(m):
    return float((m.weight[1, -1] - m.weight[0, -1]).detach())


def dist(m):
    a = torch.cat([p.detach().double().flatten() for p in m.parameters()])
    b = torch.cat([p.detach().double().flatten() for p in retrained.parameters()])
    return float((a - b).norm())


print(f"weight on the leaking feature: original {leak_weight(model):.3f}, first order "
      f"{leak_weight(first.model):.3f}, second order {leak_weight(second.model):.2e}")
print(f"distance to the retrained model: original {dist(model):.3f}, first order "
      f"{dist(first.model):.3f}, second order {dist(second.model):.2e}")
print(f"gradient residual: first order {first.residual:.2e}, second order "
      f"{second.residual:.2e} after {second.steps} Newton steps")
