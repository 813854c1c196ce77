"""Errors and warnings raised by rum.

Every error rum raises on bad input derives from :class:`RumError` and from
``ValueError`` or ``TypeError``, so ``except ValueError`` keeps working. Each
message names the offending argument and says how to fix it.
"""

from __future__ import annotations

__all__ = [
    "RumError",
    "InvalidParameterError",
    "UnknownNameError",
    "UnknownUnlearnerError",
    "UnknownOptionError",
    "NotAModelError",
    "NotDataError",
    "EmptyDataError",
    "InvalidDataError",
    "IncompatibleDataError",
    "ModelOutputError",
    "InvalidDeviceError",
    "UnknownScorerError",
    "UnknownGroupingError",
    "EmbeddingLayerError",
    "InvalidScoresError",
    "RetainRequiredError",
    "IneligibleModelError",
    "InvalidFileError",
    "UnlearningFailedError",
    "RumWarning",
    "DivergenceWarning",
]


class RumError(Exception):
    """Base class of every error rum raises."""


class InvalidParameterError(RumError, ValueError, TypeError):
    """A parameter has the wrong type or a value outside its allowed range."""


class UnknownNameError(RumError, ValueError):
    """A name was looked up in a registry that does not know it."""


class UnknownUnlearnerError(UnknownNameError):
    """An unlearner name is not registered."""


class UnknownOptionError(RumError, TypeError):
    """A keyword option is not accepted by the call or the chosen unlearner."""


class NotAModelError(RumError, TypeError):
    """The model is not a ``torch.nn.Module``."""


class NotDataError(RumError, TypeError):
    """A data argument is not in a form rum understands."""


class EmptyDataError(RumError, ValueError):
    """A data argument holds no items where at least one is required."""


class InvalidDataError(RumError, ValueError):
    """Data values are unusable: NaN/inf features, bad labels, length mismatch."""


class IncompatibleDataError(RumError, ValueError):
    """The data does not fit the model (feature shape, number of classes)."""


class ModelOutputError(RumError, TypeError):
    """The model's output is not logits rum can read; name them with ``output=``."""


class InvalidDeviceError(RumError, ValueError):
    """A device string cannot be used on this machine."""


class UnknownScorerError(UnknownNameError):
    """A memorization scorer name is not registered."""


class UnknownGroupingError(UnknownNameError):
    """A grouping strategy name is not registered."""


class EmbeddingLayerError(RumError, ValueError):
    """No embedding layer could be found in the model, or the named one does not exist."""


class InvalidScoresError(RumError, ValueError):
    """Precomputed per-item scores have the wrong length or hold NaN/inf."""


class RetainRequiredError(RumError, ValueError):
    """A profiler score needs the retain set, but none was given."""
class IneligibleModelError(RumError, ValueError):
    """The model does not meet a method's assumptions (e.g. certified removal needs a convex model)."""
class InvalidFileError(RumError, ValueError):
    """A file given to rum (model weights, data, a saved record) is missing or unusable."""


class UnlearningFailedError(RumError, RuntimeError):
    """A step diverged or was undone by the retain guard, so its forget items were not unlearned.

    Raised by ``rum.unlearn(..., on_failure="raise")`` instead of a
    :class:`DivergenceWarning`.
    """


class RumWarning(UserWarning):
    """Base class of the warnings rum emits."""


class DivergenceWarning(RumWarning):
    """A step's loss became NaN or infinite; the step was stopped and rolled back."""
