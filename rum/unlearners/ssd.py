"""SSD: dampen the weights that matter far more to the forget set than to the rest of the data."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rum._data import as_data
from rum._runtime.context import RunContext
from rum._validation import BOOL, NONE, InstanceOf, Interval
from rum.exceptions import InvalidParameterError
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner

__all__ = ["SSD", "FisherImportances", "fisher_importances", "dampen", "retain_share"]

#: Per-item gradients are computed for at most this many numbers (items x
#: parameters) at once; a larger model gets smaller chunks.
_CHUNK_NUMBERS = 2**24


@dataclass(frozen=True, eq=False)
class FisherImportances:
    """Diagonal Fisher importances of a model's parameters on a data set.

    ``values[name]`` has the shape of parameter ``name``: the mean over the
    ``n_items`` items of the squared gradient of the item's cross-entropy
    (the empirical Fisher information's diagonal). Build one with
    :func:`fisher_importances`; keep it with :meth:`save` and :meth:`load`.

    Examples:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2)
        >>> imp = fisher_importances(net, (torch.randn(8, 3), torch.tensor([0, 1] * 4)))
        >>> imp
        FisherImportances(n_items=8, parameters=2)
        >>> sorted(imp.values), tuple(imp.values["weight"].shape)
        (['bias', 'weight'], (2, 3))
    """

    values: Mapping[str, torch.Tensor]
    n_items: int

    def __repr__(self) -> str:
        return f"FisherImportances(n_items={self.n_items}, parameters={len(self.values)})"

    def save(self, path: str | os.PathLike) -> None:
        """Write the importances to ``path`` (a tensor file; :meth:`load` reads it back)."""
        torch.save({"n_items": int(self.n_items),
                    "values": {k: v.detach().cpu() for k, v in self.values.items()}}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FisherImportances:
        """Read importances written by :meth:`save` (tensors only: no code is run)."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return cls(values=dict(blob["values"]), n_items=int(blob["n_items"]))

    def check_matches(self, model: torch.nn.Module, name: str = "train_importances") -> None:
        """Raise :class:`~rum.exceptions.InvalidParameterError` unless the importances cover
        exactly ``model``'s trainable parameters, with their shapes."""
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        missing = sorted(set(params) - set(self.values))
        extra = sorted(set(self.values) - set(params))
        wrong = sorted(n for n in set(params) & set(self.values)
                       if tuple(self.values[n].shape) != tuple(params[n].shape))
        if missing or extra or wrong:
            parts = [f"{what}: {', '.join(names[:5])}" for what, names in
                     (("missing", missing), ("unknown", extra), ("wrong shape", wrong)) if names]
            raise InvalidParameterError(
                f"The {name!r} parameter does not fit this model ({'; '.join(parts)}). Compute it "
                "on the same model with rum.unlearners.fisher_importances(model, train_set)."
            )


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _squared_gradients_vmap(model, params, X, y, chunk):
    from torch.func import functional_call, grad, vmap

    buffers = {n: b.detach() for n, b in model.named_buffers()}
    frozen = {n: p.detach() for n, p in model.named_parameters() if n not in params}

    def item_loss(p, x, t):
        out = functional_call(model, ({**frozen, **p, **buffers}), (x.unsqueeze(0),))
        return F.cross_entropy(_logits(out), t.unsqueeze(0))

    per_item = vmap(grad(item_loss), in_dims=(None, 0, 0))
    detached = {n: p.detach() for n, p in params.items()}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in range(0, len(y), chunk):
        grads = per_item(detached, X[s : s + chunk], y[s : s + chunk])
        for n in total:
            total[n].add_(grads[n].pow(2).sum(0))
    return total


def _squared_gradients_loop(model, params, X, y):
    names = list(params)
    tensors = [params[n] for n in names]
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(y)):
        loss = F.cross_entropy(_logits(model(X[i : i + 1])), y[i : i + 1])
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for n, g in zip(names, grads, strict=True):
            if g is not None:
                total[n].add_(g.pow(2))
    return total


