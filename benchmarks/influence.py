"""Influence-based correction: feature unlearning, label-poison repair, certified removal.

Run ``python -m benchmarks.influence`` (``--quick`` for a fast setting). Writes
the ``influence`` section of ``docs/benchmarks.md``.

1. **Feature unlearning, convex.** breast_cancer (standardised) plus a planted
   leaking feature: a column equal to ``2 * label - 1`` (plus noise) in 30 %
   of the training rows, zero elsewhere and at test time. The request zeroes it
   wherever present. L2 logistic regression (``Linear(31, 2)``,
   ``weight_decay=0.01``, trained to the optimum). Compared with the exact
   retrain on the edited data (Newton to ``||grad|| < 1e-10``) and timed
   against it and against scikit-learn's ``LogisticRegression.fit``.
2. **Speed at scale, convex.** mnist1d generated with 40,000 samples (32,000
   training items, 40 features, 10 classes; generated once by the mnist1d
   package and cached in ``benchmarks/.cache``), multinomial L2 logistic
   regression (``weight_decay=1e-3``). Random deletions of 1 item, 0.1 %, 1 %
   and 3 % of the training set (the items change with the seed), corrected
   without and with a :class:`rum.influence.HessianCache`, against three
   retrains on the remaining items: rum's exact Newton retrain (gradient
   norm < 1e-10, the reference for distances) and scikit-learn's
   ``LogisticRegression.fit`` at ``tol=1e-8`` and at its default tolerance.
   Correction times are the median of 3 runs, retrain times one run each.
   Then a chain of requests (5 links of 32 deletions, each correcting the
   previous link's model): the first model's cache reused along the chain,
   against a new cache per link and a scikit-learn refit per link.
3. **Label-poison repair, deep.** A small CNN on 8x8 digits; 25 % of training
   labels flipped to ``9 - y``. Poisoned -> first order (all parameters,
   ``tau=1``) -> second order on the last layer (``parameters=1``: the
   convolutional prefix runs once, and the last layer on those features is a
   convex problem, solved exactly with the default damping; and the CG variant
   with damping 0.01) -> retrain on clean labels: test accuracy and seconds.
4. **Certified removal.** Binary logistic regression with objective
   perturbation on breast_cancer; 10 points removed. For each epsilon the
   training noise is set from the residual bound (``sigma = c * bound /
   epsilon``, bound measured on a noise-free model, x2 margin); the corrected
   model's certificate is checked and its test accuracy reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import rum
from benchmarks._report import machine, write_section
from rum.influence import BinaryLogit, cache_hessian, fit_certified, fit_convex, noise_scale

LAM = 1e-2
CACHE = Path(__file__).resolve().parent / ".cache"


def ci(values):
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.4g}"
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.4g} ± {half:.2g}"


def flat(m):
    return torch.cat([p.detach().double().reshape(-1) for p in m.parameters()])


def acc(model, X, y):
    with torch.no_grad():
        out = model(torch.as_tensor(X, dtype=next(model.parameters()).dtype))
    return float((out.argmax(1).numpy() == y).mean())


# ------------------------------------------------------------------------------------------
def feature_task(seed):
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    sc = StandardScaler().fit(X_tr)
    X_tr, X_te = sc.transform(X_tr), sc.transform(X_te)
    rng = np.random.default_rng(seed)
    leak = np.zeros(len(y_tr))
    rows = rng.choice(len(y_tr), int(0.3 * len(y_tr)), replace=False)
    leak[rows] = (2 * y_tr[rows] - 1) + 0.3 * rng.normal(size=len(rows))
    X_tr = np.hstack([X_tr, leak[:, None]]).astype(np.float32)
    X_te = np.hstack([X_te, np.zeros((len(X_te), 1))]).astype(np.float32)
    return X_tr, y_tr, X_te, y_te


def bench_features(seeds):
    rows = {k: {"ratio": [], "resid": [], "leak": [], "acc": [], "sec": []} for k in
            ["original", "first order", "second order, 1 step", "second order (default)",
             "retrain (exact)"]}
    sk_times, speed_exact, speed_sk = [], [], []
    for seed in seeds:
        X, y, X_te, y_te = feature_task(seed)
        torch.manual_seed(seed)
        model = fit_convex(torch.nn.Linear(X.shape[1], 2), (X, y), weight_decay=LAM).float()
        req = rum.requests.replace_features((X, y), columns=[X.shape[1] - 1], values=0.0)
        X_new = X.copy()
        X_new[:, -1] = 0.0
        t = time.perf_counter()
        ref = fit_convex(torch.nn.Linear(X.shape[1], 2), (X_new, y), weight_decay=LAM)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        LogisticRegression(C=1 / (LAM * len(y)), tol=1e-8, max_iter=5000).fit(X_new, y)
        t_sk = time.perf_counter() - t
        sk_times.append(t_sk)
        d0 = float((flat(model) - flat(ref)).norm())
        runs = {"original": (model, 0.0, np.nan)}
        for name, kw in [("first order", dict(settings={"order": 1, "tau": 1.0})),
                         ("second order, 1 step", dict(settings={"max_steps": 1})),
                         ("second order (default)", {})]:
            rum.correct(model, req, train_set=(X, y), weight_decay=LAM, **kw)  # warm-up
            t = time.perf_counter()
            res = rum.correct(model, req, train_set=(X, y), weight_decay=LAM, **kw)
            runs[name] = (res.model, time.perf_counter() - t, res.residual)
        runs["retrain (exact)"] = (ref, t_ref, 0.0)
        for name, (m, sec, resid) in runs.items():
            r = rows[name]
            r["ratio"].append(float((flat(m) - flat(ref)).norm()) / d0)
            r["resid"].append(resid)
            r["leak"].append(abs(float((m.weight[1, -1] - m.weight[0, -1]).detach())))
            r["acc"].append(acc(m, X_te, y_te))
            r["sec"].append(sec)
        speed_exact.append(t_ref / runs["second order (default)"][1])
        speed_sk.append(t_sk / runs["second order (default)"][1])
    lines = [
        "| method | distance to retrain / original distance | gradient residual | leak weight | test acc | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        resid = "-" if np.all(np.isnan(r["resid"])) else ci(r["resid"])
        lines.append(f"| {name} | {ci(r['ratio'])} | {resid} | {ci(r['leak'])} | {ci(r['acc'])} | {ci(r['sec'])} |")
    lines.append(f"| scikit-learn refit (lbfgs, tol 1e-8), for timing | | | | | {ci(sk_times)} |")
    summary = (
        f"Speed-up of the default second-order correction: {ci(speed_exact)}x over the exact "
        f"retrain, {ci(speed_sk)}x over scikit-learn's refit."
    )
    return "\n".join(lines), summary, rows, speed_exact, speed_sk


# ------------------------------------------------------------------------------------------
LARGE_LAM = 1e-3


def large_convex_data():
    """mnist1d with 40,000 samples (32,000 for training), standardised; cached on disk."""
    path = CACHE / "mnist1d_40000_seed0.npz"
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed = 40000, 0
        d = make_dataset(args)
        CACHE.mkdir(exist_ok=True)
        np.savez(path, x=d["x"], y=d["y"])
    d = np.load(path)
    X = d["x"].astype(np.float32)
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)
    return X, np.asarray(d["y"], dtype=np.int64)


def _median_seconds(fn, repeats=3):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def large_convex_model():
    """The large task's data, its model at the optimum, the model's HessianCache and its seconds."""
    X, y = large_convex_data()
    torch.manual_seed(0)
    model = fit_convex(torch.nn.Linear(X.shape[1], 10), (X, y), weight_decay=LARGE_LAM).float()
    t = time.perf_counter()
    cache = cache_hessian(model, (X, y))
    return X, y, model, cache, time.perf_counter() - t


def bench_large_convex(task, seeds, sizes):
    X, y, model, cache, t_cache = task
    n = len(y)
    methods = {
        "no cache (default)": {},
        "HessianCache, default": {"hessian_cache": cache},
        "HessianCache, one Newton step": {"hessian_cache": cache, "settings": {"max_steps": 1}},
        "HessianCache, one step, verify=False": {"hessian_cache": cache, "verify": False},
    }
    rows = {}
    for k in sizes:
        for seed in seeds:
            idx = np.random.default_rng(seed).choice(n, k, replace=False)
            keep = np.setdiff1d(np.arange(n), idx)
            t = time.perf_counter()
            ref = fit_convex(torch.nn.Linear(X.shape[1], 10), (X[keep], y[keep]), weight_decay=LARGE_LAM)
            t_ref = time.perf_counter() - t
            C = 1 / (LARGE_LAM * len(keep))
            t = time.perf_counter()
            LogisticRegression(C=C, tol=1e-8, max_iter=5000).fit(X[keep], y[keep])
            t_sk = time.perf_counter() - t
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the default tolerance may stop at max_iter
                LogisticRegression(C=C).fit(X[keep], y[keep])
            t_skd = time.perf_counter() - t
            d0 = float((flat(model) - flat(ref)).norm())
            req = rum.requests.delete((X, y), idx)
            for name, kw in methods.items():
                res, sec = _median_seconds(
                    lambda kw=kw, req=req: rum.correct(model, req, train_set=(X, y),
                                                       weight_decay=LARGE_LAM, **kw))
                r = rows.setdefault((k, name), {"ratio": [], "resid": [], "sec": [], "x_ref": [],
                                                "x_sk": [], "x_skd": []})
                r["ratio"].append(float((flat(res.model) - flat(ref)).norm()) / d0)
                r["resid"].append(res.residual)
                r["sec"].append(sec)
                r["x_ref"].append(t_ref / sec)
                r["x_sk"].append(t_sk / sec)
                r["x_skd"].append(t_skd / sec)
            r = rows.setdefault((k, "retrain times (s): exact Newton / sklearn tol 1e-8 / sklearn default"),
                                {"ref": [], "sk": [], "skd": []})
            r["ref"].append(t_ref)
            r["sk"].append(t_sk)
            r["skd"].append(t_skd)
    lines = [
        "| deleted | method | distance to retrain / original distance | gradient residual | seconds "
        "| x exact retrain | x sklearn (tol 1e-8) | x sklearn (default tol) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (k, name), r in rows.items():
        label = f"{k} ({100 * k / n:.2g} %)"
        if "ref" in r:
            lines.append(f"| {label} | {name} | | | {ci(r['ref'])} / {ci(r['sk'])} / {ci(r['skd'])} | | | |")
        else:
            lines.append(
                f"| {label} | {name} | {ci(r['ratio'])} | {ci(r['resid'])} | {ci(r['sec'])} "
                f"| {ci(r['x_ref'])} | {ci(r['x_sk'])} | {ci(r['x_skd'])} |"
            )
    note = (f"Building the HessianCache once took {t_cache:.2f} s ({n} items, 410 parameters); "
            "it is not included in the per-request seconds. `verify=False` needs the cache of "
            "the very model it corrects, so these one-step ratios hold for requests answered "
            "against one model (pending deletions collected into one request, or several "
            "candidate requests compared); a chain of corrections reuses the first model's cache "
            "only in verified mode (next table).")
    return "\n".join(lines), note, rows


def bench_chain(task, seeds, links=5, k=32):
    """A chain of deletion requests, each correcting the previous link's model."""
    X, y, model0, cache, _ = task
    n = len(y)
    sec = {"first model's cache (stale after link 1)": [], "new cache per link": [],
           "sklearn refit (tol 1e-8)": []}
    ratios, resid = [], []
    for seed in seeds:
        rng = np.random.default_rng(100 + seed)
        ids, stale_model, fresh_model = np.arange(n), model0, model0
        for _ in range(links):
            pos = rng.choice(len(ids), k, replace=False)
            data = (X[ids], y[ids])
            req = rum.requests.delete(data, pos)
            t = time.perf_counter()
            res = rum.correct(stale_model, req, train_set=data, weight_decay=LARGE_LAM, hessian_cache=cache)
            sec["first model's cache (stale after link 1)"].append(time.perf_counter() - t)
            resid.append(res.residual)
            t = time.perf_counter()
            fresh = cache_hessian(fresh_model, data)
            fresh_model = rum.correct(fresh_model, req, train_set=data, weight_decay=LARGE_LAM,
                                      hessian_cache=fresh).model
            sec["new cache per link"].append(time.perf_counter() - t)
            ids = np.delete(ids, pos)
            t = time.perf_counter()
            LogisticRegression(C=1 / (LARGE_LAM * len(ids)), tol=1e-8, max_iter=5000).fit(X[ids], y[ids])
            sec["sklearn refit (tol 1e-8)"].append(time.perf_counter() - t)
            stale_model = res.model
        ref = fit_convex(torch.nn.Linear(X.shape[1], 10), (X[ids], y[ids]), weight_decay=LARGE_LAM)
        ratios.append(float((flat(stale_model) - flat(ref)).norm() / (flat(model0) - flat(ref)).norm()))
    sk = np.asarray(sec["sklearn refit (tol 1e-8)"])
    lines = ["| per link | seconds | x sklearn refit |", "|---|---|---|"]
    for name, v in sec.items():
        v = np.asarray(v)
        lines.append(f"| {name} | {ci(v)} | {ci(sk / v)} |")
    note = (f"{links} links of {k} deletions each, {len(seeds)} seeds. After the last link the "
            f"chain corrected with the first model's cache is at {ci(ratios)} of the original "
            f"distance from an exact retrain on what remains; every link's gradient residual "
            f"is <= {max(resid):.1g}.")
    return "\n".join(lines), note


