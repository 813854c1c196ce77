"""A torchvision ResNet-18 forgets a class and a random subset, with no wrapper code.

The model is built from its config (``resnet18(num_classes=4)``, random weights, nothing
downloaded) and trained on synthetic 32x32 images: each class is a coloured stripe pattern
under noise. rum takes the model as it is: BatchNorm layers, image tensors, a Dataset of
``(image, label)`` pairs.

Needs ``pip install "rum[vision]"``. Run: python examples/vision_resnet.py  (a minute or two on
a laptop CPU).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from torchvision.models import resnet18

import rum

QUICK = os.environ.get("RUM_EXAMPLE_QUICK") == "1"
N_PER_CLASS = 60 if QUICK else 150
SEED = 0


def synthetic_images(n_per_class: int, n_classes: int = 4, size: int = 32, seed: int = 0):
    """Images whose class is a stripe direction and a colour, under Gaussian noise."""
    rng = np.random.default_rng(seed)
    grid = np.arange(size)
    images, labels = [], []
    for c in range(n_classes):
        stripes = np.sin(grid[:, None] * 0.8) if c % 2 else np.sin(grid[None, :] * 0.8)
        pattern = np.zeros((3, size, size))
        pattern[c % 3] = np.broadcast_to(stripes, (size, size))
        noise = rng.normal(scale=1.0, size=(n_per_class, 3, size, size))
        images.append(pattern + noise)
        labels.append(np.full(n_per_class, c))
    X = np.concatenate(images).astype(np.float32)
    return torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(np.concatenate(labels)))


def subset(data, index):
    return torch.utils.data.Subset(data, np.asarray(index).tolist())


train = synthetic_images(N_PER_CLASS, seed=SEED)
test = synthetic_images(N_PER_CLASS // 3, seed=SEED + 1)
labels = train.tensors[1].numpy()

torch.manual_seed(SEED)
model = rum.fit(resnet18(num_classes=4), train, epochs=8, lr=0.02, batch_size=32,
                random_state=SEED)

# Class-wise forgetting: every item of class 3 goes.
forget, retain = np.flatnonzero(labels == 3), np.flatnonzero(labels != 3)
print(rum.evaluate(model, forget_set=subset(train, forget), retain_set=subset(train, retain),
                   test_set=test, name="original"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", rum.exceptions.RumWarning)
    result = rum.unlearn(model, subset(train, forget), subset(train, retain), random_state=SEED)
print(result.profile)
print(rum.evaluate(result.model, forget_set=subset(train, forget), retain_set=subset(train, retain),
                   test_set=test))

# Random forgetting: 5 % of the items, all classes.
rng = np.random.default_rng(SEED)
gone = rng.choice(len(train), size=len(train) // 20, replace=False)
kept = np.setdiff1d(np.arange(len(train)), gone)
result = rum.unlearn(model, subset(train, gone), subset(train, kept), random_state=SEED)
print(rum.evaluate(result.model, forget_set=subset(train, gone), retain_set=subset(train, kept),
                   test_set=test))
