"""auto's target: per forget item, the probability that a model which never saw it gets it right.

By default (:data:`AUTO_TARGET`, :func:`reference_targets`) it comes from a short
retrain: two epochs from scratch on the retain set, less a held-out slice. An
item's target is 0 where that reference gets it wrong and, where it gets it right,
the reference's shortfall made good: the held-out slice's neighbour agreement (what
a fully trained model gets right there) over the reference's accuracy on the slice.
A short retrain sees what no post-hoc score of the original model can: a memorised
item that looks ordinary to the model that memorised it is hard for a model that
never saw it. A reference that learns too slowly to say much is abandoned for the
neighbour target (:data:`AUTO_TARGET_MIN_PROGRESS`). ``target="neighbors"`` uses no
training: the fraction of the item's ``k`` nearest retain items (cosine similarity of
penultimate-layer embeddings) that carry its label; training pulled the forget
items' embeddings towards their labels, so it is too optimistic about memorised ones.

Groups are matched by their mean target (:func:`calibration_error`), as ToW
compares set accuracies. The measurements behind these defaults are in
benchmarks/NOTES.md ("auto's target").
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch

from rum._data import TensorData
from rum._runner import run_step
from rum._runtime.predict import predict_logits
from rum._validation import did_you_mean
from rum.exceptions import InvalidParameterError, UnknownUnlearnerError
from rum.planner.policies import is_pair
from rum.profiler.embeddings import EmbeddingCapture, embed, iter_embeddings
from rum.profiler.proxies import StreamingTopK, neighbor_disagreement
from rum.unlearners._training import unresettable
from rum.unlearners.base import Unlearner
from rum.unlearners.registry import list_unlearners, make_unlearner

__all__ = [
    "AUTO_TARGET",
    "AUTO_TARGET_MIN_PROGRESS",
    "AUTO_TARGET_MIN_STEPS",
    "calibration_error",
    "confirm_heldout",
    "holdout_indices",
    "neighbour_targets",
    "parse_target",
    "reference_batch_size",
    "reference_targets",
    "target_accuracy",
]

#: What trains the reference behind auto's target (:func:`reference_targets`): two epochs
#: of retraining on the retain set with the default recipe (Adam, lr 1e-3, batch 64, or
#: smaller on small data sets: :data:`AUTO_TARGET_MIN_STEPS`).
AUTO_TARGET: tuple = ("retrain", {"epochs": 2})
#: The default reference's batch is lowered (to no less than 8) where needed, so that one
#: of its epochs takes at least this many optimizer steps: it is judged after every epoch
#: (:data:`AUTO_TARGET_MIN_PROGRESS`), and an epoch of a few steps says little. A
#: ``target=`` you give is used as given.
AUTO_TARGET_MIN_STEPS = 10
#: A reference (:func:`reference_targets`) whose held-out accuracy covers less than this
#: share of the way from chance to a trained model's is abandoned for neighbour targets.
#: It is checked after every epoch, so a model that learns slowly (the suite's 1-D CNN)
#: stops after one epoch.
AUTO_TARGET_MIN_PROGRESS = 0.5


def neighbour_targets(
    model: torch.nn.Module, forget: TensorData, retain: TensorData, k: int = 20
) -> np.ndarray:
    """Per forget item, the fraction of its ``k`` nearest retain items that share its label.

    Neighbours are found by cosine similarity of penultimate-layer embeddings,
    streaming over the retain set (the profiler's ``neighbors`` machinery).
    """
    f_emb, _ = embed(model, forget)
    knn = StreamingTopK(f_emb, min(k, len(retain)))
    with EmbeddingCapture(model) as cap:
        for e, _, yb in iter_embeddings(cap, retain.batches(1024)):
            knn.update(e, yb)
    return 1.0 - neighbor_disagreement(knn.labels, forget.y.cpu())


def _holdout_size(n_retain: int, holdout: float = 0.1) -> int:
    return max(1, min(500, int(round(holdout * n_retain))))


def holdout_indices(n_retain: int, seed: int, holdout: float = 0.1) -> np.ndarray:
    """The retain items auto holds out (sorted): ``holdout`` of them, 1 to 500, drawn with ``seed``.

    Examples:
        >>> len(holdout_indices(1000, seed=0)), len(holdout_indices(100_000, seed=0))
        (100, 500)
    """
    n_val = _holdout_size(n_retain, holdout)
    return np.sort(np.random.default_rng(seed).choice(n_retain, n_val, replace=False))


def reference_batch_size(n_train: int, batch_size: int = 64) -> int:
    """The default reference's batch on ``n_train`` items: ``batch_size``, or smaller (not below 8)
    so that an epoch takes at least :data:`AUTO_TARGET_MIN_STEPS` optimizer steps.

    Examples:
        >>> reference_batch_size(323), reference_batch_size(1019), reference_batch_size(50)
        (32, 64, 8)
    """
    return int(min(batch_size, max(8, n_train // AUTO_TARGET_MIN_STEPS)))


def reference_targets(
    reference: Unlearner,
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData,
    val_idx: np.ndarray,
    *,
    device: torch.device,
    seed: int,
    n_classes: int,
    k: int = 20,
    deadline: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[np.ndarray, dict]:
    """Per forget item, a target from a short retrain (``reference``) that never saw it.

    ``reference`` (a ``retrain`` unlearner with few epochs) trains a fresh copy
    of ``model`` on the retain set without the held-out slice ``val_idx``. An
    item's target is 1 where that copy classifies it correctly, scaled by
    ``a / b``: ``b`` is the copy's accuracy on the held-out slice, ``a`` what a
    fully trained model is expected to get there (the slice's neighbour
    agreement in ``model``'s embedding, :func:`neighbour_targets`). A short
    retrain is less accurate than a full one everywhere; the scale corrects
    the level and keeps which items it finds hard. So a group's mean target
    may exceed 1 (:func:`calibration_error` caps it).

    A reference that is still far from a trained model says little about
    which items are hard: once its accuracy on the slice, after any epoch or at
    the end, covers less than :data:`AUTO_TARGET_MIN_PROGRESS` of the way from
    chance (``1 / n_classes``) to ``a``, it stops and the targets are ``None``
    (the caller falls back to :func:`neighbour_targets`), as when its loss turns
    NaN (``"diverged": True`` in the info). Past ``deadline`` (a ``clock`` time)
    it stops after the epoch that is running and is judged as it stands
    (``"cut": True`` in the info).

    Returns the targets and ``{"expected": a, "reference_accuracy": b,
    "epochs": ..., "scale": a / b, "seconds": ...}`` (no ``scale`` when the
    targets are ``None``).
    """
    t0 = time.perf_counter()
    keep = np.setdiff1d(np.arange(len(retain)), val_idx)
    train, val = retain.subset(keep), retain.subset(val_idx)
    expected = float(np.mean(neighbour_targets(model, val, train, k=k)))
    chance = 1.0 / max(n_classes, 1)

    def val_accuracy(m: torch.nn.Module) -> float:
        # in float64, unlike accuracy_from_logits: it sets the scale of every target, and the
        # benchmarked defaults were measured with it (float32 changes one tabular search)
        return float((predict_logits(m, val.X).argmax(1) == val.y.cpu()).double().mean())

    def too_weak(acc: float) -> bool:
        return acc - chance < AUTO_TARGET_MIN_PROGRESS * (expected - chance)

    cut = {"cut": False}

    def on_epoch(epoch: int, m: torch.nn.Module, ctx) -> bool:
        if too_weak(val_accuracy(m)):
            return True
        cut["cut"] = deadline is not None and clock() >= deadline
        return cut["cut"]

    run = run_step(reference, copy.deepcopy(model), forget, train, seed=seed, device=device,
                   n_classes=n_classes, on_epoch=on_epoch)
    work = run.model
    val_acc = val_accuracy(work)
    info = {"expected": expected, "reference_accuracy": val_acc, "epochs": run.epochs,
            "seconds": time.perf_counter() - t0}
    if cut["cut"] and run.epochs < reference.get_params().get("epochs", run.epochs + 1):
        info["cut"] = True
    if run.status != "ok":
        info["diverged"] = True
        return None, info
    if too_weak(val_acc):
        return None, info
    correct = (predict_logits(work, forget.X).argmax(1) == forget.y.cpu()).double().numpy()
    scale = expected / max(val_acc, chance)
    return correct * scale, {**info, "scale": scale}


def _group_means(values, groups) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per group (in sorted group order) and each group's size."""
    _, inv, sizes = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return np.bincount(inv, weights=np.asarray(values, dtype=np.float64)) / sizes, sizes


def calibration_error(correct, targets, groups) -> float:
    """Size-weighted mean over groups of ``|accuracy - mean target|``; 0 for no items.

    ``correct`` is 1 where the model is right on an item, ``targets`` the
    probability that a retrained model would be, ``groups`` each item's group.
    Each group's accuracy is compared with its mean target (capped at 1), as
    ToW compares set accuracies; matching item by item would pull a group of
    targets 0.6 to accuracy 1.0 instead of 0.6.

    Examples:
        >>> calibration_error([1, 1, 0, 0, 1], [0.6, 0.6, 0.6, 0.6, 0.6], [0, 0, 0, 0, 0])
        0.0
        >>> round(calibration_error([1, 1, 0, 0], [0.5, 0.5, 1.0, 1.0], [0, 0, 1, 1]), 3)
        0.75
    """
    if len(correct) == 0:
        return 0.0
    acc, sizes = _group_means(correct, groups)
    tgt = np.minimum(_group_means(targets, groups)[0], 1.0)
    return float(np.sum(sizes * np.abs(acc - tgt)) / sizes.sum())


def target_accuracy(targets, groups) -> float:
    """The forget accuracy the targets ask for: each group's mean target (capped at 1),
    weighted by group size; what :func:`calibration_error` compares accuracies with.

    Examples:
        >>> target_accuracy([1.5, 1.5, 0.0, 0.5], [0, 0, 1, 1])
        0.625
    """
    if len(targets) == 0:
        return float("nan")
    tgt, sizes = _group_means(targets, groups)
    return float(np.sum(sizes * np.minimum(tgt, 1.0)) / sizes.sum())


def parse_target(
    target, model: torch.nn.Module | None = None, n_retain: int | None = None
) -> Unlearner | None:
    """``target=`` of the auto policy as the unlearner that trains its reference.

    ``None`` means the default, :data:`AUTO_TARGET`; given ``n_retain``, the
    size of the retain set, its batch is lowered on small data sets
    (:func:`reference_batch_size`). ``"neighbors"`` returns ``None`` (no
    training: :func:`neighbour_targets`). Anything else must be an exact
    unlearner (one whose model never sees the forget set, such as
    ``"retrain"`` with your recipe, e.g. ``("retrain", {"epochs": 3, "lr": 0.01})``),
    and is used as given. Given ``model``, the default falls back to
    ``"neighbors"`` when ``retrain`` cannot re-initialise it (modules without
    ``reset_parameters``).

    Examples:
        >>> from rum.planner._targets import parse_target
        >>> parse_target(("retrain", {"epochs": 3}))
        Retrain(epochs=3)
        >>> parse_target(None, n_retain=400)
        Retrain(epochs=2, batch_size=36)
        >>> parse_target("neighbors") is None
        True
    """
    if isinstance(target, str) and target == "neighbors":
        return None
    if isinstance(target, str) and target not in list_unlearners():
        raise UnknownUnlearnerError(
            f"target={target!r} is neither 'neighbors' nor a known unlearner."
            + did_you_mean(target, ["neighbors", *list_unlearners()])
            + " auto's target is 'neighbors' or an exact unlearner such as 'retrain'."
        )
    default = target is None
    spec = AUTO_TARGET if default else target
    try:
        u = (make_unlearner(spec[0], dict(spec[1]), "target") if is_pair(spec)
             else make_unlearner(spec, None, "target"))
    except InvalidParameterError as err:
        raise InvalidParameterError(
            f"{err} auto's target is 'neighbors' or an exact unlearner such as 'retrain'."
        ) from None
    if not getattr(u.tags, "exact", False):
        raise InvalidParameterError(
            f"target={type(u).name or type(u).__name__!r} is not exact: its model would still carry "
            "the forget set, so it cannot say what a model that never saw it gets right. Use "
            "'retrain' (e.g. ('retrain', {'epochs': 3})), another exact unlearner, or 'neighbors'."
        )
    try:
        u.validate_params()
    except InvalidParameterError as err:
        raise InvalidParameterError(f"target: {err}") from None
    stuck = [] if model is None or getattr(u, "init_fn", None) is not None else unresettable(model)
    if stuck and default:
        return None
    if stuck:
        raise InvalidParameterError(
            f"target={type(u).name!r} cannot re-initialise these modules (no reset_parameters): "
            + ", ".join(stuck)
            + ". Give it init_fn=<function that re-initialises the model>, or use target='neighbors'."
        )
    if default and n_retain is not None:
        u.set_params(batch_size=reference_batch_size(n_retain - _holdout_size(n_retain),
                                                     u.get_params()["batch_size"]))
    return u


def confirm_heldout(check, model: torch.nn.Module, forget: TensorData, retain: TensorData, *,
                    device: torch.device, seed: int, n_classes: int):
    """``check`` (``profile.check``) judged again with a short retrain's estimate, when it
    says the forget items already behave like held-out items.

    The profiler's neighbour agreement is measured in the trained model's own
    embedding, which pulls memorised items towards their labels, so it can call
    items "like held-out" that a model which never saw them gets wrong. Before the
    model is kept, the default reference of ``auto`` (:data:`AUTO_TARGET`, trained on
    the retain set less a held-out slice) estimates that accuracy instead. A
    reference too weak to judge by (:data:`AUTO_TARGET_MIN_PROGRESS`) leaves the
    check as it was. Any other check is returned unchanged.
    """
    if check is None or not check.keep_model or retain is None or len(retain) < 2:
        return check
    reference = parse_target(None, model, len(retain))
    if reference is None:
        return check
    val_idx = holdout_indices(len(retain), seed)
    targets, _ = reference_targets(reference, model, forget, retain, val_idx, device=device,
                                   seed=seed, n_classes=n_classes)
    if targets is None:
        return check
    return check.with_estimate(target_accuracy(targets, np.zeros(len(targets))), "reference")
