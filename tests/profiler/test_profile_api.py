from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rum
from rum.exceptions import (
    InvalidParameterError,
    InvalidScoresError,
    RetainRequiredError,
    UnknownGroupingError,
    UnknownOptionError,
    UnknownScorerError,
)
from rum.profiler import list_scorers, register_scorer


@pytest.fixture(scope="module")
def split(blobs):
    X, y, mis = blobs["X"], blobs["y"], blobs["mislabeled"]
    f = mis | (np.arange(len(y)) % 6 == 0)  # every flipped item plus ordinary ones
    return blobs["model"], (X[f], y[f]), (X[~f], y[~f]), mis[f]


def test_profile_end_to_end(split, tmp_path):
    model, forget, retain, mis = split
    model.train()
    p = rum.profile(model, forget, retain, random_state=0)
    assert model.training  # mode restored
    n = len(forget[1])
    assert len(p) == n and p.memorization.shape == p.entanglement.shape == (n,)
    assert p.scorers["memorization"] == "neighbors" and p.scorers["embedding_layer"] == "4"
    assert np.isfinite(p.entanglement).all()
    means = [s.memorization for s in p.summary]
    assert means == sorted(means)
    assert sum(s.size for s in p.summary) == n
    # the most memorized group is the flipped labels
    assert mis[p.indices(p.n_groups - 1)].mean() > 0.9
    assert all(np.isfinite(s.es) and s.es > 0 for s in p.summary)
    assert "Profile of" in str(p)
    back = rum.Profile.load(p.save(tmp_path / "p.json"))
    assert back == p
    json.loads((tmp_path / "p.json").read_text())


def test_without_retain_falls_back(split):
    model, forget, _, _ = split
    p = rum.profile(model, forget, random_state=0)
    assert p.scorers["memorization"] == "confidence"
    assert np.isnan(p.entanglement).all() and all(np.isnan(s.es) for s in p.summary)
    with pytest.raises(RetainRequiredError, match="needs the retain set"):
        rum.profile(model, forget, memorization="neighbors")


def test_precomputed_and_custom_scores(split):
    model, forget, retain, _ = split
    n = len(forget[1])
    pre = np.linspace(0, 1, n)
    p = rum.profile(model, forget, retain, memorization=pre, grouping="quantile")
    np.testing.assert_allclose(p.memorization, pre)
    assert p.scorers["memorization"] == "precomputed"
    assert p.indices(0).tolist() == list(range(len(p.indices(0))))
    with pytest.raises(InvalidScoresError, match=f"got {n - 1} scores"):
        rum.profile(model, forget, retain, memorization=pre[:-1])
    bad = pre.copy()
    bad[3] = np.nan
    with pytest.raises(InvalidScoresError, match="NaN"):
        rum.profile(model, forget, retain, memorization=bad)

    @register_scorer("_test_first_feature", force=True)
    def first_feature(inputs):
        return inputs.forget.X[:, 0].numpy()

    try:
        assert "_test_first_feature" in list_scorers()
        p = rum.profile(model, forget, retain, memorization="_test_first_feature")
        np.testing.assert_allclose(p.memorization, forget[0][:, 0], rtol=1e-6)
    finally:
        rum.profiler.memorization.SCORERS.unregister("_test_first_feature")


def test_bad_options(split):
    model, forget, retain, _ = split
    with pytest.raises(UnknownScorerError, match="Did you mean 'confidence'"):
        rum.profile(model, forget, retain, memorization="confidense")
    with pytest.raises(UnknownGroupingError):
        rum.profile(model, forget, retain, grouping="louvain")
    with pytest.raises(InvalidParameterError, match="larger than the forget set"):
        rum.profile(model, forget, retain, n_groups=10_000)
    with pytest.raises(InvalidParameterError, match="entanglement"):
        rum.profile(model, forget, retain, entanglement="mmd")


def test_other_groupings_and_layers(split):
    model, forget, retain, _ = split
    for grouping in ("kmeans", "graph", ("quantile", {"by": "entanglement"})):
        p = rum.profile(model, forget, retain, grouping=grouping, n_groups=2, random_state=1)
        assert p.n_groups == 2
    p = rum.profile(model, forget, retain, embedding_layer="1", entanglement="centroid_distance")
    assert p.scorers["embedding_layer"] == "1"


def test_unlearn_passes_profile_options(split):
    model, forget, retain, _ = split
    res = rum.unlearn(model, forget, retain, n_groups=2, grouping="quantile",
                      memorization="confidence", random_state=0, progress=False)
    assert res.profile.n_groups == 2 and res.profile.scorers["memorization"] == "confidence"
    with pytest.raises(UnknownOptionError, match="n_groups"):
        rum.unlearn(model, forget, retain, n_group=2)


_MEM = r"""
import sys, torch
torch.set_num_threads(1)
from rum._data import TensorData
from rum.profiler import _profile_data
n_r = int(sys.argv[1])
g = torch.Generator().manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
forget = TensorData(torch.randn(500, 16, generator=g), torch.randint(0, 4, (500,), generator=g))
retain = TensorData(torch.randn(n_r, 16, generator=g), torch.randint(0, 4, (n_r,), generator=g))
_profile_data(net, forget, TensorData(retain.X[:100], retain.y[:100]), 0)  # warm-up
def kib(field):
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(field))
open('/proc/self/clear_refs', 'w').write('5')
base = kib('VmRSS:')
_profile_data(net, forget, retain, 0, batch_size=512)
print(kib('VmHWM:') - base)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.slow  # profiles a large synthetic retain set
def test_memory_stays_flat_with_retain_size():
    """Profiling 20x more retain items in batches needs no more memory (beyond the inputs)."""
    root = Path(__file__).resolve().parents[2]

    def extra_kib(n_r):
        out = subprocess.run([sys.executable, "-c", _MEM, str(n_r)], cwd=root,
                             capture_output=True, text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1])

    small, large = extra_kib(2_000), extra_kib(40_000)
    # materialising the large retain embeddings alone would take 40_000 * 64 * 4 B = 10 MiB
    assert large - small < 5 * 1024, (small, large)
