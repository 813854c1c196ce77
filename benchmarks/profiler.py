"""Profiler benchmark: memorization proxies against Feldman-Zhang ground truth, on digits.

    python -m benchmarks.profiler            # 3 seeds, 200 FZ runs each (~15 min on 2 cores)
    python -m benchmarks.profiler --quick    # 1 seed, 40 FZ runs, small memory check

Per seed: digits (scikit-learn, offline), 70/30 split, 5 % of the training
labels flipped; the rum demo MLP trained with the demo recipe while a
MemorizationRecorder records training dynamics. Feldman-Zhang (FZ) memorization
of every training item comes from ``--runs`` models trained on random 70 %
subsets with the same recipe. Post-hoc proxies score every training item by
5-fold profiling (forget = one fold, retain = the other four).

Reported: Spearman correlation of each proxy with FZ, AUC at finding the
flipped labels, cost in training-run equivalents, ES of entanglement and
memorization groups, how well the "rum" cut isolates mislabeled items, and peak
memory when profiling up to 50,000 items.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench_cache"
POSTHOC = ("confidence", "margin", "curvature", "neighbors")
DYNAMICS = ("confidence", "max_confidence", "entropy", "correctness", "forgetting", "learned_late")


def _data(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    sc = StandardScaler().fit(X_tr)
    X_tr, X_te = sc.transform(X_tr).astype(np.float32), sc.transform(X_te).astype(np.float32)
    rng = np.random.default_rng(seed)
    n = len(y_tr)
    noisy = rng.choice(n, int(round(0.05 * n)), replace=False)
    y_tr = y_tr.copy()
    y_tr[noisy] = (y_tr[noisy] + rng.integers(1, 10, len(noisy))) % 10
    mislabeled = np.zeros(n, bool)
    mislabeled[noisy] = True
    return X_tr, y_tr, X_te, y_te, mislabeled


def _ci(values) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    from scipy.stats import t

    half = t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.3f} ± {half:.3f}"


def _f1(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    prec = tp / max(pred.sum(), 1)
    rec = tp / max(truth.sum(), 1)
    return prec, rec, 2 * prec * rec / max(prec + rec, 1e-12)


def run_seed(seed: int, n_runs: int, n_jobs: int) -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    import rum
    from rum.demo import RECIPE, make_mlp
    from rum.profiler import MemorizationRecorder, TorchTrainer, feldman_zhang
    from rum.profiler.feldman_zhang import _Checkpoint, fz_estimate, subset_mask

    X, y, X_te, y_te, mis = _data(seed)
    n = len(y)

    # the original model, with the training-dynamics recorder and its own timing
    rec = MemorizationRecorder(n)
    cb_time = [0.0]

    def timed(*a):
        t = time.perf_counter()
        rec(*a)
        cb_time[0] += time.perf_counter() - t

    torch.manual_seed(seed)
    model = make_mlp()
    t0 = time.perf_counter()
    rum.fit(model, (X, y), device="cpu", random_state=seed, callbacks=[timed], **RECIPE)
    train_s = time.perf_counter() - t0 - cb_time[0]

    # Feldman-Zhang ground truth (cached and resumable)
    CACHE.mkdir(exist_ok=True)
    ck = CACHE / f"fz_digits_seed{seed}.npz"
    t0 = time.perf_counter()
    fz = feldman_zhang(
        TorchTrainer(make_mlp, **RECIPE), (X, y), n_runs=n_runs, n_jobs=n_jobs,
        checkpoint=ck, random_state=seed,
    )
    fz_s = time.perf_counter() - t0
    mem = fz.memorization
    ok = np.isfinite(mem)
    # split-half reliability of the ground truth (Spearman-Brown corrected)
    c = _Checkpoint(ck, n, 0.7, seed)
    runs = np.arange(n_runs)
    masks = np.stack([subset_mask(n, 0.7, seed, r) for r in runs])
    corr = np.stack([c.done[r] for r in runs])
    a = fz_estimate(masks[::2], corr[::2])[0]
    b = fz_estimate(masks[1::2], corr[1::2])[0]
    sel = np.isfinite(a) & np.isfinite(b)
    r_half = spearmanr(a[sel], b[sel])[0]
    reliability = 2 * r_half / (1 + r_half)

    out: dict = {
        "seed": seed, "n": n, "train_s": train_s, "fz_s": fz_s, "fz_reliability": reliability,
        "fz_auc": roc_auc_score(mis[ok], mem[ok]), "proxies": {},
    }

    def record(name, scores, seconds):
        s = np.asarray(scores, float)
        sel = ok & np.isfinite(s)
        out["proxies"][name] = {
            "spearman": float(spearmanr(s[sel], mem[sel])[0]),
            "auc": float(roc_auc_score(mis, np.nan_to_num(s, nan=np.nanmax(s)))),
            "cost": seconds / train_s,
        }

    # post-hoc proxies: 5-fold profiling, every item scored once as a forget item
    folds = np.array_split(np.random.default_rng(seed).permutation(n), 5)
    for name in POSTHOC:
        scores = np.empty(n)
        t0 = time.perf_counter()
        for f in folds:
            keep = np.ones(n, bool)
            keep[f] = False
            p = rum.profile(model, (X[f], y[f]), (X[keep], y[keep]), memorization=name,
                            entanglement="none", grouping="quantile", n_groups=1, random_state=seed)
            scores[f] = p.memorization
        record(name, scores, time.perf_counter() - t0)
    for name in DYNAMICS:
        record(f"dynamics:{name}", rec.scores(name), cb_time[0])
    record(f"feldman_zhang ({n_runs} runs)", mem, fz_s)
    out["proxies"][f"feldman_zhang ({n_runs} runs)"]["cost"] = float(n_runs)  # by definition
    out["proxies"][f"feldman_zhang ({n_runs} runs)"]["spearman"] = float(np.sqrt(max(reliability, 0)))

    # ES of groups, and how the "rum" cut isolates mislabeled items
    rng = np.random.default_rng(seed + 1)
    ordinary = rng.choice(np.flatnonzero(~mis), int(mis.sum()), replace=False)
    forget_sets = {
        "mixed (all flipped + as many ordinary)": np.concatenate([np.flatnonzero(mis), ordinary]),
        "random 20 %": folds[0],
    }
    out["es"], out["cut"] = {}, {}
    for fname, f in forget_sets.items():
        keep = np.ones(n, bool)
        keep[f] = False
        fs, rs = (X[f], y[f]), (X[keep], y[keep])
        for ent in ("class_margin", "centroid_distance"):
            p = rum.profile(model, fs, rs, entanglement=ent,
                            grouping=("quantile", {"by": "entanglement"}), random_state=seed)
            out["es"][f"{fname} | entanglement={ent}"] = [s.es for s in p.summary]
        p = rum.profile(model, fs, rs, grouping="quantile", random_state=seed)
        out["es"][f"{fname} | memorization thirds"] = [s.es for s in p.summary]
        for grouping in ("rum", "quantile"):
            t0 = time.perf_counter()
            p = rum.profile(model, fs, rs, grouping=grouping, random_state=seed)
            dt = time.perf_counter() - t0
            high = p.groups == p.n_groups - 1
            out["cut"][f"{fname} | {grouping}"] = (*_f1(high, mis[f]), p.n_groups, dt)
    # the RUM paper's construction: rank the whole training set by distance to the overall
    # embedding centroid, cut into 15 groups; groups 3 / 12 / 14 are "low / medium / high ES"
    from rum.profiler.embeddings import embed
    from rum.profiler.entanglement import entanglement_score

    E = embed(model, rum._data.as_data((X, y)))[0].double()
    dist = (E - E.mean(0)).norm(dim=1).numpy()
    parts = np.array_split(np.lexsort((np.arange(n), dist)), 15)
    vals = []
    for g in (14, 12, 3):  # far = least entangled under centroid_distance (closer = more)
        keep = np.ones(n, bool)
        keep[parts[g]] = False
        vals.append(entanglement_score(E[torch.as_tensor(keep)], E[torch.as_tensor(parts[g])]))
    out["es"]["RUM construction: whole training set ranked by distance to the centroid, 15 blocks; low/medium/high = blocks 14/12/3 (far to near)"] = vals
    return out


_MEM_SCRIPT = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from rum._data import TensorData
from rum.profiler import _profile_data
n_f, n_r = int(sys.argv[1]), int(sys.argv[2])
g = torch.Generator().manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                          torch.nn.ReLU(), torch.nn.Linear(128, 10))
forget = TensorData(torch.randn(n_f, 64, generator=g), torch.randint(0, 10, (n_f,), generator=g))
retain = TensorData(torch.randn(n_r, 64, generator=g), torch.randint(0, 10, (n_r,), generator=g))
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
_profile_data(net, TensorData(forget.X[:50], forget.y[:50]), TensorData(retain.X[:200], retain.y[:200]), 0, memorization=sys.argv[3])  # warm-up
open('/proc/self/clear_refs', 'w').write('5')
base = rss('VmRSS:')
t = time.perf_counter()
p = _profile_data(net, forget, retain, 0, memorization=sys.argv[3])
dt = time.perf_counter() - t
print(json.dumps({"extra_mb": rss('VmHWM:') - base, "seconds": dt, "groups": p.n_groups}))
"""


