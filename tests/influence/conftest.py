from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from rum.influence import fit_convex
from tests.influence._helpers import LAM


@pytest.fixture(scope="session")
def cancer():
    """Standardised breast_cancer features (float32) and 0/1 labels."""
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="session")
def cancer_model(cancer):
    """L2-regularised logistic regression (Linear(30, 2)) trained to the optimum."""
    X, y = cancer
    torch.manual_seed(0)
    return fit_convex(torch.nn.Linear(X.shape[1], 2), (X, y), weight_decay=LAM).float()