# ------------------------------------------------------------------------------------------
def make_cnn():
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10),
    )


DEEP_DEFAULT = "second order, last layer (default: exact, damping 0.1)"
CNN_RECIPE = dict(epochs=40, lr=2e-3, batch_size=64, optimizer="adam", weight_decay=1e-4)


def bench_poison(seeds, epochs):
    recipe = dict(CNN_RECIPE, epochs=epochs)
    corrections = {
        "first order": dict(settings={"order": 1, "tau": 1.0}),
        DEEP_DEFAULT: dict(parameters=1),
        "second order, last layer (CG, damping 0.01)":
            dict(parameters=1, settings={"solver": "cg", "damping": 0.01, "cg_maxiter": 20}),
    }
    res = {k: {"acc": [], "sec": [], "ratio": []} for k in
           ["poisoned", *corrections, "retrain on clean labels"]}
    restored = {k: [] for k in corrections}
    for seed in seeds:
        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(y_tr), int(0.25 * len(y_tr)), replace=False)
        y_p = y_tr.copy()
        y_p[idx] = 9 - y_p[idx]
        torch.manual_seed(seed)
        poisoned = make_cnn()
        rum.fit(poisoned, (X_tr, y_p), random_state=seed, device="cpu", **recipe)
        torch.manual_seed(seed + 1000)
        clean = make_cnn()
        t = time.perf_counter()
        rum.fit(clean, (X_tr, y_tr), random_state=seed, device="cpu", **recipe)
        t_retrain = time.perf_counter() - t
        req = rum.requests.relabel((X_tr, y_p), idx, y_tr[idx])
        a_p, a_c = acc(poisoned, X_te, y_te), acc(clean, X_te, y_te)
        res["poisoned"]["acc"].append(a_p)
        res["poisoned"]["sec"].append(0.0)
        res["retrain on clean labels"]["acc"].append(a_c)
        res["retrain on clean labels"]["sec"].append(t_retrain)
        for name, kw in corrections.items():
            t = time.perf_counter()
            r = rum.correct(poisoned, req, train_set=(X_tr, y_p), weight_decay=recipe["weight_decay"], **kw)
            sec = time.perf_counter() - t
            a = acc(r.model, X_te, y_te)
            res[name]["acc"].append(a)
            res[name]["sec"].append(sec)
            res[name]["ratio"].append(sec / t_retrain)
            restored[name].append((a - a_p) / max(a_c - a_p, 1e-9))
    lines = ["| model | test acc | restored | seconds | time / retrain |", "|---|---|---|---|---|"]
    for name, r in res.items():
        rest = ci(restored[name]) if name in restored else ("0" if name == "poisoned" else "1")
        ratio = ci(r["ratio"]) if r["ratio"] else ("0" if name == "poisoned" else "1")
        lines.append(f"| {name} | {ci(r['acc'])} | {rest} | {ci(r['sec'])} | {ratio} |")
    return "\n".join(lines), restored, res[DEEP_DEFAULT]["ratio"]


