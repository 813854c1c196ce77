"""The audit's shadow models: which items each one trains on, how it is run, and the checkpoint.

Shadow ``k`` is an "in" shadow when ``k`` is even and an "out" shadow when it
is odd. An in shadow trains on retain + forget + one half of the held-out
negatives (and, in U-LiRA, is then unlearned on its forget + negative items);
an out shadow trains on the retain set alone: it is a retrained model. The
negatives' halves come in complementary pairs, so every negative is in about
a quarter of the shadows and every forget item in exactly half of them.

Each shadow is independent and reproducible: its seed and its items depend
only on the audit's seed and ``k``, so shadows can run in any order, in this
process or as Ray tasks, and a checkpoint file lets an interrupted audit
resume. Per shadow only the statistics of the scored items are kept.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from rum._data import TensorData
from rum._model import check_model
from rum._runtime.distributed import started_ray
from rum._runtime.predict import predict_logits
from rum.exceptions import InvalidParameterError
from rum.metrics.membership import logit_confidence

__all__ = ["Source", "as_source", "combine", "ShadowSpec", "ShadowOutput", "ShadowStore",
           "run_shadows", "shadow_seed", "negatives_in", "is_in_shadow"]


# -- the items a shadow sees, in the user's own form -------------------------------------------
@dataclass(frozen=True, eq=False)
class Source:
    """One of the user's data sets, kept in the form it came in.

    ``kind`` is ``"numpy"`` or ``"torch"`` for an ``(X, y)`` pair and
    ``"dataset"`` for a torch ``Dataset``; other forms (loaders, bunches,
    lists) are held as the tensors rum converted them to (``"torch"``).
    """

    kind: str
    obj: Any
    data: TensorData

    def __len__(self) -> int:
        return len(self.data)


def as_source(obj: Any, data: TensorData) -> Source:
    """Wrap a user data set (``data`` is its converted copy, used for other forms)."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        X, y = obj
        if isinstance(X, np.ndarray) and isinstance(y, np.ndarray):
            return Source("numpy", (X, y), data)
        if isinstance(X, (np.ndarray, torch.Tensor)) and isinstance(y, (np.ndarray, torch.Tensor)):
            return Source("torch", (torch.as_tensor(X), torch.as_tensor(y)), data)
    if isinstance(obj, Dataset) and not isinstance(obj, DataLoader):
        return Source("dataset", obj, data)
    return Source("torch", (data.X, data.y), data)


def _rows(source: Source, idx: np.ndarray | None) -> tuple[Any, Any]:
    X, y = source.obj
    if source.kind == "numpy":
        return (X.copy(), y.copy()) if idx is None else (X[idx], y[idx])
    if idx is None:
        return X.clone(), y.clone()
    t = torch.as_tensor(idx, dtype=torch.long)
    return X[t.to(X.device)], y[t.to(y.device)]


def combine(parts: list[tuple[Source, np.ndarray | None]]) -> Any:
    """The items ``parts`` select (``None``: all of a source), in the form the user passed them.

    ``(X, y)`` numpy pairs give a numpy pair and tensor pairs a tensor pair
    (copies: nothing written into them reaches the caller's arrays). Datasets
    give a ``Subset`` of the user's dataset when every part is a ``Subset`` of
    the same one (or there is one part), else a ``ConcatDataset`` of subsets.
    Mixed forms give an ``(X, y)`` pair of tensors.

    Examples:
        >>> d = TensorData(torch.zeros(3, 1), torch.tensor([0, 1, 0]))
        >>> a = as_source((np.arange(3.0).reshape(3, 1), np.array([0, 1, 0])), d)
        >>> X, y = combine([(a, None), (a, np.array([2]))])
        >>> X.ravel().tolist(), y.tolist()
        ([0.0, 1.0, 2.0, 2.0], [0, 1, 0, 0])
    """
    kinds = {s.kind for s, _ in parts}
    if kinds == {"numpy"} or kinds <= {"numpy", "torch"}:
        rows = [_rows(s, i) for s, i in parts]
        if kinds == {"numpy"}:
            return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
        Xs = [torch.as_tensor(r[0]) for r in rows]
        ys = [torch.as_tensor(r[1]) for r in rows]
        return torch.cat([x.to(Xs[0].device) for x in Xs]), torch.cat([v.to(ys[0].device) for v in ys])
    if kinds == {"dataset"}:
        subs = [(s.obj, np.arange(len(s)) if i is None else np.asarray(i)) for s, i in parts]
        bases = {id(ds.dataset) if isinstance(ds, Subset) else None for ds, _ in subs}
        if len(bases) == 1 and None not in bases:  # subsets of one dataset: one subset of it
            idx = np.concatenate([np.asarray(ds.indices)[i] for ds, i in subs])
            return Subset(subs[0][0].dataset, idx.tolist())
        if len(subs) == 1:
            return Subset(subs[0][0], subs[0][1].tolist())
        return ConcatDataset([Subset(ds, i.tolist()) for ds, i in subs])
    # mixed: everything as tensors
    Xs, ys = [], []
    for s, i in parts:
        d = s.data if i is None else s.data.subset(i)
        Xs.append(d.X)
        ys.append(d.y)
    return torch.cat(Xs), torch.cat(ys)


