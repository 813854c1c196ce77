"""A cheaper check than the audit: can the forgotten labels be read back from the representation?

A model can stop predicting a forget item's label while its penultimate
features still encode it: a linear probe trained on those features recovers
it. The probe here is a logistic regression on the standardised embeddings of
retain items plus half of the forget items (with their labels), scored on the
other half, and the other way round, so every forget item is predicted by a
probe that never saw it. The same probe on a retrained model says how much a
model that never saw the forget set reveals anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rum._data import TensorData, as_data
from rum._model import check_fits_model, check_model
from rum._records import jsonable, table
from rum._validation import Interval, check_random_state, validate_params
from rum.profiler.embeddings import embed, find_embedding_layer

__all__ = ["linear_probe", "ProbeResult", "cross_fitted_probe"]


def cross_fitted_probe(
    retain_features: np.ndarray,
    retain_labels: np.ndarray,
    forget_features: np.ndarray,
    forget_labels: np.ndarray,
    *,
    seed: int = 0,
    C: float = 1.0,
) -> np.ndarray:
    """Predictions for every forget item by a probe trained on retain + the other half of the forget set.

    The forget set is split in two at random (with ``seed``); each half is
    predicted by a logistic regression fitted on the standardised retain
    features and the other half. Returns the predicted labels in forget order.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> Xr = rng.normal(size=(60, 2)); yr = (Xr[:, 0] > 0).astype(int)
        >>> Xf = rng.normal(size=(10, 2)); yf = (Xf[:, 0] > 0).astype(int)
        >>> bool((cross_fitted_probe(Xr, yr, Xf, yf) == yf).mean() >= 0.8)
        True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n = len(forget_labels)
    half = np.zeros(n, dtype=bool)
    half[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    pred = np.empty(n, dtype=np.int64)
    for fit_on in (half, ~half):
        target = ~fit_on
        if not target.any():
            continue
        X = np.concatenate([retain_features, forget_features[fit_on]])
        y = np.concatenate([retain_labels, forget_labels[fit_on]])
        scaler = StandardScaler().fit(X)
        if len(np.unique(y)) < 2:  # one class only: that is every prediction
            pred[target] = y[0]
            continue
        clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(X), y)
        pred[target] = clf.predict(scaler.transform(forget_features[target]))
    return pred


@dataclass(frozen=True)
class ProbeResult:
    """How well a linear probe on the penultimate features recovers the forget set's labels.

    Attributes:
        probe_accuracy: the cross-fitted probe's accuracy on the forget items.
        head_accuracy: the model's own accuracy on them.
        reference_probe_accuracy, reference_head_accuracy: the same for the
            retrained reference (``None`` without one).
        layer: the module whose activations were probed.
        n_retain: retain items the probes were trained on.

    A probe accuracy well above the reference's means the representation
    still holds the forgotten labels, whatever the head now predicts.

    Examples:
        >>> r = ProbeResult(0.9, 0.1, 0.3, 0.3, "2", 500)
        >>> round(r.gap, 2)
        0.6
    """

    probe_accuracy: float
    head_accuracy: float
    reference_probe_accuracy: float | None
    reference_head_accuracy: float | None
    layer: str
    n_retain: int

    @property
    def gap(self) -> float | None:
        """Probe accuracy minus the reference's (``None`` without a reference)."""
        if self.reference_probe_accuracy is None:
            return None
        return self.probe_accuracy - self.reference_probe_accuracy

    def __str__(self) -> str:
        rows = [("audited model", self.probe_accuracy, self.head_accuracy)]
        if self.reference_probe_accuracy is not None:
            rows.append(("retrained reference", self.reference_probe_accuracy, self.reference_head_accuracy))
        return table(["model", "probe accuracy", "head accuracy"], rows,
                     f"Linear probe on layer {self.layer!r} ({self.n_retain} retain items), forget set")

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)


def _one(model: torch.nn.Module, retain: TensorData, forget: TensorData, layer: Any, seed: int
         ) -> tuple[float, float]:
    er, _ = embed(model, retain, layer)
    ef, lf = embed(model, forget, layer)
    pred = cross_fitted_probe(er.numpy().astype(np.float64), retain.y.numpy(),
                              ef.numpy().astype(np.float64), forget.y.numpy(), seed=seed)
    return float((pred == forget.y.numpy()).mean()), float((lf.argmax(1) == forget.y).float().mean())


def linear_probe(
    model: Any,
    forget_set: Any,
    retain_set: Any,
    *,
    reference: Any = None,
    embedding_layer: Any = "auto",
    max_retain: int = 2000,
    random_state: Any = 0,
) -> ProbeResult:
    """Can the forgotten labels be read back from the model's penultimate features?

    Trains a logistic-regression probe on the embeddings (by default the input
    of the last ``nn.Linear``, as the profiler uses) of up to ``max_retain``
    retain items and half of the forget items, predicts the other half, and
    swaps. Seconds on small models; no retraining beyond the reference you have.

    Args:
        model: the audited model (or its :class:`~rum.UnlearnResult`).
        forget_set: the forgotten items.
        retain_set: the retained training data (a random sample of
            ``max_retain`` items trains the probe).
        reference: a model retrained without the forget set, probed the same way.
        embedding_layer: ``"auto"``, a module name or a module (see :func:`rum.profile`).
        max_retain: at most this many retain items train the probe.
        random_state: seed for the retain sample and the forget split.

    Returns:
        ProbeResult: probe and head accuracies on the forget set, for the
        model and the reference.

    Examples:
        >>> import rum
        >>> res = rum.metrics.linear_probe(unlearned, forget, retain, reference=retrained)  # doctest: +SKIP
        >>> res.gap  # doctest: +SKIP
    """
    validate_params({"max_retain": max_retain}, {"max_retain": [Interval(int, 1, None)]},
                    "rum.metrics.linear_probe")
    models = [("model", model), ("reference", reference)]
    unwrapped = []
    for name, m in models:
        if m is None:
            unwrapped.append(None)
            continue
        if not isinstance(m, torch.nn.Module) and isinstance(getattr(m, "model", None), torch.nn.Module):
            m = m.model
        unwrapped.append(check_model(m, name))
    forget = as_data(forget_set, "forget_set")
    retain = as_data(retain_set, "retain_set")
    seed = check_random_state(random_state)
    for m in unwrapped:
        if m is not None:
            check_fits_model(m, {"forget_set": forget, "retain_set": retain})
            find_embedding_layer(m, embedding_layer)
    if len(retain) > max_retain:
        keep = np.sort(np.random.default_rng(seed).choice(len(retain), max_retain, replace=False))
        retain = retain.subset(keep)
    name = find_embedding_layer(unwrapped[0], embedding_layer)[0]
    probe, head = _one(unwrapped[0], retain, forget, embedding_layer, seed)
    ref_probe = ref_head = None
    if unwrapped[1] is not None:
        ref_probe, ref_head = _one(unwrapped[1], retain, forget, embedding_layer, seed)
    return ProbeResult(probe, head, ref_probe, ref_head, name, len(retain))
