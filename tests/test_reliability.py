"""Reliability: every call either works or raises a rum error, and the caller's model, data and
random states come back exactly as they were, whatever the call did.

The first part pins the cases an audit found one by one; the last part generates cases with
hypothesis (data forms, hyper-parameter values, models) and compares the caller's state after
every call.
"""

from __future__ import annotations

import copy
import fractions
import io
import itertools
import json
import warnings
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import rum
from rum.exceptions import (
    DivergenceWarning,
    InvalidDataError,
    InvalidFileError,
    InvalidParameterError,
    NotDataError,
    RumError,
)

from .conftest import CallerState


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return (X[:60], y[:60]), (X[60:400], y[60:400]), (X[400:600], y[400:600])


def _bn_model(seed=0, frozen_norm=False):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
    if frozen_norm:
        m[1].eval()  # a BatchNorm the caller keeps in eval mode inside a training model
    return m


@pytest.fixture(scope="module")
def bn_model(data):
    forget, retain, _ = data
    X = np.concatenate([forget[0], retain[0]])
    y = np.concatenate([forget[1], retain[1]])
    return rum.fit(_bn_model(), (X, y), epochs=5, optimizer="sgd", lr=0.05, device="cpu")


# -- BatchNorm and batches of one item ---------------------------------------------------------
@pytest.mark.parametrize("n_retain, unlearner", [(65, "finetune"), (129, "neggrad+"), (65, "retrain")])
def test_batchnorm_models_take_a_last_batch_of_one_item(bn_model, data, n_retain, unlearner):
    forget, retain, _ = data
    Xr, yr = retain[0][:n_retain], retain[1][:n_retain]
    kw = {"epochs": 1} if unlearner == "retrain" else {}
    res = rum.unlearn(bn_model, forget, (Xr, yr), unlearner=unlearner, random_state=0, progress=False,
                      retain_guard=None, **kw)
    assert res.steps[0].status == "ok"
    assert all(torch.isfinite(v).all() for v in res.model.state_dict().values() if v.is_floating_point())
    assert all(len(m._forward_hooks) == 0 for m in res.model.modules())  # nothing left behind


def test_a_one_item_batch_normalises_with_the_running_statistics(bn_model):
    """What a training-mode BatchNorm does with one item: its running statistics, left unchanged."""
    from rum._runtime.batchnorm import single_item_batchnorm

    net = copy.deepcopy(bn_model).train()
    x = torch.randn(1, 64)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with single_item_batchnorm(net):
        out = net[1](net[0](x))
    ref = nn.functional.batch_norm(net[0](x), before["1.running_mean"], before["1.running_var"],
                                   net[1].weight, net[1].bias, training=False, eps=net[1].eps)
    assert torch.allclose(out, ref)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with single_item_batchnorm(net):  # two items: the usual training-mode statistics
        out2 = net[1](net[0](torch.randn(2, 64)))
    assert not torch.equal(net.state_dict()["1.running_mean"], before["1.running_mean"])
    assert out2.shape == (2, 32) and net[1].training


def test_a_batchnorm_model_with_one_item_groups_runs_the_default_pipeline(bn_model, data):
    forget, retain, _ = data
    res = rum.unlearn(bn_model, (forget[0][:3], forget[1][:3]), retain, n_groups=3, random_state=0,
                      progress=False)
    assert [len(s.indices) for s in res.plan.steps[:3]] == [1, 1, 1] or res.profile.n_groups < 3
    assert all(s.status in ("ok", "fallback", "collapsed") for s in res.steps)


def test_fit_trains_a_batchnorm_model_on_65_items(data):
    _, retain, _ = data
    net = rum.fit(_bn_model(), (retain[0][:65], retain[1][:65]), epochs=2, device="cpu")
    assert all(torch.isfinite(p).all() for p in net.parameters())


