"""Entanglement of forget items with the retain set, in embedding space (pure functions).

Set level: the Entanglement Score (ES) of the RUM paper, a two-set version of
the feature-clustering ratio: within-set spread over between-set separation,

.. math::

    ES(R, S) = \\frac{\\frac1{|R|}\\sum_{x\\in R}\\lVert\\phi(x)-\\mu_R\\rVert^2
                    + \\frac1{|S|}\\sum_{x\\in S}\\lVert\\phi(x)-\\mu_S\\rVert^2}
                   {\\tfrac12\\left(\\lVert\\mu_R-\\mu\\rVert^2 + \\lVert\\mu_S-\\mu\\rVert^2\\right)}

Higher ES = more entangled = harder to unlearn. Two conventions exist for the
overall centre :math:`\\mu`:

* ``"midpoint"`` (**rum's choice**, and the reference implementation's):
  :math:`\\mu = (\\mu_R + \\mu_S)/2`, so the denominator is
  :math:`\\lVert\\mu_R-\\mu_S\\rVert^2/4`. The score then does not depend on
  the relative sizes of the two sets, so ES values of groups of different
  sizes against one retain set are comparable.
* ``"weighted"``: :math:`\\mu` is the mean over :math:`R\\cup S`
  (size-weighted). With :math:`|S|\\ll|R|`, :math:`\\mu\\approx\\mu_R` and the
  denominator shrinks to about half of :math:`\\lVert\\mu_R-\\mu_S\\rVert^2`.

Means and spreads are exact: they are accumulated over batches in float64 with
the pairwise (Chan et al.) update, never averaged per batch.

Item level (used to rank and group items):

* ``"class_margin"`` (default): :math:`d_{own}/(d_{own}+d_{other})`, the distance
  from the item's embedding to the retain centroid of its own label, relative
  to the distance to the nearest retain centroid of another class. It lies in
  [0, 1]; 0.5 means the item sits on the boundary between its class and
  another; items near 1 sit inside another class.
* ``"centroid_distance"``: :math:`-\\lVert\\phi(x)-\\mu_R\\rVert / \\sigma_R`,
  closeness to the retain centre in units of the retain spread (closer =
  more entangled), the per-item quantity the RUM reference code sorts by.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rum.exceptions import InvalidParameterError

__all__ = [
    "MomentAccumulator",
    "ClassCentroids",
    "entanglement_score",
    "class_margin",
    "centroid_distance",
    "mmd",
    "CENTROIDS",
]

#: The two conventions for the overall centre in the ES denominator.
CENTROIDS = ("midpoint", "weighted")


def _as_2d(x: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().to("cpu", torch.float64)
    return t.reshape(len(t), -1) if t.dim() != 2 else t


class MomentAccumulator:
    """Exact running mean and total squared deviation of streamed vectors.

    ``update`` takes a batch ``(b, d)``; after any sequence of batches,
    :attr:`mean` equals the mean of all rows and :attr:`ssd` the sum over
    rows of ``||x - mean||^2``, up to float64 rounding.

    Examples:
        >>> acc = MomentAccumulator()
        >>> acc.update(np.array([[0.0, 0.0], [2.0, 0.0]])).update(np.array([[4.0, 0.0]]))
        MomentAccumulator(n=3, dim=2)
        >>> acc.mean.tolist(), round(acc.ssd, 6)
        ([2.0, 0.0], 8.0)
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.ssd = 0.0

    def __repr__(self) -> str:
        dim = None if self.mean is None else len(self.mean)
        return f"MomentAccumulator(n={self.n}, dim={dim})"

    def update(self, batch: Any) -> MomentAccumulator:
        b = _as_2d(batch)
        nb = len(b)
        if nb == 0:
            return self
        mb = b.mean(0)
        ssd_b = float(((b - mb) ** 2).sum())
        if self.mean is None:
            self.n, self.mean, self.ssd = nb, mb, ssd_b
            return self
        if len(mb) != len(self.mean):
            raise InvalidParameterError(
                f"embedding dimension changed from {len(self.mean)} to {len(mb)} between batches."
            )
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.ssd = self.ssd + ssd_b + float((delta**2).sum()) * self.n * nb / n
        self.n = n
        return self

    def merge(self, other: MomentAccumulator) -> MomentAccumulator:
        """Fold another accumulator into this one (same result as streaming both)."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean, self.ssd = other.n, other.mean.clone(), other.ssd
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.ssd = self.ssd + other.ssd + float((delta**2).sum()) * self.n * other.n / n
        self.n = n
        return self

    @property
    def msd(self) -> float:
        """Mean squared deviation from the mean (total over dimensions)."""
        return self.ssd / self.n if self.n else float("nan")

    @classmethod
    def of(cls, x: Any) -> MomentAccumulator:
        return cls().update(x)


class ClassCentroids:
    """Streaming per-class sums and counts, giving exact class centroids.

    Examples:
        >>> cc = ClassCentroids().update(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]))
        >>> cc.centroids()[0].ravel().tolist(), cc.counts.tolist()
        ([1.0, 5.0], [2, 1])
    """

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.counts = torch.zeros(0, dtype=torch.int64)

    def update(self, emb: Any, labels: Any) -> ClassCentroids:
        e = _as_2d(emb)
        y = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
        if len(e) == 0:
            return self
        c = int(y.max()) + 1
        if self.sums is None:
            self.sums = torch.zeros(c, e.shape[1], dtype=torch.float64)
            self.counts = torch.zeros(c, dtype=torch.int64)
        elif c > len(self.sums):
            grow = c - len(self.sums)
            self.sums = torch.cat([self.sums, torch.zeros(grow, e.shape[1], dtype=torch.float64)])
            self.counts = torch.cat([self.counts, torch.zeros(grow, dtype=torch.int64)])
        self.sums.index_add_(0, y, e)
        self.counts += torch.bincount(y, minlength=len(self.counts))
        return self

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        """``(centroids (C, d), present (C,) bool)``; absent classes have NaN rows."""
        if self.sums is None:
            return np.zeros((0, 0)), np.zeros(0, bool)
        present = (self.counts > 0).numpy()
        cent = (self.sums / self.counts.clamp(min=1).unsqueeze(1).double()).numpy()
        cent[~present] = np.nan
        return cent, present


def _moments(x: Any) -> MomentAccumulator:
    return x if isinstance(x, MomentAccumulator) else MomentAccumulator.of(x)


def entanglement_score(emb_retain: Any, emb_forget: Any, centroid: str = "midpoint") -> float:
    """The set-level Entanglement Score of a forget set against a retain set.

    Args:
        emb_retain: retain embeddings ``(n_r, d)`` or a :class:`MomentAccumulator`
            streamed over them.
        emb_forget: forget embeddings ``(n_s, d)`` or an accumulator.
        centroid: ``"midpoint"`` (default) or ``"weighted"``; see the module
            docstring.

    Returns:
        ES (higher = more entangled); ``inf`` when the two means coincide,
        NaN when either set is empty.

    Examples:
        >>> r = np.array([[0.0, 0.0], [2.0, 0.0]])
        >>> s = np.array([[0.0, 4.0], [2.0, 4.0]])
        >>> entanglement_score(r, s)   # (1 + 1) / (16 / 4)
        0.5
    """
    if centroid not in CENTROIDS:
        raise InvalidParameterError(
            f"centroid must be one of {', '.join(map(repr, CENTROIDS))}, got {centroid!r}."
        )
    r, s = _moments(emb_retain), _moments(emb_forget)
    if r.n == 0 or s.n == 0:
        return float("nan")
    if centroid == "midpoint":
        mu = (r.mean + s.mean) / 2
    else:
        mu = (r.mean * r.n + s.mean * s.n) / (r.n + s.n)
    den = 0.5 * (float(((r.mean - mu) ** 2).sum()) + float(((s.mean - mu) ** 2).sum()))
    num = r.msd + s.msd
    if den <= 0:
        return math.inf if num > 0 else float("nan")
    return num / den


def _pairwise_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a**2).sum(1, keepdims=True) - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def class_margin(
    emb: Any, labels: Any, centroids: np.ndarray, present: np.ndarray | None = None
) -> np.ndarray:
    """Per-item ``d_own / (d_own + d_nearest_other)`` against class centroids.

    NaN where the item's own class has no centroid, or no other class has one.

    Examples:
        >>> cent = np.array([[0.0], [4.0]])
        >>> class_margin(np.array([[1.0], [3.0]]), np.array([0, 0]), cent).tolist()
        [0.25, 0.75]
    """
    e = _as_2d(emb).numpy()
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    cent = np.asarray(centroids, dtype=np.float64)
    if present is None:
        present = ~np.isnan(cent).any(1) if len(cent) else np.zeros(0, bool)
    out = np.full(len(e), np.nan)
    if len(e) == 0 or present.sum() < 2:
        return out
    d = _pairwise_dist(e, np.nan_to_num(cent))
    d[:, ~present] = np.inf
    ok = (y < len(cent)) & present[np.minimum(y, len(cent) - 1)]
    rows = np.flatnonzero(ok)
    own = d[rows, y[rows]]
    d[rows, y[rows]] = np.inf
    other = d[rows].min(1)
    tot = own + other
    out[rows] = np.where(tot > 0, own / np.where(tot > 0, tot, 1.0), 0.5)
    return out


def centroid_distance(emb: Any, retain: MomentAccumulator) -> np.ndarray:
    """Per-item ``-||e - mu_R|| / sqrt(msd_R)`` (closer to the retain centre = larger).

    Examples:
        >>> acc = MomentAccumulator.of(np.array([[-1.0], [1.0]]))
        >>> centroid_distance(np.array([[0.0], [2.0]]), acc).tolist()
        [-0.0, -2.0]
    """
    e = _as_2d(emb)
    if retain.n == 0:
        return np.full(len(e), np.nan)
    scale = math.sqrt(retain.msd) if retain.msd > 0 else 1.0
    return -(((e - retain.mean) ** 2).sum(1).sqrt() / scale).numpy()


def mmd(x: Any, y: Any, gamma: float = 1.0, chunk: int = 2048) -> float:
    """RBF-kernel maximum mean discrepancy ``sqrt(MMD^2)`` (biased estimate), in chunks.

    Memory is ``O(chunk^2)``, never ``O(n_x * n_y)``; time is quadratic.

    Examples:
        >>> a = np.zeros((3, 2)); round(mmd(a, a), 6)
        0.0
    """
    a, b = _as_2d(x), _as_2d(y)
    if len(a) == 0 or len(b) == 0:
        return float("nan")

    def kmean(p: torch.Tensor, q: torch.Tensor) -> float:
        total = 0.0
        for i in range(0, len(p), chunk):
            for j in range(0, len(q), chunk):
                d2 = torch.cdist(p[i : i + chunk], q[j : j + chunk]) ** 2
                total += float(torch.exp(-gamma * d2).sum())
        return total / (len(p) * len(q))

    val = kmean(a, a) + kmean(b, b) - 2 * kmean(a, b)
    return math.sqrt(max(val, 0.0))
