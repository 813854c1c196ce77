"""The ``auto`` policy: choose each group's unlearner and length by an oracle-free target.

Nothing here needs the retrained model. The target for every forget item is
the probability that a model which never saw it classifies it correctly. By
default (:data:`AUTO_TARGET`, :func:`reference_targets`) it comes from a short
retrain: two epochs from scratch on the retain set, less a held-out slice.
An item's target is 0 where that reference gets it wrong and, where it gets
it right, the reference's shortfall made good: the held-out slice's neighbour
agreement (what a fully trained model gets right there) over the reference's
accuracy on the slice. A short retrain sees what no post-hoc score of the
original model can: a memorised item that looks ordinary to the model that
memorised it (a cluster missing from the retain set, an atypical item the
model is sure of) is hard for a model that never saw it. A reference that
learns too slowly to say much is abandoned for the neighbour target
(:data:`AUTO_TARGET_MIN_PROGRESS`). ``target="neighbors"`` uses no training: the
fraction of the item's ``k`` nearest retain items (cosine similarity of
penultimate-layer embeddings) that carry the item's label. A mislabeled
item's neighbours disagree with its label (target near 0), an ordinary
item's agree (target near held-out accuracy); but training pulled the
forget items' embeddings towards their labels, so it is too optimistic about
memorised ones.

Groups are processed easiest first. For each group, every candidate
unlearner runs once from the current model; after each of its epochs the
search scores

    J = sum over processed groups g of (n_g / n) * |accuracy on g - min(1, mean target on g)|
        + accuracy lost on the retain guard's slice (up to 1,024 retain items)

(:func:`calibration_error`, with ``n`` the processed forget items) and keeps
the best epoch. The retain term reads the accuracy the guard measured after
the same epoch, so scoring costs one pass over the slice, not two. A stage
where doing nothing already scores 0 is not searched: nothing scores lower.
The target is matched per group, not per item: a retrained model is right
on a fraction of a group's items that no single item can say in advance, and ToW compares such set accuracies. Matching each item instead
(mean of ``|correct - target|``) is minimised by keeping every item whose
target is above one half correct, so a group of items with targets of 0.6
would be left at accuracy 1.0 rather than brought to 0.6. A trial stops
early once ``AUTO_PATIENCE`` epochs in a row have not improved J. The
candidate and epoch count with the lowest J (doing nothing included) become
the group's step. A last ``repair`` step (by default NegGrad+ with Adam, else
a fine-tune on retain that holds the forget items' predictions, else a plain
fine-tune) is chosen over all groups, with one difference: repair candidates
are fallbacks, not rivals. They run in order and the first that improves J
on doing nothing is kept without trying the rest. Where no group step was
kept, candidates with an ``anchor`` are skipped: they would hold the forget
items at the original model's predictions.
With ``budget=`` the reference and each stage get an even share of the time
left (:func:`stage_deadline`), and a trial stops after the epoch it is running
at its stage's deadline, keeping its best epoch so far.
Every trial runs under the executor's retain guard (``retain_guard`` of
:func:`rum.unlearn`): an epoch count after which the executor would undo the
step is never kept, and a trial stops where the executor would stop the step.
Steps are seeded by their position in the final plan, so re-running the
returned plan with :func:`rum.execute` (and the same ``retain_guard``)
reproduces the searched model exactly;
:func:`rum.unlearn` therefore returns the searched model without replaying,
with what the search aimed at and tried as ``result.search``
(:class:`~rum.planner.SearchReport`).
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import time
from collections.abc import Sequence

import numpy as np
import torch

from rum._guard import RETAIN_GUARD, RetainGuard, accuracy_on, guard_slice
from rum._seeding import seeded
from rum.data import TensorData
from rum.executor import step_seeds
from rum.metrics.functional import predict_logits
from rum.planner._plan import Plan, Step
from rum.planner._search import SearchReport, Trial
from rum.profiler._profile import Profile
from rum.unlearners.base import Unlearner
from rum.unlearners.context import NonFiniteLossError, RunContext

__all__ = [
    "AUTO_CANDIDATES",
    "AUTO_REPAIR",
    "AUTO_TARGET",
    "AUTO_TARGET_MIN_PROGRESS",
    "AUTO_TARGET_MIN_STEPS",
    "auto_search",
    "calibration_error",
    "holdout_indices",
    "neighbour_targets",
    "parse_candidates",
    "parse_target",
    "reference_batch_size",
    "reference_targets",
    "stage_deadline",
    "target_accuracy",
]

#: Candidate unlearners tried on every group (each for up to ``epochs`` epochs).
AUTO_CANDIDATES: tuple = (("random-label", {"epochs": 5}),)
#: Candidates for the final repair step over the whole forget set, tried in order: the
#: first that improves the search score is kept. NegGrad+ first: it repairs the retain
#: set while still pushing the forget items away, where a plain fine-tune re-learns the
#: memorised ones (in RUM's plan on the mnist1d CNN, the fine-tune took the most
#: memorised items back to 0.63 accuracy, where the retrained model has 0.34). With it
#: first, auto's mean ToW over the RUM suite went from 0.870 to 0.887 (digits), 0.835 to
#: 0.906 (mnist1d) and stayed at 0.841 (tabular, where it is rarely kept) on seeds 0-2,
#: and from 0.850 to 0.870, 0.732 to 0.799 and 0.811 to 0.811 on seeds 3-4 (where
#: mnist1d's mixed scenario lost 0.085). 3 epochs instead of 5 keep mnist1d under 0.25x
#: the retrain time (0.227x against 0.261x) for 0.003 of ToW. Where NegGrad+ does not
#: improve the score (the subgroup scenario, every seed), a fine-tune that holds the
#: forget items' predictions where the group steps left them (``anchor=1``) comes next:
#: it took mnist1d's subgroup scenario from 0.757 to 0.823 ToW and auto's mean from
#: 0.880 to 0.884 (digits), 0.863 to 0.866 (mnist1d) and 0.829 to 0.833 (tabular), at
#: 0.234x, 0.225x and 0.082x the retrain time (0.199x, 0.223x, 0.063x before); it lost
#: mnist1d's es-high 0.785 -> 0.741, where the anchor held items that relabelling had
#: over-forgotten. Anchored candidates are skipped when no group step was kept (the
#: anchor would hold the original model's predictions): mnist1d es-high seed 2 went
#: 0.832 -> 0.842 and no other row changed. The plain fine-tune is the last fallback.
AUTO_REPAIR: tuple = (
    ("neggrad+", {"epochs": 3, "optimizer": "adam", "lr": 1e-3, "alpha": 0.9, "forget_batch_size": 16}),
    ("finetune", {"epochs": 5, "optimizer": "adam", "lr": 1e-3, "anchor": 1.0}),
    ("finetune", {"epochs": 5, "optimizer": "adam", "lr": 1e-3}),
)
#: What trains the reference behind auto's target (:func:`reference_targets`): two epochs
#: of retraining on the retain set with the default recipe (Adam, lr 1e-3, batch 64, or
#: smaller on small data sets: :data:`AUTO_TARGET_MIN_STEPS`).
AUTO_TARGET: tuple = ("retrain", {"epochs": 2})
#: The default reference's batch is lowered (to no less than 8) where needed, so that one
#: of its epochs takes at least this many optimizer steps: it is judged after every epoch
#: (:data:`AUTO_TARGET_MIN_PROGRESS`), and an epoch of a few steps says little. On
#: breast-cancer (323 items to train on) batch 64 gives 6 steps an epoch: after the first
#: epoch the reference covered 0.06-0.39 of the way on seeds 0 and 3 and was abandoned in
#: all their runs, although after the second it covered 0.72-0.93 (six scenarios). With
#: batch 32 (11 steps, the task's own recipe) it covered 0.65-0.95 after the first epoch
#: in all 30 runs of five seeds; batch 20 (17 steps) did as well (0.58-1.00). digits
#: (16 steps an epoch at batch 64) and mnist1d (41) keep batch 64. A ``target=`` you give
#: is used as given.
AUTO_TARGET_MIN_STEPS = 10
#: A reference (:func:`reference_targets`) whose held-out accuracy covers less than this
#: share of the way from chance to a trained model's is abandoned for neighbour targets.
#: It is checked after every epoch. In the RUM suite (test accuracy, three seeds) one epoch
#: covers about 0.78 of the way on digits and 0.86 on breast-cancer, where the two-epoch
#: reference took auto's mean ToW from 0.884 to 0.927 and from 0.833 to 0.892 (five seeds),
#: but 0.25 on the mnist1d CNN, where it lost (0.866 -> 0.843; four epochs: 0.858, at 0.37x
#: the retrain time). So the CNN's reference stops after one epoch.
AUTO_TARGET_MIN_PROGRESS = 0.5
#: A trial stops once this many epochs in a row have not improved its best score.
AUTO_PATIENCE = 2

#: The clock behind ``budget=`` (a module attribute, so tests can drive it).
_clock = time.perf_counter


def stage_deadline(now: float, end: float | None, stages_left: int) -> float | None:
    """When a stage of a budgeted search must stop: ``now`` plus an even share of the time
    left until ``end`` among the ``stages_left`` stages still to run (this one included).

    A stage that finishes early leaves its unused time to the stages after it, so the
    last stage (the repair) gets whatever is left. ``end`` ``None`` means no budget.

    Example:
        >>> stage_deadline(10.0, 18.0, 4), stage_deadline(10.0, 18.0, 1)
        (12.0, 18.0)
        >>> stage_deadline(20.0, 18.0, 2), stage_deadline(0.0, None, 3) is None
        (20.0, True)
    """
    if end is None:
        return None
    return now + max(0.0, end - now) / max(1, stages_left)


class _SearchBar:
    """The search's progress bar: a tick per stage (the reference, each group, the repair),
    the candidate running and its last epoch's score; nothing at all when ``show`` is false."""

    def __init__(self, show: bool, total: int, end: float | None):
        self.bar, self.end = None, end
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="auto search", unit="stage", leave=True)

    def trial(self, stage: str, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(f"auto search: {stage}, {name}")

    def epoch(self, epoch: int, score: float) -> None:
        if self.bar is not None:
            post = {"epoch": epoch, "score": f"{score:.4f}"}
            if self.end is not None:
                post["budget left"] = f"{max(0.0, self.end - _clock()):.1f}s"
            self.bar.set_postfix(post)

    def stage_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_description("auto search")
            self.bar.set_postfix_str("")
            self.bar.close()


def _spec_list(value, argument: str, example: str = "['random-label', 'scrub']") -> tuple:
    """One spec or a list of specs as a tuple of :class:`Unlearner` instances (validated).

    ``example`` completes the error for an empty list ("give at least one ...").
    """
    from rum.exceptions import InvalidParameterError
    from rum.planner.policies import as_unlearners, is_pair

    specs = list(value) if isinstance(value, (list, tuple)) and not is_pair(value) else [value]
    if not specs:
        raise InvalidParameterError(
            f"{argument} is empty: give at least one unlearner to try, e.g. {example}."
        )
    out = as_unlearners(specs, argument)
    for i, u in enumerate(out):
        try:
            u.validate_params()
        except InvalidParameterError as err:
            raise InvalidParameterError(f"{argument}[{i}]: {err}") from None
    return out


def parse_candidates(unlearners) -> tuple[tuple | None, tuple | None]:
    """``unlearners=`` of the auto policy as ``(group candidates, repair candidates)``.

    ``None`` keeps both defaults; a spec or a list of specs replaces the group
    candidates; a mapping ``{"candidates": ..., "repair": ...}`` sets either
    (``"repair": None`` searches no repair step). ``None`` in the result means
    "the default".

    Example:
        >>> from rum.planner.auto import parse_candidates
        >>> groups, repair = parse_candidates(["random-label", ("scrub", {"epochs": 3})])
        >>> [type(u).name for u in groups], repair
        (['random-label', 'scrub'], None)
        >>> parse_candidates({"repair": None})[1]
        ()
    """
    from collections.abc import Mapping

    from rum.exceptions import InvalidParameterError

    if unlearners is None:
        return None, None
    if not isinstance(unlearners, Mapping):
        return _spec_list(unlearners, "unlearners"), None
    unknown = set(unlearners) - {"candidates", "repair"}
    if unknown:
        raise InvalidParameterError(
            f"policy='auto' searches the unlearners itself, so unlearners has no per-group keys "
            f"(got {sorted(map(str, unknown))}). Give the candidates to try: a list such as "
            "['random-label', 'scrub'], or {'candidates': [...], 'repair': [...] or None}; for a "
            "fixed per-group choice use policy='rum' with a mapping."
        )
    groups = unlearners.get("candidates")
    repair = unlearners.get("repair", ...)
    return (
        None if groups is None else _spec_list(groups, "unlearners['candidates']"),
        None if repair is ... else () if repair is None else _spec_list(
            repair, "unlearners['repair']", "['finetune'], or None to search no repair step"
        ),
    )


def neighbour_targets(
    model: torch.nn.Module, forget: TensorData, retain: TensorData, k: int = 20
) -> np.ndarray:
    """Per forget item, the fraction of its ``k`` nearest retain items that share its label.

    Neighbours are found by cosine similarity of penultimate-layer embeddings,
    streaming over the retain set (the profiler's ``neighbors`` machinery).
    """
    from rum.profiler.embeddings import EmbeddingCapture, embed, iter_embeddings
    from rum.profiler.proxies import StreamingTopK, neighbor_disagreement

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

    Example:
        >>> len(holdout_indices(1000, seed=0)), len(holdout_indices(100_000, seed=0))
        (100, 500)
    """
    n_val = _holdout_size(n_retain, holdout)
    return np.sort(np.random.default_rng(seed).choice(n_retain, n_val, replace=False))


def reference_batch_size(n_train: int, batch_size: int = 64) -> int:
    """The default reference's batch on ``n_train`` items: ``batch_size``, or smaller (not below 8)
    so that an epoch takes at least :data:`AUTO_TARGET_MIN_STEPS` optimizer steps.

    Example:
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
    (the caller falls back to :func:`neighbour_targets`). Past ``deadline``
    (a ``_clock`` time) it stops after the epoch that is running and is
    judged as it stands (``"cut": True`` in the info).

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

    def on_epoch_end(epoch: int, m: torch.nn.Module) -> bool:
        if too_weak(val_accuracy(m)):
            return True
        cut["cut"] = deadline is not None and _clock() >= deadline
        return cut["cut"]

    work = copy.deepcopy(model)
    with seeded(seed, device) as gen:
        ctx = RunContext(device=device, generator=gen, seed=seed, n_classes=n_classes,
                         on_epoch_end=on_epoch_end)
        out = reference._unlearn(work, forget, train, ctx)
    work = out if isinstance(out, torch.nn.Module) else work
    val_acc = val_accuracy(work)
    info = {"expected": expected, "reference_accuracy": val_acc, "epochs": ctx.epochs_done,
            "seconds": time.perf_counter() - t0}
    if cut["cut"] and ctx.epochs_done < reference.get_params().get("epochs", ctx.epochs_done + 1):
        info["cut"] = True
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

    Example:
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

    Example:
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

    Example:
        >>> from rum.planner.auto import parse_target
        >>> parse_target(("retrain", {"epochs": 3}))
        Retrain(epochs=3)
        >>> parse_target(None, n_retain=400)
        Retrain(epochs=2, batch_size=36)
        >>> parse_target("neighbors") is None
        True
    """
    from rum._validation import did_you_mean
    from rum.exceptions import InvalidParameterError, UnknownUnlearnerError
    from rum.planner.policies import as_unlearner, is_pair
    from rum.unlearners import list_unlearners
    from rum.unlearners._training import unresettable

    if isinstance(target, str) and target == "neighbors":
        return None
    if isinstance(target, str) and target not in list_unlearners():
        raise UnknownUnlearnerError(
            f"target={target!r} is neither 'neighbors' nor a known unlearner."
            + did_you_mean(target, ["neighbors", *list_unlearners()])
            + " auto's target is 'neighbors' or an exact unlearner such as 'retrain'."
        )
    default = target is None
    spec = AUTO_TARGET if default else (tuple(target) if is_pair(target) else target)
    try:
        u = as_unlearner(spec, "target")
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


class _Scorer:
    """The search score of a model: its processed groups' distance from their targets
    plus the accuracy it lost on ``retain_slice``, the retain guard's slice."""

    def __init__(self, model: torch.nn.Module, forget: TensorData, targets: np.ndarray,
                 groups: np.ndarray, retain_slice: TensorData):
        self.forget, self.targets, self.groups = forget, targets, groups
        self.retain_slice = retain_slice
        self.retain_before = accuracy_on(model, retain_slice)

    def __call__(self, model: torch.nn.Module, done: Sequence[int],
                 retain_acc: float | None = None) -> float:
        """``retain_acc``: the model's accuracy on the slice, when already measured."""
        mask = np.isin(self.groups, list(done))
        logits = predict_logits(model, self.forget.X[torch.as_tensor(mask)])
        correct = (logits.argmax(1) == self.forget.y[torch.as_tensor(mask)].cpu()).float().numpy()
        err = calibration_error(correct, self.targets[mask], self.groups[mask])
        if retain_acc is None:
            retain_acc = accuracy_on(model, self.retain_slice)
        return float(err + max(0.0, self.retain_before - retain_acc))


def _anchored(u: Unlearner) -> bool:
    """Whether ``u`` holds the forget items' predictions where it found them."""
    anchor = u.get_params().get("anchor")
    return isinstance(anchor, numbers.Real) and not isinstance(anchor, bool) and anchor > 0


def _trial(u: Unlearner, model, forget_i, retain, ctx_kwargs, score_fn, guard=None,
           deadline: float | None = None, on_score=None) -> dict:
    """Run ``u`` on a copy of ``model``; return its best epoch's score, epochs, state, effort.

    ``guard`` is the executor's retain guard (:class:`rum._guard.RetainGuard`): an
    epoch count it would undo is never kept, and the trial stops where the executor
    would stop the step, so that the plan replays to the searched model. Past
    ``deadline`` (a ``_clock`` time) the trial stops after the epoch that is running
    and keeps its best epoch so far (``"cut": True`` when it would have gone on).
    ``on_score(epoch, score)`` is called after each scored epoch (the progress bar).
    """
    work = copy.deepcopy(model)
    best = {"score": np.inf, "epochs": 0, "state": None, "iterations": 0, "loss": None,
            "cut": False}
    trend = {"score": np.inf, "epochs": 0}  # the best score of any epoch, kept or not
    t0 = time.perf_counter()
    guarded = guard is not None and guard.data is not None and not u.tags.exact
    if guarded:
        guard.start_step()

    def snapshot(s: float, epochs: int, m: torch.nn.Module) -> None:
        best.update(score=s, epochs=epochs, iterations=ctx.iterations, loss=ctx.last_loss,
                    seconds=time.perf_counter() - t0,
                    state={k: v.detach().clone() for k, v in m.state_dict().items()})

    def on_epoch_end(epoch: int, m: torch.nn.Module) -> bool:
        # the guard sees every epoch, as in the executor (its verdict depends on the last one)
        if guarded and guard.on_epoch_end(epoch, m):
            return True  # the executor stops and undoes the step here, whatever its length
        if u.truncated(epoch) is not None:  # else this epoch count cannot be replayed exactly
            s = score_fn(m, guard.last if guarded else None)  # the guard measured the same slice
            if on_score is not None:
                on_score(epoch, s)
            if s < trend["score"] - 1e-9:
                trend.update(score=s, epochs=epoch)
            # a step of this length that the guard would undo is not kept, but its score still
            # counts as progress: a step can dip below the guard's limit and climb back
            if s < best["score"] - 1e-9 and not (guarded and guard.hit):
                snapshot(s, epoch, m)
            # later epochs cannot change the first ones, so stopping keeps the replay exact
            if epoch - trend["epochs"] >= AUTO_PATIENCE:
                return True
        if deadline is not None and _clock() >= deadline:
            best["cut"] = epoch < u.get_params().get("epochs", epoch + 1)
            return True
        return False

    with seeded(ctx_kwargs["seed"], ctx_kwargs["device"]) as gen:
        ctx = RunContext(generator=gen, on_epoch_end=on_epoch_end, **ctx_kwargs)
        try:
            out = u._unlearn(work, forget_i, retain, ctx)
        except NonFiniteLossError:
            return best
        if ctx.epochs_done == 0:  # not epoch-based: score the end result
            m = out if isinstance(out, torch.nn.Module) else work
            m.eval()
            if not (guarded and guard.after_step(m) is not None):
                s = score_fn(m, guard.last if guarded else None)
                if s < best["score"]:
                    snapshot(s, -1, m)
    return best


def auto_search(
    profile: Profile,
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData,
    *,
    device: torch.device,
    seed: int,
    n_classes: int,
    candidates: Sequence | None = None,
    repair: Sequence | None = None,
    budget: float | None = None,
    holdout: float = 0.1,
    k: int = 20,
    target: Unlearner | None = None,
    retain_guard: float | None = RETAIN_GUARD,
    progress: bool = False,
) -> tuple[Plan, torch.nn.Module, dict]:
    """Search a plan for ``profile``; return it (what it tried as ``plan.search``), the
    searched model, and the targets and each kept step's effort.

    ``model`` is modified in place (pass a private copy). ``budget`` caps the
    search time in seconds, computing the targets included. The reference and
    each stage (every group, then the repair) may use an even share of the
    time left (:func:`stage_deadline`), so time a stage does not use passes on
    to the next ones and the repair gets all that is left. At its deadline a
    trial stops after the epoch that is running and keeps its best epoch so
    far, and no further candidate of that stage starts; a stage reached with
    no time left keeps the model as it is. The search can overrun the budget
    by about one epoch of the trial that is running (a step that is not
    epoch-based runs to its end). ``target`` is the exact
    unlearner that trains the reference of :func:`reference_targets` (from
    :func:`parse_target`); ``None`` uses :func:`neighbour_targets`. Every trial
    runs under the executor's ``retain_guard``, so a step it would undo is never kept.
    ``progress`` shows a progress bar (a tick per stage, the running candidate's score).
    """
    from rum.planner.policies import as_unlearner

    candidates = AUTO_CANDIDATES if candidates is None else candidates
    repair = AUTO_REPAIR if repair is None else repair
    t0 = time.perf_counter()
    end = None if budget is None else _clock() + budget
    from rum.profiler.memorization import N_NEIGHBORS

    groups = [s.group for s in profile.summary]
    stages_left = len(groups) + (1 if repair else 0)  # each gets a share of what is left
    val_idx = holdout_indices(len(retain), seed, holdout)
    targets, target_info = None, {"target": "neighbors"}
    with_reference = target is not None and len(retain) > len(val_idx)
    bar = _SearchBar(progress, stages_left + int(with_reference), end)
    if with_reference:
        bar.trial("reference", repr(target))
        targets, ref_info = reference_targets(target, model, forget, retain, val_idx, device=device,
                                              seed=seed, n_classes=n_classes, k=k,
                                              deadline=stage_deadline(_clock(), end, stages_left + 1))
        target_info = {"target": "neighbors" if targets is None else repr(target),
                       "reference": {"unlearner": repr(target), **ref_info}}
        bar.stage_done()
    if targets is None and profile.scorers.get("memorization") == "neighbors" and k == N_NEIGHBORS:
        # the profile already holds 1 - target for every item: no second retain pass
        targets = 1.0 - np.asarray(profile.memorization, dtype=np.float64)
    elif targets is None:
        targets = neighbour_targets(model, forget, retain, k=k)
    guard = RetainGuard(model, retain, retain_guard, seed)
    scorer = _Scorer(model, forget, targets, profile.groups,
                     guard_slice(retain, seed) if guard.data is None else guard.data)
    max_steps = len(groups) + 1
    seeds = step_seeds(seed, max_steps)
    steps: list[Step] = []
    trials: list[Trial] = []
    on_target: list[int] = []  # stages where doing nothing already scored 0: none searched
    cut: list[int] = []  # stages the budget cut short
    done: list[int] = []
    efforts: list[dict] = []  # per chosen step: seconds, iterations and last loss of its trial

    def run_stage(group: int, indices: np.ndarray, specs: Sequence, done_now: list[int],
                  first_improvement: bool = False) -> None:
        nonlocal model, stages_left
        deadline = stage_deadline(_clock(), end, stages_left)
        stages_left -= 1
        try:
            search_stage(group, indices, specs, done_now, first_improvement, deadline)
        finally:
            bar.stage_done()

    def search_stage(group, indices, specs, done_now, first_improvement, deadline) -> None:
        nonlocal model
        forget_i = forget.subset(indices)
        base = scorer(model, done_now)
        if base <= 0.0:  # no score is below 0, and a candidate is kept only if it scores lower
            on_target.append(group)
            return
        best: tuple = (base, None, None, None)  # score, unlearner, trial record, trial index
        for spec in specs:
            if first_improvement and best[1] is not None:
                break
            if deadline is not None and _clock() >= deadline:
                cut.append(group)  # candidates left untried
                break
            u = as_unlearner(spec, "auto candidate")
            bar.trial("repair" if group == -1 else f"group {group}", type(u).name or type(u).__name__)
            t = time.perf_counter()
            ctx_kwargs = dict(device=device, seed=seeds[len(steps)], n_classes=n_classes)
            rec = _trial(u, model, forget_i, retain, ctx_kwargs,
                         lambda m, retain_acc: scorer(m, done_now, retain_acc), guard, deadline,
                         bar.epoch)
            if rec["cut"]:
                cut.append(group)
            trials.append(Trial(group, type(u).name or type(u).__name__, u.get_params(),
                                rec["epochs"], float(rec["score"]), float(base),
                                time.perf_counter() - t))
            if rec["state"] is not None and rec["score"] < best[0]:
                best = (rec["score"], u, rec, len(trials) - 1)
        _, u, rec, i = best
        if u is None:
            return
        trials[i] = dataclasses.replace(trials[i], kept=True)
        if rec["epochs"] > 0:
            u = u.truncated(rec["epochs"])
        model.load_state_dict(rec["state"])
        steps.append(Step.from_unlearner(group, indices, u))
        efforts.append({k: rec[k] for k in ("seconds", "iterations", "loss")})

    try:
        for g in groups:
            done.append(g)
            run_stage(g, profile.indices(g), candidates, list(done))
        if not steps and repair:
            # an anchor holds the forget items' predictions where the group steps left them;
            # with no group step kept that is the original model's, the opposite of unlearning
            repair = [spec for spec in repair if not _anchored(as_unlearner(spec, "auto repair"))]
            if not repair:
                bar.stage_done()  # the repair stage the bar counted
        if repair:
            run_stage(-1, np.arange(len(profile)), repair, list(done), first_improvement=True)
    finally:
        bar.close()
    if not steps:
        steps.append(Step.from_unlearner(-1, range(len(profile)), as_unlearner("noop", "noop")))
        efforts.append({"seconds": 0.0, "iterations": 0, "loss": None})
    aimed = target_accuracy(targets, profile.groups)
    seconds = time.perf_counter() - t0
    report = SearchReport(tuple(trials), target_info["target"], target_info.get("reference", {}),
                          aimed, seconds, on_target=tuple(on_target), budget=budget,
                          cut=tuple(dict.fromkeys(cut)))
    plan = Plan(tuple(steps), policy="auto", n_forget=len(profile), search=report)
    return plan, model, {"targets": targets, "efforts": efforts, **target_info,
                         "target_accuracy": aimed}