def memory_check(sizes, scorer: str) -> list[dict]:
    rows = []
    for n_f, n_r in sizes:
        res = subprocess.run([sys.executable, "-c", _MEM_SCRIPT, str(n_f), str(n_r), scorer],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        d = json.loads(res.stdout.strip().splitlines()[-1])
        d.update(n_forget=n_f, n_retain=n_r, scorer=scorer)
        rows.append(d)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--runs", type=int, default=None, help="Feldman-Zhang runs per seed")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    n_runs = args.runs or (40 if args.quick else 200)
    t_all = time.perf_counter()
    results = []
    for s in seeds:
        t0 = time.perf_counter()
        results.append(run_seed(s, n_runs, args.jobs))
        print(f"seed {s} done in {time.perf_counter() - t0:.0f}s", flush=True)
    sizes = [(5000, 5000), (5000, 45000)]
    if not args.quick:
        sizes = [(5000, 5000), (5000, 20000), (5000, 45000), (1000, 49000), (10000, 40000)]
    mem_rows = memory_check(sizes, "neighbors") + memory_check(sizes[-1:], "confidence")
    text = report(results, mem_rows, args, n_runs, seeds, time.perf_counter() - t_all)
    print(text)
    if not args.no_write:
        from benchmarks._report import write_section

        write_section("profiler", text)


def report(results, mem_rows, args, n_runs, seeds, total_s) -> str:
    from benchmarks._report import machine

    cmd = "python -m benchmarks.profiler" + (" --quick" if args.quick else "")
    if args.seeds is not None or args.runs:
        cmd += "".join([f" --seeds {' '.join(map(str, seeds))}" if args.seeds is not None else "",
                        f" --runs {args.runs}" if args.runs else ""])
    names = list(results[0]["proxies"])
    lines = [
        "## Profiler: memorization proxies, entanglement, grouping",
        "",
        f"Command: `{cmd}` ({total_s / 60:.1f} min). Machine: {machine()}.",
        "",
        f"Task: scikit-learn digits, {results[0]['n']} training items with 5 % of labels flipped; "
        "the rum demo MLP and recipe. Ground truth: Feldman-Zhang (FZ) memorization from "
        f"{n_runs} models per seed trained on random 70 % subsets. Seeds {seeds}; mean ± 95 % CI "
        "over seeds. Post-hoc proxies score every training item by 5-fold profiling (forget = "
        "one fold, retain = the rest). Cost = proxy time / time of one training run "
        f"({_ci([r['train_s'] for r in results])} s).",
        "",
        f"FZ split-half reliability (Spearman-Brown): {_ci([r['fz_reliability'] for r in results])}. "
        "For the FZ row the Spearman column is sqrt(reliability), its expected correlation "
        "with the infinite-run truth.",
        "",
        "| proxy | Spearman with FZ | AUC (flipped labels) | cost (training runs) |",
        "|---|---|---|---|",
    ]
    for nm in names:
        rows = [r["proxies"][nm] for r in results]
        lines.append(
            f"| {nm} | {_ci([x['spearman'] for x in rows])} | {_ci([x['auc'] for x in rows])} "
            f"| {_ci([x['cost'] for x in rows])} |"
        )
    lines += [
        "",
        "`neighbors` and the post-hoc proxies need only the trained model; `dynamics:*` are "
        "recorded during the original training by `MemorizationRecorder` (cost = its overhead).",
        "",
        "### ES of low / medium / high groups (against the retain set)",
        "",
        "Forget items split into equal thirds by the per-item score; ES is the set-level "
        "Entanglement Score (midpoint centroid) of each third against the retain set.",
        "",
        "| forget set / grouping | ES low | ES medium | ES high | strictly increasing (seeds) |",
        "|---|---|---|---|---|",
    ]
    for key in results[0]["es"]:
        vals = np.array([r["es"][key] for r in results], float)
        inc = sum(bool(v[0] < v[1] < v[2]) for v in vals)
        lines.append(
            f"| {key} | {_ci(vals[:, 0])} | {_ci(vals[:, 1])} | {_ci(vals[:, 2])} | {inc}/{len(vals)} |"
        )
    lines += [
        "",
        "### Does the high-memorization group isolate the flipped labels?",
        "",
        "Precision / recall / F1 of 'item is in the highest group' for flipped labels, with the "
        "default `neighbors` scorer; `rum` = deterministic 1-D k-means cut, `quantile` = equal thirds.",
        "",
        "| forget set / grouping | precision | recall | F1 | groups | profile seconds |",
        "|---|---|---|---|---|---|",
    ]
    for key in results[0]["cut"]:
        vals = np.array([r["cut"][key] for r in results], float)
        lines.append("| " + key + " | " + " | ".join(_ci(vals[:, i]) for i in range(5)) + " |")
    lines += [
        "",
        "### Streaming: peak extra memory of `_profile_data` (synthetic 64-d data, MLP)",
        "",
        "Peak resident memory above the level before the call (inputs already in memory).",
        "",
        "| scorer | forget | retain | total items | extra MiB | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for m in mem_rows:
        lines.append(
            f"| {m['scorer']} | {m['n_forget']} | {m['n_retain']} | {m['n_forget'] + m['n_retain']} "
            f"| {m['extra_mb']:.1f} | {m['seconds']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
