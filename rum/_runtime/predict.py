"""Predictions and accuracies of a model: logits in eval mode, accuracy, lost skill."""

from __future__ import annotations

import numpy as np
import torch

from rum._data import move
from rum._model import eval_mode, forward, model_device, model_dtype, pick_logits
from rum.exceptions import InvalidParameterError

__all__ = [
    "predict_logits",
    "accuracy_from_logits",
    "accuracy_on",
    "true_label_confidence",
    "skill_lost",
    "check_fraction",
]


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float, or :class:`InvalidParameterError` when it is not in [0, 1]."""
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InvalidParameterError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return v


@torch.no_grad()
def predict_logits(model: torch.nn.Module, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``X`` in eval mode (every submodule's mode restored), on the CPU."""
    device, dtype = model_device(model), model_dtype(model)
    out = []
    with eval_mode(model):
        for start in range(0, len(X), batch_size):
            o = pick_logits(forward(model, move(X[start : start + batch_size], device, dtype)))
            out.append(o.detach().float().cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


def true_label_confidence(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Softmax probability of the true label for each row."""
    p = torch.softmax(logits.float(), dim=1)
    return p.gather(1, y.view(-1, 1).to(p.device)).flatten().numpy()


def accuracy_from_logits(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of rows whose largest logit is the label (``nan`` for no rows)."""
    if len(y) == 0:
        return float("nan")
    return float((logits.argmax(1) == y.to(logits.device)).float().mean())


def accuracy_on(model: torch.nn.Module, data) -> float:
    """``model``'s accuracy on ``data`` (a :class:`~rum.TensorData`; ``nan`` for no data)."""
    if data is None or len(data) == 0:
        return float("nan")
    return accuracy_from_logits(predict_logits(model, data.X), data.y.cpu())


def skill_lost(before: float, after: float, floor: float) -> float:
    """Fraction of a model's accuracy above ``floor`` that was lost going from ``before`` to ``after``.

    ``floor`` is the accuracy of a model that has learnt nothing useful (the
    majority-class rate). 0 means nothing was lost, 1 that the model fell to
    the floor; negative values mean it improved. When ``before`` is not above
    ``floor`` there is no skill to lose and the result is 0.

    Examples:
        >>> skill_lost(0.9, 0.5, 0.1)
        0.5
        >>> round(skill_lost(0.9, 0.95, 0.1), 4)
        -0.0625
    """
    for name, v in (("before", before), ("after", after), ("floor", floor)):
        check_fraction(name, v)
    if before <= floor:
        return 0.0
    return float((before - after) / (before - floor))
