"""rum.audit: statistics with known answers, data forms, seeds, checkpoints, backends, validation.

Most tests use a random-features classifier whose head is fitted in closed
form (ridge regression on one-hot labels): it trains in milliseconds, varies
with the seed like a network does, and memorises flipped labels. The digits
tests at the end use the demo's MLP.
"""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Subset, TensorDataset

import rum
from rum._audit._run import draw_negatives
from rum._audit._shadows import as_source, combine, negatives_in
from rum._data import as_data
from rum.exceptions import InvalidParameterError, NotAModelError, UnknownOptionError

N_CLASSES = 3


class RandomFeatures(nn.Module):
    """``head(cos(x W + b))`` with random ``W, b`` drawn from torch's global generator."""

    def __init__(self, d: int, width: int = 300):
        super().__init__()
        self.register_buffer("W", torch.randn(d, width))
        self.register_buffer("b", torch.rand(width) * 2 * np.pi)
        self.head = nn.Linear(width, N_CLASSES)

    def features(self, x):
        return torch.cos(x @ self.W + self.b) * np.sqrt(2.0 / self.W.shape[1])

    def forward(self, x):
        return self.head(self.features(x))


def _xy(data):
    if isinstance(data, torch.utils.data.Dataset):
        d = as_data(data)
        return d.X, d.y
    return torch.as_tensor(data[0]).float(), torch.as_tensor(data[1]).long()


def fit_ridge(data, scale: float = 10.0) -> RandomFeatures:
    """A fresh model whose head solves ridge regression onto scaled one-hot labels."""
    X, y = _xy(data)
    model = RandomFeatures(X.shape[1])
    with torch.no_grad():
        F = model.features(X)
        Y = nn.functional.one_hot(y, N_CLASSES).float() * scale
        W = torch.linalg.solve(F.T @ F + 1e-2 * torch.eye(F.shape[1]), F.T @ Y)
        model.head.weight.copy_(W.T)
        model.head.bias.zero_()
    return model


class Task:
    """Blobs with ``n_flipped`` flipped training labels; forget = flipped + ordinary items."""

    def __init__(self, seed: int = 0, n_train: int = 400, n_forget: int = 100, n_flipped: int = 40):
        rng = np.random.default_rng(seed)

        def blobs(n):
            y = rng.integers(0, N_CLASSES, n)
            return (rng.normal(size=(n, 5)) + 2.5 * np.eye(N_CLASSES, 5)[y]).astype(np.float32), y

        X, y = blobs(n_train)
        y[:n_flipped] = (y[:n_flipped] + 1) % N_CLASSES
        self.forget = (X[:n_forget], y[:n_forget])
        self.retain = (X[n_forget:], y[n_forget:])
        self.test = blobs(300)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = fit_ridge((X, y))  # the original: it memorised the flipped labels
            torch.manual_seed(seed + 1)
            self.retrained = fit_ridge(self.retain)


@pytest.fixture(scope="module")
def task():
    return Task()


@pytest.fixture(scope="module")
def shadows(task, tmp_path_factory):
    """A checkpoint of 16 shadows for ``task`` at seed 0, which later audits reuse for free."""
    path = tmp_path_factory.mktemp("audit") / "shadows.npz"
    return path, rum.audit(task.model, task.forget, retain_set=task.retain, test_set=task.test,
                           train_fn=fit_ridge, random_state=0, reference=task.retrained,
                           checkpoint=path, progress=False)


def run(task, model=None, **kw):
    kw.setdefault("random_state", 0)
    kw.setdefault("progress", False)
    return rum.audit(task.model if model is None else model, task.forget, retain_set=task.retain,
                     test_set=task.test, train_fn=kw.pop("train_fn", fit_ridge), **kw)


# -- known answers ------------------------------------------------------------------------------
def _check_known_answers(a):
    assert a.auc > 0.8
    assert abs(a.reference_auc - 0.5) < 0.1
    assert np.mean(a.at_risk < 40) >= 0.8  # the flipped items (the first 40) are most at risk
    assert a.attack["tpr@1%fpr"] > 0.05 and a.attack["flagged"] > 0.15
    assert a.reference_attack["flagged"] < 0.1


def test_memorised_flipped_labels_are_found_and_a_retrain_sits_near_chance(shadows):
    _check_known_answers(shadows[1])


@pytest.mark.slow  # three tasks
def test_known_answers_hold_over_seeds():
    ref_aucs = []
    for seed in range(1, 4):
        t = Task(seed)
        a = run(t, reference=t.retrained, random_state=seed)
        _check_known_answers(a)
        ref_aucs.append(a.reference_auc)
    assert abs(np.mean(ref_aucs) - 0.5) < 0.05


