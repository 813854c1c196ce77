"""Profiler: score every forget item and split the forget set into homogeneous groups.

:func:`profile` makes one eval-mode pass over the forget set (logits and
penultimate-layer embeddings) and, when a retain set is given, one streamed
pass over the retain set that accumulates exact retain moments, per-class
retain centroids and, for the ``neighbors`` scorer, each forget item's nearest
retain neighbours. Nothing of retain size is kept: memory is
``O(n_forget * (d + k))`` plus one batch, whatever the retain size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rum._data import TensorData, as_data
from rum._model import check_model, fit_to_model, select_output
from rum._validation import Interval, check_random_state, did_you_mean, validate_params
from rum.exceptions import InvalidParameterError, RetainRequiredError
from rum.profiler._check import ForgetSetCheck, check_forget_set
from rum.profiler._profile import GroupSummary, Profile
from rum.profiler.embeddings import EmbeddingCapture, find_embedding_layer, iter_embeddings
from rum.profiler.entanglement import (
    ClassCentroids,
    MomentAccumulator,
    centroid_distance,
    class_margin,
    entanglement_score,
    mmd,
)
from rum.profiler.feldman_zhang import FZResult, SklearnTrainer, TorchTrainer, feldman_zhang
from rum.profiler.grouping import list_groupings, make_groups, register_grouping, resolve_grouping
from rum.profiler.memorization import (
    AUTO_FALLBACK,
    AUTO_SCORER,
    N_NEIGHBORS,
    Scorer,
    ScoringInputs,
    check_scores,
    get_scorer,
    list_scorers,
    load_scores,
    register_scorer,
)
from rum.profiler.proxies import MemorizationRecorder, StreamingTopK, neighbor_disagreement

__all__ = [
    "profile",
    "Profile",
    "GroupSummary",
    "ForgetSetCheck",
    "PROFILE_OPTIONS",
    "check_profile_options",
    "ENTANGLEMENT_SCORES",
    "register_scorer",
    "get_scorer",
    "list_scorers",
    "register_grouping",
    "list_groupings",
    "ScoringInputs",
    "MemorizationRecorder",
    "feldman_zhang",
    "FZResult",
    "SklearnTrainer",
    "TorchTrainer",
    "load_scores",
    "entanglement_score",
    "mmd",
    "find_embedding_layer",
    "EmbeddingCapture",
]

#: Per-item entanglement scores :func:`profile` can compute.
ENTANGLEMENT_SCORES = ("class_margin", "centroid_distance", "none")

#: Keyword options of :func:`_profile_data` / :func:`profile` (also accepted by ``rum.unlearn``).
PROFILE_OPTIONS = ("memorization", "entanglement", "embedding_layer", "grouping", "n_groups")

_DEFAULTS: dict[str, Any] = dict(
    memorization="auto", entanglement="class_margin", embedding_layer="auto", grouping="rum", n_groups=3
)


def _resolve_memorization(memorization: Any, n: int, has_retain: bool) -> tuple[Scorer | None, np.ndarray | None, str]:
    if isinstance(memorization, str):
        name = memorization
        if name == "auto":
            name = AUTO_SCORER if has_retain else AUTO_FALLBACK
        scorer = get_scorer(name)
        if scorer.requires_retain and not has_retain:
            raise RetainRequiredError(
                f"memorization={name!r} needs the retain set (it compares forget items with "
                "retain items), but retain_set is None or empty. Pass retain_set, or use "
                "memorization='confidence'."
            )
        return scorer, None, name
    if isinstance(memorization, Scorer):
        return memorization, None, memorization.name
    if callable(memorization) and not isinstance(memorization, (np.ndarray, torch.Tensor)):
        name = getattr(memorization, "__name__", "custom")
        return Scorer(name, memorization), None, name
    if isinstance(memorization, (np.ndarray, torch.Tensor, list, tuple)):
        return None, check_scores(memorization, n, "memorization"), "precomputed"
    raise InvalidParameterError(
        "memorization must be a scorer name (see rum.profiler.list_scorers()), 'auto', a "
        f"callable scorer or an array of precomputed scores; got {type(memorization).__name__}."
    )


def check_profile_options(
    *,
    memorization: Any = "auto",
    entanglement: str = "class_margin",
    embedding_layer: Any = "auto",
    grouping: Any = "rum",
    n_groups: int = 3,
    batch_size: int = 1024,
) -> None:
    """Check the profiler's options without any data: every error that the options alone
    decide is raised here, before profiling starts (the forget set's size is checked later).

    Examples:
        >>> check_profile_options(grouping=("quantile", {"byy": "entanglement"}))
        Traceback (most recent call last):
        ...
        rum.exceptions.UnknownOptionError: grouping 'quantile' got an unknown keyword option 'byy'. Did you mean 'by'? Accepted options: by.
    """
    validate_params(
        {"n_groups": n_groups, "batch_size": batch_size},
        {"n_groups": [Interval(int, 1, None)], "batch_size": [Interval(int, 1, None)]},
        "rum.profile",
    )
    if not isinstance(entanglement, str) or entanglement not in ENTANGLEMENT_SCORES:
        raise InvalidParameterError(
            f"entanglement={entanglement!r} is not a known per-item entanglement score."
            f"{did_you_mean(str(entanglement), ENTANGLEMENT_SCORES)} "
            f"Known: {', '.join(ENTANGLEMENT_SCORES)}."
        )
    if isinstance(memorization, str) and memorization != "auto":
        get_scorer(memorization)
    resolve_grouping(grouping)
    if not (isinstance(embedding_layer, (str, torch.nn.Module))):
        raise InvalidParameterError(
            "embedding_layer must be 'auto', a module name or a module, got "
            f"{type(embedding_layer).__name__}."
        )


def _profile_data(
    model: torch.nn.Module,
    forget: TensorData,
    retain: TensorData | None,
    seed: int,
    *,
    memorization: Any = "auto",
    entanglement: str = "class_margin",
    embedding_layer: Any = "auto",
    grouping: Any = "rum",
    n_groups: int = 3,
    batch_size: int = 1024,
) -> Profile:
    """Profile already-validated data (used by :func:`rum.unlearn`).

    The keyword options are those of :func:`profile` (same defaults); see
    there. ``retain`` may be ``None`` or empty.
    """
    if retain is not None and len(retain) == 0:
        retain = None
    n = len(forget)
    check_profile_options(memorization=memorization, entanglement=entanglement,
                          embedding_layer=embedding_layer, grouping=grouping, n_groups=n_groups,
                          batch_size=batch_size)
    if n_groups > n:
        raise InvalidParameterError(
            f"n_groups={n_groups} is larger than the forget set ({n} items); every group "
            f"needs at least one item. Use n_groups <= {n}."
        )
    scorer, precomputed, mem_name = _resolve_memorization(memorization, n, retain is not None)
    # the neighbours also give the forget-set check its held-out estimate (profile.check)
    need_knn = retain is not None

    # one pass over the forget set, one streamed pass over the retain set
    with EmbeddingCapture(model, embedding_layer) as cap:
        embs, logits = [], []
        for e, lo, _ in iter_embeddings(cap, forget.batches(batch_size)):
            embs.append(e)
            logits.append(lo)
        f_emb, f_logits = torch.cat(embs), torch.cat(logits)
        moments, cents, knn = None, None, None
        if retain is not None:
            moments, cents = MomentAccumulator(), ClassCentroids()
            knn = StreamingTopK(f_emb, N_NEIGHBORS) if need_knn else None
            retain_counts = np.zeros(0, dtype=np.int64)
            for e, _, yb in iter_embeddings(cap, retain.batches(batch_size)):
                moments.update(e)
                cents.update(e, yb)
                if knn is not None:
                    knn.update(e, yb)
                counts = np.bincount(yb.cpu().numpy().astype(np.int64).reshape(-1))
                size = max(len(counts), len(retain_counts))
                retain_counts = (np.pad(retain_counts, (0, size - len(retain_counts)))
                                 + np.pad(counts, (0, size - len(counts))))
        layer_name = cap.name

    inputs = ScoringInputs(
        model=model,
        forget=forget,
        retain=retain,
        logits=f_logits,
        embeddings=f_emb,
        neighbor_labels=None if knn is None else knn.labels,
        neighbor_sims=None if knn is None else knn.sims,
        batch_size=batch_size,
        seed=seed,
    )
    mem = precomputed if scorer is None else scorer(inputs)

    if retain is None or entanglement == "none":
        ent = np.full(n, np.nan)
    elif entanglement == "class_margin":
        c, present = cents.centroids()
        ent = class_margin(f_emb, forget.y, c, present)
    else:
        ent = centroid_distance(f_emb, moments)

    groups, group_name = make_groups(grouping, mem, ent, n_groups, embeddings=f_emb, seed=seed)
    y_f = forget.y.cpu().reshape(-1)
    check = check_forget_set(
        y_f.numpy(), (f_logits.argmax(1).cpu() == y_f).numpy(),
        None if retain is None else retain_counts,
        None if knn is None else 1.0 - neighbor_disagreement(knn.labels, y_f),
    )
    es: dict[int, float] = {}
    if moments is not None:
        for g in np.unique(groups):
            es[int(g)] = entanglement_score(moments, f_emb[torch.as_tensor(groups == g)])
    return Profile.from_groups(
        mem,
        ent,
        groups,
        es=es,
        scorers={
            "memorization": mem_name,
            "entanglement": "none" if retain is None else entanglement,
            "grouping": group_name,
            "embedding_layer": layer_name,
        },
        seed=seed,
        check=check,
    )


def profile(
    model: Any,
    forget_set: Any,
    retain_set: Any = None,
    *,
    memorization: Any = "auto",
    entanglement: str = "class_margin",
    embedding_layer: Any = "auto",
    grouping: Any = "rum",
    n_groups: int = 3,
    batch_size: int = 1024,
    random_state: Any = None,
    output: Any = None,
) -> Profile:
    """Score every forget item by memorization and entanglement, and group the forget set.

    Args:
        model: the trained classifier (``torch.nn.Module`` returning logits).
            It is put in eval mode while profiling and its mode restored.
        forget_set: the items to profile, in any form rum accepts.
        retain_set: the rest of the training data (or a sample). Needed for
            the ``neighbors`` scorer, entanglement scores and the ES; without
            it entanglement and ES are NaN and ``"auto"`` memorization falls back
            to ``"confidence"``.
        memorization: a registered scorer name (:func:`list_scorers`:
            ``"confidence"``, ``"margin"``, ``"curvature"``, ``"neighbors"``),
            ``"auto"`` (``"neighbors"`` with a retain set, else
            ``"confidence"``), a callable ``fn(ScoringInputs) -> scores``, or a
            precomputed array with one score per forget item (e.g. Feldman-Zhang
            scores or :class:`MemorizationRecorder` proxies); higher = more
            memorized.
        entanglement: the per-item entanglement score: ``"class_margin"``
            (default), ``"centroid_distance"`` or ``"none"``; see
            :mod:`rum.profiler.entanglement`.
        embedding_layer: ``"auto"`` (the input of the last ``nn.Linear``), a
            module name, or a module (its output is used).
        grouping: ``"rum"`` (low / medium / high memorization), ``"quantile"``,
            ``"kmeans"``, ``"graph"``, a ``(name, params)`` pair such as
            ``("quantile", {"by": "entanglement"})``, or a callable; see
            :mod:`rum.profiler.grouping`.
        n_groups: groups to form (at most the forget-set size).
        batch_size: items per forward pass.
        random_state: seed (used by randomised groupings); recorded in the profile.
        output: which part of the model's output holds the logits, when it is not a
            tensor, an object with ``.logits`` or a dict with ``"logits"``: an index
            (``1`` for a model returning ``(features, logits)``), a key, or a function of
            the output.

    Returns:
        Profile: per-item scores and groups (group 0 easiest), with per-group
        sizes, mean scores and ES against the retain set.

    Examples:
        >>> import rum
        >>> p = rum.profile(model, forget_set, retain_set)  # doctest: +SKIP
        >>> print(p)  # doctest: +SKIP
        >>> p.indices(2)  # forget positions of the most memorized group  # doctest: +SKIP
    """
    check_model(model)
    forget = as_data(forget_set, "forget_set")
    retain = None if retain_set is None else as_data(retain_set, "retain_set", allow_empty=True)
    sets = {"forget_set": forget}
    if retain is not None and len(retain):
        sets["retain_set"] = retain
    _, sets = fit_to_model(model, sets, output)
    forget, retain = sets["forget_set"], sets.get("retain_set", retain)
    with select_output(model, output):
        return _profile_data(
            model,
            forget,
            retain,
            check_random_state(random_state),
            memorization=memorization,
            entanglement=entanglement,
            embedding_layer=embedding_layer,
            grouping=grouping,
            n_groups=n_groups,
            batch_size=batch_size,
        )
