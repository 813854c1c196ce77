"""The registry of memorization scorers and the inputs they receive.

A scorer is a function ``fn(inputs: ScoringInputs) -> np.ndarray`` returning
one score per forget item, oriented **higher = more memorized**. Register your
own with :func:`register_scorer`; :func:`rum.profile` then accepts its name.

Built-in scorers (all post hoc: they need only the trained model):

==============  =====================================================  ==============
name            score                                                  needs retain
==============  =====================================================  ==============
``confidence``  ``1 - p(y|x)``                                         no
``margin``      ``max_{k!=y} p_k - p_y``                               no
``curvature``   input-loss curvature (two extra backward passes)       no
``neighbors``   label disagreement with the 20 nearest retain items    yes
==============  =====================================================  ==============

``"auto"`` resolves to :data:`AUTO_SCORER` (``"neighbors"``: in the profiler
benchmark it had the best AUC at finding mislabeled items, 0.99, and a
Spearman correlation with Feldman-Zhang memorization on par with the other
post-hoc proxies, about 0.59, for about 0.05 training runs; see
``docs/benchmarks/profiler.md``), or to
:data:`AUTO_FALLBACK` (``"confidence"``) when no retain set is given. Naming a
scorer that needs the retain set without giving one raises
:class:`~rum.exceptions.RetainRequiredError`.

Training-dynamics proxies are recorded by
:class:`~rum.profiler.proxies.MemorizationRecorder` during training, and
Feldman-Zhang scores by :func:`~rum.profiler.feldman_zhang.feldman_zhang`;
pass either as a precomputed array (``memorization=scores[forget_idx]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rum._data import TensorData
from rum._registry import Registry
from rum.exceptions import InvalidParameterError, InvalidScoresError, UnknownScorerError
from rum.profiler import proxies

__all__ = [
    "Scorer",
    "ScoringInputs",
    "SCORERS",
    "register_scorer",
    "get_scorer",
    "list_scorers",
    "check_scores",
    "load_scores",
    "AUTO_SCORER",
    "AUTO_FALLBACK",
]

#: The scorer ``memorization="auto"`` picks when a retain set is given.
AUTO_SCORER = "neighbors"
#: The scorer ``memorization="auto"`` picks without a retain set.
AUTO_FALLBACK = "confidence"
#: Neighbours used by the ``neighbors`` scorer.
N_NEIGHBORS = 20


@dataclass(frozen=True)
class ScoringInputs:
    """What a scorer receives; every array is in forget-set order, on the CPU.

    Attributes:
        model: the trained model (do not modify it).
        forget: the forget set.
        retain: the retain set, or ``None``.
        logits: eval-mode logits of the forget items ``(n, C)``.
        embeddings: their penultimate-layer embeddings ``(n, d)``.
        neighbor_labels: labels of each item's nearest retain items by cosine
            similarity ``(n, k)``, most similar first; ``None`` unless the
            scorer was registered with ``needs_neighbors=True``.
        neighbor_sims: the matching cosine similarities, or ``None``.
        batch_size: batch size to use for any extra forward pass.
        seed: the profile's seed.
    """

    model: torch.nn.Module
    forget: TensorData
    retain: TensorData | None
    logits: torch.Tensor
    embeddings: torch.Tensor
    neighbor_labels: torch.Tensor | None = None
    neighbor_sims: torch.Tensor | None = None
    batch_size: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class Scorer:
    """A registered memorization scorer."""

    name: str
    fn: Callable[[ScoringInputs], Any]
    requires_retain: bool = False
    needs_neighbors: bool = False
    description: str = ""

    def __call__(self, inputs: ScoringInputs) -> np.ndarray:
        return check_scores(self.fn(inputs), len(inputs.forget), f"scorer {self.name!r}")


SCORERS: Registry[Scorer] = Registry("memorization scorer", UnknownScorerError)


def register_scorer(
    name: str,
    fn: Callable[[ScoringInputs], Any] | None = None,
    *,
    requires_retain: bool = False,
    needs_neighbors: bool = False,
    description: str = "",
    force: bool = False,
):
    """Register a memorization scorer (usable as a decorator).

    Args:
        name: the name ``rum.profile(memorization=name)`` will accept.
        fn: ``fn(inputs: ScoringInputs) -> array`` of per-forget-item scores,
            higher = more memorized.
        requires_retain: raise :class:`RetainRequiredError` when no retain set is given.
        needs_neighbors: compute ``inputs.neighbor_labels`` (implies ``requires_retain``).
        description: one line for :func:`list_scorers`.
        force: replace an existing scorer of that name.

    Examples:
        >>> @register_scorer("loss_x2", force=True)
        ... def loss_x2(inputs):
        ...     return 2 * torch.nn.functional.cross_entropy(
        ...         inputs.logits, inputs.forget.y, reduction="none").numpy()
        >>> "loss_x2" in list_scorers()
        True
        >>> SCORERS.unregister("loss_x2")
    """

    def wrap(f: Callable[[ScoringInputs], Any]) -> Callable[[ScoringInputs], Any]:
        if not callable(f):
            raise InvalidParameterError(f"a scorer must be callable, got {type(f).__name__}.")
        SCORERS.register(
            name,
            Scorer(name, f, requires_retain or needs_neighbors, needs_neighbors, description),
            force=force,
        )
        return f

    return wrap if fn is None else wrap(fn)


def get_scorer(name: str) -> Scorer:
    """The registered scorer ``name`` (raises :class:`UnknownScorerError`)."""
    return SCORERS.get(name, "memorization")


def list_scorers(pattern: str | None = None) -> list[str]:
    """Names of the registered memorization scorers (``fnmatch`` pattern optional).

    Examples:
        >>> "confidence" in list_scorers()
        True
    """
    return SCORERS.names(pattern)


def check_scores(scores: Any, n: int, what: str = "memorization") -> np.ndarray:
    """Validate per-item scores: a 1-D finite numeric array of length ``n``.

    Raises:
        InvalidScoresError: wrong shape or length, non-numeric, NaN or inf.

    Examples:
        >>> check_scores([0.1, 0.2], 2).tolist()
        [0.1, 0.2]
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidScoresError(
            f"{what}: scores must be a numeric array, got {type(scores).__name__}."
        ) from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise InvalidScoresError(
            f"{what}: scores must be a 1-D array with one value per forget item, "
            f"got shape {arr.shape}."
        )
    if len(arr) != n:
        raise InvalidScoresError(
            f"{what}: got {len(arr)} scores but the forget set has {n} items; pass one score "
            "per forget item, in forget-set order (e.g. scores[forget_indices])."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise InvalidScoresError(
            f"{what}: {int(bad.sum())} score(s) are NaN or infinite (positions {first}...). "
            "Impute or drop those items first."
        )
    return arr


def load_scores(path: str | Path, key: str | None = None, indices: Any = None) -> np.ndarray:
    """Read precomputed memorization scores from a ``.npz``, ``.npy`` or ``.json`` file.

    For ``.npz`` files (such as the public Feldman-Zhang releases, keys
    ``"memorization"`` or ``"tr_mem"``) ``key`` names the array; by default the
    only array, or one of those two keys. ``indices`` selects items (e.g.
    the forget set's positions in the training set).

    Examples:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "m.npy"); np.save(p, np.array([0.1, 0.9, 0.4]))
        >>> load_scores(p, indices=[2, 0]).tolist()
        [0.4, 0.1]
    """
    import json

    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"path={str(path)!r} does not exist.")
    if path.suffix == ".npz":
        with np.load(path) as z:
            names = list(z.keys())
            if key is None:
                for cand in ("memorization", "tr_mem"):
                    if cand in names:
                        key = cand
                        break
                else:
                    if len(names) != 1:
                        raise InvalidParameterError(
                            f"{path.name} holds several arrays ({', '.join(names)}); "
                            "name one with key=."
                        )
                    key = names[0]
            if key not in names:
                raise InvalidParameterError(
                    f"{path.name} has no array {key!r}; it holds {', '.join(names)}."
                )
            arr = np.asarray(z[key], dtype=np.float64)
    elif path.suffix == ".npy":
        arr = np.load(path).astype(np.float64)
    elif path.suffix == ".json":
        data = json.loads(path.read_text())
        arr = np.asarray(data[key] if key else data, dtype=np.float64)
    else:
        raise InvalidParameterError(
            f"cannot read scores from {path.name}: use a .npz, .npy or .json file."
        )
    if indices is not None:
        arr = arr[np.asarray(indices, dtype=np.int64)]
    return arr


# -- built-in scorers -------------------------------------------------------------------------
@register_scorer("confidence", description="1 - p(true label | x) under the model")
def _confidence(inputs: ScoringInputs) -> np.ndarray:
    return proxies.confidence_score(inputs.logits, inputs.forget.y)


@register_scorer("margin", description="max other-class probability - p(true label | x)")
def _margin(inputs: ScoringInputs) -> np.ndarray:
    return proxies.margin_score(inputs.logits, inputs.forget.y)


@register_scorer("curvature", description="input-loss curvature of the final model (CURE-style)")
def _curvature(inputs: ScoringInputs) -> np.ndarray:
    return proxies.input_curvature(
        inputs.model, inputs.forget.X, inputs.forget.y, batch_size=inputs.batch_size
    )


@register_scorer(
    "neighbors",
    needs_neighbors=True,
    description=f"label disagreement with the {N_NEIGHBORS} nearest retain items (cosine, embeddings)",
)
def _neighbors(inputs: ScoringInputs) -> np.ndarray:
    return proxies.neighbor_disagreement(inputs.neighbor_labels.numpy(), inputs.forget.y.numpy())