# -- the caller's model comes back exactly -----------------------------------------------------
def test_modes_flags_hooks_and_wrappers_come_back_exactly(bn_model, data):
    forget, retain, test = data
    model = copy.deepcopy(bn_model).train()
    model[1].eval()                      # frozen statistics inside a training model
    model[0].weight.requires_grad_(False)  # a frozen layer
    model[4].register_forward_hook(lambda m, i, o: None)
    wrapped = nn.DataParallel(copy.deepcopy(model).eval())
    for m in (model, wrapped):
        state = CallerState(m, *forget, *retain)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rum.unlearn(m, forget, retain, random_state=0, progress=False)
            rum.unlearn(m, forget, retain, unlearner="influence", parameters=1, random_state=0,
                        progress=False)
        rum.profile(m, forget, retain, random_state=0, memorization="curvature")
        rum.evaluate(m, forget_set=forget, retain_set=retain, test_set=test)
        with pytest.raises(RumError):  # a call that fails leaves everything as it was too
            rum.unlearn(m, forget, retain, unlearner="finetune", epochs=0)
        state.assert_unchanged(type(m).__name__)


def test_nan_in_a_buffer_is_caught_without_the_retain_guard(bn_model, data):
    class PoisonBuffer(rum.Unlearner):
        def _unlearn(self, model, forget, retain, ctx):
            for b in model.buffers():
                if b.is_floating_point():
                    b.fill_(float("nan"))
            return model

    forget, retain, _ = data
    with pytest.warns(DivergenceWarning, match="loss or weights became nan"):
        res = rum.unlearn(bn_model, forget, retain, unlearner=PoisonBuffer(), retain_guard=None,
                          random_state=0, progress=False)
    assert res.steps[0].status == "diverged"
    assert all(torch.isfinite(b).all() for b in res.model.buffers() if b.is_floating_point())


# -- the search policy on models of other precisions, and when a loss turns NaN ---------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_auto_runs_on_models_of_other_precisions(digits, dtype):
    model = copy.deepcopy(digits.model).to(dtype)
    res = rum.unlearn(model, digits.forget, digits.retain, policy="auto", random_state=0, progress=False)
    assert next(res.model.parameters()).dtype == dtype
    replay = rum.execute(res.plan, model, digits.forget, digits.retain, random_state=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(res.model.state_dict().values(),
                                                 replay.model.state_dict().values()))


def test_auto_keeps_no_candidate_whose_loss_turns_nan(digits):
    class Explodes(rum.Unlearner):
        _parameter_constraints = {"epochs": [rum.unlearners.Interval(int, 1, None)]}

        def __init__(self, epochs=3):
            self.epochs = epochs

        def _unlearn(self, model, forget, retain, ctx):
            for _ in range(self.epochs):
                ctx.step(float("nan"))
                if ctx.end_epoch(model):
                    break
            return model

    try:
        rum.register_unlearner("explodes-test")(Explodes)
        res = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=0, progress=False,
                          policy=rum.policies.Auto(candidates=["explodes-test"], repair=[],
                                                   target="neighbors"))
    finally:
        rum.unlearners.registry.UNLEARNERS.unregister("explodes-test")
    assert [s.unlearner for s in res.plan.steps] == ["noop"]
    assert all(t.score == float("inf") and not t.kept for t in res.search.trials)


# -- typed errors before any work, for values that look valid ---------------------------------
@pytest.mark.parametrize("name, value, hint", [
    ("lr", 1e300, "float32's range"),
    ("lr", fractions.Fraction(1, 100), "Fraction is not taken"),
    ("batch_size", 2**63, "64 bits"),
    ("lr", 2**64, "64 bits"),
    ("epochs", True, "a bool is not a number"),
    ("epochs", float("nan"), ""),
])
def test_numbers_torch_cannot_take_are_refused_by_name(digits, name, value, hint):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of Finetune.*{hint}"):
        rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune", **{name: value})


def test_numpy_numbers_work_like_python_ones(digits):
    a = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune", epochs=1,
                    batch_size=32, lr=0.01, random_state=0, progress=False)
    b = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune",
                    epochs=np.int64(1), batch_size=np.int32(32), lr=np.float64(0.01),
                    random_state=0, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                 b.model.state_dict().values()))


def test_a_bool_is_not_one_of_the_numbered_options():
    with pytest.raises(InvalidParameterError, match="'order' parameter of InfluenceSettings"):
        rum.influence.InfluenceSettings(order=True)


@pytest.mark.parametrize("bad, error, match", [
    (lambda X, y: (X.astype(str), y), InvalidDataError, "X is a numpy array of strings"),
    (lambda X, y: (np.zeros(X.shape, "datetime64[s]"), y), InvalidDataError, "of dates"),
    (lambda X, y: (X, y.astype(str)), InvalidDataError, "y is a numpy array of strings"),
    (lambda X, y: (torch.empty(X.shape, device="meta"), torch.as_tensor(y)), InvalidDataError,
     "meta tensor"),
])
def test_data_rum_cannot_read_gets_a_typed_error(data, bad, error, match):
    forget, retain, _ = data
    with pytest.raises(error, match=match):
        rum.profile(_bn_model().eval(), bad(*forget), retain)


