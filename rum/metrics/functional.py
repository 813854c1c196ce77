"""Pure metric functions (no models, no data loading): easy to test against hand-computed values."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["accuracy_gap", "skill_lost", "tow", "tow_mia", "predict_logits", "true_label_confidence"]


def _check_fraction(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        from rum.exceptions import InvalidParameterError

        raise InvalidParameterError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return v


def accuracy_gap(a: float, b: float) -> float:
    """``|a - b|`` for two accuracies given as fractions in [0, 1].

    Example:
        >>> round(accuracy_gap(0.9, 0.75), 6)
        0.15
    """
    return abs(_check_fraction("a", a) - _check_fraction("b", b))


def tow(
    forget: tuple[float, float], retain: tuple[float, float], test: tuple[float, float]
) -> float:
    """Tug-of-war: ``(1 - Δforget)(1 - Δretain)(1 - Δtest)``.

    Each argument is ``(accuracy of the unlearned model, accuracy of the
    retrained model)`` as fractions. 1 means the unlearned model matches the
    retrained one everywhere; it rewards matching the oracle, not driving
    forget accuracy to zero.

    Example:
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

    Example:
        >>> round(tow_mia((0.3, 0.5), (1.0, 1.0), (0.9, 0.9)), 6)
        0.8
    """
    return (1 - accuracy_gap(*mia)) * (1 - accuracy_gap(*retain)) * (1 - accuracy_gap(*test))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``X`` in eval mode (mode restored afterwards), on the CPU."""
    from rum.data import model_device, model_dtype

    was_training = model.training
    model.eval()
    device, dtype = model_device(model), model_dtype(model)
    out = []
    try:
        for start in range(0, len(X), batch_size):
            o = model(X[start : start + batch_size].to(device=device, dtype=dtype))
            o = o[0] if isinstance(o, (tuple, list)) else o
            out.append(o.detach().float().cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


def true_label_confidence(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Softmax probability of the true label for each row."""
    p = torch.softmax(logits.float(), dim=1)
    return p.gather(1, y.view(-1, 1).to(p.device)).flatten().numpy()


def accuracy_from_logits(logits: torch.Tensor, y: torch.Tensor) -> float:
    if len(y) == 0:
        return float("nan")
    return float((logits.argmax(1) == y.to(logits.device)).float().mean())


def skill_lost(before: float, after: float, floor: float) -> float:
    """Fraction of a model's accuracy above ``floor`` that was lost going from ``before`` to ``after``.

    ``floor`` is the accuracy of a model that has learnt nothing useful (the
    majority-class rate). 0 means nothing was lost, 1 that the model fell to
    the floor; negative values mean it improved. When ``before`` is not above
    ``floor`` there is no skill to lose and the result is 0.

    Example:
        >>> skill_lost(0.9, 0.5, 0.1)
        0.5
        >>> round(skill_lost(0.9, 0.95, 0.1), 4)
        -0.0625
    """
    for name, v in (("before", before), ("after", after), ("floor", floor)):
        _check_fraction(name, v)
    if before <= floor:
        return 0.0
    return float((before - after) / (before - floor))
