from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rum.exceptions import InvalidParameterError, UnknownGroupingError
from rum.profiler.grouping import kmeans_1d, list_groupings, make_groups

scores = st.lists(
    st.sampled_from([0.0, 0.05, 0.1, 0.5, 0.9, 1.0]) | st.floats(-1, 1, allow_nan=False),
    min_size=1,
    max_size=60,
)


def _check_partition(groups, n, n_groups, exact):
    assert groups.shape == (n,)
    ids = np.unique(groups)
    assert ids.tolist() == list(range(len(ids)))  # contiguous ids, every group non-empty
    assert 1 <= len(ids) <= n_groups
    if exact:
        assert len(ids) == n_groups


@settings(max_examples=25, deadline=None)
@given(scores, st.integers(1, 5), st.data())
def test_grouping_properties(mem, k, data):
    mem = np.array(mem)
    n = len(mem)
    k = min(k, n)
    ent = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    for name in ("rum", "quantile", "kmeans"):
        g, _ = make_groups(name, mem, ent, k, seed=0)
        _check_partition(g, n, k, exact=(name == "quantile"))
        again, _ = make_groups(name, mem, ent, k, seed=0)
        assert np.array_equal(g, again)  # deterministic
        if name in ("rum", "quantile"):
            means = [mem[g == i].mean() for i in range(g.max() + 1)]
            assert means == sorted(means)  # easiest (least memorized) first
            # memorization groups are intervals: no item outranks an item of a later group
            for i in range(g.max()):
                assert mem[g == i].max() <= mem[g == i + 1].min()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6))
def test_quantile_sizes_and_ties(n, k):
    k = min(k, n)
    g, _ = make_groups("quantile", np.zeros(n), np.zeros(n), k)
    sizes = np.bincount(g)
    assert sizes.max() - sizes.min() <= 1
    assert np.all(np.diff(g) >= 0)  # all tied: broken by forget position


def test_quantile_by_entanglement():
    mem = np.array([0.9, 0.1, 0.5, 0.3])
    ent = np.array([0.1, 0.9, 0.2, 0.8])
    g, _ = make_groups(("quantile", {"by": "entanglement"}), mem, ent, 2)
    assert g.tolist() == [0, 1, 0, 1]
    with pytest.raises(InvalidParameterError, match="by must be"):
        make_groups(("quantile", {"by": "loss"}), mem, ent, 2)


def test_rum_isolates_a_memorized_minority():
    mem = np.r_[np.zeros(80), np.full(10, 0.05), np.full(6, 0.95), np.full(4, 1.0)]
    g, _ = make_groups("rum", mem, np.full(100, np.nan), 3)
    assert set(np.flatnonzero(g == g.max())) == set(range(90, 100))
    q, _ = make_groups("quantile", mem, np.full(100, np.nan), 3)
    assert (q == q.max()).sum() == 33  # equal thirds would mix ordinary items in


def test_kmeans_1d_reference():
    x = np.array([0.0, 0.1, 0.0, 0.9, 1.0, 0.05, 0.5, 0.55])
    assert kmeans_1d(x, 3).tolist() == [0, 0, 0, 2, 2, 0, 1, 1]
    assert kmeans_1d(np.ones(5), 3).tolist() == [0] * 5


def test_graph_grouping_follows_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    lab = np.repeat(np.arange(3), 15)
    emb = centres[lab] + rng.normal(scale=0.3, size=(45, 3)) + 3
    mem = lab * 0.3 + rng.uniform(0, 0.05, 45)
    g, name = make_groups("graph", mem, np.full(45, np.nan), 3, embeddings=emb)
    assert name == "graph"
    _check_partition(g, 45, 3, exact=True)
    assert np.array_equal(g, lab)  # communities = clusters, ordered by mean memorization


def test_errors():
    mem = np.array([0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="larger than the forget set"):
        make_groups("rum", mem, mem, 3)
    with pytest.raises(UnknownGroupingError, match="Did you mean 'quantile'"):
        make_groups("quantil", mem, mem, 1)
    with pytest.raises(InvalidParameterError, match="positive int"):
        make_groups("rum", mem, mem, 0)
    assert {"rum", "quantile", "kmeans", "graph"} <= set(list_groupings())


def test_custom_callable():
    def by_sign(mem, ent, n_groups, *, embeddings=None, seed=0):
        return (mem > 0).astype(int), mem

    g, name = make_groups(by_sign, np.array([0.5, -0.5, 0.2]), np.zeros(3), 2)
    assert g.tolist() == [1, 0, 1] and name == "by_sign"


@pytest.mark.slow  # 5,000 items: the size at which the quadratic version took minutes
def test_graph_grouping_takes_thousands_of_items():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    emb = np.concatenate([c + rng.normal(size=(1500, 16)) for c in centres]).astype(np.float32)
    mem = np.repeat([0.1, 0.5, 0.9], 1500) + rng.normal(scale=0.01, size=4500)
    g, _ = make_groups("graph", mem, np.full(4500, np.nan), 3, embeddings=emb, seed=0)
    # the three clusters come back as the three groups, easiest first
    for k in range(3):
        assert len(set(g[k * 1500:(k + 1) * 1500])) == 1 and g[k * 1500] == k
