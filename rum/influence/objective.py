"""The training objective the influence updates assume, with an explicit reduction.

    L(theta) = (1/n) * sum_t w_t * sum_{i in t} CE(f(x_i; theta), y_i)
               + (lambda/2) * ||M theta||^2 + b^T theta / n

* ``t`` runs over *terms*: data sets with a weight ``w_t`` of +1 or -1. The
  corrected training set D~ = D - Z + Z~ is the three terms (D, +1), (Z, -1),
  (Z~, +1), so nothing has to be located inside D, and the Hessian on D~ is
  exact.
* ``n = sum_t w_t |t|`` is the number of items of the data set the objective
  is on, so the loss is the *mean* cross-entropy over it.
* ``lambda`` is ``weight_decay`` with torch's convention (the gradient of the
  penalty is ``lambda * theta``); ``M`` masks the penalised entries (all, by
  default; scikit-learn leaves the intercept out).
* ``b`` is the objective-perturbation vector of certified training (zero
  otherwise). Scaled by ``1/n``, it is ``b^T theta`` in the summed objective.

The model is evaluated in eval mode (dropout off, batch-norm statistics
fixed): the objective is then a deterministic function of ``theta``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import grad_and_value

from rum._data import TensorData
from rum.influence.hvp import ParamSpace, batch_loss_fn, hvp, hvp_many
from rum.influence.linear import BinaryLogit, is_linear_model

__all__ = ["Term", "Objective"]


@dataclass(frozen=True, eq=False)
class Term:
    """A data set entering the objective with weight ``weight`` (+1 adds, -1 removes)."""

    data: TensorData
    weight: float = 1.0


class Objective:
    """Mean cross-entropy over signed data terms plus L2 and a linear perturbation.

    Args:
        model: the model (kept in eval mode by the caller).
        space: which parameters form ``theta``.
        terms: the data terms.
        weight_decay: ``lambda``.
        penalized: names of the penalised parameters (``None``: all in ``space``).
        perturbation: ``b`` as a flat vector on ``space`` (``None``: zero).
        batch_size: items per forward pass.
        n: the normaliser (default: the signed item count of the terms).

    Examples:
        >>> import torch
        >>> from rum._data import TensorData
        >>> from rum.influence.hvp import ParamSpace
        >>> m = torch.nn.Linear(2, 2)
        >>> d = TensorData(torch.randn(5, 2), torch.tensor([0, 1, 0, 1, 1]))
        >>> obj = Objective(m, ParamSpace.of(m, ["weight", "bias"]), [Term(d)], weight_decay=0.1)
        >>> obj.n, obj.grad(obj.space.read(m)).shape
        (5.0, torch.Size([6]))
    """

    def __init__(
        self,
        model: torch.nn.Module,
        space: ParamSpace,
        terms: Sequence[Term],
        *,
        weight_decay: float = 0.0,
        penalized: Sequence[str] | None = None,
        perturbation: torch.Tensor | None = None,
        batch_size: int = 512,
        n: float | None = None,
    ):
        self.model = model
        self.space = space
        self.terms = [t for t in terms if len(t.data)]
        self.weight_decay = float(weight_decay)
        self.batch_size = int(batch_size)
        self.n = float(sum(t.weight * len(t.data) for t in self.terms)) if n is None else float(n)
        if self.n <= 0:
            raise ValueError("the objective's data set is empty")
        selected = set(space.names)
        self.fixed = {n: p.detach() for n, p in model.named_parameters() if n not in selected}
        self.fixed.update({n: b for n, b in model.named_buffers()})
        dtype = next(iter(model.parameters())).dtype
        device = next(iter(model.parameters())).device
        self.mask = space.mask(penalized, dtype=dtype).to(device)
        self.perturbation = None if perturbation is None else perturbation.to(device, dtype)

    # -- data passes --------------------------------------------------------------------------
    def _batches(self):
        for t in self.terms:
            for x, y in t.data.batches(self.batch_size):
                yield batch_loss_fn(self.model, self.space, self.fixed, x, y, t.weight)

    def _reg_value(self, theta: torch.Tensor) -> torch.Tensor:
        val = 0.5 * self.weight_decay * (self.mask * theta * theta).sum()
        if self.perturbation is not None:
            val = val + self.perturbation @ theta / self.n
        return val

    def loss(self, theta: torch.Tensor) -> float:
        """The objective's value at ``theta``."""
        with torch.no_grad():
            total = sum(float(f(theta)) for f in self._batches())
            return total / self.n + float(self._reg_value(theta))

    def data_grad(self, theta: torch.Tensor) -> torch.Tensor:
        """``(1/n) sum_t w_t sum_i grad CE_i``: the data part of the gradient."""
        return self.data_sums(theta)[1] / self.n

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """The full gradient at ``theta``."""
        g = self.data_grad(theta) + self.weight_decay * self.mask * theta
        if self.perturbation is not None:
            g = g + self.perturbation / self.n
        return g

    def hvp(self, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The Hessian at ``theta`` times ``v`` (one pass over the data)."""
        out = torch.zeros_like(theta)
        for f in self._batches():
            out += hvp(f, theta, v)
        return out / self.n + self.weight_decay * self.mask * v

    def hvp_many(self, theta: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """The Hessian times every row of ``V``."""
        return self._data_hvp_many(theta, V) / self.n + self.weight_decay * self.mask * V

    def _data_hvp_many(self, theta: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(V)
        for f in self._batches():
            out += hvp_many(f, theta, V)
        return out

    def data_hvp_operator(self, theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v -> sum_t w_t sum_i Hess CE_i(theta) v``: the summed data Hessian at ``theta``, as a function.

        For linear models the per-item probabilities are computed once here
        and each product is a few small matrix products; other models make
        batched HVPs over the data at every call.
        """
        fast = _linear_hvp_operator(self, theta)
        if fast is not None:
            return fast
        return lambda v: self._data_hvp_many(theta, v[None])[0]

    def data_sums(self, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        """``sum_t w_t sum_i CE_i`` and its gradient: the *summed* data part, one pass.

        Unnormalised, so that the sums over different data sets add up.
        """
        fast = _linear_sums(self, theta)
        if fast is not None:
            return fast
        g = torch.zeros_like(theta)
        total = 0.0
        for f in self._batches():
            gb, vb = grad_and_value(f)(theta)
            g += gb
            total += float(vb)
        return total, g

    def from_data_sums(self, theta: torch.Tensor, loss_sum: float,
                       grad_sum: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The objective's value and gradient from the summed data part (see :meth:`data_sums`)."""
        value = loss_sum / self.n + float(self._reg_value(theta))
        g = grad_sum / self.n + self.weight_decay * self.mask * theta
        if self.perturbation is not None:
            g = g + self.perturbation / self.n
        return value, g

    def value_and_grad(self, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The objective's value and full gradient at ``theta`` in one pass over the data."""
        return self.from_data_sums(theta, *self.data_sums(theta))

    def hessian(self, theta: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """The dense ``p x p`` Hessian (for small models).

        Closed form for linear softmax/logistic models (their Kronecker
        structure makes it one pass of small matrix products); batched HVPs
        against the identity otherwise.
        """
        return self.hessian_from_data(self.data_hessian(theta, chunk))

    def hessian_from_data(self, data_hessian: torch.Tensor) -> torch.Tensor:
        """The Hessian from the summed data part (see :meth:`data_hessian`)."""
        H = (data_hessian + data_hessian.T).mul_(0.5 / self.n)
        H.diagonal().add_(self.weight_decay * self.mask)
        return H

    def data_hessian(self, theta: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """``sum_t w_t sum_i Hess CE_i``: the *summed* data part of the Hessian.

        Unnormalised, so that the parts of different data sets add up (a
        Hessian cached over the training set plus the affected items' part is
        the corrected data set's).
        """
        fast = _linear_hessian(self, theta)
        return self._data_hessian_from_hvps(theta, chunk) if fast is None else fast

    def _data_hessian_from_hvps(self, theta: torch.Tensor, chunk: int) -> torch.Tensor:
        p = theta.numel()
        eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
        return torch.cat([self._data_hvp_many(theta, eye[i : i + chunk]) for i in range(0, p, chunk)])

    def hessian_from_hvps(self, theta: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """The dense Hessian from ``p`` Hessian-vector products (any model)."""
        return self.hessian_from_data(self._data_hessian_from_hvps(theta, chunk))

    def sampled_hvp(
        self, theta: torch.Tensor, v: torch.Tensor, generator: torch.Generator, batch_size: int
    ) -> torch.Tensor:
        """An unbiased mini-batch estimate of the Hessian times ``v``.

        Each term contributes a random batch whose size is proportional to the
        term's size, rescaled by ``|t| / |batch|``.
        """
        total = sum(len(t.data) for t in self.terms)
        out = torch.zeros_like(theta)
        for t in self.terms:
            k = max(1, min(len(t.data), round(batch_size * len(t.data) / total)))
            idx = torch.randperm(len(t.data), generator=generator)[:k].to(t.data.device)
            f = batch_loss_fn(
                self.model, self.space, self.fixed, t.data.X[idx], t.data.y[idx],
                t.weight * len(t.data) / k,
            )
            out += hvp(f, theta, v)
        return out / self.n + self.weight_decay * self.mask * v


@dataclass(frozen=True)
class _LinearLayout:
    """How a linear model's flat parameters map onto its one ``nn.Linear``."""

    K: int
    d: int
    has_bias: bool
    binary: bool


def _linear_layout(obj: Objective) -> _LinearLayout | None:
    model = obj.model
    if not is_linear_model(model):
        return None
    lin_name, lin = next((n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    prefix = f"{lin_name}." if lin_name else ""
    names = [prefix + "weight"] + ([prefix + "bias"] if lin.bias is not None else [])
    if list(obj.space.names) != names:
        return None
    binary = any(isinstance(m, BinaryLogit) for m in model.modules())
    K, d = lin.weight.shape
    return _LinearLayout(K, d, lin.bias is not None, binary)


def _with_ones(x: torch.Tensor, has_bias: bool) -> torch.Tensor:
    xf = x.reshape(len(x), -1)
    if has_bias:
        xf = torch.cat([xf, torch.ones(len(x), 1, dtype=xf.dtype, device=xf.device)], 1)
    return xf


def _logit_batches(obj: Objective, theta: torch.Tensor):
    """``(term weight, x, y, logits)`` per batch of every term, at ``theta``, without autograd."""
    from torch.func import functional_call

    params = {**obj.fixed, **obj.space.unflatten(theta)}
    with torch.no_grad():
        for t in obj.terms:
            for x, y in t.data.batches(obj.batch_size):
                yield t.weight, x, y, functional_call(obj.model, params, (x,))


def _linear_sums(obj: Objective, theta: torch.Tensor) -> tuple[float, torch.Tensor] | None:
    """Closed-form summed loss and gradient for a single ``nn.Linear`` (or ``BinaryLogit``)."""
    lay = _linear_layout(obj)
    if lay is None:
        return None
    gw = torch.zeros(lay.K, lay.d, dtype=theta.dtype, device=theta.device)
    gb = torch.zeros(lay.K, dtype=theta.dtype, device=theta.device)
    total = 0.0
    for w, x, y, out in _logit_batches(obj, theta):
        logp = torch.log_softmax(out, dim=1)
        total += w * float(-logp.gather(1, y[:, None]).sum())
        r = logp.exp()
        r[torch.arange(len(y), device=r.device), y] -= 1.0  # dCE/dlogits
        if lay.binary:
            r = r[:, 1:]
        gw += w * (r.T @ x.reshape(len(x), -1))
        gb += w * r.sum(0)
    g = gw.reshape(-1)
    return total, (torch.cat([g, gb]) if lay.has_bias else g)


def _linear_hvp_operator(obj: Objective, theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Closed-form summed data HVP for a single ``nn.Linear`` (or ``BinaryLogit``).

    Per item, the logits' Hessian is ``diag(p) - p p^T`` (softmax) or
    ``s (1 - s)`` (binary); the product with ``v`` is the change of the logits
    along ``v``, pushed through it and back onto the weights.
    """
    lay = _linear_layout(obj)
    if lay is None:
        return None
    parts = []
    for w, x, _, out in _logit_batches(obj, theta):
        if lay.binary:
            s = torch.sigmoid(out[:, 1] - out[:, 0])
            curv = (s * (1 - s))[:, None]
        else:
            curv = torch.softmax(out, dim=1)
        parts.append((w, x.reshape(len(x), -1), curv))
    nw = lay.K * lay.d

    def op(v: torch.Tensor) -> torch.Tensor:
        W = v[:nw].reshape(lay.K, lay.d)
        gw = torch.zeros_like(W)
        gb = torch.zeros(lay.K, dtype=v.dtype, device=v.device)
        for w, xf, curv in parts:
            z = xf @ W.T
            if lay.has_bias:
                z = z + v[nw:]
            if lay.binary:
                r = curv * z
            else:
                r = curv * (z - (curv * z).sum(1, keepdim=True))
            gw += w * (r.T @ xf)
            gb += w * r.sum(0)
        g = gw.reshape(-1)
        return torch.cat([g, gb]) if lay.has_bias else g

    return op


def _linear_hessian(obj: Objective, theta: torch.Tensor) -> torch.Tensor | None:
    """Closed-form summed data Hessian for a single ``nn.Linear`` (or ``BinaryLogit``)."""
    lay = _linear_layout(obj)
    if lay is None:
        return None
    K, d, has_bias, binary = lay.K, lay.d, lay.has_bias, lay.binary
    dp = d + int(has_bias)
    H4 = torch.zeros(K, dp, K, dp, dtype=theta.dtype, device=theta.device)
    for w, x, _, out in _logit_batches(obj, theta):
        xf = _with_ones(x, has_bias)
        if binary:
            sig = torch.sigmoid(out[:, 1] - out[:, 0])
            H4[0, :, 0, :] += w * (xf.T * (sig * (1 - sig))) @ xf
            continue
        P = torch.softmax(out, dim=1)
        D = torch.einsum("ik,ia,ib->kab", P, xf, xf)
        M = (P[:, :, None] * xf[:, None, :]).reshape(len(x), K * dp)
        H4 -= w * (M.T @ M).reshape(K, dp, K, dp)
        idx = torch.arange(K)
        H4[idx, :, idx, :] += w * D
    # H4 is laid out class by class with the bias last in each block; the flat
    # parameters hold the whole weight matrix first, then the bias vector
    k_idx, a_idx = torch.meshgrid(torch.arange(K), torch.arange(dp), indexing="ij")
    perm = torch.where(a_idx < d, k_idx * d + a_idx, K * d + k_idx).reshape(-1)
    order = torch.argsort(perm).to(H4.device)
    return H4.reshape(K * dp, K * dp).index_select(0, order).index_select(1, order)