# -- which shadow sees what ---------------------------------------------------------------------
def shadow_seed(seed: int, k: int) -> int:
    """The seed shadow ``k`` trains (and unlearns) under."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint32)[0])


def is_in_shadow(k: int) -> bool:
    """Whether shadow ``k`` trains on the forget set (even ``k``) or is a retrained model (odd)."""
    return k % 2 == 0


def negatives_in(n_negatives: int, seed: int, k: int) -> np.ndarray:
    """Which negatives shadow ``k`` trains on (none for an out shadow).

    In shadows ``4p`` and ``4p + 2`` take complementary halves of the
    negatives, drawn from the seed and ``p`` alone.

    Examples:
        >>> a, b = negatives_in(6, 0, 0), negatives_in(6, 0, 2)
        >>> int(a.sum()), bool((a ^ b).all()), int(negatives_in(6, 0, 1).sum())
        (3, True, 0)
    """
    mask = np.zeros(n_negatives, dtype=bool)
    if not is_in_shadow(k):
        return mask
    m = k // 2
    rng = np.random.default_rng(np.random.SeedSequence([seed, m // 2, 7]))
    mask[rng.permutation(n_negatives)[: n_negatives // 2]] = True
    return ~mask if m % 2 else mask


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch, numpy and Python's global RNGs inside the block; restore all three after it."""
    np_state, py_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


@dataclass(frozen=True)
class ShadowOutput:
    """What one shadow leaves: its statistic and correctness on the scored items, and its cost."""

    k: int
    phi: np.ndarray  # logit-scaled confidence after training
    correct: np.ndarray  # right on each scored item after training
    phi_unlearned: np.ndarray | None  # after unlearning (in shadows of a U-LiRA audit)
    train_seconds: float
    unlearn_seconds: float


@dataclass(eq=False)
class ShadowSpec:
    """Everything a shadow needs; picklable when ``train_fn`` and ``unlearn`` are."""

    train_fn: Callable[[Any], Any]
    unlearn: Callable[[Any, Any, Any, int], Any] | None
    retain: Source
    forget: Source
    test: Source
    negatives: np.ndarray  # positions in the test set
    scored: TensorData  # forget items then negatives
    seed: int
    threads: int | None = None
    meta: dict = field(default_factory=dict)

    def train_set(self, k: int) -> Any:
        if not is_in_shadow(k):
            return combine([(self.retain, None)])
        neg = self.negatives[negatives_in(len(self.negatives), self.seed, k)]
        return combine([(self.retain, None), (self.forget, None), (self.test, neg)])

    def unlearn_sets(self, k: int) -> tuple[Any, Any]:
        neg = self.negatives[negatives_in(len(self.negatives), self.seed, k)]
        return combine([(self.forget, None), (self.test, neg)]), combine([(self.retain, None)])


def _model_of(obj: Any, what: str) -> torch.nn.Module:
    if not isinstance(obj, torch.nn.Module) and isinstance(getattr(obj, "model", None), torch.nn.Module):
        obj = obj.model  # an UnlearnResult
    if not isinstance(obj, torch.nn.Module):
        raise InvalidParameterError(
            f"{what} must return the trained classifier (a torch.nn.Module), got "
            f"{type(obj).__name__}."
        )
    return check_model(obj, f"the model {what} returned")


def _statistics(model: torch.nn.Module, scored: TensorData) -> tuple[np.ndarray, np.ndarray]:
    logits = predict_logits(model, scored.X)
    if logits.dim() != 2 or logits.shape[0] != len(scored):
        raise InvalidParameterError(
            f"a shadow model returned logits of shape {tuple(logits.shape)} for {len(scored)} "
            "items; train_fn must return a classifier like the audited model."
        )
    return logit_confidence(logits, scored.y), (logits.argmax(1) == scored.y).numpy()


