"""Memorization proxies: cheap stand-ins for Feldman-Zhang memorization.

Every score here is oriented **higher = more memorized**.

Post-hoc proxies need only the trained model (and, for the neighbour score,
the retain set):

* :func:`confidence_score`: ``1 - p(y | x)``.
* :func:`margin_score`: ``max_{k != y} p_k - p_y`` in [-1, 1].
* :func:`input_curvature`: CURE-style input-loss curvature
  ``||grad_x l(x + z) - grad_x l(x)||`` with ``z = h sign(g)/||sign(g)||``.
* :func:`neighbor_disagreement`: the fraction of an item's nearest retain
  neighbours (cosine similarity of penultimate embeddings) whose label
  differs from the item's label.

Training-dynamics proxies are recorded during training by
:class:`MemorizationRecorder`, a batch callback usable in any loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rum._model import pick_logits
from rum._records import jsonable, load_json, save_json
from rum.exceptions import InvalidParameterError

__all__ = [
    "confidence_score",
    "margin_score",
    "input_curvature",
    "neighbor_disagreement",
    "StreamingTopK",
    "MemorizationRecorder",
    "DYNAMICS_PROXIES",
]


def confidence_score(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``1 - softmax(logits)[y]`` per item (higher = more memorized).

    Examples:
        >>> confidence_score(torch.tensor([[0.0, 0.0]]), torch.tensor([0])).tolist()
        [0.5]
    """
    p = torch.softmax(logits.double(), 1)
    return (1.0 - p.gather(1, y.long().view(-1, 1)).squeeze(1)).numpy()