def test_u_lira_with_exact_unlearning_cannot_tell_unlearned_from_never_trained(task, shadows):
    """Unlearning by retraining on the retain set turns every "in" shadow into a retrain."""
    a = run(task, model=task.retrained, n_shadows=8,
            unlearn=lambda model, forget, retain: fit_ridge(retain))
    assert a.mode == "u-lira"
    assert np.mean(a.detectability) < 0.56  # the algorithm leaves nothing to detect
    assert abs(a.auc - 0.5) < 0.12
    assert np.mean(shadows[1].detectability) > np.mean(a.detectability) + 0.1  # training does


def test_memorization_from_the_shadows_is_high_for_flipped_items(shadows):
    a = shadows[1]
    assert a.memorization[:40].mean() > 0.5
    assert a.memorization[40:].mean() < 0.25


def test_per_item_and_global_variances_agree_on_the_verdict(task, shadows):
    g = run(task, variance="global", checkpoint=shadows[0])
    p = run(task, variance="per-item", checkpoint=shadows[0])
    assert g.variance == "global" and p.variance == "per-item"
    assert g.auc > 0.8 and p.auc > 0.8
    assert run(task, checkpoint=shadows[0]).variance == "global"  # "auto" below 64 shadows


# -- reproducibility, inputs, RNG ---------------------------------------------------------------
def test_same_seed_same_audit_and_the_callers_state_is_untouched(task):
    X_before, y_before = task.forget[0].copy(), task.forget[1].copy()
    state_before = {k: v.clone() for k, v in task.model.state_dict().items()}
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    want = (torch.rand(1), np.random.rand(), random.random())
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    a = run(task, n_shadows=4)
    got = (torch.rand(1), np.random.rand(), random.random())
    assert want == got
    b = run(task, n_shadows=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(task.forget[0], X_before)
    np.testing.assert_array_equal(task.forget[1], y_before)
    assert all(torch.equal(v, state_before[k]) for k, v in task.model.state_dict().items())
    c = run(task, n_shadows=4, random_state=1)
    assert not np.array_equal(a.scores, c.scores)


@pytest.mark.slow  # two audits
def test_scores_follow_the_users_item_order(task):
    perm = np.random.default_rng(5).permutation(len(task.forget[1]))
    a = run(task, n_shadows=4)
    forget = (task.forget[0][perm], task.forget[1][perm])
    b = rum.audit(task.model, forget, retain_set=task.retain, test_set=task.test,
                  train_fn=fit_ridge, n_shadows=4, random_state=0, progress=False)
    # the negatives and shadows depend on the forget set's contents, so compare the flipped items' ranks
    flipped = perm < 40
    assert b.scores[flipped].mean() > b.scores[~flipped].mean() + 1
    assert a.scores[:40].mean() > a.scores[40:].mean() + 1


# -- the forms train_fn and unlearn receive -----------------------------------------------------
def test_train_fn_receives_numpy_pairs_for_numpy_input(task):
    seen = []

    def train(data):
        seen.append(data)
        return fit_ridge(data)

    run(task, train_fn=train, n_shadows=4)
    assert all(isinstance(d, tuple) and isinstance(d[0], np.ndarray) for d in seen)
    n_r, n_f = len(task.retain[1]), len(task.forget[1])
    sizes = [len(d[1]) for d in seen]
    assert sizes[1] == sizes[3] == n_r  # retrains
    assert sizes[0] == n_r + n_f + n_f // 2 and sizes[0] + sizes[2] == 2 * (n_r + n_f) + n_f


def test_train_fn_receives_a_subset_of_the_users_dataset(task):
    X = np.concatenate([task.forget[0], task.retain[0]])
    y = np.concatenate([task.forget[1], task.retain[1]])
    base = TensorDataset(torch.tensor(X), torch.tensor(y))
    n_f = len(task.forget[1])
    forget, retain = Subset(base, range(n_f)), Subset(base, range(n_f, len(y)))
    test = TensorDataset(torch.tensor(task.test[0]), torch.tensor(task.test[1]))
    seen = []

    def train(data):
        seen.append(data)
        return fit_ridge(data)

    a = rum.audit(task.model, forget, retain_set=retain, test_set=test, train_fn=train,
                  n_shadows=4, random_state=0, progress=False)
    assert isinstance(seen[1], Subset) and seen[1].dataset is base  # retain alone
    assert isinstance(seen[0], ConcatDataset)  # retain + forget (of base) + test items (another dataset)
    # (as_data's DataLoader draws from torch's generator, so the shadows' weights differ from
    # those of the (X, y) run; the verdict does not)
    assert a.auc > 0.75


def test_combine_keeps_each_form():
    X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    d = as_data((X, y))
    a = as_source((X, y), d)
    out = combine([(a, None), (a, np.array([0]))])
    assert isinstance(out[0], np.ndarray) and out[1].tolist() == [0, 1, 2, 3, 4, 0]
    out[0][0, 0] = 99  # a copy: the caller's array is untouched
    assert X[0, 0] == 0
    t = as_source((torch.tensor(X), torch.tensor(y)), d)
    assert isinstance(combine([(t, np.array([1, 2]))])[0], torch.Tensor)
    mixed = combine([(a, None), (t, np.array([1]))])
    assert isinstance(mixed[0], torch.Tensor) and len(mixed[1]) == 6
    base = TensorDataset(torch.tensor(X), torch.tensor(y))
    s1, s2 = (as_source(Subset(base, i), as_data(Subset(base, i))) for i in ([4, 3], [0, 1]))
    sub = combine([(s1, None), (s2, np.array([1]))])
    assert isinstance(sub, Subset) and sub.dataset is base and list(sub.indices) == [4, 3, 1]
    other = as_source(TensorDataset(torch.tensor(X), torch.tensor(y)), d)
    assert isinstance(combine([(s1, None), (other, np.array([0]))]), ConcatDataset)
    one = combine([(s1, np.array([1]))])
    assert one.dataset is base and list(one.indices) == [3]
    loader = torch.utils.data.DataLoader(base, batch_size=2)
    X2, y2 = combine([(as_source(loader, d), None)])
    assert isinstance(X2, torch.Tensor) and y2.tolist() == y.tolist()


def test_negatives_match_the_forget_labels_and_split_evenly():
    idx, w = draw_negatives([0] * 5 + [1] * 3, [0] * 10 + [1] * 2 + [2] * 4, seed=0)
    labels = np.array([0] * 10 + [1] * 2 + [2] * 4)[idx]
    assert (labels == 0).sum() == 5 and (labels == 1).sum() == 2 and (labels == 2).sum() == 0
    np.testing.assert_allclose(w[labels == 1], 1.5)
    counts = sum(negatives_in(10, 3, k).astype(int) for k in range(16))
    assert (counts == 4).all()  # every negative in a quarter of 16 shadows


# -- unlearn as an rum call ---------------------------------------------------------------------
@pytest.mark.slow  # runs rum.unlearn on two shadows
def test_unlearn_as_an_rum_call_runs_rum_unlearn_on_the_in_shadows(task):
    a = run(task, n_shadows=4, unlearn={"unlearner": "finetune", "epochs": 1})
    assert a.mode == "u-lira" and a.unlearn == "rum.unlearn(epochs=1, unlearner='finetune')"
    assert a.timings["unlearn"] > 0
    from rum._audit._run import make_unlearn

    assert make_unlearn("finetune")[1] == "rum.unlearn(unlearner='finetune')"
    assert make_unlearn("auto")[1] == "rum.unlearn(policy='auto')"
    assert make_unlearn(rum.policies.Uniform("neggrad+"))[1].startswith("rum.unlearn(policy=Uniform")


# -- checkpoints --------------------------------------------------------------------------------
class Counting:
    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, data):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        return fit_ridge(data)