def run_shadow(spec: ShadowSpec, k: int) -> ShadowOutput:
    """Train (and, for an in shadow of a U-LiRA audit, unlearn) shadow ``k``; keep its statistics."""
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    seed = shadow_seed(spec.seed, k)
    t0 = time.perf_counter()
    with isolated_rng(seed):
        model = _model_of(spec.train_fn(spec.train_set(k)), "train_fn")
    t1 = time.perf_counter()
    phi, correct = _statistics(model, spec.scored)
    phi_u, unlearn_seconds = None, 0.0
    if spec.unlearn is not None:
        phi_u = phi  # a retrained (out) shadow has nothing to unlearn
        if is_in_shadow(k):
            forget, retain = spec.unlearn_sets(k)
            t2 = time.perf_counter()
            with isolated_rng(seed + 1):
                unlearned = _model_of(spec.unlearn(model, forget, retain, seed), "unlearn")
            phi_u = _statistics(unlearned, spec.scored)[0]
            unlearn_seconds = time.perf_counter() - t2
    return ShadowOutput(k, phi, correct, phi_u, t1 - t0, unlearn_seconds)


# -- checkpoint ---------------------------------------------------------------------------------
def fingerprint(*datasets: TensorData, extra: Mapping[str, Any]) -> str:
    """A hash of the data a set of shadows depends on, and of the settings in ``extra``."""
    h = hashlib.sha256(json.dumps(dict(extra), sort_keys=True, default=str).encode())
    for d in datasets:
        for t in (d.X, d.y):
            a = t.detach().cpu().contiguous().numpy()
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


class ShadowStore:
    """Finished shadows, saved to an ``.npz`` file after each one (atomic replace) when a path is given."""

    def __init__(self, path: str | Path | None, meta: Mapping[str, Any]):
        self.path = None if path is None else Path(path)
        self.meta = dict(meta)
        self.done: dict[int, ShadowOutput] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            z = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InvalidParameterError(
                f"checkpoint {str(self.path)!r} is not an audit checkpoint ({err}). Use another "
                "file or delete it."
            ) from None
        with z:
            meta = json.loads(str(z["meta"])) if "meta" in z else {}
            if meta != self.meta:
                diff = sorted(k for k in set(meta) | set(self.meta) if meta.get(k) != self.meta.get(k))
                raise InvalidParameterError(
                    f"checkpoint {str(self.path)!r} holds shadows of another audit (they differ in "
                    f"{', '.join(diff)}). Shadows depend on the retain, forget and test sets, the "
                    "seed and unlearn; use another file for this audit, or the same settings."
                )
            n = int(self.meta["n_scored"])
            unl = z["phi_unlearned"] if "phi_unlearned" in z else None
            correct = np.unpackbits(z["correct"], axis=1, count=n).astype(bool)
            for i, k in enumerate(z["ids"].tolist()):
                self.done[int(k)] = ShadowOutput(
                    int(k), z["phi"][i], correct[i], None if unl is None else unl[i],
                    float(z["train_seconds"][i]), float(z["unlearn_seconds"][i]),
                )

    def add(self, out: ShadowOutput) -> None:
        self.done[out.k] = out
        if self.path is None:
            return
        ids = sorted(self.done)
        outs = [self.done[k] for k in ids]
        arrays = dict(
            ids=np.array(ids, dtype=np.int64),
            phi=np.stack([o.phi for o in outs]),
            correct=np.packbits(np.stack([o.correct for o in outs]), axis=1),
            train_seconds=np.array([o.train_seconds for o in outs]),
            unlearn_seconds=np.array([o.unlearn_seconds for o in outs]),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )
        if outs[0].phi_unlearned is not None:
            arrays["phi_unlearned"] = np.stack([o.phi_unlearned for o in outs])
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, self.path)


# -- running them -------------------------------------------------------------------------------
def run_shadows(spec: ShadowSpec, n_shadows: int, store: ShadowStore, *, backend: str = "local",
                progress: bool = False) -> float:
    """Run every shadow not in ``store`` yet; return the wall-clock seconds spent."""
    todo = [k for k in range(n_shadows) if k not in store.done]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_shadows, initial=n_shadows - len(todo), desc="audit: shadow models",
                   unit="shadow", leave=True)

    def finished(out: ShadowOutput) -> None:
        store.add(out)
        if bar is not None:
            bar.update(1)

    try:
        if backend == "ray" and todo:
            _run_ray(spec, todo, finished)
        else:
            for k in todo:
                finished(run_shadow(spec, k))
    finally:
        if bar is not None:
            bar.close()
    return time.perf_counter() - t0


def _run_ray(spec: ShadowSpec, todo: list[int], finished: Callable[[ShadowOutput], None]) -> None:
    ray = started_ray()
    worker = copy.copy(spec)
    if worker.threads is None:
        worker.threads = 1  # one core per task; Ray runs as many tasks as the cluster has cores
    spec_ref = ray.put(worker)
    remote = ray.remote(_ray_shadow)
    pending = {remote.remote(spec_ref, k): k for k in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                finished(ray.get(ref))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


def _ray_shadow(spec: ShadowSpec, k: int) -> ShadowOutput:  # pragma: no cover - runs in a Ray worker
    return run_shadow(spec, k)
