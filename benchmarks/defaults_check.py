"""Do unlearners do real work with their defaults? Six models x three forget scenarios.

    python -m benchmarks.defaults_check                       # ssd, bad-teacher, boundary-shrink, unsir
    python -m benchmarks.defaults_check --methods all --seeds 0,1
    python -m benchmarks.defaults_check --models bn-cnn --scenarios class-wise --methods ssd
    python -m benchmarks.defaults_check --models all --methods all --grid --section defaults-matrix

Models, each trained on data with 5 % of the training labels flipped:

- ``demo-mlp``: the demo's MLP on scikit-learn digits, trained with Adam
  (``rum.demo.digits_scenario``);
- ``mnist1d-cnn``: the RUM suite's 1-D CNN on mnist1d (4,000 samples), trained
  with Adam (``benchmarks.tasks``);
- ``bn-cnn``: a small 2-D CNN with batch normalisation on digits as 1x8x8
  images, trained with SGD (momentum 0.9, weight decay 5e-4);

and with ``--models all`` (the step-size issue's matrix) also ``dropout-mlp`` (an MLP
with dropout on digits, SGD with momentum and weight decay), ``mnist1d-cnn-adamw`` (the
1-D CNN trained with AdamW) and ``transformer`` (a small transformer encoder on
synthetic token sequences, AdamW). ``--grid`` also runs every unlearner that has a
learning rate with ``lr`` = its reference rate times each factor of ``GRID`` (the
tuned ceiling the defaults are compared with).

Forget scenarios: ``mixed`` (every flipped item plus as many ordinary ones, 10 %
of the training set; the demo's own forget set on ``demo-mlp``), ``random``
(10 % drawn at random) and ``class-wise`` (every training item labelled with
one class, the seed's class). Each unlearner runs with its defaults through
``rum.unlearn`` (retain guard on) and is compared with the model retrained
on the retain set with the original recipe.

"Real work", as in the step-size issue: the unlearner closes at least 25 % of
the gap in forget accuracy between the original and the retrained model
(``|forget - retrain| <= 0.75 |original - retrain|``), loses at most 10 points
of test accuracy, and is not rolled back by the retain guard. The test drop is
measured from the lower of the original's and the retrained model's test
accuracy: a model retrained without a class loses that class's share of the
test set (about 10 points on these tasks), and so may an unlearner.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import rum
from benchmarks.tasks import BN_RECIPE, bn_cnn, digit_images  # noqa: F401  (the suite's BatchNorm task)

CACHE = Path(__file__).resolve().parent / ".cache" / "defaults_check"
#: Where a run with ``--section`` saves its rows (committed beside the tables).
RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("demo-mlp", "mnist1d-cnn", "bn-cnn")
#: Models of the step-size issue's matrix besides MODELS: an MLP with dropout trained with
#: SGD (momentum, weight decay), the 1-D CNN trained with AdamW, and a small transformer
#: classifier trained with AdamW on synthetic token sequences.
MORE_MODELS = ("dropout-mlp", "mnist1d-cnn-adamw", "transformer")
#: How each model was trained (the matrix's optimiser column).
TRAINED_WITH = {"demo-mlp": "Adam", "mnist1d-cnn": "Adam", "bn-cnn": "SGD+momentum+wd",
                "dropout-mlp": "SGD+momentum+wd", "mnist1d-cnn-adamw": "AdamW",
                "transformer": "AdamW"}
#: The tuned ceiling's grid: the unlearner's reference learning rate times these factors.
GRID = (10.0, 1.0, 0.1, 0.01)
SCENARIOS = ("mixed", "random", "class-wise")
NEW = ("ssd", "bad-teacher", "boundary-shrink", "unsir")
#: Closing at least this fraction of the forget-accuracy gap counts as real work.
MIN_PROGRESS = 0.25
#: ... with test accuracy at most this much below the original's.
MAX_TEST_DROP = 0.10
DROPOUT_RECIPE = dict(epochs=60, lr=0.05, batch_size=64, optimizer="sgd", momentum=0.9,
                      weight_decay=5e-4)
#: AdamW is not one of rum.fit's optimisers: these recipes run the benchmark's own loop.
ADAMW_CNN_RECIPE = dict(epochs=40, lr=1e-3, batch_size=64, optimizer="adamw", weight_decay=0.05)
TRANSFORMER_RECIPE = dict(epochs=60, lr=2e-3, batch_size=64, optimizer="adamw", weight_decay=0.01)
#: Token sequences of the transformer task: length, vocabulary (2 marker tokens per class,
#: then neutral tokens), items.
SEQ_LEN, VOCAB, N_TOKENS_ITEMS = 16, 40, 2500


def dropout_mlp() -> nn.Module:
    """An MLP with dropout for the 64 digits features."""
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


class TinyTransformer(nn.Module):
    """A two-layer transformer encoder over token ids, mean-pooled, then a linear head."""

    def __init__(self, vocab: int = VOCAB, d: int = 32, length: int = SEQ_LEN, n_classes: int = 10):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(length, d)
        layer = nn.TransformerEncoderLayer(d, 4, dim_feedforward=64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, n_classes)

    def forward(self, x):
        h = self.emb(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        return self.head(self.encoder(h).mean(1))


def token_task(seed: int):
    """Synthetic token sequences: the class is the one whose two marker tokens occur most.

    Each sequence holds 3 markers of its class, 2 of another class and neutral tokens,
    shuffled, so the model must count, not just spot, a marker.
    """
    rng = np.random.default_rng(seed + 7)
    n = N_TOKENS_ITEMS
    y = rng.integers(0, 10, n)
    other = (y + rng.integers(1, 10, n)) % 10
    X = rng.integers(20, VOCAB, (n, SEQ_LEN))
    for i in range(n):
        marks = [2 * y[i] + rng.integers(0, 2) for _ in range(3)]
        marks += [2 * other[i] + rng.integers(0, 2) for _ in range(2)]
        pos = rng.choice(SEQ_LEN, 5, replace=False)
        X[i, pos] = marks
    return X.astype(np.int64), y


def _fit_adamw(model, X, y, seed, epochs, lr, batch_size, weight_decay, **_):
    """Train with AdamW (the benchmark's own loop; seeded, the caller's RNG untouched)."""
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=gen).split(batch_size):
                loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()



@dataclass
class Setup:
    """A trained model, its training data (with flipped labels) and held-out data."""

    name: str
    model: nn.Module
    make_model: object
    recipe: dict
    X: np.ndarray
    y: np.ndarray
    mislabeled: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    demo_forget: np.ndarray | None = None  # the demo's own mixed forget set (indices)


def _flip(y, rng, noise=0.05):
    y = y.copy()
    idx = rng.choice(len(y), int(round(noise * len(y))), replace=False)
    y[idx] = (y[idx] + rng.integers(1, 10, len(idx))) % 10
    mis = np.zeros(len(y), bool)
    mis[idx] = True
    return y, mis


def _train(make, recipe, X, y, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make()
    if recipe.get("optimizer") == "adamw":
        return _fit_adamw(model, X, y, seed, **recipe)
    rum.fit(model, (X, y), random_state=seed, device="cpu", **recipe)
    return model.eval()


def _cached(key: str, build):
    """``build()``'s model state, cached in ``benchmarks/.cache/defaults_check``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    state = build().state_dict()
    torch.save(state, path)
    return state


