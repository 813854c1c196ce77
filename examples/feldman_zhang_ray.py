"""Estimate Feldman-Zhang memorization on a Ray cluster (or locally), then profile with it.

The estimator trains many models on random 70 % subsets of the training set
and scores every item by ``P[right | item in] - P[right | item out]``. Runs are
independent, so they spread over a Ray cluster (``pip install
'rum-unlearn[distributed]'``; ``ray.init(address=...)`` to join yours, or a
local one is started), and a checkpoint file lets an interrupted run resume.

Run with ``python examples/feldman_zhang_ray.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import ray
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from rum.profiler import SklearnTrainer, feldman_zhang

QUICK = os.environ.get("RUM_EXAMPLE_QUICK") == "1"
N_RUNS = 20 if QUICK else 100

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X).astype(np.float32)
rng = np.random.default_rng(0)
flipped = rng.choice(len(y), int(0.05 * len(y)), replace=False)
y = y.copy()
y[flipped] = (y[flipped] + rng.integers(1, 10, len(flipped))) % 10

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
try:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "fz.npz"
        # any model with fit/predict works; a 1-nearest-neighbour classifier
        # memorises every training item, so its scores are easy to read
        trainer = SklearnTrainer(KNeighborsClassifier(n_neighbors=1))
        res = feldman_zhang(trainer, (X, y), n_runs=N_RUNS, backend="ray", checkpoint=ckpt,
                            random_state=0)
        # a second call with the same checkpoint trains nothing: it resumes
        again = feldman_zhang(trainer, (X, y), n_runs=N_RUNS, backend="ray", checkpoint=ckpt,
                              random_state=0)
finally:
    ray.shutdown()

print(res)
mem = np.nan_to_num(res.memorization)
is_flipped = np.zeros(len(y), bool)
is_flipped[flipped] = True
print(f"AUC of FZ memorization at finding the flipped labels: {roc_auc_score(is_flipped, mem):.3f}")
print(f"resumed run identical: {np.array_equal(res.memorization, again.memorization, equal_nan=True)}")
