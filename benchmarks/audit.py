"""Did it really forget? The per-example audit (``rum.audit``) of every method, next to ToW.

    python -m benchmarks.audit                  # digits, mixed + class-wise, 3 seeds, 16 shadows
    python -m benchmarks.audit --tasks digits,mnist1d --seeds 2
    python -m benchmarks.audit --quick          # CI setting: 1 seed, 4 shadows, no U-LiRA

Shadows are kept in benchmarks/.cache (a re-run trains none; --fresh trains them anew),
so the costs on the page are those of the run that trained them.

For each task, seed and forget scenario the original model is trained with
the task's recipe (5 % flipped labels, as in the RUM suite), and 16 shadow
models with the same recipe: 8 on retain + forget (+ half of the held-out
negatives), 8 on the retain set alone. One LiRA audit per method then reuses
those shadows through the audit's checkpoint. Methods: the original model, a
retrain from another seed, RUM (``rum.unlearn`` defaults), auto
(``policy="auto"``) and single unlearners. Each is also scored with ToW
against the retrain oracle (which is the audits' ``reference=``), and the
audit's ranking of methods (by ``|AUC - 0.5|``) is compared with ToW's.
U-LiRA audits (the "with" shadows unlearned by the audited method first, 16
more shadows each) run for RUM and fine-tuning.

Scenarios: ``mixed`` is the RUM suite's (every flipped item plus as many
ordinary ones); ``class`` forgets every training item of one class, drawn per
seed with ``numpy.random.default_rng(seed + 2000)``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import rum
from benchmarks.tasks import Task, load_task, train

RESULTS = Path(__file__).resolve().parent / "results"
#: Where the shadows' checkpoints are kept (a re-run with the same settings trains none).
CACHE = Path(__file__).resolve().parent / ".cache"
SCENARIOS = ("mixed", "class")
SINGLES = ("finetune", "neggrad+", "random-label", "scrub")
#: Methods whose U-LiRA audit (the in shadows unlearned by the method itself) is run.
ULIRA = {"RUM": {}, "single:finetune": {"unlearner": "finetune"}}
ANOTHER_RETRAIN = "retrain (another seed)"
OTHER_SEED = 10_000


def forget_items(task: Task, scenario: str, seed: int) -> np.ndarray:
    """Training positions of the scenario's forget set."""
    if scenario == "mixed":
        from benchmarks.rum_suite import make_scenarios

        return make_scenarios(task, None, seed, ["mixed"])["mixed"]
    if scenario == "class":
        c = int(np.random.default_rng(seed + 2000).integers(0, int(task.y_train.max()) + 1))
        return np.flatnonzero(task.y_train == c)
    raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")


def methods() -> dict[str, dict]:
    out = {"original": None, ANOTHER_RETRAIN: {"unlearner": "retrain"}, "RUM": {}, "auto": {"policy": "auto"}}
    out.update({f"single:{u}": {"unlearner": u} for u in SINGLES})
    return out


class Recipe:
    """``train_fn`` for the audit: a fresh model of the task trained with its recipe (picklable)."""

    def __init__(self, task: Task):
        self.make_model, self.recipe = task.make_model, task.recipe

    def __call__(self, data):
        # the audit seeds torch's generator per shadow: the weights and the batch order follow it
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        return rum.fit(self.make_model(), data, device="cpu", random_state=seed, **self.recipe)


