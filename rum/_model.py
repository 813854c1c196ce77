"""The model side of the boundary: what rum checks of a model, how it calls one, and the
shared preparation of a call's inputs.

A model takes a batch of features, or named inputs (``model(**fields)``), and returns
logits, an object with ``.logits`` or a dict with ``"logits"``; for any other output the
caller names the logits with ``output=`` (a key, an index or a function). rum installs
that choice on its private copy of the model as a forward hook, so everything inside rum
sees a tensor of logits.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rum._data import Fields, TensorData, as_data, move
from rum._validation import check_random_state, resolve_device
from rum.exceptions import (
    EmptyDataError,
    IncompatibleDataError,
    InvalidDataError,
    InvalidParameterError,
    ModelOutputError,
    NotAModelError,
)

__all__ = [
    "check_model",
    "model_device",
    "model_dtype",
    "module_modes",
    "restore_modes",
    "eval_mode",
    "forward",
    "pick_logits",
    "select_output",
    "check_output",
    "check_fits_model",
    "fit_to_model",
    "check_overlap",
    "Prepared",
    "prepare_call",
]


def module_modes(model: torch.nn.Module) -> list[bool]:
    """The train/eval flag of every submodule of ``model``, in ``model.modules()`` order."""
    return [m.training for m in model.modules()]


def restore_modes(model: torch.nn.Module, modes: list[bool]) -> None:
    """Set every submodule's train/eval flag back to ``modes`` (from :func:`module_modes`)."""
    for m, training in zip(model.modules(), modes):
        m.training = training


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode inside the block; afterwards every submodule's own flag is back.

    ``model.train(was_training)`` would set every submodule to the top-level flag, and a
    BatchNorm the caller froze in eval mode inside a training model would come back training.

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
        >>> _ = net[1].eval()
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training, net[1].training
        (True, False)
    """
    modes = module_modes(model)
    model.eval()
    try:
        yield model
    finally:
        restore_modes(model, modes)




def is_logistic_regression(obj: Any) -> bool:
    """Whether ``obj`` is a scikit-learn ``LogisticRegression`` (without importing sklearn eagerly)."""
    mod = type(obj).__module__ or ""
    if not mod.startswith("sklearn"):
        return False
    from sklearn.linear_model import LogisticRegression

    return isinstance(obj, LogisticRegression)


def check_model(model: Any, name: str = "model") -> torch.nn.Module:
    """Raise :class:`NotAModelError` unless ``model`` is a ``torch.nn.Module`` with parameters."""
    if not isinstance(model, torch.nn.Module):
        hint = ""
        if is_logistic_regression(model):
            hint = (
                " A fitted scikit-learn LogisticRegression is unlearned exactly by "
                "rum.correct(model, rum.requests.delete(train_set, forget_positions), "
                "train_set=train_set), which returns a corrected copy."
            )
        elif hasattr(model, "predict") and hasattr(model, "fit"):
            hint = (
                " Other scikit-learn estimators are not accepted; wrap the classifier as a "
                "torch module, or use rum.correct for a fitted LogisticRegression."
            )
        raise NotAModelError(
            f"{name} must be a torch.nn.Module (a trained classifier), got "
            f"{type(model).__name__}.{hint}"
        )
    if not any(True for _ in model.parameters()):
        raise NotAModelError(f"{name} has no parameters; there is nothing to unlearn.")
    return model


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def forward(model: torch.nn.Module, x: Any) -> Any:
    """``model`` on a batch: named inputs (:class:`~rum.TensorData`'s ``Fields``) by name."""
    return model(**x.tensors) if isinstance(x, Fields) else model(x)


def pick_logits(out: Any, output: Any = None) -> torch.Tensor:
    """The logits in a model's output.

    With ``output=None``: the output itself when it is a tensor, ``out.logits``, or
    ``out["logits"]`` (a Hugging Face model's output is both); any other output (a tuple of
    features and logits, say) is a :class:`~rum.exceptions.ModelOutputError` that says how to
    name the logits. ``output`` may be an index or a key into the output, or a function of it.

    Examples:
        >>> t = torch.zeros(2, 3)
        >>> pick_logits(t) is t, pick_logits({"logits": t}) is t, pick_logits((None, t), 1) is t
        (True, True, True)
    """
    if output is None:
        if isinstance(out, torch.Tensor):
            return out
        if isinstance(out, Mapping) and "logits" in out:
            return out["logits"]
        if hasattr(out, "logits"):
            return out.logits
        if isinstance(out, (tuple, list)):
            raise ModelOutputError(
                f"the model returns a {type(out).__name__} of {len(out)}, and rum cannot tell "
                "which of them holds the logits. Name it: output=<its index> (output=1 for "
                "(features, logits)), or output=<a function of the model's output>."
            )
        raise ModelOutputError(
            f"the model returns a {type(out).__name__}, not logits. Name them with output=<a key, "
            "an index or a function of the model's output>."
        )
    try:
        if callable(output):
            picked = output(out)
        elif isinstance(output, str) and not isinstance(out, Mapping) and hasattr(out, output):
            picked = getattr(out, output)
        else:
            picked = out[output]
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ModelOutputError(
            f"output={output!r} does not select anything from the model's output, a "
            f"{type(out).__name__} ({type(err).__name__}: {err})."
        ) from None
    if not isinstance(picked, torch.Tensor):
        raise ModelOutputError(
            f"output={output!r} selects a {type(picked).__name__} from the model's output; it must "
            "select the tensor of logits."
        )
    return picked


def check_output(output: Any) -> None:
    """Refuse an ``output=`` that is not ``None``, an index, a key or a function, naming it."""
    if output is None or callable(output) or isinstance(output, str) or (
            isinstance(output, (int, np.integer)) and not isinstance(output, bool)):
        return
    raise InvalidParameterError(
        f"output must be None, an index (int), a key (str) or a function of the model's output; "
        f"got {type(output).__name__}."
    )


@contextlib.contextmanager
def select_output(model: torch.nn.Module, output: Any = None) -> Iterator[Callable]:
    """Inside the block ``model`` returns its logits (:func:`pick_logits`) whatever it returns.

    A forward hook on the top module does it; it is removed at the end. Yields the hook, so
    that a copy of the model made inside the block (which carries it) can be cleaned with
    :func:`strip_hook`.
    """
    def hook(module: torch.nn.Module, args: tuple, out: Any) -> torch.Tensor:
        return pick_logits(out, output)

    handle = model.register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()


def strip_hook(model: torch.nn.Module, hook: Callable) -> None:
    """Remove ``hook`` from every module of ``model`` (a copy made while it was installed)."""
    for m in model.modules():
        for key in [k for k, f in m._forward_hooks.items() if f is hook]:
            del m._forward_hooks[key]


def fit_to_model(model: torch.nn.Module, datasets: Mapping[str, TensorData],
                 output: Any = None) -> tuple[int, dict[str, TensorData]]:
    """Check that every dataset fits ``model``; return the number of classes and the datasets
    as the model takes them.

    A batch of each dataset's first items must go through the model (in eval mode; every
    submodule's mode is restored) and come out as ``(batch, n_classes)`` logits, and every
    label must be below ``n_classes``. Integer or boolean features are kept when the model
    takes them (an embedding layer) and cast to the model's float dtype when it needs floats.

    Examples:
        >>> net = torch.nn.Linear(3, 2)
        >>> n, sets = fit_to_model(net, {"forget_set": as_data((np.ones((4, 3), int), [0, 1, 0, 1]))})
        >>> n, sets["forget_set"].X.dtype
        (2, torch.float32)
    """
    check_output(output)
    n_classes: int | None = None
    device, dtype = model_device(model), model_dtype(model)
    fitted = dict(datasets)
    with eval_mode(model), select_output(model, output), torch.no_grad():
        for name, data in datasets.items():
            if len(data) == 0:
                continue
            try:
                out = forward(model, move(data.X[:2], device, dtype))
            except ModelOutputError:
                raise
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                if isinstance(data.X, Fields) or data.X.is_floating_point():
                    raise _misfit(name, data, err) from None
                try:  # integer features into a model that computes on floats
                    out = forward(model, data.X[:2].to(device=device, dtype=dtype))
                except (RuntimeError, ValueError, IndexError, TypeError):
                    raise _misfit(name, data, err) from None
                data = fitted[name] = TensorData(data.X.to(dtype), data.y)
            if not isinstance(out, torch.Tensor) or out.dim() != 2:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise IncompatibleDataError(
                    f"model: expected logits of shape (batch, n_classes) on {name}, got {shape}. "
                    "rum works with classifiers that return one logit per class."
                )
            c = int(out.shape[1])
            if n_classes is None:
                n_classes = c
            top = int(data.y.max())
            if top >= c:
                raise InvalidDataError(
                    f"{name}: found label {top}, but the model outputs only {c} classes "
                    f"(labels must be in 0..{c - 1})."
                )
    shapes = {name: d.feature_shape for name, d in fitted.items() if len(d)}
    if len(set(shapes.values())) > 1:
        raise IncompatibleDataError(
            "data sets have different feature shapes: "
            + ", ".join(f"{k}={v}" for k, v in shapes.items())
            + ". All sets must have the features the model was trained on (pad token "
            "sequences to one length)."
        )
    if n_classes is None:
        raise EmptyDataError("all data sets are empty; nothing to check the model against.")
    return n_classes, fitted


def _misfit(name: str, data: TensorData, err: BaseException) -> IncompatibleDataError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return IncompatibleDataError(
        f"{name}: items of shape {data.feature_shape} do not fit the model (forward pass failed: "
        f"{first}). Give the features the model was trained on."
    )


def check_fits_model(model: torch.nn.Module, datasets: Mapping[str, TensorData],
                     output: Any = None) -> int:
    """The number of classes of ``model``, after :func:`fit_to_model`'s checks."""
    return fit_to_model(model, datasets, output)[0]


def _row_keys(data: TensorData) -> list[bytes]:
    """One byte string per item: its features and its label (to find equal items)."""
    y = data.y.cpu().numpy().astype(np.int64)
    if isinstance(data.X, Fields):
        parts = [np.ascontiguousarray(v.detach().cpu().numpy().reshape(len(data), -1))
                 for _, v in sorted(data.X.items())]
    else:
        parts = [np.ascontiguousarray(data.X.detach().cpu().numpy().reshape(len(data), -1))]
    return [b"".join(p[i].tobytes() for p in parts) + y[i].tobytes() for i in range(len(data))]


def check_overlap(forget: TensorData, retain: TensorData | None, overlap: str) -> TensorData | None:
    """Find retain items equal to a forget item (same features and label).

    ``overlap="error"`` (the default of every call) raises
    :class:`~rum.exceptions.InvalidDataError` naming ``retain_set``: a model trained on
    such a retain set still sees the items to forget. ``"drop"`` removes them from the
    retain set with a :class:`~rum.exceptions.RumWarning`.

    Examples:
        >>> f = as_data((np.eye(2), [0, 1])); r = as_data((np.eye(3), [0, 0, 2]))
        >>> len(check_overlap(f, r, "drop"))  # doctest: +SKIP
        2
    """
    import warnings

    from rum.exceptions import RumWarning

    if overlap not in ("error", "drop"):
        raise InvalidParameterError(f"overlap must be 'error' or 'drop', got {overlap!r}.")
    if retain is None or len(retain) == 0:
        return retain
    forget_keys = set(_row_keys(forget))
    same = np.array([k in forget_keys for k in _row_keys(retain)])
    if not same.any():
        return retain
    n = int(same.sum())
    if overlap == "error":
        where = np.flatnonzero(same)[:5].tolist()
        raise InvalidDataError(
            f"retain_set holds {n} item(s) equal to forget items (same features and label; "
            f"retain positions {where}{'...' if n > 5 else ''}). A model trained on this retain set "
            "still sees what it must forget: pass the rest of the training data only, or "
            "overlap='drop' to remove them."
        )
    warnings.warn(f"overlap='drop': {n} retain item(s) equal to forget items were removed from "
                  "retain_set.", RumWarning, stacklevel=3)
    return retain.subset(np.flatnonzero(~same))


@dataclass
class Prepared:
    """A call's inputs after validation: a private copy of the model and converted data."""

    model: torch.nn.Module  # a private deep copy
    forget: TensorData
    retain: TensorData | None  # None when none was given, or it is empty
    device: torch.device
    seed: int
    n_classes: int
    hook: Any = None  # the handle of the output hook on ``model``

    def release(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` (the copy after unlearning, or a module that replaced it) without the hook."""
        if self.hook is not None:
            fn = self.model._forward_hooks.get(self.hook.id)
            self.hook.remove()
            if fn is not None:
                strip_hook(model, fn)
        return model


def prepare_call(model: Any, forget_set: Any, retain_set: Any, device: Any, random_state: Any, *,
                 output: Any = None, overlap: str = "error") -> Prepared:
    """Validate a call's model, data, device and seed, and copy the model; no work starts before this.

    Shared by every public function that unlearns (:func:`rum.unlearn`,
    :func:`rum.execute`, :func:`rum.plan` with a search policy). The copy returns its
    logits (``output=``, :func:`select_output`) until :meth:`Prepared.release`.
    """
    check_model(model)
    check_output(output)
    forget = as_data(forget_set, "forget_set")
    retain = None if retain_set is None else as_data(retain_set, "retain_set", allow_empty=True)
    dev = resolve_device(device)
    seed = check_random_state(random_state)
    if retain is not None and len(retain) == 0:
        retain = None
    retain = check_overlap(forget, retain, overlap)
    sets = {"forget_set": forget}
    if retain is not None:
        sets["retain_set"] = retain
    n_classes, sets = fit_to_model(model, sets, output)
    work = copy.deepcopy(model)
    hook = work.register_forward_hook(lambda module, args, out: pick_logits(out, output))
    return Prepared(work, sets["forget_set"], sets.get("retain_set"), dev, seed, n_classes, hook)
