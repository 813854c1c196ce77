"""Grouping strategies: split the forget set into disjoint groups, easiest first.

A strategy is a function ``fn(memorization, entanglement, n_groups, *,
embeddings, seed, **params) -> (labels, key)``: any integer label per item
and a per-item difficulty ``key``. :func:`make_groups` then renumbers the
groups ``0..g-1`` by increasing mean key (ties: mean memorization, then the
smallest forget position), so group 0 is always the easiest.

Built-in strategies:

* ``"rum"`` (default): low / medium / high memorization. The cut points are
  those of a deterministic 1-D k-means (Lloyd's algorithm from centres evenly
  spaced over the score range) on the memorization scores, not equal-size
  thirds: memorized items are usually a minority, and equal thirds would mix
  them with ordinary items (see ``benchmarks/NOTES.md``). It can return fewer
  than ``n_groups`` groups when the scores have fewer distinct values.
* ``"quantile"``: ``n_groups`` equal-count groups along one score
  (``by="memorization"`` or ``"entanglement"``); ties broken by forget position.
* ``"kmeans"``: 2-D k-means over the ranks of both scores (memorization alone
  when entanglement is unavailable); difficulty = mean of the two ranks.
* ``"graph"``: a k-nearest-neighbour graph (cosine, networkx) over the forget
  embeddings, split into communities by Louvain (seeded), which greedy modularity
  then merges down to ``n_groups``; ordered by mean memorization. It grows about
  linearly with the forget set (20,000 items in well under a minute on 2 cores).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from rum._registry import Registry
from rum._validation import check_options
from rum.exceptions import InvalidParameterError, UnknownGroupingError

__all__ = [
    "GROUPINGS",
    "register_grouping",
    "list_groupings",
    "make_groups",
    "kmeans_1d",
    "order_groups",
]

GroupingFn = Callable[..., tuple[np.ndarray, np.ndarray]]
GROUPINGS: Registry[GroupingFn] = Registry("grouping strategy", UnknownGroupingError)


def register_grouping(name: str, fn: GroupingFn | None = None, *, force: bool = False):
    """Register a grouping strategy (usable as a decorator); see the module docstring."""

    def wrap(f: GroupingFn) -> GroupingFn:
        GROUPINGS.register(name, f, force=force)
        return f

    return wrap if fn is None else wrap(fn)


def list_groupings() -> list[str]:
    """Names of the registered grouping strategies.

    Examples:
        >>> list_groupings()[:2]
        ['graph', 'kmeans']
    """
    return GROUPINGS.names()


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1] (ties share a rank)."""
    from scipy.stats import rankdata

    if len(x) < 2:
        return np.zeros(len(x))
    return (rankdata(x, method="average") - 1) / (len(x) - 1)


def order_groups(labels: Any, key: Any, memorization: Any) -> np.ndarray:
    """Renumber groups ``0..g-1`` by (mean key, mean memorization, first position).

    Examples:
        >>> order_groups([5, 5, 2], [0.9, 0.8, 0.1], [0, 0, 0]).tolist()
        [1, 1, 0]
    """
    labels = np.asarray(labels)
    key = np.asarray(key, dtype=float)
    mem = np.asarray(memorization, dtype=float)
    uniq = np.unique(labels)
    rows = []
    for u in uniq:
        sel = labels == u
        k = key[sel]
        k = k[~np.isnan(k)]
        rows.append((float(k.mean()) if len(k) else np.inf, float(mem[sel].mean()), int(np.flatnonzero(sel)[0]), u))
    rows.sort(key=lambda r: r[:3])
    out = np.empty(len(labels), dtype=np.int64)
    for new, r in enumerate(rows):
        out[labels == r[3]] = new
    return out


