"""The digits demo: a small MLP forgets mislabeled plus ordinary training items.

Used by ``rum demo`` and ``examples/quickstart.py``; everything is offline
(scikit-learn's bundled digits) and runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["DigitsScenario", "digits_scenario", "make_mlp", "run_demo"]


def make_mlp(n_features: int = 64, n_classes: int = 10, hidden: int = 128) -> nn.Module:
    """A two-hidden-layer ReLU MLP."""
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )


@dataclass
class DigitsScenario:
    """A trained model and its data splits (numpy arrays).

    ``forget`` mixes deliberately mislabeled training items (``mislabeled``
    marks them, in forget order) with ordinary ones; ``retain`` is the rest of
    the training set.
    """

    model: nn.Module
    forget: tuple[np.ndarray, np.ndarray]
    retain: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    mislabeled: np.ndarray
    train_seconds: float
    seed: int


#: The training recipe of the demo model, reused for the retrain oracle.
RECIPE = dict(epochs=60, lr=1e-3, batch_size=64, optimizer="adam")


def digits_scenario(
    seed: int = 0,
    *,
    noise: float = 0.05,
    forget_fraction: float = 0.10,
    device: str = "cpu",
) -> DigitsScenario:
    """Train the demo model on digits with ``noise`` of the labels flipped.

    The forget set holds every flipped item plus ordinary items, for a total
    of ``forget_fraction`` of the training set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    import rum

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_tr)
    X_tr = scaler.transform(X_tr).astype(np.float32)
    X_te = scaler.transform(X_te).astype(np.float32)
    rng = np.random.default_rng(seed)
    n = len(y_tr)
    n_noisy = int(round(noise * n))
    n_forget = int(round(forget_fraction * n))
    order = rng.permutation(n)
    noisy = order[:n_noisy]
    ordinary = order[n_noisy : n_noisy + max(0, n_forget - n_noisy)]
    y_tr = y_tr.copy()
    y_tr[noisy] = (y_tr[noisy] + rng.integers(1, 10, n_noisy)) % 10
    forget_idx = np.concatenate([noisy, ordinary])
    keep = np.ones(n, dtype=bool)
    keep[forget_idx] = False

    with torch.random.fork_rng():  # leave the caller's global RNG alone
        torch.manual_seed(seed)
        model = make_mlp()
    t0 = time.perf_counter()
    rum.fit(model, (X_tr, y_tr), device=device, random_state=seed, **RECIPE)
    train_seconds = time.perf_counter() - t0
    return DigitsScenario(
        model=model.cpu(),
        forget=(X_tr[forget_idx], y_tr[forget_idx]),
        retain=(X_tr[keep], y_tr[keep]),
        test=(X_te, y_te),
        mislabeled=np.concatenate([np.ones(len(noisy), bool), np.zeros(len(ordinary), bool)]),
        train_seconds=train_seconds,
        seed=seed,
    )


def run_demo(seed: int = 0, *, device: str = "auto", progress: bool | None = None) -> str:
    """Run the demo and return the printed report."""
    import rum

    t0 = time.perf_counter()
    sc = digits_scenario(seed)
    lines = [
        f"rum {rum.__version__} demo: MLP on scikit-learn digits, seed {seed}",
        f"train {len(sc.forget[1]) + len(sc.retain[1])} items "
        f"(forget {len(sc.forget[1])}: {int(sc.mislabeled.sum())} mislabeled + "
        f"{int((~sc.mislabeled).sum())} ordinary), test {len(sc.test[1])}; "
        f"original model trained in {sc.train_seconds:.1f}s",
        "",
    ]
    common = dict(device=device, random_state=seed, progress=progress)
    oracle = rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="retrain", **RECIPE, **common)
    runs = {
        "original (no unlearning)": rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="noop", **common),
        "rum (default pipeline)": rum.unlearn(sc.model, sc.forget, sc.retain, **common),
        "rum auto (searched plan)": rum.unlearn(sc.model, sc.forget, sc.retain, policy="auto",
                                                **common),
        "finetune": rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="finetune", **common),
        "neggrad+": rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="neggrad+", **common),
    }
    reports = []
    for name, res in runs.items():
        rep = rum.evaluate(
            res.model,
            forget_set=sc.forget,
            retain_set=sc.retain,
            test_set=sc.test,
            reference=oracle.model,
            name=name,
        )
        reports.append(rep)
    retrain_s = oracle.timings["total"]
    table = rum.EvaluationReport.table(reports, title="Evaluation against the retrained model")
    lines.append(table)
    lines.append("")
    lines.append(f"seconds (and speed-up over retraining, which took {retrain_s:.2f}s):")
    for name, res in runs.items():
        s = res.timings["total"]
        lines.append(f"  {name:<26} {s:6.2f}s  ({retrain_s / max(s, 1e-9):5.1f}x)")
    lines.append(f"total demo time {time.perf_counter() - t0:.1f}s")
    return "\n".join(lines)