def margin_score(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``max_{k != y} p_k - p_y`` per item, in [-1, 1] (higher = more memorized).

    Examples:
        >>> margin_score(torch.tensor([[2.0, 0.0]]).log(), torch.tensor([1])).round(4).tolist()
        [1.0]
    """
    p = torch.softmax(logits.double(), 1)
    py = p.gather(1, y.long().view(-1, 1)).squeeze(1)
    other = p.scatter(1, y.long().view(-1, 1), -1.0).max(1).values
    return (other - py).numpy()


def input_curvature(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    h: float = 0.5,
    batch_size: int = 512,
) -> np.ndarray:
    """Input-loss curvature ``||grad_x l(x + z) - grad_x l(x)||_2`` per item.

    ``z = h * sign(g) / ||sign(g)||`` points along the sign of the input
    gradient ``g`` with length ``h`` (in input units). The model is put in
    eval mode for the computation and its mode restored afterwards; its
    parameters receive no gradient. Costs two forward and two backward passes.

    Examples:
        >>> net = torch.nn.Linear(3, 2)
        >>> input_curvature(net, torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)).shape
        (4,)
    """
    from rum._model import model_device, model_dtype, module_modes, restore_modes

    dev, dt = model_device(model), model_dtype(model)
    modes = module_modes(model)
    model.eval()
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    out = []
    try:
        for s in range(0, len(X), batch_size):
            xb = X[s : s + batch_size].to(dev, dt)
            yb = y[s : s + batch_size].to(dev)

            def grad_at(x: torch.Tensor, yb: torch.Tensor = yb) -> torch.Tensor:
                x = x.detach().requires_grad_(True)
                o = pick_logits(model(x))
                loss = F.cross_entropy(o.float(), yb, reduction="sum")
                (g,) = torch.autograd.grad(loss, x)
                return g

            with torch.enable_grad():
                g0 = grad_at(xb)
                sg = torch.sign(g0)
                norm = sg.reshape(len(sg), -1).norm(dim=1).clamp(min=1.0)
                z = h * sg / norm.view(-1, *([1] * (sg.dim() - 1)))
                g1 = grad_at(xb + z)
            out.append((g1 - g0).reshape(len(xb), -1).norm(dim=1).double().cpu())
    finally:
        for p, r in zip(model.parameters(), req, strict=True):
            p.requires_grad_(r)
        restore_modes(model, modes)
    return torch.cat(out).numpy() if out else np.zeros(0)


def _normalise(e: torch.Tensor) -> torch.Tensor:
    return e.float() / e.float().norm(dim=1, keepdim=True).clamp(min=1e-12)


class StreamingTopK:
    """The ``k`` most cosine-similar keys of each query, over streamed key batches.

    Memory is ``O(n_queries * (k + chunk))``, independent of the number of
    keys. Ties between batches go to the earlier batch; the result is deterministic.

    Examples:
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> knn = StreamingTopK(q, k=1)
        >>> knn.update(torch.tensor([[0.0, 1.0], [1.0, 0.1]]), torch.tensor([3, 7]))
        >>> knn.labels.tolist()
        [[7]]
    """

    def __init__(self, queries: torch.Tensor, k: int, chunk: int = 1024):
        self.q = _normalise(queries)
        self.k = int(k)
        self.chunk = chunk
        n = len(self.q)
        self.sims = torch.full((n, 0), -np.inf)
        self.labels = torch.zeros((n, 0), dtype=torch.int64)
        self.seen = 0

    def update(self, keys: torch.Tensor, key_labels: torch.Tensor) -> None:
        if len(keys) == 0:
            return
        kn = _normalise(keys)
        kl = key_labels.long().reshape(-1)
        kk = min(self.k, len(kn))
        new_s, new_l = [], []
        for s in range(0, len(self.q), self.chunk):
            sim = self.q[s : s + self.chunk] @ kn.T
            # the batch's own top k, then a stable merge with the running top k, which
            # holds earlier keys and so wins ties; torch.topk is deterministic on the CPU
            idx = torch.topk(sim, kk, dim=1, sorted=True).indices
            cs = torch.cat([self.sims[s : s + self.chunk], sim.gather(1, idx)], 1)
            cl = torch.cat([self.labels[s : s + self.chunk], kl[idx]], 1)
            keep = torch.sort(-cs, dim=1, stable=True).indices[:, : self.k]
            new_s.append(cs.gather(1, keep))
            new_l.append(cl.gather(1, keep))
        self.sims = torch.cat(new_s)
        self.labels = torch.cat(new_l)
        self.seen += len(keys)


def neighbor_disagreement(neighbor_labels: Any, y: Any) -> np.ndarray:
    """Fraction of each item's neighbours whose label differs from the item's label.

    Examples:
        >>> neighbor_disagreement(np.array([[1, 1, 2, 2]]), np.array([1])).tolist()
        [0.5]
    """
    nl = np.asarray(neighbor_labels)
    yy = np.asarray(y).reshape(-1, 1)
    if nl.shape[1] == 0:
        return np.full(len(yy), np.nan)
    return (nl != yy).mean(1).astype(np.float64)


#: Scores a :class:`MemorizationRecorder` can return, all "higher = more memorized".
DYNAMICS_PROXIES = (
    "confidence",
    "max_confidence",
    "entropy",
    "correctness",
    "forgetting",
    "learned_late",
)

_FIELDS = ("visits", "conf", "maxconf", "entropy", "correct", "forgetting", "last_wrong", "last_ok")


class MemorizationRecorder:
    """A training callback that records per-item learning statistics.

    Call it on every training batch as ``rec(epoch, indices, logits, targets)``,
    where ``indices`` are the items' positions in the training set and
    ``logits`` are the batch's training-mode outputs (before the optimiser
    step). It is the signature of ``rum.fit(..., callbacks=[rec])``; in your own
    loop call it yourself. It keeps running sums (O(n) floats), never logits.

    :meth:`scores` turns the sums into proxies, all oriented "higher = more
    memorized": ``"confidence"`` (1 - mean true-label confidence over
    training), ``"max_confidence"`` (1 - mean max confidence), ``"entropy"``
    (mean predictive entropy), ``"correctness"`` (1 - mean accuracy),
    ``"forgetting"`` (number of correct-to-wrong transitions between
    consecutive visits) and ``"learned_late"`` (fraction of visits before the
    item was learned for good; 1 if never).

    Examples:
        >>> rec = MemorizationRecorder()
        >>> rec(0, torch.tensor([0, 1]), torch.tensor([[3.0, 0.0], [3.0, 0.0]]), torch.tensor([0, 1]))
        >>> rec.scores("correctness").tolist()
        [0.0, 1.0]
    """

    def __init__(self, n_items: int | None = None):
        n = int(n_items or 0)
        self._a = {f: np.zeros(n) for f in _FIELDS}
        self._a["last_wrong"][:] = -1  # visit number of the last wrong prediction
        self.epochs = 0

    def _grow(self, n: int) -> None:
        cur = len(self._a["visits"])
        if n <= cur:
            return
        for f in _FIELDS:
            extra = np.full(n - cur, -1.0 if f == "last_wrong" else 0.0)
            self._a[f] = np.concatenate([self._a[f], extra])

    @property
    def n_items(self) -> int:
        return len(self._a["visits"])

    @torch.no_grad()
    def __call__(
        self, epoch: int, indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor
    ) -> None:
        idx = np.asarray(torch.as_tensor(indices).detach().cpu().long().numpy()).reshape(-1)
        if len(idx) == 0:
            return
        if len(np.unique(idx)) != len(idx):
            raise InvalidParameterError(
                "MemorizationRecorder got repeated indices within one batch; pass each "
                "item's position in the training set once per batch."
            )
        lg = torch.as_tensor(logits).detach().float().cpu()
        y = torch.as_tensor(targets).detach().cpu().long().view(-1, 1)
        p = torch.softmax(lg.double(), 1)
        conf = p.gather(1, y).squeeze(1).numpy()
        maxc = p.max(1).values.numpy()
        ent = (-(p * torch.log(p.clamp(min=1e-300))).sum(1)).numpy()
        ok = (lg.argmax(1) == y.squeeze(1)).numpy().astype(float)
        self._grow(int(idx.max()) + 1)
        a = self._a
        a["forgetting"][idx] += (a["last_ok"][idx] == 1) & (ok == 0)
        visit = a["visits"][idx]
        a["last_wrong"][idx] = np.where(ok == 0, visit, a["last_wrong"][idx])
        a["visits"][idx] = visit + 1
        a["conf"][idx] += conf
        a["maxconf"][idx] += maxc
        a["entropy"][idx] += ent
        a["correct"][idx] += ok
        a["last_ok"][idx] = ok
        self.epochs = max(self.epochs, int(epoch) + 1)

    def scores(self, proxy: str = "confidence", indices: Any = None) -> np.ndarray:
        """Per-item proxy scores (NaN for items never seen), optionally at ``indices``."""
        if proxy not in DYNAMICS_PROXIES:
            from rum._validation import did_you_mean

            raise InvalidParameterError(
                f"proxy={proxy!r} is not a recorded proxy.{did_you_mean(proxy, DYNAMICS_PROXIES)} "
                f"Known: {', '.join(DYNAMICS_PROXIES)}."
            )
        a = self._a
        v = a["visits"]
        with np.errstate(invalid="ignore", divide="ignore"):
            if proxy == "confidence":
                s = 1.0 - a["conf"] / v
            elif proxy == "max_confidence":
                s = 1.0 - a["maxconf"] / v
            elif proxy == "entropy":
                s = a["entropy"] / v
            elif proxy == "correctness":
                s = 1.0 - a["correct"] / v
            elif proxy == "forgetting":
                s = a["forgetting"].copy()
            else:
                s = (a["last_wrong"] + 1) / v
        s = np.where(v > 0, s, np.nan)
        if indices is not None:
            idx = np.asarray(indices).astype(np.int64)
            if len(idx) and (idx.min() < 0 or idx.max() >= len(s)):
                raise InvalidParameterError(
                    f"indices must be positions in 0..{len(s) - 1} of the recorded training set."
                )
            s = s[idx]
        return s

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"epochs": self.epochs, **{f: jsonable(self._a[f]) for f in _FIELDS}}

    @classmethod
    def from_dict(cls, d: dict) -> MemorizationRecorder:
        rec = cls()
        rec._a = {f: np.asarray(d[f], dtype=float) for f in _FIELDS}
        rec.epochs = int(d.get("epochs", 0))
        return rec

    def save(self, path: str | Path) -> Path:
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> MemorizationRecorder:
        return cls.from_dict(load_json(path))
