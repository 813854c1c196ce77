"""``rum.audit``: a per-example membership audit (LiRA, or U-LiRA with ``unlearn``) on shadow models."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rum._api import PIPELINE_OPTIONS
from rum._api import unlearn as rum_unlearn
from rum._audit._record import Audit, attack_summary
from rum._audit._shadows import (
    ShadowSpec,
    ShadowStore,
    as_source,
    fingerprint,
    is_in_shadow,
    negatives_in,
    run_shadows,
)
from rum._data import TensorData, as_data
from rum._model import check_fits_model, check_model
from rum._runtime.predict import predict_logits
from rum._runtime.progress import progress_enabled
from rum._validation import (
    Interval,
    Options,
    check_options,
    check_random_state,
    did_you_mean,
    validate_params,
)
from rum.exceptions import InvalidParameterError
from rum.metrics.membership import (
    detectability,
    fit_gaussians,
    log_likelihood_ratio,
    logit_confidence,
    lr_log_pvalue,
)
from rum.planner.policies import Policy, list_policies, make_policy
from rum.unlearners import Unlearner
from rum.unlearners.registry import UNLEARNERS, make_unlearner

__all__ = ["audit", "draw_negatives", "PER_ITEM_SHADOWS"]

#: With ``variance="auto"``, audits with at least this many shadows fit a spread per item.
PER_ITEM_SHADOWS = 64

_CONSTRAINTS = {
    "n_shadows": [Interval(int, 4, None)],
    "backend": [Options(("local", "ray"))],
    "variance": [Options(("auto", "global", "per-item"))],
}


# -- unlearn: a callable, or a call to rum.unlearn -----------------------------------------------
class _UserCall:
    """``unlearn(model, forget_set, retain_set)`` as the user wrote it."""

    def __init__(self, fn: Any):
        self.fn = fn

    def __call__(self, model: Any, forget: Any, retain: Any, seed: int) -> Any:
        return self.fn(model, forget, retain)


class _RumCall:
    """``rum.unlearn(model, forget_set, retain_set, **kwargs)`` with the shadow's seed."""

    def __init__(self, kwargs: Mapping[str, Any]):
        self.kwargs = dict(kwargs)

    def __call__(self, model: Any, forget: Any, retain: Any, seed: int) -> Any:
        return rum_unlearn(model, forget, retain, random_state=seed, progress=False, **self.kwargs).model


def _rum_kwargs(spec: Any) -> dict | None:
    """The ``rum.unlearn`` keywords ``spec`` stands for, or ``None`` for a plain callable."""
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str):
        if spec in UNLEARNERS.names():
            return {"unlearner": spec}
        if spec in list_policies():
            return {"policy": spec}
        raise InvalidParameterError(
            f"unlearn={spec!r} is neither a registered unlearner nor a policy.{did_you_mean(spec, [*UNLEARNERS.names(), *list_policies()])} "
            f"Unlearners: {', '.join(UNLEARNERS.names())}; policies: {', '.join(list_policies())}."
        )
    kind = spec if isinstance(spec, type) else type(spec)
    if issubclass(kind, Policy):
        return {"policy": spec}
    if issubclass(kind, Unlearner):
        return {"unlearner": spec}
    return None


def _describe(fn: Any) -> str:
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{name}"