def kmeans_1d(x: Any, k: int, max_iter: int = 300) -> np.ndarray:
    """Deterministic 1-D k-means: Lloyd's algorithm from centres evenly spaced over the range.

    Starting from the range rather than from quantiles lets a small cluster of
    extreme values (a minority of memorized items) keep its own centre.

    In one dimension every cluster is an interval, so assignments are cuts at
    the midpoints between sorted centres. Empty clusters are dropped; labels
    are ``0..g-1`` in increasing order of value.

    Examples:
        >>> kmeans_1d([0.0, 0.1, 0.0, 0.9, 1.0, 0.05], 2).tolist()
        [0, 0, 0, 1, 1, 0]
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    xs = np.sort(x)
    lo, hi = xs[0], xs[-1]
    centres = np.unique(lo + (np.arange(k) + 0.5) / k * (hi - lo))
    for _ in range(max_iter):
        cuts = (centres[1:] + centres[:-1]) / 2
        lab = np.searchsorted(cuts, xs, side="right")
        counts = np.bincount(lab, minlength=len(centres))
        sums = np.bincount(lab, weights=xs, minlength=len(centres))
        keep = counts > 0
        new = sums[keep] / counts[keep]
        if len(new) == len(centres) and np.allclose(new, centres, rtol=0, atol=1e-12):
            break
        centres = np.unique(new)
    cuts = (centres[1:] + centres[:-1]) / 2
    lab = np.searchsorted(cuts, x, side="right")
    _, lab = np.unique(lab, return_inverse=True)
    return lab.astype(np.int64)


@register_grouping("rum")
def _rum(mem, ent, n_groups, *, embeddings=None, seed=0):
    return kmeans_1d(mem, n_groups), mem


@register_grouping("quantile")
def _quantile(mem, ent, n_groups, *, embeddings=None, seed=0, by="memorization"):
    if by not in ("memorization", "entanglement"):
        raise InvalidParameterError(
            f"grouping 'quantile': by must be 'memorization' or 'entanglement', got {by!r}."
        )
    score = mem if by == "memorization" else ent
    if by == "entanglement" and np.isnan(score).all():
        from rum.exceptions import RetainRequiredError

        raise RetainRequiredError(
            "grouping ('quantile', {'by': 'entanglement'}) needs entanglement scores, which "
            "need the retain set. Pass retain_set, or group by memorization."
        )
    order = np.lexsort((np.arange(len(score)), np.nan_to_num(score, nan=np.inf)))
    labels = np.empty(len(score), dtype=np.int64)
    for g, chunk in enumerate(np.array_split(order, n_groups)):
        labels[chunk] = g
    return labels, np.arange(n_groups)[labels].astype(float)


@register_grouping("kmeans")
def _kmeans(mem, ent, n_groups, *, embeddings=None, seed=0):
    from sklearn.cluster import KMeans

    cols = [_ranks(mem)]
    if not np.isnan(ent).any():
        cols.append(_ranks(ent))
    feats = np.stack(cols, 1)
    n_distinct = len(np.unique(feats, axis=0))
    k = min(n_groups, n_distinct)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed % (2**32)).fit(feats)
    return km.labels_, feats.mean(1)


@register_grouping("graph")
def _graph(mem, ent, n_groups, *, embeddings=None, seed=0, n_neighbors=10):
    import networkx as nx
    import torch

    if embeddings is None:
        raise InvalidParameterError("grouping 'graph' needs the forget embeddings.")
    e = torch.as_tensor(embeddings).float()
    e = e / e.norm(dim=1, keepdim=True).clamp(min=1e-12)
    n = len(e)
    k = min(n_neighbors, n - 1)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    if k > 0:
        for s in range(0, n, 2048):
            sim = e[s : s + 2048] @ e.T
            rows = torch.arange(s, min(s + 2048, n))
            sim[rows - s, rows] = -np.inf
            nbr = torch.sort(-sim, dim=1, stable=True).indices[:, :k]  # ties: by position
            G.add_edges_from(zip(rows.repeat_interleave(k).tolist(), nbr.flatten().tolist()))
    # Louvain finds communities in near-linear time (greedy modularity on the whole graph took
    # minutes at a few thousand items); greedy modularity then merges them, on the small graph
    # of communities, down to n_groups
    comms = [sorted(c) for c in nx.community.louvain_communities(G, seed=int(seed))]
    if len(comms) > n_groups:
        member = np.empty(n, dtype=np.int64)
        for c, items in enumerate(comms):
            member[items] = c
        edges = np.array(list(G.edges()), dtype=np.int64).reshape(-1, 2)
        pairs = np.sort(member[edges], axis=1)
        links, counts = np.unique(pairs, axis=0, return_counts=True)
        Q = nx.Graph()
        Q.add_nodes_from(range(len(comms)))
        Q.add_weighted_edges_from((int(a), int(b), int(w)) for (a, b), w in zip(links, counts))
        merged = nx.community.greedy_modularity_communities(Q, weight="weight", cutoff=1,
                                                            best_n=n_groups)
        comms = [sorted(i for c in group for i in comms[c]) for group in merged]
    labels = np.empty(n, dtype=np.int64)
    for g, c in enumerate(comms):
        labels[c] = g
    # disconnected pieces can leave more than n_groups communities: merge the smallest
    # into the community with the closest mean memorization, deterministically
    while len(np.unique(labels)) > n_groups:
        ids, sizes = np.unique(labels, return_counts=True)
        small = ids[np.lexsort((ids, sizes))[0]]
        means = {i: mem[labels == i].mean() for i in ids if i != small}
        m0 = mem[labels == small].mean()
        target = min(means, key=lambda i: (abs(means[i] - m0), i))
        labels[labels == small] = target
    return labels, mem


def resolve_grouping(grouping: Any) -> tuple[Callable, str, dict]:
    """``(strategy, name, params)`` of a ``grouping=`` value, checked before any data is read.

    A ``(name, params)`` pair's params must be keyword arguments of the strategy.

    Examples:
        >>> resolve_grouping(("quantile", {"by": "entanglement"}))[1:]
        ('quantile', {'by': 'entanglement'})
    """
    params: dict = {}
    if isinstance(grouping, (tuple, list)) and len(grouping) == 2 and isinstance(grouping[1], dict):
        grouping, params = grouping
    if callable(grouping) and not isinstance(grouping, str):
        return grouping, getattr(grouping, "__name__", "custom"), dict(params)
    fn = GROUPINGS.get(grouping, "grouping")
    sig = inspect.signature(fn).parameters
    if params and not any(p.kind is p.VAR_KEYWORD for p in sig.values()):
        allowed = [n for n, p in sig.items()
                   if p.kind is p.KEYWORD_ONLY and n not in ("embeddings", "seed")]
        check_options(params, allowed, f"grouping {grouping!r}")
    return fn, str(grouping), dict(params)


def make_groups(
    grouping: Any,
    memorization: np.ndarray,
    entanglement: np.ndarray,
    n_groups: int,
    *,
    embeddings: Any = None,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """Group forget items; return ``(groups, name)`` with groups ``0..g-1`` easiest first.

    Args:
        grouping: a registered name, a ``(name, params)`` pair, or a callable
            with the strategy signature.
        memorization, entanglement: per-item scores (entanglement may be NaN).
        n_groups: the number of groups asked for, in ``1..n``.
        embeddings: forget embeddings, for strategies that use them.
        seed: seed for randomised strategies.

    Examples:
        >>> g, _ = make_groups("quantile", np.array([0.9, 0.1, 0.5]), np.full(3, np.nan), 3)
        >>> g.tolist()
        [2, 0, 1]
    """
    mem = np.asarray(memorization, dtype=np.float64)
    ent = np.asarray(entanglement, dtype=np.float64)
    n = len(mem)
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
        raise InvalidParameterError(f"n_groups must be a positive int, got {n_groups!r}.")
    if n_groups > n:
        raise InvalidParameterError(
            f"n_groups={n_groups} is larger than the forget set ({n} items); every group "
            f"needs at least one item. Use n_groups <= {n}."
        )
    fn, name, params = resolve_grouping(grouping)
    try:
        labels, key = fn(mem, ent, int(n_groups), embeddings=embeddings, seed=int(seed), **params)
    except TypeError as err:
        if params and "unexpected keyword" in str(err):
            raise InvalidParameterError(f"grouping {name!r}: {err}.") from None
        raise
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise InvalidParameterError(
            f"grouping {name!r} returned {labels.shape} labels for {n} forget items."
        )
    return order_groups(labels, np.asarray(key, dtype=float), mem), str(name)