def test_an_interrupted_audit_resumes_from_its_checkpoint(task, tmp_path):
    ck = tmp_path / "shadows.npz"
    with pytest.raises(KeyboardInterrupt):
        run(task, train_fn=Counting(fail_after=3), n_shadows=6, checkpoint=ck)
    again = Counting()
    resumed = run(task, train_fn=again, n_shadows=6, checkpoint=ck)
    assert again.calls == 3
    whole = run(task, n_shadows=6)
    np.testing.assert_allclose(resumed.scores, whole.scores)
    more = Counting()
    run(task, train_fn=more, n_shadows=8, checkpoint=ck)  # more shadows reuse the first six
    assert more.calls == 2
    reuse = Counting()
    other = run(task, model=task.retrained, train_fn=reuse, n_shadows=8, checkpoint=ck)
    assert reuse.calls == 0 and other.auc < resumed.auc  # another model, the same shadows


def test_a_checkpoint_of_another_audit_is_refused(task, tmp_path):
    ck = tmp_path / "shadows.npz"
    run(task, n_shadows=4, checkpoint=ck)
    with pytest.raises(InvalidParameterError, match="another audit.*seed"):
        run(task, n_shadows=4, checkpoint=ck, random_state=5)
    with pytest.raises(InvalidParameterError, match="unlearn"):
        run(task, n_shadows=4, checkpoint=ck, unlearn="finetune")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a checkpoint")
    with pytest.raises(InvalidParameterError, match="not an audit checkpoint"):
        run(task, n_shadows=4, checkpoint=bad)