def make_unlearn(spec: Any) -> tuple[Any, str | None]:
    """``(callable or None, description)`` for the ``unlearn`` argument, checked before any training."""
    if spec is None:
        return None, None
    kw = _rum_kwargs(spec)
    if kw is None:
        if not callable(spec):
            raise InvalidParameterError(
                "unlearn must be None, a callable unlearn(model, forget_set, retain_set) -> model, "
                "an unlearner or policy name, a rum.policies policy, or a dict of rum.unlearn "
                f"keywords; got {type(spec).__name__}."
            )
        return _UserCall(spec), _describe(spec)
    for key in ("random_state", "progress"):
        if key in kw:
            raise InvalidParameterError(
                f"unlearn: leave {key!r} out; the audit runs rum.unlearn on each shadow with that "
                "shadow's own seed and no progress bars."
            )
    named = {k: kw[k] for k in ("unlearner", "policy", "device", "retain_guard") if k in kw}
    options = {k: v for k, v in kw.items() if k not in named}
    if "unlearner" in named:
        if "policy" in named:
            raise InvalidParameterError("unlearn: give either 'unlearner' or 'policy', not both.")
        make_unlearner(named["unlearner"], options, "unlearn['unlearner']").validate_params()
    else:
        check_options(options, PIPELINE_OPTIONS, "unlearn (keywords of rum.unlearn)")
        make_policy(named.get("policy", "rum"), argument="unlearn['policy']")
    return _RumCall(kw), "rum.unlearn(" + ", ".join(f"{k}={v!r}" for k, v in sorted(kw.items())) + ")"