def setup(name: str, seed: int) -> Setup:
    """Build (or load from the cache) model ``name`` trained with seed ``seed``."""
    if name == "demo-mlp":
        from rum.demo import RECIPE, digits_scenario, make_mlp

        sc = digits_scenario(seed)
        X = np.concatenate([sc.forget[0], sc.retain[0]])
        y = np.concatenate([sc.forget[1], sc.retain[1]])
        mis = np.concatenate([sc.mislabeled, np.zeros(len(sc.retain[1]), bool)])
        return Setup(name, sc.model.eval(), make_mlp, dict(RECIPE), X, y, mis, sc.test[0],
                     sc.test[1], demo_forget=np.arange(len(sc.forget[1])))
    if name in ("mnist1d-cnn", "mnist1d-cnn-adamw"):
        from benchmarks.tasks import load_task

        task = load_task("mnist1d", seed)
        make, recipe = task.make_model, task.recipe
        if name == "mnist1d-cnn-adamw":
            recipe = ADAMW_CNN_RECIPE
        X, y, mis, X_te, y_te = task.X_train, task.y_train, task.mislabeled, task.X_test, task.y_test
    elif name == "dropout-mlp":
        from benchmarks.tasks import load_task

        task = load_task("digits", seed)
        make, recipe = dropout_mlp, DROPOUT_RECIPE
        X, y, mis, X_te, y_te = task.X_train, task.y_train, task.mislabeled, task.X_test, task.y_test
    elif name == "transformer":
        Xt, yt = token_task(seed)
        n_test = len(yt) // 5
        X, X_te, y, y_te = Xt[n_test:], Xt[:n_test], yt[n_test:], yt[:n_test]
        y, mis = _flip(y, np.random.default_rng(seed))
        make, recipe = TinyTransformer, TRANSFORMER_RECIPE
    elif name == "bn-cnn":
        X, X_te, y, y_te = digit_images(seed)
        y, mis = _flip(y, np.random.default_rng(seed))
        make, recipe = bn_cnn, BN_RECIPE
    else:
        raise ValueError(f"unknown model {name!r}")
    model = make()
    model.load_state_dict(_cached(f"{name}-{seed}", lambda: _train(make, recipe, X, y, seed)))
    return Setup(name, model.eval(), make, recipe, X, y, mis, X_te, np.asarray(y_te))