# ------------------------------------------------------------------------------------------
def bench_certified(seeds, epsilons):
    X, y = load_breast_cancer(return_X_y=True)
    out = []
    for eps in epsilons:
        for mode, ms in [("one Newton step", 1), ("iterated Newton (default)", None)]:
            accs, certs, sigmas = [], [], []
            for seed in seeds:
                X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
                sc = StandardScaler().fit(X_tr)
                X_tr = np.hstack([sc.transform(X_tr), np.ones((len(X_tr), 1))]).astype(np.float32)
                X_te = np.hstack([sc.transform(X_te), np.ones((len(X_te), 1))]).astype(np.float32)
                req = rum.requests.delete((X_tr, y_tr), np.arange(10))
                base = fit_certified(BinaryLogit(X_tr.shape[1], bias=False), (X_tr, y_tr),
                                     weight_decay=LAM, sigma=0.0, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    probe = rum.correct(base, req, train_set=(X_tr, y_tr), weight_decay=LAM,
                                        settings={"max_steps": ms}, epsilon=eps, delta=1e-4)
                sigma = 2.0 * noise_scale(eps, 1e-4, probe.certificate.residual_bound)
                model = fit_certified(BinaryLogit(X_tr.shape[1], bias=False), (X_tr, y_tr),
                                      weight_decay=LAM, sigma=sigma, random_state=seed + 1)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = rum.correct(model, req, train_set=(X_tr, y_tr), weight_decay=LAM,
                                      settings={"max_steps": ms}, epsilon=eps, delta=1e-4)
                accs.append(acc(res.model, X_te, y_te))
                certs.append(float(res.certificate.certified))
                sigmas.append(sigma)
            out.append(f"| {eps:g} | {mode} | {ci(sigmas)} | {np.mean(certs):.2f} | {ci(accs)} |")
    lines = ["| epsilon | update | training noise sigma | certified (fraction) | test acc |",
             "|---|---|---|---|---|", *out]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and epsilons")
    args = ap.parse_args(argv)
    # One thread: on a shared, loaded machine two spinning threads slow tiny ops by 10-100x.
    # scikit-learn's BLAS gets one thread too, so that both sides of a ratio compute alike.
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    seeds = [0, 1, 2]
    t0 = time.perf_counter()
    feat_table, feat_summary, feat_rows, sp_exact, sp_sk = bench_features(seeds)
    sizes = [1, 320] if args.quick else [1, 32, 320, 960]
    large = large_convex_model()
    large_table, large_note, large_rows = bench_large_convex(large, seeds, sizes)
    chain_table, chain_note = bench_chain(large, seeds, links=3 if args.quick else 5)
    poison_table, restored, time_ratio = bench_poison(seeds, epochs=20 if args.quick else 40)
    cert_table = bench_certified(seeds, [0.1, 1.0, 10.0] if args.quick else [0.05, 0.1, 0.5, 1.0, 5.0, 10.0])
    cmd = "python -m benchmarks.influence" + (" --quick" if args.quick else "")
    ratio2 = np.mean(feat_rows["second order (default)"]["ratio"])
    rest2 = np.mean(restored[DEEP_DEFAULT])
    tr = np.mean(time_ratio)
    verdicts = []
    for k in sizes:
        for name in ("HessianCache, one step, verify=False", "HessianCache, one Newton step",
                     "HessianCache, default"):
            r = large_rows[(k, name)]
            close = np.mean(r["ratio"]) <= 0.05
            x_ref, x_sk = np.mean(r["x_ref"]), np.mean(r["x_sk"])
            if not close:
                verdict = "missed (distance)"
            elif min(x_ref, x_sk) >= 100:
                verdict = "met"
            elif x_ref >= 100:
                verdict = "met against the exact retrain, missed against scikit-learn"
            else:
                verdict = "missed"
            verdicts.append(
                f"  - {k} deleted, {name}: distance ratio {np.mean(r['ratio']):.2g}, "
                f"{x_ref:.0f}x the exact retrain, {x_sk:.0f}x scikit-learn at tol 1e-8, "
                f"{np.mean(r['x_skd']):.0f}x at its default tolerance: {verdict}"
            )
    verdict_text = "\n".join(verdicts)
    body = f"""## Influence-based correction (`rum.correct`)

Command: `{cmd}` ({len(seeds)} seeds, mean ± 95 % CI; total {time.perf_counter() - t0:.0f}s).
Machine: {machine()} (one thread: torch.set_num_threads(1), scikit-learn's BLAS via threadpoolctl).

### Feature unlearning: planted leaking feature (breast_cancer, L2 logistic regression)

{feat_table}

{feat_summary}

### Speed at scale: deletions from mnist1d (32,000 training items), multinomial L2 logistic regression

{large_table}

{large_note} "x": the retrain's seconds over the correction's, per seed.

#### A chain of requests: each link corrects the previous link's model (verified default)

{chain_table}

{chain_note} A cache from an earlier model is only an approximation of the current Hessian:
rum uses it for the first Newton steps and as the CG preconditioner, then switches to exact
Hessian-vector products, and the residual passes keep each link exact.

### Label-poison repair: small CNN on 8x8 digits, 25 % labels flipped to 9 - y

{poison_table}

### Certified removal of 10 points: accuracy against epsilon (delta = 1e-4)

{cert_table}

### Against the targets

- Convex, distance: the default second-order correction lands at {ratio2:.2g} of the original
  distance from the exact retrain on the feature task (target <= 0.05: {"met" if ratio2 <= 0.05 else "missed"}),
  and within the same bound on every deletion of the large task (table above).
- Convex, speed (target >= 100x retraining with distance ratio <= 0.05), on the large task, judged
  against both the exact retrain and scikit-learn at tol 1e-8:
{verdict_text}
- scikit-learn is timed with one BLAS thread, like torch: with its default threading its refits
  were slower on this 2-core machine, so one thread is the harder comparison.
- What bounds the speed-up: a retrain makes one pass over the data per solver iteration
  (scikit-learn's L-BFGS needs a few hundred at tol 1e-8). With a cached Hessian the corrected
  Hessian is never formed: CG preconditioned by the cache's inverse applies it as the cached
  matrix plus the k affected items' products (O(p^2 + k p) each, 4-7 products here). The
  verified correction then makes one pass over the data per Newton step to measure the
  gradient residual it reports, so it stays at a few dozen times scikit-learn; with
  `verify=False` nothing touches the training set and the cost no longer grows with it (what
  remains is copying the model, the k items, and the result records). Without a cache the exact
  Hessian pass (O(n p^2)) dominates and the correction is only a few times faster. On the
  small feature task retraining takes milliseconds, so no large ratio is possible there
  ({np.mean(sp_exact):.1f}x over the exact retrain, {np.mean(sp_sk):.1f}x over scikit-learn).
- Deep repair: the default last-layer correction restores {rest2:.2f} of the accuracy lost to
  poisoning (target >= 0.5: {"met" if rest2 >= 0.5 else "missed"}) at {tr:.2f}x the retrain time
  (target <= 0.2x: {"met" if tr <= 0.2 else "missed"}). The convolutional prefix runs once over the
  data; the last layer on those features is a 650-parameter convex problem solved exactly.
"""
    write_section("influence", body)
    print(body)


if __name__ == "__main__":
    main()