# -- the negatives ------------------------------------------------------------------------------
def draw_negatives(forget_labels: Any, test_labels: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out items to score against the forget items, matched to the forget set's labels.

    For each label, as many test items as the forget set has of it (all of
    them when the test set has fewer); weights then restore the forget set's
    label mix in the ROC. When no label is shared, a random sample.

    Returns:
        ``(positions in the test set, sorted; weights)``.

    Examples:
        >>> idx, w = draw_negatives([0, 0, 1], [1, 0, 1, 0, 0], seed=0)
        >>> len(idx), sorted(np.asarray([1, 0, 1, 0, 0])[idx].tolist()), w.tolist()
        (3, [0, 0, 1], [1.0, 1.0, 1.0])
        >>> idx, w = draw_negatives([0, 0, 0, 1], [0, 1, 1], seed=0)
        >>> idx.tolist(), w.tolist()
        ([0, 1], [3.0, 1.0])
    """
    fy = np.asarray(forget_labels).reshape(-1)
    ty = np.asarray(test_labels).reshape(-1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    chosen, weights = [], []
    for c in np.unique(fy):
        need = int((fy == c).sum())
        cand = np.flatnonzero(ty == c)
        take = min(need, len(cand))
        if take:
            chosen.append(rng.choice(cand, take, replace=False))
            weights.append(np.full(take, need / take))
    if not chosen:
        idx = rng.choice(len(ty), min(len(fy), len(ty)), replace=False)
        return np.sort(idx), np.ones(len(idx))
    idx = np.concatenate(chosen)
    w = np.concatenate(weights)
    order = np.argsort(idx)
    return idx[order], w[order]


# -- the audit ----------------------------------------------------------------------------------
def _unwrap(model: Any, name: str) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module) and isinstance(getattr(model, "model", None), torch.nn.Module):
        model = model.model
    return check_model(model, name)


def _scores(model: torch.nn.Module, scored: TensorData, fits: tuple) -> tuple[np.ndarray, np.ndarray]:
    x = logit_confidence(predict_logits(model, scored.X), scored.y)
    log_p = lr_log_pvalue(x, *fits)
    return -log_p / math.log(10.0), log_likelihood_ratio(x, *fits)


def audit(
    model: Any,
    forget_set: Any,
    *,
    retain_set: Any,
    test_set: Any,
    train_fn: Any,
    n_shadows: int = 16,
    unlearn: Any = None,
    backend: str = "local",
    random_state: Any = None,
    reference: Any = None,
    variance: str = "auto",
    checkpoint: str | Path | None = None,
    progress: bool | None = None,
) -> Audit:
    """Did the model really forget? Audit each forget item with a likelihood-ratio attack.

    ``train_fn`` (your training recipe) trains ``n_shadows`` shadow models:
    half on retain + forget (and half of the held-out negatives), half on the
    retain set alone, i.e. retrained without the forget set. For each forget
    item, its logit-scaled confidence ``log(p / (1 - p))`` of the true label
    over each half gives a Gaussian "trained with it" and one "never trained
    on it"; the audited model's value gets their likelihood ratio (LiRA,
    Carlini et al. 2022) and the ratio's p-value under "never trained on it",
    reported as ``score = -log10(p)``. The negatives, as many test items as
    forget items and with the same labels, are scored the same way; the
    attack's AUC and true-positive rates at 1 % and 0.1 % false positives
    compare forget items with them. A model retrained without the forget set
    sits near AUC 0.5.

    With ``unlearn``, the "with it" shadows are unlearned first (on their
    forget and negative items, keeping the retain set): the Gaussians become
    "trained with it, then unlearned" against "never trained on it". That is
    U-LiRA (Hayes et al. 2025): it audits the unlearning algorithm, and the
    audited model should be one it produced.

    Cost: ``n_shadows`` runs of ``train_fn``, each on about the training set
    (half of them retrains on the retain set: ``audit.cost_retrains`` counts
    in those), plus ``n_shadows / 2`` unlearning runs with ``unlearn``, plus
    forward passes over ``2 x len(forget_set)`` items. With ``checkpoint``,
    later audits of other models on the same data (and seed, and ``unlearn``)
    reuse the shadows for free.

    Args:
        model: the model to audit (an ``nn.Module``, or an :class:`~rum.UnlearnResult`).
        forget_set: the items it should have forgotten, in any form rum accepts.
        retain_set: the rest of its training data.
        test_set: held-out data; the negatives are drawn from it.
        train_fn: ``train_fn(train_set) -> model``: train a fresh model with
            your recipe. ``train_set`` comes in the form you passed the data
            in: an ``(X, y)`` pair of numpy arrays or of tensors, or, for
            ``Dataset`` inputs, a ``Subset`` of your dataset (a
            ``ConcatDataset`` of subsets when retain, forget and test are not
            subsets of one dataset). Each call runs under its own seed of
            torch's, numpy's and Python's global generators (restored
            afterwards), so a recipe that draws from them is reproducible.
        n_shadows: shadow models (at least 4; even numbers split evenly).
            The default 16 suits the global-variance fit.
        unlearn: ``None`` (LiRA), or how to unlearn the "with it" shadows: a
            callable ``unlearn(model, forget_set, retain_set) -> model`` (data
            in the same forms as ``train_fn``'s), an unlearner or policy name
            (``"finetune"``, ``"auto"``), a :mod:`rum.policies` policy, or a
            dict of :func:`rum.unlearn` keywords (``{}`` is RUM's defaults).
        backend: ``"local"`` (one shadow after another, in this process) or
            ``"ray"`` (one Ray task per shadow on the running cluster, or a
            new local one; ``pip install 'rum-unlearn[distributed]'``;
            ``train_fn`` and ``unlearn`` must then pickle).
        random_state: seed for the negatives, the shadows' splits and seeds.
        reference: a model retrained without the forget set (or its
            :class:`~rum.UnlearnResult`): scored the same way, it shows where
            "forgotten" sits (near AUC 0.5).
        variance: ``"global"`` (one spread per hypothesis, pooled over items),
            ``"per-item"``, or ``"auto"``: per item from
            :data:`PER_ITEM_SHADOWS` shadows on.
        checkpoint: an ``.npz`` path; every finished shadow is saved there, and
            a later audit with the same data, seed and ``unlearn`` resumes from
            (or reuses) them. The file cannot tell whether ``train_fn`` changed:
            use a new file for a new recipe.
        progress: a bar with shadows done and the time left; ``None`` shows it
            on a terminal only.

    Returns:
        Audit: per-item scores in forget-set order, the attack's figures, the
        reference's, and the items most at risk.

    Examples:
        >>> import rum
        >>> from rum.demo import RECIPE, digits_scenario, make_mlp
        >>> sc = digits_scenario(seed=0)
        >>> def train(data):
        ...     return rum.fit(make_mlp(), data, device="cpu", **RECIPE)
        >>> result = rum.audit(sc.model, sc.forget, retain_set=sc.retain, test_set=sc.test,
        ...                    train_fn=train, n_shadows=4, random_state=0, progress=False)
        >>> result.auc > 0.6   # the original model still gives its memorised items away
        True
    """
    validate_params(dict(n_shadows=n_shadows, backend=backend, variance=variance), _CONSTRAINTS,
                    "rum.audit")
    if not callable(train_fn):
        raise InvalidParameterError(
            f"train_fn must be a callable train_fn(train_set) -> model; got {type(train_fn).__name__}."
        )
    unlearn_call, unlearn_desc = make_unlearn(unlearn)
    t0 = time.perf_counter()
    model = _unwrap(model, "model")
    ref_model = None if reference is None else _unwrap(reference, "reference")
    forget = as_data(forget_set, "forget_set")
    retain = as_data(retain_set, "retain_set")
    test = as_data(test_set, "test_set")
    sets = {"forget_set": forget, "retain_set": retain, "test_set": test}
    check_fits_model(model, sets)
    if ref_model is not None:
        check_fits_model(ref_model, sets)
    seed = check_random_state(random_state)
    neg, weights = draw_negatives(forget.y.numpy(), test.y.numpy(), seed)
    scored = forget.concat(test.subset(neg))
    n_f = len(forget)
    meta = {
        "version": 1, "n_scored": len(scored), "n_forget": n_f, "seed": seed,
        "unlearn": unlearn_desc,
        "data": fingerprint(retain, scored, extra={"negatives": neg.tolist()}),
    }
    store = ShadowStore(checkpoint, meta)
    spec = ShadowSpec(train_fn, unlearn_call, as_source(retain_set, retain),
                      as_source(forget_set, forget), as_source(test_set, test), neg, scored, seed)
    wall = run_shadows(spec, n_shadows, store, backend=backend, progress=progress_enabled(progress))

    outs = [store.done[k] for k in range(n_shadows)]
    stats = np.stack([o.phi if o.phi_unlearned is None else o.phi_unlearned for o in outs])
    in_mask = np.zeros(stats.shape, dtype=bool)
    out_mask = np.zeros(stats.shape, dtype=bool)
    for k in range(n_shadows):
        if is_in_shadow(k):
            in_mask[k, :n_f] = True
            in_mask[k, n_f:] = negatives_in(len(neg), seed, k)
        else:
            out_mask[k] = True
    var = variance if variance != "auto" else ("per-item" if n_shadows >= PER_ITEM_SHADOWS else "global")
    fits = fit_gaussians(stats, in_mask, out_mask, var)
    score, log_lr = _scores(model, scored, fits)
    ref = None
    if ref_model is not None:
        ref = _scores(ref_model, scored, fits)[0]
    correct = np.stack([o.correct for o in outs]).astype(np.float64)
    rows_in = np.array([is_in_shadow(k) for k in range(n_shadows)])
    memorization = correct[rows_in, :n_f].mean(0) - correct[~rows_in, :n_f].mean(0)
    retrain_s = [o.train_seconds for o in outs if not is_in_shadow(o.k)]
    return Audit(
        scores=score[:n_f], log_lr=log_lr[:n_f],
        detectability=detectability(fits[0], fits[1], in_mask.sum(0), fits[2], fits[3],
                                    out_mask.sum(0))[:n_f], memorization=memorization,
        negative_scores=score[n_f:], negatives=neg, negative_weights=weights,
        attack=attack_summary(score[:n_f], score[n_f:], weights),
        reference_scores=None if ref is None else ref[:n_f],
        reference_negative_scores=None if ref is None else ref[n_f:],
        reference_attack=None if ref is None else attack_summary(ref[:n_f], ref[n_f:], weights),
        mode="lira" if unlearn_call is None else "u-lira", unlearn=unlearn_desc,
        n_shadows=n_shadows, variance=var, seed=seed,
        timings={
            "train": float(sum(o.train_seconds for o in outs)),
            "unlearn": float(sum(o.unlearn_seconds for o in outs)),
            "retrain": float(np.mean(retrain_s)),
            "shadows": wall,
            "total": time.perf_counter() - t0,
        },
    )
