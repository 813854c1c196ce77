"""Profiler: score every forget item and split the forget set into homogeneous groups."""

from __future__ import annotations

from typing import Any

import torch

from rum._validation import check_random_state
from rum.data import TensorData, as_data, check_fits_model, check_model
from rum.metrics.functional import predict_logits, true_label_confidence
from rum.profiler.profile import GroupSummary, Profile

__all__ = ["profile", "Profile", "GroupSummary"]


def _profile_data(
    model: torch.nn.Module, forget: TensorData, retain: TensorData | None, seed: int
) -> Profile:
    """Profile already-validated data (used by :func:`rum.unlearn`)."""
    conf = true_label_confidence(predict_logits(model, forget.X), forget.y)
    mem = 1.0 - conf
    return Profile.single_group(
        mem,
        scorers={"memorization": "confidence", "entanglement": "none", "grouping": "single"},
        seed=seed,
    )


def profile(
    model: Any,
    forget_set: Any,
    retain_set: Any = None,
    *,
    random_state: Any = None,
) -> Profile:
    """Score every forget item and group the forget set.

    Memorization is scored post hoc as ``1 - p(true label)`` under the model;
    every item goes into one group.

    Example:
        >>> import rum
        >>> p = rum.profile(model, forget_set, retain_set)  # doctest: +SKIP
        >>> print(p)  # doctest: +SKIP
    """
    check_model(model)
    forget = as_data(forget_set, "forget_set")
    retain = None if retain_set is None else as_data(retain_set, "retain_set", allow_empty=True)
    sets = {"forget_set": forget}
    if retain is not None:
        sets["retain_set"] = retain
    check_fits_model(model, sets)
    return _profile_data(model, forget, retain, check_random_state(random_state))