def run_case(task: Task, scenario: str, seed: int, n_shadows: int, ulira: bool, cache: Path) -> list[dict]:
    idx = forget_items(task, scenario, seed)
    keep = np.setdiff1d(np.arange(len(task.y_train)), idx)
    forget = (task.X_train[idx], task.y_train[idx])
    retain = (task.X_train[keep], task.y_train[keep])
    test = (task.X_test, task.y_test)
    common = dict(random_state=seed, device="cpu", progress=False)
    oracle = rum.unlearn(task.model, forget, retain, unlearner="retrain", **common, **task.recipe)
    recipe = Recipe(task)
    audit_kw = dict(retain_set=retain, test_set=test, train_fn=recipe, n_shadows=n_shadows,
                    random_state=seed, reference=oracle.model, progress=False)
    ckpt = cache / f"audit_{task.name}_{scenario}_s{seed}.npz"  # more shadows extend fewer
    # the shadows' work in items processed, over the original training's (the same recipe and epochs)
    from rum._audit._run import draw_negatives
    from rum._audit._shadows import is_in_shadow, negatives_in

    n_neg = len(draw_negatives(forget[1], test[1], seed)[0])
    items = sum(len(keep) + (len(idx) + int(negatives_in(n_neg, seed, k).sum()) if is_in_shadow(k) else 0)
                for k in range(n_shadows))
    work = items / len(task.y_train)
    rows = []
    for name, kw in methods().items():
        t0 = time.perf_counter()
        if kw is None:
            model, seconds = task.model, 0.0
        else:
            run_seed = seed + OTHER_SEED if kw.get("unlearner") == "retrain" else seed
            extra = task.recipe if kw.get("unlearner") == "retrain" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = rum.unlearn(task.model, forget, retain, **{**common, "random_state": run_seed},
                                  **kw, **extra)
            model, seconds = res.model, res.timings["total"]
        rep = rum.evaluate(model, forget_set=forget, retain_set=retain, test_set=test,
                           reference=oracle.model)
        t1 = time.perf_counter()
        a = rum.audit(model, forget, checkpoint=ckpt, **audit_kw)
        row = dict(
            task=task.name, seed=seed, scenario=scenario, method=name, n_forget=len(idx),
            n_train=len(task.y_train), cached=name == "original" and a.timings["shadows"] < 1.0,
            n_negatives=len(a.negatives), tow=rep.tow, forget_acc=rep.model.forget,
            forget_acc_ref=rep.reference.forget, mia=rep.model.mia, seconds=seconds,
            auc=a.auc, tpr1=a.attack["tpr@1%fpr"], tpr01=a.attack["tpr@0.1%fpr"],
            flagged=a.attack["flagged"], ref_auc=a.reference_auc,
            ref_tpr1=a.reference_attack["tpr@1%fpr"], ref_tpr01=a.reference_attack["tpr@0.1%fpr"],
            ref_flagged=a.reference_attack["flagged"],
            shadow_train_s=a.timings["train"], retrain_s=a.timings["retrain"],
            original_train_s=task.train_seconds, oracle_s=oracle.timings["total"],
            audit_s=time.perf_counter() - t1, n_shadows=n_shadows, work=work,
            # the audit's seconds beyond training its shadows (all of them, or none when cached)
            overhead_s=(a.timings["total"] - (a.timings["train"] if a.timings["shadows"] > 1 else 0.0)
                        if name == "original" else None),
        )
        if ulira and name in ULIRA:
            u = rum.audit(model, forget, unlearn=ULIRA[name], **audit_kw,
                          checkpoint=cache / f"ulira_{task.name}_{scenario}_s{seed}_{name}.npz")
            row.update(ulira_auc=u.auc, ulira_tpr1=u.attack["tpr@1%fpr"],
                       ulira_tpr01=u.attack["tpr@0.1%fpr"], ulira_flagged=u.attack["flagged"],
                       ulira_ref_auc=u.reference_auc, ulira_detect=float(np.mean(u.detectability)),
                       lira_detect=float(np.mean(a.detectability)),
                       ulira_unlearn_s=u.timings["unlearn"], ulira_train_s=u.timings["train"])
        rows.append(row)
        print(f"  {task.name} seed {seed} {scenario} {name}: ToW {rep.tow:.3f} AUC {a.auc:.3f}"
              f" (reference {a.reference_auc:.3f}) {time.perf_counter() - t0:.1f}s", flush=True)
    return rows


# -- the page -----------------------------------------------------------------------------------
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def _ms(values) -> str:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], float)
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {T975.get(len(v) - 1, 1.96) * v.std(ddof=1) / math.sqrt(len(v)):.3f}"


