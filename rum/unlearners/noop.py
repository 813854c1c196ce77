"""The do-nothing unlearner: the original model, as a baseline."""

from __future__ import annotations

from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner


@register_unlearner("noop")
class Noop(Unlearner):
    """Return the model unchanged.

    The baseline every other unlearner is compared with, and the right choice
    for forget items the model would predict the same way without them.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("noop")()
        Noop()
    """

    tags = UnlearnerTags(stochastic=False, cost="none", source="baseline")

    def estimate_work(self, n_forget, n_retain):
        return 0.0

    def _unlearn(self, model, forget, retain, ctx):
        return model

    @classmethod
    def _expected_failed_checks(cls):
        return {
            "check_behaviour": "noop is the baseline the behaviour check compares with; "
            "it leaves forget accuracy where it is by design."
        }
