"""The Feldman-Zhang subsampling estimator of label memorization.

Train ``n_runs`` models, each on a random ``subset_fraction`` of the training
set, and score every item

    mem_i = P[model right on i | i in its training subset]
          - P[model right on i | i not in it],

estimated by averaging over the runs that did and did not include ``i``
(Feldman & Zhang, 2020). The score lies in [-1, 1]; it is high for atypical or
mislabeled items.

Runs are independent and reproducible: run ``r`` always trains on the same
subset with the same seed, whatever the backend or order. They execute in
this process (``n_jobs=1``), in local processes (``n_jobs > 1``), or on a Ray
cluster (``backend="ray"``, the ``distributed`` extra). With ``checkpoint=``
every finished run is saved to a ``.npz`` file, and a later call with the same
file resumes where an interrupted one stopped.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rum._records import jsonable, load_json, save_json, table
from rum._runtime.distributed import started_ray
from rum._validation import Interval, Options, check_random_state, validate_params
from rum.exceptions import InvalidParameterError

__all__ = [
    "feldman_zhang",
    "FZResult",
    "fz_estimate",
    "subset_mask",
    "run_seed",
    "SklearnTrainer",
    "TorchTrainer",
]

TrainFn = Callable[[np.ndarray, np.ndarray, int], Any]


def run_seed(seed: int, run: int) -> int:
    """The seed handed to ``train_fn`` for run ``run``."""
    return int(np.random.SeedSequence([seed, run]).generate_state(1, np.uint32)[0])


def subset_mask(n: int, fraction: float, seed: int, run: int) -> np.ndarray:
    """The boolean training-subset mask of run ``run`` (``round(fraction * n)`` items).

    Examples:
        >>> m = subset_mask(10, 0.7, seed=0, run=3)
        >>> int(m.sum()), bool((m == subset_mask(10, 0.7, 0, 3)).all())
        (7, True)
    """
    m = min(n, max(1, int(round(fraction * n))))
    rng = np.random.default_rng(np.random.SeedSequence([seed, run, 1]))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=m, replace=False)] = True
    return mask


def fz_estimate(masks: Any, correct: Any) -> tuple[np.ndarray, ...]:
    """The estimator from per-run inclusion masks and correctness, both ``(runs, n)``.

    Returns ``(mem, p_in, p_out, n_in, n_out)``; ``mem`` is NaN for items that
    were never in, or never out of, a training subset.

    Examples:
        >>> masks = np.array([[1, 0], [0, 1], [1, 1]], bool)
        >>> correct = np.array([[1, 0], [0, 1], [1, 1]], bool)
        >>> fz_estimate(masks, correct)[0].tolist()
        [1.0, 1.0]
    """
    m = np.asarray(masks, dtype=bool)
    c = np.asarray(correct, dtype=np.float64)
    n_in = m.sum(0)
    n_out = (~m).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = (c * m).sum(0) / n_in
        p_out = (c * ~m).sum(0) / n_out
    p_in = np.where(n_in > 0, p_in, np.nan)
    p_out = np.where(n_out > 0, p_out, np.nan)
    return p_in - p_out, p_in, p_out, n_in, n_out


@dataclass(frozen=True)
class FZResult:
    """Feldman-Zhang memorization estimates for every training item.

    Attributes:
        memorization: ``p_in - p_out`` per item (NaN if never in or never out).
        p_in, p_out: accuracy on the item over runs that did / did not train on it.
        n_in, n_out: how many runs did / did not train on it.
        n_runs, subset_fraction, seed: the settings.
    """

    memorization: np.ndarray
    p_in: np.ndarray
    p_out: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    n_runs: int
    subset_fraction: float
    seed: int

    def __len__(self) -> int:
        return len(self.memorization)

    def __str__(self) -> str:
        m = self.memorization[~np.isnan(self.memorization)]
        rows = [
            ("items", len(self)),
            ("runs", self.n_runs),
            ("subset fraction", self.subset_fraction),
            ("mean memorization", float(m.mean()) if len(m) else float("nan")),
            ("items with mem > 0.5", int((m > 0.5).sum())),
            ("min runs without an item", int(self.n_out.min()) if len(self) else 0),
        ]
        return table(["", "value"], rows, "Feldman-Zhang memorization estimate")

    def to_dict(self) -> dict:
        return {k: jsonable(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> FZResult:
        f = lambda k: np.array([np.nan if v is None else v for v in d[k]], dtype=float)  # noqa: E731
        return cls(
            f("memorization"), f("p_in"), f("p_out"),
            np.asarray(d["n_in"], dtype=np.int64), np.asarray(d["n_out"], dtype=np.int64),
            int(d["n_runs"]), float(d["subset_fraction"]), int(d["seed"]),
        )

    def save(self, path: str | Path) -> Path:
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> FZResult:
        return cls.from_dict(load_json(path))


# -- trainers users can pass (picklable, so they work in worker processes) ----------------------
class SklearnTrainer:
    """``train_fn`` for a scikit-learn classifier: clone, set ``random_state``, fit.

    Examples:
        >>> from sklearn.linear_model import LogisticRegression
        >>> fn = SklearnTrainer(LogisticRegression())
        >>> fn(np.array([[0.0], [1.0]]), np.array([0, 1]), 0).predict([[0.9]]).tolist()
        [1]
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def __call__(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        from sklearn.base import clone

        est = clone(self.estimator)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        return est.fit(X, y)


class TorchTrainer:
    """``train_fn`` for a torch model: build it with ``make_model()``, train with :func:`rum.fit`.

    ``make_model`` must be a picklable (module-level) function for
    ``n_jobs > 1``; ``fit_kwargs`` go to :func:`rum.fit`.
    """

    def __init__(self, make_model: Callable[[], Any], **fit_kwargs: Any):
        self.make_model = make_model
        self.fit_kwargs = fit_kwargs

    def __call__(self, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        import torch

        from rum._runtime.training import fit

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = self.make_model()
        kw = dict(device="cpu")
        kw.update(self.fit_kwargs)
        return fit(model, (X, y), random_state=seed, **kw)


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    import torch

    if isinstance(model, torch.nn.Module):
        from rum._runtime.predict import predict_logits

        return predict_logits(model, torch.from_numpy(X)).argmax(1).numpy()
    if hasattr(model, "predict"):
        return np.asarray(model.predict(X)).reshape(-1)
    raise InvalidParameterError(
        "train_fn must return a torch.nn.Module or an object with .predict(X); got "
        f"{type(model).__name__}."
    )


def _one_run(train_fn: TrainFn, X: np.ndarray, y: np.ndarray, fraction: float, seed: int, run: int) -> np.ndarray:
    mask = subset_mask(len(y), fraction, seed, run)
    model = train_fn(X[mask].copy(), y[mask].copy(), run_seed(seed, run))
    pred = _predict(model, X)
    if pred.shape != y.shape:
        raise InvalidParameterError(
            f"the model from train_fn predicted {pred.shape} labels for {len(y)} items."
        )
    return pred == y


_WORKER: dict = {}


def _init_worker(X: np.ndarray, y: np.ndarray, threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    _WORKER["X"], _WORKER["y"] = X, y


def _worker_run(train_fn: TrainFn, fraction: float, seed: int, run: int) -> tuple[int, np.ndarray]:
    return run, _one_run(train_fn, _WORKER["X"], _WORKER["y"], fraction, seed, run)


class _Checkpoint:
    """Per-run correctness saved to an ``.npz`` file after every run (atomic replace)."""

    def __init__(self, path: Path | None, n: int, fraction: float, seed: int):
        self.path, self.n, self.fraction, self.seed = path, n, fraction, seed
        self.done: dict[int, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path) as z:
                meta = (int(z["n"]), float(z["subset_fraction"]), int(z["seed"]))
                if meta != (n, fraction, seed):
                    raise InvalidParameterError(
                        f"checkpoint {str(path)!r} was written for n={meta[0]}, "
                        f"subset_fraction={meta[1]}, seed={meta[2]}, but this call has "
                        f"n={n}, subset_fraction={fraction}, seed={seed}. Use another file "
                        "or the same settings."
                    )
                bits = np.unpackbits(z["correct"], axis=1, count=n).astype(bool)
                self.done = {int(r): bits[i] for i, r in enumerate(z["runs"])}

    def add(self, run: int, correct: np.ndarray) -> None:
        self.done[run] = correct
        if self.path is None:
            return
        runs = np.array(sorted(self.done), dtype=np.int64)
        packed = np.packbits(np.stack([self.done[r] for r in runs]), axis=1)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, runs=runs, correct=packed, n=self.n, subset_fraction=self.fraction, seed=self.seed)
        os.replace(tmp, self.path)


def feldman_zhang(
    train_fn: TrainFn,
    train_set: Any,
    *,
    n_runs: int = 100,
    subset_fraction: float = 0.7,
    backend: str = "local",
    n_jobs: int = 1,
    checkpoint: str | Path | None = None,
    random_state: Any = 0,
    progress: bool = False,
) -> FZResult:
    """Estimate Feldman-Zhang label memorization of every training item.

    Args:
        train_fn: ``train_fn(X, y, seed) -> model``: train a fresh model on the
            numpy arrays ``X, y`` (a training subset) with ``seed``; return a
            ``torch.nn.Module`` (logits) or any object with ``.predict(X)``.
            :class:`SklearnTrainer` and :class:`TorchTrainer` build one. For
            ``n_jobs > 1`` or Ray it must be picklable (a module-level function
            or one of those classes).
        train_set: the full training set, in any form rum accepts.
        n_runs: models to train. The standard error of ``mem`` is about
            ``sqrt(1 / (n_runs * f * (1 - f)))`` times the score spread; a few
            hundred runs give stable rankings.
        subset_fraction: fraction ``f`` of the training set each model sees.
        backend: ``"local"`` (this process for ``n_jobs=1``, else a process
            pool) or ``"ray"`` (remote tasks on the running or a new local Ray
            cluster; ``pip install 'rum-unlearn[distributed]'``).
        n_jobs: local worker processes (``-1``: one per CPU core).
        checkpoint: a ``.npz`` path; finished runs are saved there and reused
            by later calls with the same settings (resume after interruption).
        random_state: seed for the subsets and the per-run seeds.
        progress: print one line per finished run.

    Returns:
        FZResult: per-item memorization, in training-set order.

    Examples:
        >>> from sklearn.neighbors import KNeighborsClassifier
        >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [0.15]])
        >>> y = np.array([0, 0, 0, 1, 1, 1])   # the last item is mislabeled
        >>> res = feldman_zhang(SklearnTrainer(KNeighborsClassifier(1)), (X, y), n_runs=40)
        >>> float(res.memorization[5])   # always right when trained on, never otherwise
        1.0
    """
    from rum._data import as_data

    validate_params(
        dict(n_runs=n_runs, subset_fraction=subset_fraction, backend=backend, n_jobs=n_jobs),
        {
            "n_runs": [Interval(int, 1, None)],
            "subset_fraction": [Interval(float, 0, 1, closed="neither")],
            "backend": [Options(("local", "ray"))],
            "n_jobs": [Interval(int, 1, None), Options((-1,))],
        },
        "feldman_zhang",
    )
    if not callable(train_fn):
        raise InvalidParameterError(
            f"train_fn must be a callable train_fn(X, y, seed) -> model; got {type(train_fn).__name__}."
        )
    data = as_data(train_set, "train_set")
    X, y = data.numpy()
    seed = check_random_state(random_state)
    n = len(y)
    fraction = float(subset_fraction)
    ckpt = _Checkpoint(None if checkpoint is None else Path(checkpoint), n, fraction, seed)
    todo = [r for r in range(n_runs) if r not in ckpt.done]

    def finished(run: int, correct: np.ndarray) -> None:
        ckpt.add(run, np.asarray(correct, dtype=bool))
        if progress:
            print(f"feldman_zhang: run {run} done ({len(ckpt.done)}/{n_runs})", flush=True)

    if backend == "ray":
        _run_ray(train_fn, X, y, fraction, seed, todo, finished)
    elif n_jobs == 1 or len(todo) <= 1:
        for r in todo:
            finished(r, _one_run(train_fn, X, y, fraction, seed, r))
    else:
        _run_processes(train_fn, X, y, fraction, seed, todo, finished, n_jobs)

    runs = list(range(n_runs))
    masks = np.stack([subset_mask(n, fraction, seed, r) for r in runs])
    correct = np.stack([ckpt.done[r] for r in runs])
    mem, p_in, p_out, n_in, n_out = fz_estimate(masks, correct)
    return FZResult(mem, p_in, p_out, n_in, n_out, n_runs, fraction, seed)


def _run_processes(train_fn, X, y, fraction, seed, todo, finished, n_jobs) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    workers = max(1, min(workers, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: forking a process that has started torch's thread pools can deadlock
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(X, y, threads)) as ex:
        futures = [ex.submit(_worker_run, train_fn, fraction, seed, r) for r in todo]
        try:
            for fut in as_completed(futures):
                run, correct = fut.result()
                finished(run, correct)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_ray(train_fn, X, y, fraction, seed, todo, finished) -> None:
    ray = started_ray()
    x_ref, y_ref = ray.put(X), ray.put(y)
    remote = ray.remote(_ray_task)
    pending = {remote.remote(copy.copy(train_fn), x_ref, y_ref, fraction, seed, r): r for r in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                run = pending.pop(ref)
                finished(run, ray.get(ref))
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


def _ray_task(train_fn, X, y, fraction, seed, run):  # pragma: no cover - needs ray
    return _one_run(train_fn, X, y, fraction, seed, run)