@pytest.mark.parametrize("form", [
    lambda X, y: (X.astype(">f4"), y.astype(">i8")),                        # big-endian
    lambda X, y: (torch.as_tensor(X).to_sparse(), torch.as_tensor(y)),      # sparse
    lambda X, y: (torch.as_tensor(X).to(torch.float8_e4m3fn).float(), torch.as_tensor(y)),
    lambda X, y: torch.utils.data.DataLoader(                               # one item at a time
        torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=None),
])
def test_data_in_unusual_forms_is_read_as_the_same_items(data, form):
    forget, _, _ = data
    X, y = forget
    d = rum.TensorData  # noqa: F841 - the public record the adapter produces
    from rum._data import as_data

    got = as_data(form(X, y), "forget_set")
    assert torch.allclose(got.X, torch.as_tensor(X).float(), atol=0.1) and torch.equal(got.y, torch.as_tensor(y))


def test_datasets_without_a_length_are_refused_and_an_endless_stream_never_read(data):
    forget, retain, _ = data
    X, y = forget

    class NoLen(torch.utils.data.Dataset):
        def __getitem__(self, i):
            return X[i], y[i]

    class Endless(torch.utils.data.IterableDataset):
        def __iter__(self):
            for i in itertools.count():
                yield X[i % len(X)], y[i % len(y)]

    class Lies(Endless):
        def __len__(self):
            return 10

    model = _bn_model().eval()
    for bad in (NoLen(), Endless(), torch.utils.data.DataLoader(Endless(), batch_size=8)):
        with pytest.raises(NotDataError, match="without __len__"):
            rum.profile(model, bad, retain)
    with pytest.raises(InvalidDataError, match="declares 10 items .* but yields more"):
        rum.profile(model, Lies(), retain)


def test_a_damaged_npz_and_a_deeply_nested_json_are_file_errors(tmp_path):
    from rum._io import load_data

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12, 1000)})
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:
        z.writestr("X.npy", header.getvalue())
        z.writestr("y.npy", header.getvalue())
    with pytest.raises(InvalidFileError, match="declares a 'X' array of shape"):
        load_data(tmp_path / "big.npz", "forget")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    for record in (rum.Plan, rum.Profile, rum.UnlearnResult):
        with pytest.raises(InvalidFileError, match="nested too deeply"):
            record.load(tmp_path / "deep.json")
    with pytest.raises(InvalidFileError, match="not a JSON file"):
        rum.report(str(tmp_path / "big.npz"), tmp_path / "r.html")


# -- global random states ----------------------------------------------------------------------
def test_no_public_function_moves_a_global_random_state(digits, data):
    forget, retain, test = data
    X, y = forget
    ds = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)
    model = digits.model
    state = CallerState(None)
    rum.evaluate(model, forget_set=digits.forget, retain_set=digits.retain, test_set=digits.test)
    rum.profile(model, ds, digits.retain, random_state=0)
    rum.profile(model, loader, digits.retain, random_state=0)
    rum.unlearn(model, digits.forget, digits.retain, random_state=0, progress=False)
    rum.unlearn(model, digits.forget, digits.retain, random_state=None, progress=False)
    state.assert_unchanged("public calls")


# -- generated cases ---------------------------------------------------------------------------
def _values_for(constraints: list):
    """Valid and invalid values for a parameter with these constraints (hypothesis)."""
    bad = st.sampled_from([-1, 0, 1e300, float("nan"), True, "x", fractions.Fraction(1, 3), 2**64, None,
                           np.int64(2), np.float32(0.5), [1]])
    return st.one_of(bad, st.integers(-2, 6), st.floats(-1, 2, allow_nan=False))


UNLEARNERS = [n for n in rum.list_unlearners() if n not in ("retrain",)]
FORMS = {
    "pair": lambda X, y: (X, y),
    "float64": lambda X, y: (X.astype(np.float64), y),
    "int features": lambda X, y: ((X * 16).astype(np.int64), y),
    "tensors": lambda X, y: (torch.as_tensor(X), torch.as_tensor(y)),
    "dataset": lambda X, y: torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y)),
    "loader": lambda X, y: torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=7),
    "big-endian": lambda X, y: (X.astype(">f4"), y),
}