def scenario(s: Setup, name: str, seed: int) -> np.ndarray:
    """The forget set's indices into the training set."""
    rng = np.random.default_rng(seed + 101)
    n = len(s.y)
    if name == "mixed":
        if s.demo_forget is not None:
            return s.demo_forget
        mis = np.flatnonzero(s.mislabeled)
        ordinary = rng.choice(np.flatnonzero(~s.mislabeled), max(0, n // 10 - len(mis)), replace=False)
        return np.sort(np.concatenate([mis, ordinary]))
    if name == "random":
        return np.sort(rng.choice(n, n // 10, replace=False))
    if name == "class-wise":
        return np.flatnonzero(s.y == seed % 10)
    raise ValueError(f"unknown scenario {name!r}")


def accuracy(model, X, y) -> float:
    from rum.testing.fixtures import accuracy as acc

    return acc(model, (X, y))


def _with_grid(methods, grid, grid_only=False):
    """``methods``, then each one that has a reference lr with ``lr`` = reference x factor."""
    out = [] if grid_only else list(methods)
    for label, spec in methods:
        name, params = spec if isinstance(spec, tuple) else (spec, {})
        ref = rum.get_unlearner(name).reference_lr
        if ref is None or "lr" in params:
            continue
        out += [(f"{label}@{f:g}", (name, {**params, "lr": ref * f})) for f in grid]
    return out


def run(models, scenarios, methods, seeds, log=print, grid=(), grid_only=False) -> list[dict]:
    """One row per (model, seed, scenario, method); with ``grid``, also each lr of the grid."""
    rows = []
    for model_name in models:
        for seed in seeds:
            s = setup(model_name, seed)
            for scen in scenarios:
                idx = scenario(s, scen, seed)
                keep = np.ones(len(s.y), bool)
                keep[idx] = False
                forget, retain = (s.X[idx], s.y[idx]), (s.X[keep], s.y[keep])

                def build_oracle(s=s, retain=retain, seed=seed):
                    return _train(s.make_model, s.recipe, *retain, seed)

                oracle = s.make_model()
                oracle.load_state_dict(_cached(f"{model_name}-{seed}-{scen}-oracle", build_oracle))
                oracle.eval()
                base = dict(model=model_name, scenario=scen, seed=seed, n_forget=len(idx),
                            original_forget=accuracy(s.model, *forget),
                            original_test=accuracy(s.model, s.X_test, s.y_test),
                            retrain_forget=accuracy(oracle, *forget),
                            retrain_test=accuracy(oracle, s.X_test, s.y_test))
                for label, spec in _with_grid(methods, grid, grid_only):
                    name, params = spec if isinstance(spec, tuple) else (spec, {})
                    t0 = time.perf_counter()
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            res = rum.unlearn(s.model, forget, retain, unlearner=name,
                                              random_state=seed, device="cpu", progress=False,
                                              **params)
                        model, status = res.model, (res.steps[0].status if res.steps else "ok")
                        step = res.steps[0] if res.steps else None
                        cal = step.calibration if step is not None else None
                        extra = dict(lr=step.lr if step else None,
                                     backoffs=step.backoffs if step else 0,
                                     calibration_seconds=cal["seconds"] if cal else 0.0,
                                     probes=len(cal["probes"]) if cal else 0)
                    except Exception as err:  # noqa: BLE001  (reported as a failure of the cell)
                        model, status = s.model, f"error: {type(err).__name__}"
                        extra = dict(lr=None, backoffs=0, calibration_seconds=0.0, probes=0)
                        log(f"{model_name} {scen} s{seed} {label}: {type(err).__name__}: {err}")
                    seconds = time.perf_counter() - t0
                    rep = rum.evaluate(model, forget_set=forget, retain_set=retain,
                                       test_set=(s.X_test, s.y_test), reference=oracle,
                                       random_state=seed)
                    row = dict(base, method=label, status=status, seconds=seconds,
                               forget=rep.model.forget, test=rep.model.test, tow=rep.tow,
                               trained_with=TRAINED_WITH.get(model_name, ""), **extra)
                    row.update(verdict(row))
                    rows.append(row)
                    log(f"{model_name:11s} {scen:10s} s{seed} {label:24s} forget {row['forget']:.3f} "
                        f"(orig {row['original_forget']:.3f}, retrain {row['retrain_forget']:.3f}) "
                        f"closed {row['closed']:+.2f} test {row['test']:.3f} "
                        f"(orig {row['original_test']:.3f}) ToW {row['tow']:.3f} {status} "
                        f"{'REAL' if row['real'] else '-'} {seconds:.1f}s lr={row['lr']}")
    return rows


def verdict(row: dict) -> dict:
    gap0 = abs(row["original_forget"] - row["retrain_forget"])
    gap = abs(row["forget"] - row["retrain_forget"])
    closed = 1 - gap / gap0 if gap0 > 0 else 0.0
    # forgetting a whole class costs the retrained model that class's share of the test
    # set: a drop down to the retrained model's test accuracy is not held against it
    drop = min(row["original_test"], row["retrain_test"]) - row["test"]
    real = bool(closed >= MIN_PROGRESS - 1e-9 and drop <= MAX_TEST_DROP + 1e-9 and row["status"] == "ok")
    return dict(closed=closed, test_drop=drop, real=real)


def table(rows: list[dict]) -> str:
    """Mean over seeds per (model, scenario, method), and a count of real-work cells."""
    keys = []
    for r in rows:
        k = (r["model"], r["scenario"], r["method"])
        if k not in keys:
            keys.append(k)
    lines = ["| model | scenario | method | forget (original / retrain) | gap closed "
             "| test (original / retrain) | ToW | real work | not ok | seconds |", "|" + "---|" * 10]
    for k in keys:
        rs = [r for r in rows if (r["model"], r["scenario"], r["method"]) == k]
        m = lambda f, rs=rs: float(np.mean([r[f] for r in rs]))  # noqa: E731
        bad = [r["status"] for r in rs if r["status"] != "ok"]
        lines.append(
            f"| {k[0]} | {k[1]} | `{k[2]}` | {m('forget'):.3f} ({m('original_forget'):.3f} / "
            f"{m('retrain_forget'):.3f}) | {m('closed'):+.2f} | {m('test'):.3f} ({m('original_test'):.3f}"
            f" / {m('retrain_test'):.3f}) | {m('tow'):.3f} "
            f"| {sum(r['real'] for r in rs)}/{len(rs)} | {', '.join(sorted(set(bad))) or '-'} "
            f"| {m('seconds'):.1f} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    out = ["| method | real work (cells x seeds) | mean ToW |", "|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        out.append(f"| `{method}` | {sum(r['real'] for r in rs)}/{len(rs)} "
                   f"| {np.mean([r['tow'] for r in rs]):.3f} |")
    return "\n".join(out)


def _mean(rs, f):
    return float(np.mean([r[f] for r in rs]))


def matrix(rows: list[dict]) -> tuple[str, str]:
    """The step-size issue's matrix and its targets: defaults against the lr grid's best."""
    defaults = [r for r in rows if "@" not in r["method"]]
    keys = list(dict.fromkeys((r["model"], r["scenario"], r["method"]) for r in defaults))
    lines = ["| model (trained with) | scenario | unlearner | lr chosen | ToW default | real work "
             "| seconds (calibration) | ToW grid best (lr factor) | within 0.05 |",
             "|" + "---|" * 9]
    cells, pairs = [], {}
    for k in keys:
        rs = [r for r in defaults if (r["model"], r["scenario"], r["method"]) == k]
        grid = [r for r in rows if (r["model"], r["scenario"]) == k[:2]
                and r["method"].startswith(k[2] + "@")]
        tow = _mean(rs, "tow")
        real = all(r["real"] for r in rs)
        pairs.setdefault((k[0], k[2]), []).append(real)
        lrs = sorted({f"{r['lr']:.2g}" for r in rs if r.get("lr")})
        best, best_f, within = "-", "", None
        if grid:
            by_f = {}
            for r in grid:
                by_f.setdefault(r["method"].split("@")[1], []).append(r["tow"])
            f, t = max(((f, float(np.mean(v))) for f, v in by_f.items()), key=lambda x: x[1])
            best, best_f = f"{t:.3f}", f" (x{f})"
            within = tow >= t - 0.05
        cal = _mean(rs, "calibration_seconds")
        cells.append(dict(real=real, within=within, cal=cal, seconds=_mean(rs, "seconds"),
                          probed=any(r.get("probes") for r in rs)))
        lines.append(
            f"| {k[0]} ({rs[0].get('trained_with', '')}) | {k[1]} | `{k[2]}` | {', '.join(lrs) or '-'} "
            f"| {tow:.3f} | {sum(r['real'] for r in rs)}/{len(rs)} | {_mean(rs, 'seconds'):.1f} "
            f"({cal:.2f}) | {best}{best_f} | {'-' if within is None else ('yes' if within else 'no')} |")
    n = len(cells)
    real = sum(c["real"] for c in cells)
    pr = sum(all(v) for v in pairs.values())
    graded = [c for c in cells if c["within"] is not None]
    within = sum(c["within"] for c in graded)
    probed = [c for c in cells if c["probed"]]
    fracs = [c["cal"] / c["seconds"] for c in probed if c["seconds"] > 0]
    targets = "\n".join([
        "| target | reached |", "|---|---|",
        f"| >= 95 % of cells do real work with defaults | {real}/{n} (model, scenario, unlearner) "
        f"cells = {real / max(n, 1):.0%}; {pr}/{len(pairs)} (model, unlearner) pairs real in every "
        f"scenario = {pr / max(len(pairs), 1):.0%} |",
        f"| default ToW within 0.05 of the grid-tuned ToW on >= 80 % of cells | {within}/{len(graded)} "
        f"= {within / max(len(graded), 1):.0%} |",
        f"| calibration <= 10 % of the unlearner's time | median {np.median(fracs) if fracs else 0:.0%}, "
        f"{sum(f <= 0.10 for f in fracs)}/{len(fracs)} cells within 10 % |",
    ])
    return targets, "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated, or 'all' (also the dropout MLP, the AdamW CNN "
                             "and the transformer)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--methods", default=",".join(NEW),
                        help="comma-separated registered names, or 'all'")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--grid", action="store_true",
                        help="also run every unlearner that has an lr with lr = its reference "
                             "lr times each factor of GRID (the tuned ceiling)")
    parser.add_argument("--grid-only", action="store_true",
                        help="run only the grid (to merge with a run of the defaults by --load)")
    parser.add_argument("--save", default=None, help="write the rows to this JSON file")
    parser.add_argument("--load", default=None,
                        help="comma-separated JSON files of rows (from --save) to report "
                             "instead of running")
    parser.add_argument("--section", default=None,
                        help="write the tables to this section of the benchmarks pages and the "
                             "rows to benchmarks/results/rows_<section>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = [n for n in rum.list_unlearners() if n not in ("noop", "retrain")] \
        if args.methods == "all" else args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    import json

    if args.load:
        rows = [r for f in args.load.split(",") for r in json.loads(Path(f).read_text())]
    else:
        models = [*MODELS, *MORE_MODELS] if args.models == "all" else args.models.split(",")
        rows = run(models, args.scenarios.split(","), [(n, n) for n in names], seeds,
                   log=lambda m: print(m, flush=True),
                   grid=GRID if args.grid or args.grid_only else (), grid_only=args.grid_only)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    defaults = [r for r in rows if "@" not in r["method"]]
    body = (f"Command: `python -m benchmarks.defaults_check {shlex.join(argv or sys.argv[1:])}` "
            f"({time.perf_counter() - t0:.0f} s)\n\n")
    if any("@" in r["method"] for r in rows):
        targets, grid_table = matrix(rows)
        body += f"{targets}\n\n{summary(defaults)}\n\n{grid_table}\n"
    else:
        body += f"{summary(defaults)}\n\n{table(defaults)}\n"
    if args.section:
        from benchmarks._report import machine, write_section

        write_section(args.section, f"Machine: {machine()}\n\n{body}")
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"rows_{args.section}.json").write_text(json.dumps(rows, indent=1))
    print(body)
    return body


if __name__ == "__main__":
    main()
