"""A training set's Hessian, computed once and reused by every later correction.

The exact second-order correction needs the Hessian of the corrected training
objective, and building it is a pass over the whole training set that costs
``O(n p^2)``: for a large data set that pass dominates the correction. The
Hessian is a sum over items, so the corrected one is the training set's plus
the affected items' part. :func:`cache_hessian` computes the training set's
part once (at training time, or once before a request), with the summed loss
and gradient; ``rum.correct(..., hessian_cache=cache)`` then touches only the
affected items to build the corrected Hessian and the objective before the
update, and makes one pass over the training set per Newton step to measure
the gradient residual it reports (none with ``verify=False``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rum._data import as_data
from rum._model import check_model, fit_to_model
from rum._validation import resolve_device
from rum.exceptions import InvalidParameterError
from rum.influence.hvp import ParamSpace
from rum.influence.objective import Objective, Term
from rum.influence.workspace import build_workspace, default_batch_size

__all__ = ["HessianCache", "cache_hessian"]


@dataclass(frozen=True, eq=False)
class HessianCache:
    """The summed data Hessian of a training set at a model's weights.

    Attributes:
        parameters: names of the parameters it covers.
        n: size of the training set it was computed on.
        theta: the weights it was computed at (flat, float64).
        data_hessian: ``sum_i Hess CE(z_i)`` over the training set (``p x p``,
            float64, on the device it was computed on; no regulariser).
        data_grad: ``sum_i grad CE(z_i)`` at ``theta`` (float64).
        data_loss: ``sum_i CE(z_i)`` at ``theta``.
        seconds: how long computing it took.
    """

    parameters: tuple[str, ...]
    n: int
    theta: torch.Tensor
    data_hessian: torch.Tensor
    data_grad: torch.Tensor
    data_loss: float
    seconds: float
    _factors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def preconditioner(self, reg: torch.Tensor, n: float) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """``u -> A^-1 u`` with ``A = data_hessian / n + diag(reg)``.

        ``A^-1`` is computed (from a Cholesky factor) at the first call on a
        device and dtype, and kept: later requests on this cache reuse it, as
        a preconditioner, for which a slightly different ``n`` or ``reg`` does
        not matter. Each use is one matrix-vector product. ``None`` where
        ``A`` is not safely positive definite (e.g. an unpenalised softmax
        intercept, whose Hessian is singular).
        """
        key = (str(reg.device), reg.dtype)
        if key not in self._factors:
            A = self.data_hessian.to(reg.device, reg.dtype) / n
            A.diagonal().add_(reg)
            L, info = torch.linalg.cholesky_ex(A)
            pivots = L.diagonal()
            ok = int(info) == 0 and float(pivots.min()) ** 2 > 1e-10 * float(pivots.max()) ** 2
            self._factors[key] = torch.cholesky_inverse(L) if ok else None
        inverse = self._factors[key]
        if inverse is None:
            return None
        return lambda u: inverse @ u

    def on(self, device: torch.device | str, dtype: torch.dtype) -> tuple[float, torch.Tensor, torch.Tensor]:
        """``(data_loss, data_grad, data_hessian)`` on ``device`` in ``dtype``."""
        return (self.data_loss, self.data_grad.to(device, dtype),
                self.data_hessian.to(device, dtype))

    def __repr__(self) -> str:
        p = self.theta.numel()
        return (f"HessianCache(n={self.n}, parameters={list(self.parameters)}, "
                f"size={p}x{p}, seconds={self.seconds:.3g})")

    def check(self, space: ParamSpace, theta: torch.Tensor, n: int, *, stale_ok: bool = False) -> bool:
        """Raise ``InvalidParameterError`` unless this cache can serve these weights and data.

        Returns whether it is *stale*: computed at other weights or on a
        training set of another size (an earlier model in a chain of
        corrections). A stale cache is accepted only with ``stale_ok``; its
        parameters must always be the ones the correction updates.
        """
        if tuple(space.names) != self.parameters:
            raise InvalidParameterError(
                f"hessian_cache does not match: it covers parameters {list(self.parameters)}, the "
                f"correction updates {list(space.names)}. Build it with "
                "rum.influence.cache_hessian(model, train_set, parameters=...) with the same parameters."
            )
        if n != self.n:
            problem = f"it was computed on {self.n} training items, train_set has {n}"
        elif not torch.equal(theta.detach().to("cpu", torch.float64), self.theta.to("cpu")):
            problem = "the model's weights differ from those it was computed at"
        else:
            return False
        if not stale_ok:
            raise InvalidParameterError(
                f"hessian_cache does not match: {problem}. A cache from an earlier model serves "
                "only verified corrections that refine (verify=True and max_steps > 1, the "
                "default for linear models) without a certificate; otherwise build it for this "
                "model with rum.influence.cache_hessian(model, train_set, parameters=...)."
            )
        return True


def cache_hessian(
    model: Any,
    train_set: Any,
    *,
    parameters: Any = None,
    device: Any = "cpu",
) -> HessianCache:
    """Compute the training set's Hessian once, for fast exact corrections.

    Args:
        model: the trained model (``torch.nn.Module``) or fitted scikit-learn
            ``LogisticRegression``; it is not modified.
        train_set: the data the model was trained on.
        parameters: the parameters the corrections will update (as in
            :func:`rum.correct`; ``None`` for all).
        device: where to compute and keep it.

    Returns:
        HessianCache: pass it as ``rum.correct(..., hessian_cache=cache)``
        with the same model, ``train_set`` and ``parameters``. The corrected
        model has other weights; for it (and the next links of a chain of
        corrections) the cache still serves verified corrections as an
        approximate Hessian and preconditioner, but not ``verify=False``.

    Examples:
        >>> import numpy as np, rum
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = np.random.default_rng(0).normal(size=(300, 4)); y = (X[:, 0] > 0).astype(int)
        >>> clf = LogisticRegression().fit(X, y)
        >>> cache = rum.influence.cache_hessian(clf, (X, y))
        >>> res = rum.correct(clf, rum.requests.delete((X, y), [0, 1, 2]), train_set=(X, y),
        ...                   hessian_cache=cache)
        >>> res.residual < 1e-6
        True
    """
    from rum.influence import sklearn as skl

    t0 = time.perf_counter()
    if skl.is_logistic_regression(model):
        if parameters is not None:
            raise InvalidParameterError("parameters must be None for a scikit-learn model.")
        train = as_data(skl.encode_labels(model, train_set, "train_set"), "train_set")
        model, _ = skl.estimator_to_torch(model)
    else:
        check_model(model)
        train = as_data(train_set, "train_set")
    train = fit_to_model(model, {"train_set": train})[1]["train_set"]
    ws = build_workspace(model, parameters, [train], resolve_device(device))
    if ws.space.size > 20000:
        raise InvalidParameterError(
            f"hessian_cache holds a dense {ws.space.size} x {ws.space.size} matrix; that is too "
            "large. Cache the last layers only (parameters=1), or correct with solver='cg'."
        )
    obj = Objective(ws.module, ws.space, [Term(ws.data[0])], batch_size=default_batch_size(ws.linear))
    theta = ws.space.read(ws.net).to(torch.float64 if ws.linear else obj.mask.dtype)
    H = obj.data_hessian(theta).to(torch.float64)
    loss, g = obj.data_sums(theta)
    return HessianCache(
        parameters=tuple(ws.space.names), n=len(train), theta=theta.detach().to("cpu", torch.float64),
        data_hessian=0.5 * (H + H.T), data_grad=g.to(torch.float64), data_loss=float(loss),
        seconds=time.perf_counter() - t0,
    )