def _model(kind: str):
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    if kind == "bn":
        return _bn_model(frozen_norm=True).train()
    return nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double().eval()


@pytest.mark.slow  # a few hundred generated calls
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(UNLEARNERS), param=st.data(), form=st.sampled_from(sorted(FORMS)),
       kind=st.sampled_from(["mlp", "bn", "float64"]), n_forget=st.integers(1, 9),
       n_retain=st.sampled_from([0, 1, 33, 65]))
def test_generated_calls_work_or_raise_a_rum_error_and_leave_the_caller_untouched(
        data, name, param, form, kind, n_forget, n_retain):
    forget, retain, _ = data
    cls = rum.get_unlearner(name)
    params = dict(cls._test_params())
    if cls._param_names():
        p = param.draw(st.sampled_from(cls._param_names()))
        params[p] = param.draw(_values_for(cls._parameter_constraints.get(p, [])))
    model = _model(kind)
    f = FORMS[form](forget[0][:n_forget], forget[1][:n_forget])
    r = FORMS[form](retain[0][:n_retain], retain[1][:n_retain]) if n_retain else None
    arrays = [a for a in (f if isinstance(f, tuple) else ()) if isinstance(a, (np.ndarray, torch.Tensor))]
    state = CallerState(model, *arrays)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = rum.unlearn(model, f, r, unlearner=name, random_state=0, progress=False, **params)
        json.dumps(res.to_dict())  # the record of any run is JSON
    except RumError:
        pass
    state.assert_unchanged(f"{name} {params} on {kind} / {form}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["finetune", "neggrad+", "random-label"]), param=st.data(),
       kind=st.sampled_from(["mlp", "bn"]))
def test_a_few_generated_calls_in_the_fast_loop(data, name, param, kind):
    """A small sample of the generated cases above, in the fast test loop."""
    forget, retain, _ = data
    cls = rum.get_unlearner(name)
    p = param.draw(st.sampled_from(cls._param_names()))
    params = {**cls._test_params(), p: param.draw(_values_for([]))}
    model = _model(kind)
    state = CallerState(model, *forget, *retain)
    try:
        rum.unlearn(model, forget, (retain[0][:65], retain[1][:65]), unlearner=name, random_state=0,
                    progress=False, **params)
    except RumError:
        pass
    state.assert_unchanged(f"{name} {params} on {kind}")


PIPELINE_VALUES = {
    "n_groups": st.sampled_from([1, 2, 3, 0, -1, 2.5, True, np.int64(2), "3", 100]),
    "grouping": st.sampled_from(["rum", "quantile", "kmeans", "graph", "grpah", ("quantile", {"by": "entanglement"}),
                                 ("quantile", {"byy": 1}), 3, None]),
    "memorization": st.sampled_from(["auto", "confidence", "margin", "neighbors", "curvature", "nope", 7,
                                     np.zeros(3), None]),
    "entanglement": st.sampled_from(["class_margin", "centroid_distance", "none", "x", None]),
    "retain_policy": st.sampled_from(["strict", "progressive", "lenient", 1]),
    "policy": st.sampled_from(["rum", "uniform", "vanilla", "shuffle", "auto", "mapping", "autoo", 3,
                               rum.policies.Uniform("neggrad+"), rum.policies.RUM({"repair": None})]),
}


@pytest.mark.slow  # generated pipeline calls
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(options=st.fixed_dictionaries({}, optional=PIPELINE_VALUES), kind=st.sampled_from(["mlp", "bn"]),
       n_forget=st.integers(1, 12), n_retain=st.sampled_from([0, 33, 65]))
def test_generated_pipeline_calls_work_or_raise_a_rum_error_and_leave_the_caller_untouched(
        data, options, kind, n_forget, n_retain):
    forget, retain, _ = data
    model = _model(kind)
    f = (forget[0][:n_forget], forget[1][:n_forget])
    r = (retain[0][:n_retain], retain[1][:n_retain]) if n_retain else None
    state = CallerState(model, *f)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = rum.unlearn(model, f, r, random_state=0, progress=False, **options)
        json.dumps(res.to_dict())
    except RumError:
        pass
    state.assert_unchanged(f"{options} on {kind}")
