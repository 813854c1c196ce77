"""Class-wise forgetting: take whole classes out of the model's output layer."""

from __future__ import annotations

import numbers

import torch

from rum._validation import NONE, InstanceOf, Interval
from rum.exceptions import IncompatibleDataError, InvalidDataError, InvalidParameterError
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner

#: The bias a forgotten class's output gets: far below any logit a trained model gives.
FORGOTTEN_LOGIT = -1e4


def output_layer(model: torch.nn.Module, n_classes: int) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` with ``n_classes`` outputs and a bias (its output layer)."""
    found = [m for m in model.modules()
             if isinstance(m, torch.nn.Linear) and m.out_features == n_classes]
    if not found or found[-1].bias is None:
        raise IncompatibleDataError(
            f"forget-class needs an output layer: an nn.Linear with {n_classes} outputs and a bias "
            f"(found {'one without a bias' if found else 'none'}). Use another unlearner, e.g. "
            "'random-label', for this model."
        )
    return found[-1]


@register_unlearner("forget-class")
class ForgetClass(Unlearner):
    """Forget whole classes: the model never predicts them again; nothing else changes.

    A model retrained without any item of a class never predicts that class:
    its output for the class is driven to the bottom, and the other classes are
    predicted as before (an item the original put in the forgotten class goes to
    its next most likely class). This unlearner does exactly that to the output
    layer: the forgotten classes' weights are zeroed and their biases set to
    :data:`FORGOTTEN_LOGIT`. It costs one pass over nothing and leaves every
    other output, and so the retain classes' accuracy, as the original had it
    (or better). The layers below still carry what they learnt about the class:
    a probe of the embedding, unlike the model's predictions, may still find it.
    The planner uses it for the items of classes a forget set holds all or
    nearly all of (``profile.check``; :mod:`rum.profiler`).

    Args:
        classes: the labels to forget; ``None``: every label of the forget set
            that the retain set does not hold (every label of the forget set
            when no retain set is given). Forget items of other labels are left as
            they are; with ``None`` and no such label it is an error, since
            nothing would change.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("forget-class")(classes=[3])
        ForgetClass(classes=[3])
    """

    tags = UnlearnerTags(requires_retain=False, stochastic=False, cost="none",
                         source="rum (the output-layer view of a retrain without the class)",
                         suits=("class-wise",))
    _parameter_constraints = {
        "classes": [NONE, Interval(int, 0, None), InstanceOf((list, tuple), "a list of labels")],
    }

    def __init__(self, classes: list[int] | None = None):
        self.classes = classes

    def estimate_work(self, n_forget, n_retain):
        return 0.0

    def forgotten(self, forget, retain, n_classes: int) -> list[int]:
        """The labels this unlearner takes out for ``forget`` and ``retain``."""
        if self.classes is not None:
            labels = [self.classes] if isinstance(self.classes, numbers.Integral) else list(self.classes)
            bad = [c for c in labels
                   if not isinstance(c, numbers.Integral) or isinstance(c, bool) or not 0 <= c < n_classes]
            if bad:
                raise InvalidParameterError(
                    f"The 'classes' parameter of ForgetClass must hold labels in [0, {n_classes}); "
                    f"got {bad}."
                )
            return sorted(int(c) for c in labels)
        present = set(forget.y.reshape(-1).tolist())
        if retain is not None and len(retain):
            present -= set(retain.y.reshape(-1).tolist())
        return sorted(int(c) for c in present)

    def _unlearn(self, model, forget, retain, ctx):
        classes = self.forgotten(forget, retain, ctx.n_classes)
        if not classes:
            # nothing would change: the forget items would silently stay learnt
            raise InvalidDataError(
                "forget-class found no class to take out: every label of the forget set also "
                "has items in retain_set, so its items would not be unlearned. Name the classes "
                "(classes=[...]) or use another unlearner (the default pipeline plans such sets)."
            )
        layer = output_layer(model, ctx.n_classes)
        with torch.no_grad():
            idx = torch.as_tensor(classes, device=layer.weight.device)
            layer.weight[idx] = 0.0
            layer.bias[idx] = FORGOTTEN_LOGIT
        return model

    @classmethod
    def _test_params(cls):
        # the kit's forget sets mix every class with retain items of the same classes
        return {"classes": [0]}

    @classmethod
    def _expected_failed_checks(cls):
        return {
            "check_behaviour": "forget-class takes out whole classes; the behaviour task's "
            "forget set mixes items of every class with retain items of the same classes, so "
            "taking out one class (the kit's classes=[0]) cannot bring it to a retrain's "
            "behaviour. tests/test_scenarios.py checks it on a whole class."
        }
