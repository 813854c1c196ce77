"""The conformance checks, one function per check.

Each check takes an :class:`~rum.Unlearner` instance, runs it on the tiny
memorised task of :mod:`rum.testing.fixtures` and raises
:class:`CheckFailure` (an ``AssertionError``) with a message that tells the
plug-in author how to comply. Checks never modify the instance they are given.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rum._data import as_data
from rum.exceptions import EmptyDataError, InvalidParameterError
from rum.testing._common import (
    CheckFailure,
    ConformanceError,
    _call_hook,
    _fail,
    _one_thread,
    _run,
    _same_state,
    _state,
)
from rum.testing.fixtures import accuracy, tiny_task
from rum.unlearners.base import SCENARIOS, Unlearner, UnlearnerTags
from rum.unlearners.noop import Noop

__all__ = [
    "CheckFailure",
    "ConformanceError",
    "CHECKS",
    "check_tags",
    "check_params_roundtrip",
    "check_params_validated",
    "check_output_model",
    "check_inputs_not_mutated",
    "check_same_seed_same_weights",
    "check_no_hooks_left",
    "check_empty_forget_rejected",
    "check_runs_on_devices",
    "check_epoch_hook",
    "check_truncation_replays",
    "check_behaviour",
    "BEHAVIOUR_MIN_PROGRESS",
    "BEHAVIOUR_MAX_TEST_DROP",
]

#: The behaviour check's bound: the unlearner must close at least this fraction of
#: the gap between ``noop``'s forget accuracy and the retrain oracle's.
BEHAVIOUR_MIN_PROGRESS = 0.25
#: ... while its test accuracy stays at most this far (a fraction, 0.10 = 10 points)
#: below ``noop``'s.
BEHAVIOUR_MAX_TEST_DROP = 0.10

_COSTS = ("none", "low", "medium", "high")


# -- metadata ---------------------------------------------------------------------------------
def check_tags(u: Unlearner) -> None:
    """``tags`` is an :class:`UnlearnerTags` with a known cost, a source and known
    scenarios (``suits``), and it tells the truth.

    An unlearner whose tags say it needs no retain data must run without
    one; one that needs it must be rejected without it.
    """
    tags = type(u).tags
    if not isinstance(tags, UnlearnerTags):
        raise _fail(u, f"tags is a {type(tags).__name__}.", "set the class attribute "
                    "`tags = rum.UnlearnerTags(...)`.")
    if tags.cost not in _COSTS:
        raise _fail(u, f"tags.cost is {tags.cost!r}.", f"use one of {', '.join(_COSTS)}.")
    if not str(tags.source).strip():
        raise _fail(u, "tags.source is empty.", "name the paper (or 'baseline') the method "
                    "comes from, e.g. UnlearnerTags(source='Author et al., Venue Year').")
    suits = tags.suits
    if not isinstance(suits, tuple) or any(s not in SCENARIOS for s in suits) \
            or len(set(suits)) != len(suits):
        raise _fail(u, f"tags.suits is {suits!r}.", f"give a tuple of distinct scenarios from "
                    f"{', '.join(SCENARIOS)} (or () when its papers do not say), e.g. "
                    "UnlearnerTags(suits=('class-wise',)).")
    task = tiny_task()
    if tags.requires_retain:
        try:
            _run(u, task, retain=None)
        except InvalidParameterError:
            return
        raise _fail(u, "tags.requires_retain is True but it ran without a retain set.",
                    "set requires_retain=False, or keep it and let rum reject a missing retain "
                    "set (it does so before _unlearn is called).")
    try:
        _run(u, task, retain=None)
    except Exception as err:  # noqa: BLE001
        raise _fail(u, f"tags.requires_retain is False but it failed without a retain set "
                    f"({type(err).__name__}: {err}).", "set requires_retain=True in its tags, "
                    "or make _unlearn handle retain=None.") from err


def check_params_roundtrip(u: Unlearner) -> None:
    """Hyper-parameters round-trip through ``get_params``, ``clone``, ``set_params`` and ``repr``.

    Also: the class constructs with no arguments, and ``__init__`` stores its
    arguments unchanged and sets nothing else.
    """
    cls = type(u)
    names = cls._param_names()
    params = u.get_params()
    if sorted(params) != sorted(names):
        raise _fail(u, f"get_params() returned {sorted(params)}, __init__ takes {sorted(names)}.",
                    "store every __init__ argument as an attribute of the same name.")
    extra = sorted(set(vars(u)) - set(names))
    if extra:
        raise _fail(u, f"__init__ set attributes that are not parameters: {extra}.",
                    "only store the arguments in __init__; compute derived values in _unlearn.")
    try:
        fresh = cls(**params)
    except Exception as err:  # noqa: BLE001
        raise _fail(u, f"{cls.__name__}(**get_params()) raised {type(err).__name__}: {err}.",
                    "make __init__ store its arguments without transforming them.") from err
    if fresh.get_params() != params:
        raise _fail(u, "rebuilding from get_params() changed the parameters.",
                    "store each argument unchanged (no copying, rounding or defaults applied "
                    "in __init__).")
    clone = u.clone()
    if clone is u or type(clone) is not cls or clone.get_params() != params:
        raise _fail(u, "clone() did not return a new, equal unlearner.",
                    "do not override clone(); keep __init__ arguments as attributes.")
    if names:
        first = names[0]
        other = u.clone().set_params(**{first: params[first]})
        if other.get_params() != params:
            raise _fail(u, "set_params() with the current values changed the parameters.",
                        "do not override set_params().")
    text = repr(u)
    if not text.startswith(cls.__name__ + "("):
        raise _fail(u, f"repr is {text!r}.", f"do not override __repr__; it must read "
                    f"{cls.__name__}(param=value, ...).")
    try:
        rebuilt = eval(text, {cls.__name__: cls, "inf": float("inf"), "nan": float("nan")})  # noqa: S307
    except Exception:  # noqa: BLE001
        rebuilt = None  # e.g. a callable parameter: repr is informative only
    if rebuilt is not None and rebuilt.get_params() != params:
        raise _fail(u, f"evaluating repr {text!r} gave different parameters.",
                    "make every __init__ default match the stored value's type.")
    try:
        default = cls()
    except Exception as err:  # noqa: BLE001
        raise _fail(u, f"{cls.__name__}() raised {type(err).__name__}: {err}.",
                    "give every hyper-parameter a default that works out of the box.") from err
    try:
        default.validate_params()
    except InvalidParameterError as err:
        raise _fail(u, f"its default parameters are invalid: {err}",
                    "make the defaults satisfy _parameter_constraints.") from err


def check_params_validated(u: Unlearner) -> None:
    """Every hyper-parameter has a constraint, and a bad value raises an error naming it."""
    cls = type(u)
    names = cls._param_names()
    missing = [n for n in names if not cls._parameter_constraints.get(n)]
    if missing:
        raise _fail(u, f"no constraint for {missing}.",
                    "list the allowed values of every parameter in _parameter_constraints, e.g. "
                    "{'epochs': [Interval(int, 1, None)], 'optimizer': [Options(('sgd', "
                    "'adam'))]} (from rum.unlearners import Interval, Options).")
    u.validate_params()
    task = tiny_task()
    for name in names:
        bad = u.clone(**{name: object()})
        try:
            _run(bad, task)
        except InvalidParameterError as err:
            if repr(name) not in str(err) and name not in str(err):
                raise _fail(u, f"the error for a bad {name!r} does not name it: {err}",
                            "raise through validate_params (rum.unlearners.Interval / Options "
                            "constraints) so the message names the parameter.") from err
            continue
        except Exception as err:  # noqa: BLE001
            raise _fail(u, f"a bad {name!r} raised {type(err).__name__}: {err}",
                        "declare its allowed values in _parameter_constraints so a bad value "
                        "raises rum.exceptions.InvalidParameterError before any work.") from err
        raise _fail(u, f"{name}=object() was accepted.",
                    f"constrain {name!r} in _parameter_constraints.")


# -- outputs and inputs ------------------------------------------------------------------------
def check_output_model(u: Unlearner) -> None:
    """The unlearned model keeps the architecture, dtype and device, and is a new object.

    Run on a float32 and a float64 copy of the tiny model. Outputs must be finite.
    """
    task = tiny_task()
    for dtype in (torch.float32, torch.float64):
        model = copy.deepcopy(task.model).to(dtype)
        before = _state(model)
        res = _run(u, task, model=model)
        out = res.model
        if out is model:
            raise _fail(u, "the result is the caller's model object.",
                        "return the model _unlearn receives (a private copy), never the caller's.")
        if type(out) is not type(model):
            raise _fail(u, f"the result is a {type(out).__name__}, not a {type(model).__name__}.",
                        "return the model _unlearn was given (modified in place).")
        after = _state(out)
        if set(after) != set(before):
            raise _fail(u, f"state_dict keys changed: {sorted(set(after) ^ set(before))}.",
                        "do not add or remove modules, parameters or buffers.")
        for k, v in after.items():
            if v.shape != before[k].shape or v.dtype != before[k].dtype:
                raise _fail(u, f"{k!r} became {tuple(v.shape)} {v.dtype} (was "
                            f"{tuple(before[k].shape)} {before[k].dtype}) for a {dtype} model.",
                            "create new tensors with like=param (torch.zeros_like, "
                            "dtype=p.dtype, device=p.device), never a fixed dtype.")
        devices = {p.device.type for p in out.parameters()}
        if devices != {"cpu"}:
            raise _fail(u, f"parameters ended on {devices} when run on the CPU.",
                        "use ctx.device, never pick a device yourself.")
        if not all(torch.isfinite(p).all() for p in out.parameters()):
            raise _fail(u, "some weights are NaN or infinite.", "lower the default lr, clip "
                        "gradients, and report each loss with ctx.step(loss).")


def check_inputs_not_mutated(u: Unlearner) -> None:
    """Nothing the caller owns changes.

    Checked: the caller's model (weights, train/eval mode, device), the
    caller's numpy arrays and tensors, the data objects ``_unlearn`` receives
    (the executor reuses the retain set across steps), the unlearner's own
    parameters, and the global numpy and Python random states.
    """
    task = tiny_task()
    model = task.model.train()  # a mode the unlearner must not change
    model_before = _state(model)
    Xf, yf = task.forget
    Xr_t, yr_t = torch.as_tensor(task.retain[0]).clone(), torch.as_tensor(task.retain[1]).clone()
    arrays = {"forget X": (Xf, Xf.copy()), "forget y": (yf, yf.copy())}
    tensors = {"retain X": (Xr_t, Xr_t.clone()), "retain y": (yr_t, yr_t.clone())}
    params = copy.deepcopy(u.get_params())
    np_state, py_state = np.random.get_state(), random.getstate()
    _run(u, task, model=model, forget=(Xf, yf), retain=(Xr_t, yr_t))
    if _same_state(model_before, _state(model)):
        raise _fail(u, "the caller's model weights changed.",
                    "only modify the model _unlearn receives (a private copy).")
    if not model.training:
        raise _fail(u, "the caller's model was switched to eval mode.",
                    "do not touch the caller's model.")
    for name, (now, was) in arrays.items():
        if not np.array_equal(now, was):
            raise _fail(u, f"the caller's {name} array changed.", "never write into input data.")
    for name, (now, was) in tensors.items():
        if not torch.equal(now, was):
            raise _fail(u, f"the caller's {name} tensor changed.", "never write into input data.")
    np_after = np.random.get_state()
    if np_state[0] != np_after[0] or not np.array_equal(np_state[1], np_after[1]) or \
            np_state[2:] != np_after[2:]:
        raise _fail(u, "the global numpy random state changed.",
                    "draw randomness from ctx.generator (or np.random.default_rng(ctx.seed)).")
    if random.getstate() != py_state:
        raise _fail(u, "the global Python random state changed.",
                    "draw randomness from ctx.generator (or random.Random(ctx.seed)).")
    # The data objects handed to the hook.
    forget, retain = as_data(task.forget, "forget_set"), as_data(task.retain, "retain_set")
    copies = {k: t.clone() for k, t in
              {"forget.X": forget.X, "forget.y": forget.y, "retain.X": retain.X,
               "retain.y": retain.y}.items()}
    _call_hook(u, copy.deepcopy(task.model), forget, retain)
    for k, t in {"forget.X": forget.X, "forget.y": forget.y, "retain.X": retain.X,
                 "retain.y": retain.y}.items():
        if not torch.equal(t, copies[k]):
            raise _fail(u, f"_unlearn wrote into {k}.", "treat forget and retain as read-only; "
                        "build new tensors (data.with_labels(new_y), x.clone()).")
    if u.get_params() != params:
        raise _fail(u, "its own hyper-parameters changed during unlearning.",
                    "keep run-time state in local variables of _unlearn, not in self.")


def check_same_seed_same_weights(u: Unlearner) -> None:
    """Two runs with the same ``random_state`` give bit-identical weights (on the CPU)."""
    task = tiny_task()
    a = _state(_run(u, task, seed=3).model)
    b = _state(_run(u, task, seed=3).model)
    diff = _same_state(a, b)
    if diff:
        raise _fail(u, f"random_state=3 twice gave different {diff[:3]}.",
                    "draw all randomness from ctx.generator (torch.randperm(n, generator="
                    "ctx.generator)) or from ctx.seed; never from unseeded sources.")


# -- hooks -------------------------------------------------------------------------------------
_MODULE_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


def hook_state(model: nn.Module) -> dict:
    """Every hook registered on ``model``'s modules and parameters, and torch's global module hooks."""
    from torch.nn.modules import module as module_mod

    state: dict = {}
    for name, m in model.named_modules():
        for attr in _MODULE_HOOKS:
            d = getattr(m, attr, None)
            state[("module", name, attr)] = tuple(d.keys()) if d else ()
    for name, p in model.named_parameters():
        for attr in _TENSOR_HOOKS:
            d = getattr(p, attr, None)
            state[("param", name, attr)] = tuple(d.keys()) if d else ()
    for attr in _GLOBAL_HOOKS:
        d = getattr(module_mod, attr, None)
        state[("global", "", attr)] = tuple(d.keys()) if d else ()
    return state


class InjectedFailure(RuntimeError):
    """Raised by the conformance kit's failing model to test clean-up after an exception."""