def fisher_importances(model: torch.nn.Module, data: Any, *, ctx: RunContext | None = None
                       ) -> FisherImportances:
    """The diagonal empirical Fisher importances of ``model``'s parameters on ``data``.

    For every trainable parameter, the mean over the items of the squared
    gradient of the item's own cross-entropy loss (per-item gradients, not
    squared mini-batch gradients), with the model in eval mode (batch
    normalisation uses its running statistics, dropout is off). The weights
    are not changed and their ``.grad`` fields are left alone.

    Compute it once on the training set after training, save it
    (:meth:`FisherImportances.save`), and pass it to ``ssd`` as
    ``train_importances`` to unlearn later without the retain data.

    Args:
        model: the trained model (its device is used).
        data: ``(X, y)`` arrays or tensors, a torch ``Dataset`` or a
            :class:`rum.TensorData`.
        ctx: a run context to report one finished step to, or ``None``.

    Examples:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> X, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
        >>> imp = fisher_importances(net, (X, y))
        >>> g = [torch.autograd.grad(torch.nn.functional.cross_entropy(net(X[i:i+1]), y[i:i+1]),
        ...                          net.bias)[0] for i in range(4)]
        >>> torch.allclose(imp.values["bias"], sum(x ** 2 for x in g) / 4)
        True
    """
    data = data if hasattr(data, "X") and hasattr(data, "y") else as_data(data, "data")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    first = next(iter(params.values()), None)
    if first is None or len(data) == 0:
        return FisherImportances({n: torch.zeros_like(p) for n, p in params.items()}, len(data))
    X = data.X.to(first.device, first.dtype if data.X.is_floating_point() else data.X.dtype)
    y = data.y.to(first.device)
    n_numbers = sum(p.numel() for p in params.values())
    chunk = max(1, min(256, _CHUNK_NUMBERS // max(1, n_numbers)))
    was_training = model.training
    model.eval()
    try:
        try:
            total = _squared_gradients_vmap(model, params, X, y, chunk)
        except (RuntimeError, NotImplementedError, TypeError, ValueError):
            # a model torch.func cannot batch (data-dependent control flow, in-place
            # updates of its inputs...): the same numbers, one item at a time
            total = _squared_gradients_loop(model, params, X, y)
    finally:
        model.train(was_training)
    if ctx is not None:
        ctx.step(None)
    return FisherImportances({n: t.div_(len(y)) for n, t in total.items()}, len(y))


def retain_share(train: FisherImportances, forget: FisherImportances) -> FisherImportances:
    """The importances of the training set without the forget items.

    Importances are per-item means, so removing the forget items' share of
    ``train`` (which they are part of) is exact: ``(N * train - n * forget) /
    (N - n)``, clipped at zero against rounding.

    Examples:
        >>> import torch
        >>> train = FisherImportances({"w": torch.tensor([2.0])}, n_items=4)
        >>> forget = FisherImportances({"w": torch.tensor([5.0])}, n_items=1)
        >>> retain_share(train, forget).values["w"].tolist()
        [1.0]
    """
    n_rest = train.n_items - forget.n_items
    if n_rest <= 0:
        raise InvalidParameterError(
            f"The 'train_importances' parameter of SSD was computed on {train.n_items} items, "
            f"not more than the {forget.n_items} forget items: compute it on the whole "
            "training set (forget items included)."
        )
    values = {}
    for name, t in train.values.items():
        f = forget.values[name].to(t.device, t.dtype)
        values[name] = ((t * train.n_items - f * forget.n_items) / n_rest).clamp_(min=0)
    return FisherImportances(values, n_rest)


def _mean(values: Mapping[str, torch.Tensor]) -> float:
    total = sum(float(v.double().sum()) for v in values.values())
    count = sum(v.numel() for v in values.values())
    return total / count if count else 0.0


@torch.no_grad()
def dampen(model: torch.nn.Module, forget: Mapping[str, torch.Tensor],
           reference: Mapping[str, torch.Tensor], alpha: float, lam: float) -> int:
    """Apply SSD's dampening to ``model`` in place; return the number of weights dampened.

    Every weight whose forget importance exceeds ``alpha`` times its
    reference importance is multiplied by ``min(lam * reference / forget, 1)``.

    Examples:
        >>> import torch
        >>> net = torch.nn.Linear(2, 1, bias=False)
        >>> _ = net.weight.data.copy_(torch.tensor([[1.0, 1.0]]))
        >>> dampen(net, {"weight": torch.tensor([[10.0, 1.0]])},
        ...        {"weight": torch.tensor([[0.5, 1.0]])}, alpha=2.0, lam=1.0)
        1
        >>> net.weight.tolist()
        [[0.05000000074505806, 1.0]]
    """
    n = 0
    for name, p in model.named_parameters():
        if name not in forget:
            continue
        f, r = forget[name].to(p.device, p.dtype), reference[name].to(p.device, p.dtype)
        selected = f > alpha * r
        factor = torch.where(selected, (lam * r / torch.where(selected, f, 1)).clamp(max=1), 1)
        p.mul_(factor)
        n += int(selected.sum())
    return n


@register_unlearner("ssd")
class SSD(Unlearner):
    """Selective Synaptic Dampening: shrink the weights far more important to the forget set.

    No training: the diagonal Fisher importance of every weight is measured
    on the forget set and on the rest of the data (:func:`fisher_importances`:
    the mean squared per-item gradient of the loss); a weight whose forget
    importance exceeds ``alpha`` times its retain importance is multiplied by
    ``min(lam * retain importance / forget importance, 1)``; all others keep
    their values exactly (Foster, Schoepf and Brintrup, "Fast Machine
    Unlearning Without Retraining Through Selective Synaptic Dampening",
    AAAI 2024). Batch-norm statistics and other buffers are not changed.

    **Relative importances** (``relative=True``, the default, a departure from
    the paper): each set's importances are divided by their mean over all
    weights before they are compared, so ``alpha`` says how many times more a
    weight matters to the forget set *than the forget set's weights matter on
    average*. Where the model fits forget and retain items alike (the paper's
    class-wise setting) the two means are close and this is the paper's rule.
    Where it fits the forget items less well (mislabeled or hard items, whose
    gradients are larger everywhere) the paper's rule selects nearly every
    weight: with alpha 10 it wrecked the model on mixed forget sets on all
    three models of ``benchmarks/defaults_check.py`` (rolled back by the
    retain guard). ``relative=False, alpha=10.0`` is the paper's rule.

    **Without retain data.** Compute the importances of the whole training
    set once, when the model is trained, keep them, and pass them as
    ``train_importances`` (the object or the path it was saved to): SSD then
    reads only the forget set, and removes the forget items' share from the
    training-set importances exactly (:func:`retain_share`), so the result is
    the one a retain set would give::

        imp = rum.unlearners.fisher_importances(model, train_set)
        imp.save("importances.pt")
        ...
        rum.unlearn(model, forget_set, unlearner="ssd", train_importances="importances.pt")

    The importances must be those of the model SSD is given: in a plan, only
    a first step matches them. Given a retain set too, ``train_importances``
    is used and the retain set is not read.

    Args:
        alpha: selection threshold (the paper's alpha), > 0: a weight is
            dampened when its forget importance exceeds ``alpha`` times its
            retain importance. Default 5: with relative importances the best
            mean ToW of {3, 5, 10} over three models, three forget scenarios and
            two seeds (``benchmarks/NOTES.md``); the paper uses 10.
        lam: dampening constant (the paper's lambda), > 0. Default 1, as in
            the paper: a selected weight keeps at most ``1 / alpha`` of its value.
        relative: compare importances relative to each set's mean (default
            ``True``), or raw as in the paper (``False``).
        train_importances: the :class:`FisherImportances` of this model on
            its whole training set (forget items included), or the path of a
            file written by :meth:`FisherImportances.save`; ``None`` (default):
            the retain set's are computed, and a retain set is required.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("ssd")(alpha=10.0, relative=False)
        SSD(alpha=10.0, relative=False)
    """

    tags = UnlearnerTags(
        requires_retain=True, stochastic=False, cost="low",
        source="Foster et al., AAAI 2024", suits=("class-wise", "sub-class", "random"),
    )
    _parameter_constraints = {
        "alpha": [Interval(float, 0, None, closed="neither")],
        "lam": [Interval(float, 0, None, closed="neither")],
        "relative": [BOOL],
        "train_importances": [
            InstanceOf((FisherImportances, str, os.PathLike),
                       "a FisherImportances or the path of a file it was saved to"),
            NONE,
        ],
    }

    def __init__(self, alpha: float = 5.0, lam: float = 1.0, relative: bool = True,
                 train_importances=None):
        self.alpha = alpha
        self.lam = lam
        self.relative = relative
        self.train_importances = train_importances

    def _check_can_run(self, retain):
        self.validate_params()
        if self.train_importances is None and (retain is None or len(retain) == 0):
            raise InvalidParameterError(
                "SSD needs the importances of the rest of the data: pass retain_set=(X_retain, "
                "y_retain), or train_importances= computed once after training with "
                "rum.unlearners.fisher_importances(model, train_set)."
            )

    def _train_importances(self, model) -> FisherImportances:
        given = self.train_importances
        if not isinstance(given, FisherImportances):
            try:
                given = FisherImportances.load(given)
            except (OSError, KeyError, RuntimeError, TypeError, ValueError) as err:
                raise InvalidParameterError(
                    f"The 'train_importances' parameter of SSD names {str(given)!r}, which could "
                    f"not be read as saved importances ({type(err).__name__}: {err})."
                ) from err
        given.check_matches(model, "train_importances")
        return given

    def _unlearn(self, model, forget, retain, ctx):
        ctx.start(1 if self.train_importances is not None else 2)
        own = fisher_importances(model, forget, ctx=ctx)
        if self.train_importances is not None:
            reference = retain_share(self._train_importances(model), own)
        else:
            reference = fisher_importances(model, retain, ctx=ctx)
        scale = 1.0
        if self.relative:
            mean_forget, mean_rest = _mean(own.values), _mean(reference.values)
            if mean_forget > 0 and mean_rest > 0:
                scale = mean_forget / mean_rest
        dampen(model, own.values, {n: v * scale for n, v in reference.values.items()},
               self.alpha, self.lam)
        return model

    def estimate_work(self, n_forget, n_retain):
        return float(n_forget + (0 if self.train_importances is not None else n_retain))

    @classmethod
    def _test_params(cls):
        # The kit's task forgets 27 mislabeled items (a mixed set, which SSD is not
        # made for): the default alpha closes 19 % of the gap there, alpha 3 closes 35 %.
        return {"alpha": 3.0}