def _kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def summarise(rows: list[dict], tasks: list[str]) -> str:
    lines = []
    for tname in tasks:
        tr = [r for r in rows if r["task"] == tname]
        if not tr:
            continue
        seeds = sorted({r["seed"] for r in tr})
        k = tr[0]["n_shadows"]
        for scen in SCENARIOS:
            sr = [r for r in tr if r["scenario"] == scen]
            if not sr:
                continue
            meths = list(dict.fromkeys(r["method"] for r in sr))
            lines.append(f"### {tname}, {scen}: {k} shadows, mean ± 95 % CI over {len(seeds)} seed(s)\n")
            lines.append(f"Forget items: {sr[0]['n_forget']} (seed {seeds[0]}); held-out negatives: "
                         f"{sr[0]['n_negatives']}.\n")
            lines.append("| method | ToW | forget acc | AUC | TPR@1%FPR | TPR@0.1%FPR | flagged (p<1%) |")
            lines.append("|---|---|---|---|---|---|---|")
            for m in meths:
                mr = [r for r in sr if r["method"] == m]
                lines.append(f"| {m} | {_ms([r['tow'] for r in mr])} | {_ms([r['forget_acc'] for r in mr])} | "
                             f"{_ms([r['auc'] for r in mr])} | {_ms([r['tpr1'] for r in mr])} | "
                             f"{_ms([r['tpr01'] for r in mr])} | {_ms([r['flagged'] for r in mr])} |")
            ref = sr[:: len(meths)]  # the oracle's figures are the same in every row of a case
            lines.append(f"| retrain oracle (the audits' reference) | 1 | {_ms([r['forget_acc_ref'] for r in ref])} | "
                         f"{_ms([r['ref_auc'] for r in ref])} | {_ms([r['ref_tpr1'] for r in ref])} | "
                         f"{_ms([r['ref_tpr01'] for r in ref])} | {_ms([r['ref_flagged'] for r in ref])} |")
            lines.append("")
            ul = [r for r in sr if "ulira_auc" in r]
            if ul:
                lines.append("U-LiRA (the shadows trained with the forget set are unlearned by the method "
                             "itself first; the audited model is that method's):\n")
                lines.append("| method | LiRA AUC | U-LiRA AUC | U-LiRA TPR@1%FPR | U-LiRA reference AUC | "
                             "mean detectability LiRA -> U-LiRA |")
                lines.append("|---|---|---|---|---|---|")
                for m in dict.fromkeys(r["method"] for r in ul):
                    mr = [r for r in ul if r["method"] == m]
                    lines.append(f"| {m} | {_ms([r['auc'] for r in mr])} | {_ms([r['ulira_auc'] for r in mr])} | "
                                 f"{_ms([r['ulira_tpr1'] for r in mr])} | {_ms([r['ulira_ref_auc'] for r in mr])} | "
                                 f"{_ms([r['lira_detect'] for r in mr])} -> {_ms([r['ulira_detect'] for r in mr])} |")
                lines.append("")
            # agreement with ToW, on the methods' means (the original included)
            tow = [np.mean([r["tow"] for r in sr if r["method"] == m]) for m in meths]
            gap = [np.mean([abs(r["auc"] - 0.5) for r in sr if r["method"] == m]) for m in meths]
            flag = [np.mean([abs(r["flagged"] - r["ref_flagged"]) for r in sr if r["method"] == m])
                    for m in meths]
            tau, tau_f = _kendall(tow, [-g for g in gap]), _kendall(tow, [-f for f in flag])
            lines.append(
                f"Agreement with ToW's ranking of the {len(meths)} methods (Kendall's tau): "
                f"{tau:.2f} for -|AUC - 0.5|, {tau_f:.2f} for -|flagged - the oracle's flagged|. "
                f"Best by ToW: {meths[int(np.argmax(tow))]}; by AUC: {meths[int(np.argmin(gap))]}; "
                f"by flagged: {meths[int(np.argmin(flag))]}.\n"
            )
        # targets and costs, over every case of the task
        ref_aucs = [r["ref_auc"] for r in tr if r["method"] == "original"]
        other = [r["auc"] for r in tr if r["method"] == ANOTHER_RETRAIN]
        orig_mixed = [r["auc"] for r in tr if r["method"] == "original" and r["scenario"] == "mixed"]
        orig_class = [r["auc"] for r in tr if r["method"] == "original" and r["scenario"] == "class"]
        cases = [r for r in tr if r["method"] == "original"]
        retr = [r["shadow_train_s"] / r["retrain_s"] for r in cases]
        work = [r["work"] for r in cases]
        overhead = [r["overhead_s"] for r in cases]
        audit_s = [r["audit_s"] for r in tr if r["method"] != "original"]
        both = ref_aucs + other
        lines.append(f"Targets on {tname}:\n")
        lines.append(
            f"- Retrained model, AUC within 0.05 of 0.5: {_ms(both)} over the {len(both)} retrained "
            f"models audited (range {min(both):.3f}-{max(both):.3f}): the oracle of each case "
            f"{_ms(ref_aucs)}, a retrain from another seed {_ms(other)}."
        )
        if orig_mixed:
            lines.append(f"- Original model on the mixed forget set (memorised flipped labels): AUC "
                         f"{_ms(orig_mixed)}; on the class-wise forget set {_ms(orig_class)}.")
        lines.append(
            f"- Cost of {k} shadows: {_ms(work)} runs of the original training, counted in items "
            f"processed (same recipe and epochs; the shadows with the forget set also train on "
            f"half of the negatives). Timed: {_ms(retr)} times the mean seconds of a shadow "
            f"retrained on the retain set ({_ms([1 - r['n_forget'] / r['n_train'] for r in cases])} of "
            f"the training set). The audit's own seconds beyond training: {_ms(overhead)}; each "
            f"further audit on the same shadows (the checkpoint): {np.mean(audit_s):.2f} s."
        )
        lines.append("")
    return "\n".join(lines)