class _FailAfter(nn.Module):
    """Wraps a model; its ``fail_at``-th forward call raises :class:`InjectedFailure`."""

    def __init__(self, inner: nn.Module, fail_at: int | None):
        super().__init__()
        self.inner = inner
        self.fail_at = fail_at
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise InjectedFailure(f"injected failure at forward call {self.calls}")
        return self.inner(x)


def check_no_hooks_left(u: Unlearner) -> None:
    """No hook is added or removed, after a normal run and after an exception mid-run.

    The model given to ``_unlearn`` carries one user hook; its forward pass
    raises after 1, about half, and all of the forward calls of a normal
    run. After each run the hooks on every module and parameter (and torch's
    global module hooks) must be exactly as before.
    """
    task = tiny_task()

    def user_hook(module, inputs, output):
        return None

    counting = _FailAfter(copy.deepcopy(task.model), None)
    counting.inner[0].register_forward_hook(user_hook)
    before = hook_state(counting)
    _call_hook(u, counting, task.forget, task.retain)
    if hook_state(counting) != before:
        raise _fail(u, "hooks changed after a normal run.",
                    "remove every handle you register (handle.remove() in a finally block), "
                    "or mask gradients directly instead of with hooks.")
    total = counting.calls
    for fail_at in sorted({1, max(1, total // 2), max(1, total)}):
        if total == 0:
            break
        model = _FailAfter(copy.deepcopy(task.model), fail_at)
        model.inner[0].register_forward_hook(user_hook)
        before = hook_state(model)
        try:
            _call_hook(u, model, task.forget, task.retain)
        except Exception:  # noqa: BLE001, S110
            pass
        if hook_state(model) != before:
            raise _fail(u, f"hooks were left behind after an exception at forward call {fail_at}.",
                        "register hooks inside try/finally and remove them in finally.")


# -- errors and devices ------------------------------------------------------------------------
def check_empty_forget_rejected(u: Unlearner) -> None:
    """An empty forget set raises :class:`rum.exceptions.EmptyDataError` naming ``forget_set``.

    This holds automatically: rum checks the data before any unlearner runs.
    """
    task = tiny_task()
    X, y = task.forget
    try:
        _run(u, task, forget=(X[:0], y[:0]))
    except EmptyDataError as err:
        if "forget_set" not in str(err):
            raise _fail(u, f"the error does not name forget_set: {err}",
                        "let rum's data checks raise it.") from err
        return
    raise _fail(u, "an empty forget set was accepted.", "do not bypass the base class's checks.")


def check_runs_on_devices(u: Unlearner) -> None:
    """It runs on the CPU, and on CUDA when a CUDA device is present (skipped otherwise).

    On each device the result's weights must live there and its predictions
    on the forget set must be finite.
    """
    task = tiny_task()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        try:
            res = _run(u, task, device=dev)
        except Exception as err:  # noqa: BLE001
            raise _fail(u, f"it failed on {dev}: {type(err).__name__}: {err}",
                        "create every tensor on ctx.device (or like an existing tensor); "
                        "move copies such as a teacher model with .to(ctx.device).") from err
        kinds = {p.device.type for p in res.model.parameters()}
        if kinds != {dev}:
            raise _fail(u, f"run on {dev}, its weights ended on {kinds}.",
                        "keep the model on ctx.device.")
        with torch.no_grad():
            out = res.model(torch.as_tensor(task.forget[0]).to(dev))
        if not torch.isfinite(out).all():
            raise _fail(u, f"non-finite predictions on {dev}.", "lower the default lr.")


# -- epochs and replay --------------------------------------------------------------------------
def _epochs(u: Unlearner, replayable: bool = False) -> int | None:
    """The ``epochs`` parameter of an epoch-based unlearner, else ``None`` (with ``replayable``,
    also ``None`` when ``truncated()`` says a shorter run cannot be replayed)."""
    epochs = u.get_params().get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return None
    if replayable and u.truncated(1) is None:
        return None
    return epochs


def check_epoch_hook(u: Unlearner) -> None:
    """An epoch-based unlearner reports every epoch and stops when asked.

    The retain guard checks a step after each epoch (``ctx.end_epoch``) and stops
    one that has wrecked the model; the ``auto`` policy scores a candidate there.
    Checked for unlearners with an int ``epochs`` parameter: a run of ``epochs``
    epochs calls the hook with 1, 2, ..., ``epochs``, and a hook that returns
    ``True`` after epoch 1 ends the run there.
    """
    epochs = _epochs(u)
    if epochs is None:
        return
    task = tiny_task()
    seen: list[int] = []
    _call_hook(u, copy.deepcopy(task.model), task.forget, task.retain,
               on_epoch=lambda e, m, ctx: seen.append(e) or False)
    if seen != list(range(1, epochs + 1)):
        raise _fail(u, f"a run of epochs={epochs} reported epochs {seen} to the epoch hook.",
                    "call `if ctx.end_epoch(model): break` once at the end of every epoch.")
    seen.clear()
    run = _call_hook(u, copy.deepcopy(task.model), task.forget, task.retain,
                     on_epoch=lambda e, m, ctx: seen.append(e) or True)
    if seen != [1] or run.epochs != 1:
        raise _fail(u, f"the epoch hook asked it to stop after epoch 1, but it reported epochs {seen}.",
                    "stop when ctx.end_epoch(model) returns True: `if ctx.end_epoch(model): break`.")


def check_truncation_replays(u: Unlearner) -> None:
    """``truncated(k)`` replays exactly the first ``k`` epochs of a run (same seed, same weights).

    The ``auto`` policy keeps a candidate's best epoch ``k`` and records
    ``u.truncated(k)`` in the plan; :func:`rum.execute` must reproduce the searched
    weights bit for bit. Checked for ``k`` = 1 and 2 (when the run is that long),
    unless ``truncated()`` returns ``None`` (the search then keeps only whole runs).
    """
    epochs = _epochs(u, replayable=True)
    if epochs is None:
        return
    task = tiny_task()
    states: dict[int, dict] = {}
    full = _call_hook(u, copy.deepcopy(task.model), task.forget, task.retain, seed=5,
                      on_epoch=lambda e, m, ctx: states.setdefault(e, _state(m)) is None)
    # truncate the unlearner as it ran (lr="auto" resolved to the calibrated rate)
    ran = getattr(full, "unlearner", None) or u
    for k in sorted(states)[:2]:
        if k >= epochs:
            break
        short = ran.truncated(k)
        replay = _call_hook(short, copy.deepcopy(task.model), task.forget, task.retain, seed=5)
        diff = _same_state(states[k], _state(replay.model))
        if diff:
            raise _fail(u, f"truncated({k}) did not replay the first {k} epoch(s) of a "
                        f"{epochs}-epoch run: {diff[:3]} differ.",
                        "make epoch k independent of the total number of epochs (no schedule "
                        "over `epochs`, no samples drawn up front for all epochs), or override "
                        "truncated(epochs) to return an unlearner that replays them exactly, or "
                        "None when it cannot.")


# -- behaviour ---------------------------------------------------------------------------------
def behaviour_scores(u: Unlearner, seed: int = 0) -> dict[str, float]:
    """Forget and test accuracy of ``u``, ``noop`` and the retrain oracle on the tiny task."""
    task = tiny_task()
    res = _run(u, task, seed=seed)
    noop = _run(Noop(), task, seed=seed)
    return {
        "forget": accuracy(res.model, task.forget),
        "test": accuracy(res.model, task.test),
        "noop_forget": accuracy(noop.model, task.forget),
        "noop_test": accuracy(noop.model, task.test),
        "oracle_forget": accuracy(task.oracle, task.forget),
        "oracle_test": accuracy(task.oracle, task.test),
    }


def check_behaviour(u: Unlearner) -> None:
    """On the tiny memorised task, forget accuracy moves towards the retrain oracle.

    The bound: with ``gap(m) = |forget accuracy of m - forget accuracy of the
    oracle|``, the unlearner must satisfy ``gap(u) <= (1 - 0.25) * gap(noop)``
    (it closes at least :data:`BEHAVIOUR_MIN_PROGRESS` = 25 % of the gap
    left by doing nothing), and its test accuracy must be at most
    :data:`BEHAVIOUR_MAX_TEST_DROP` = 10 points below ``noop``'s. The task's
    forget set is 27 memorised mislabeled digits (``noop`` 96 %, the
    oracle 0 %), run with ``random_state=0``.

    ``noop`` itself is the reference and declares this check as an expected
    failure.
    """
    s = behaviour_scores(u)
    gap = abs(s["forget"] - s["oracle_forget"])
    gap0 = abs(s["noop_forget"] - s["oracle_forget"])
    limit = (1 - BEHAVIOUR_MIN_PROGRESS) * gap0
    if gap > limit + 1e-9:
        raise _fail(u, f"forget accuracy {s['forget']:.3f} is {gap:.3f} from the oracle's "
                    f"{s['oracle_forget']:.3f}; noop's is {gap0:.3f} away, so at most "
                    f"{limit:.3f} is allowed.",
                    "make the defaults (or _test_params) strong enough to forget memorised "
                    "items: more epochs or a larger lr. If the method is not meant to forget on "
                    "its own, declare it in _expected_failed_checks() with the reason.")
    drop = s["noop_test"] - s["test"]
    if drop > BEHAVIOUR_MAX_TEST_DROP + 1e-9:
        raise _fail(u, f"test accuracy fell to {s['test']:.3f} from noop's {s['noop_test']:.3f} "
                    f"(more than {BEHAVIOUR_MAX_TEST_DROP:.2f}).",
                    "keep the model useful: a smaller lr, fewer ascent steps, or more weight on "
                    "the retain loss.")


#: Every check, in the order they run.
CHECKS: tuple[Callable[[Unlearner], Any], ...] = tuple(
    _one_thread(c)
    for c in (
        check_tags,
        check_params_roundtrip,
        check_params_validated,
        check_output_model,
        check_inputs_not_mutated,
        check_same_seed_same_weights,
        check_no_hooks_left,
        check_empty_forget_rejected,
        check_runs_on_devices,
        check_epoch_hook,
        check_truncation_replays,
        check_behaviour,
    )
)
