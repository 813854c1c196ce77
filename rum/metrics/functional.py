"""Pure metric functions (no models, no data loading): easy to test against hand-computed values.

The prediction helpers (logits in eval mode, accuracy, lost skill) live in the runtime,
which the retain guard shares; they are re-exported here.
"""

from __future__ import annotations

from rum._runtime.predict import (
    accuracy_from_logits,
    check_fraction,
    predict_logits,
    skill_lost,
    true_label_confidence,
)

__all__ = [
    "accuracy_gap",
    "skill_lost",
    "tow",
    "tow_mia",
    "predict_logits",
    "true_label_confidence",
    "accuracy_from_logits",
]


def accuracy_gap(a: float, b: float) -> float:
    """``|a - b|`` for two accuracies given as fractions in [0, 1].

    Examples:
        >>> round(accuracy_gap(0.9, 0.75), 6)
        0.15
    """
    return abs(check_fraction("a", a) - check_fraction("b", b))


def tow(
    forget: tuple[float, float], retain: tuple[float, float], test: tuple[float, float]
) -> float:
    """Tug-of-war: ``(1 - Δforget)(1 - Δretain)(1 - Δtest)``.

    Each argument is ``(accuracy of the unlearned model, accuracy of the
    retrained model)`` as fractions. 1 means the unlearned model matches the
    retrained one everywhere; it rewards matching the oracle, not driving
    forget accuracy to zero.

    Examples:
        >>> round(tow((0.8, 0.7), (1.0, 1.0), (0.9, 0.95)), 6)
        0.855
    """
    return (1 - accuracy_gap(*forget)) * (1 - accuracy_gap(*retain)) * (1 - accuracy_gap(*test))


def tow_mia(
    mia: tuple[float, float], retain: tuple[float, float], test: tuple[float, float]
) -> float:
    """ToW with the membership-inference score in place of forget accuracy.

    ``mia`` is ``(MIA of the unlearned model, MIA of the retrained model)`` on
    the forget set, each the fraction of forget items judged non-members.

    Examples:
        >>> round(tow_mia((0.3, 0.5), (1.0, 1.0), (0.9, 0.9)), 6)
        0.8
    """
    return (1 - accuracy_gap(*mia)) * (1 - accuracy_gap(*retain)) * (1 - accuracy_gap(*test))