def report(rows: list[dict], tasks: list[str], *, cmd: str, wall_s: float, machine: str, ulira: bool) -> str:
    cached = sum(bool(r.get("cached")) for r in rows)
    note = (f" The LiRA shadows of {cached} of the {sum(r['method'] == 'original' for r in rows)} cases "
            "came from `benchmarks/.cache` (trained by an earlier run of the command; their "
            "seconds are those of that run)." if cached else "")
    return (
        f"## Audit: {', '.join(tasks)}\n\n"
        f"Command: `{cmd.strip()}`  \nMachine: {machine}  \n"
        f"Wall time: {wall_s:.0f} s, one torch thread (2 cores shared with other jobs).{note}\n\n"
        "AUC, TPR at 1 % and 0.1 % FPR: the LiRA attack of `rum.audit` on forget items against "
        "as many held-out test items with the same labels (0.5: the forget items look like test "
        "items). With about 100-200 negatives, 0.1 % FPR is zero false positives. Flagged: "
        "forget items whose p-value under \"never trained on it\" is below 1 %. ToW against the "
        "retrain oracle as in the RUM suite. "
        + ("U-LiRA rows re-train the shadows and unlearn them with the audited method. "
           if ulira else "")
        + "\n\n" + summarise(rows, tasks)
    )


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="digits", help="comma-separated: digits, tabular, mnist1d")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="1 seed, 4 shadows, no U-LiRA (the CI setting)")
    ap.add_argument("--no-ulira", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/")
    ap.add_argument("--fresh", action="store_true",
                    help="train every shadow anew (default: reuse those in benchmarks/.cache)")
    ap.add_argument("--section", default=None)
    args = ap.parse_args(argv)
    seeds = list(range(1 if args.quick else args.seeds))
    n_shadows = 4 if args.quick else args.shadows
    ulira = not (args.quick or args.no_ulira)
    tasks = args.tasks.split(",")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) if args.fresh else CACHE
            cache.mkdir(exist_ok=True)
            for tname in tasks:
                for seed in seeds:
                    task = train(load_task(tname, seed), seed)
                    for scen in SCENARIOS:
                        rows += run_case(task, scen, seed, n_shadows, ulira, cache)
    finally:
        torch.set_num_threads(threads_before)
    from benchmarks._report import machine, write_section

    cmd = "python -m benchmarks.audit " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = report(rows, tasks, cmd=cmd, wall_s=time.perf_counter() - t0, machine=machine(), ulira=ulira)
    if not args.no_write:
        section = args.section or ("audit-quick" if args.quick else "audit-" + "-".join(tasks))
        write_section(section, text)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"rows_{section}.json").write_text(json.dumps(rows, default=str))
    print(text)
    return text


if __name__ == "__main__":
    main()