def test_a_progress_bar_counts_shadows_and_shows_the_time_left(task, shadows, capsys):
    run(task, n_shadows=18, checkpoint=shadows[0], progress=True)  # two more than the file holds
    err = capsys.readouterr().err
    assert "audit: shadow models" in err and "18/18" in err and "shadow/s" in err and "<" in err
    run(task, n_shadows=18, checkpoint=shadows[0])  # progress=None: only on a terminal
    assert "audit" not in capsys.readouterr().err


# -- the record ---------------------------------------------------------------------------------
def test_the_record_prints_and_round_trips(shadows, tmp_path):
    a = shadows[1]
    text = str(a)
    assert "AUC" in text and "retrained reference" in text and "Most at risk" in text
    b = rum.Audit.load(a.save(tmp_path / "audit.json"))
    for name in ("scores", "log_lr", "detectability", "memorization", "negative_scores",
                 "negative_weights", "reference_scores", "reference_negative_scores", "negatives"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert b.attack == a.attack and b.reference_attack == a.reference_attack
    assert (b.mode, b.n_shadows, b.seed, b.variance) == (a.mode, a.n_shadows, a.seed, a.variance)
    fpr, tpr = b.roc(reference=True)
    assert np.trapezoid(tpr, fpr) == pytest.approx(b.reference_auc)
    assert not a.scores.flags.writeable
    assert a.cost_retrains > 0


# -- validation ---------------------------------------------------------------------------------
def test_arguments_are_checked_before_any_training(task):
    never = Counting(fail_after=0)
    with pytest.raises(InvalidParameterError, match="n_shadows"):
        run(task, train_fn=never, n_shadows=2)
    with pytest.raises(InvalidParameterError, match="backend"):
        run(task, train_fn=never, backend="spark")
    with pytest.raises(InvalidParameterError, match="variance"):
        run(task, train_fn=never, variance="pooled")
    with pytest.raises(InvalidParameterError, match="train_fn"):
        run(task, train_fn="fit")
    with pytest.raises(InvalidParameterError, match="unlearn"):
        run(task, train_fn=never, unlearn=3)
    with pytest.raises(InvalidParameterError, match="neither a registered unlearner.*finetune"):
        run(task, train_fn=never, unlearn="finetuen")
    with pytest.raises(InvalidParameterError, match="random_state"):
        run(task, train_fn=never, unlearn={"unlearner": "finetune", "random_state": 0})
    with pytest.raises(UnknownOptionError, match="epoch"):
        run(task, train_fn=never, unlearn={"unlearner": "finetune", "epoch": 1})
    with pytest.raises(NotAModelError):
        run(task, model="not a model", train_fn=never)
    with pytest.raises(InvalidParameterError, match="torch.nn.Module"):
        run(task, train_fn=lambda data: "a string", n_shadows=4)
    assert never.calls == 0


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_missing_gives_install_hint(task):
    with pytest.raises(ImportError, match="distributed"):
        run(task, n_shadows=4, backend="ray")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
@pytest.mark.slow  # starts a local Ray cluster
def test_ray_backend_gives_the_local_result_and_resumes(task, tmp_path):  # pragma: no cover - needs ray
    local = run(task, n_shadows=4)
    ck = tmp_path / "ray.npz"
    with pytest.raises(KeyboardInterrupt):
        run(task, train_fn=Counting(fail_after=2), n_shadows=4, checkpoint=ck)
    far = run(task, n_shadows=4, backend="ray", checkpoint=ck)
    np.testing.assert_allclose(far.scores, local.scores, rtol=1e-3, atol=1e-3)  # threads differ
    assert far.auc == pytest.approx(local.auc, abs=1e-3)


# -- a real network -----------------------------------------------------------------------------
@pytest.mark.slow  # trains 8 MLPs
def test_digits_original_gives_memorised_items_away_and_the_oracle_does_not(digits, oracle):
    from rum.demo import RECIPE, make_mlp

    def train(data):
        return rum.fit(make_mlp(), data, device="cpu", **RECIPE)

    a = rum.audit(digits.model, digits.forget, retain_set=digits.retain, test_set=digits.test,
                  train_fn=train, n_shadows=8, random_state=0, reference=oracle, progress=False)
    assert a.auc > 0.65
    assert abs(a.reference_auc - 0.5) < 0.1
    assert digits.mislabeled[a.at_risk].all()  # the ten most at risk are flipped labels
