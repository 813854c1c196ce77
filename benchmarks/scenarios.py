"""The forget scenarios of the field, one table per family: doing nothing, RUM and auto.

    python -m benchmarks.scenarios --tasks digits,tabular,bn-cnn --seeds 5 --threads 1
    python -m benchmarks.scenarios --tasks mnist1d --seeds 3 --threads 1 --rows /tmp/m.json --no-write
    python -m benchmarks.scenarios --from-rows a.json,b.json     # one page from several runs

Families (``benchmarks.rum_suite.FAMILIES``): random at 1 %, 5 % and 10 % of the
training set; class-wise (every item of one class, the seed's class modulo the
number of classes); sub-class (one k-means cluster of one class); and the RUM
paper's mixed set (every flipped item plus as many ordinary ones). Tasks: the
suite's digits MLP, breast-cancer MLP and mnist1d 1-D CNN (all Adam) and a
BatchNorm CNN on digits trained with SGD and momentum (``bn-cnn``). Every method
is scored against the model retrained on the retain set (``benchmarks.rum_suite``).

Besides ToW and time, the page measures the forget-set check of the profiler
(``profile.check``): it keeps the model when the forget items already behave
like held-out items. Whether that was right is read off the retrained model:
keeping is right when the original's forget accuracy is within the check's
tolerance (0.02) of the retrained model's.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.rum_suite import FAMILIES, RESULTS, ci, methods, run_task, time_ratio
from benchmarks.tasks import TASKS

#: The scenarios of this page, family by family.
SCENARIO_NAMES = [s for fam in ("random", "class-wise", "sub-class", "mixed") for s in FAMILIES[fam]]
#: The methods of this page.
METHODS = ("single:noop", "RUM", "auto")
#: "Keeping the model is right" when the original's forget accuracy is this close to the oracle's.
KEEP_TOLERANCE = 0.02
#: The random family's target: RUM and auto no worse than doing nothing by more than this.
NOOP_SLACK = 0.005


def _cell(values: list[float]) -> str:
    mu, h = ci(values)
    return f"{mu:.3f}" + ("" if np.isnan(h) else f" ± {h:.3f}")


def family_table(rows: list[dict], family: str, tasks: list[str]) -> str:
    """Mean ToW and time of doing nothing, RUM and auto on one family, one row per task."""
    scen = FAMILIES[family]
    out = ["| task | seeds | noop ToW | RUM ToW | auto ToW | RUM time / retrain | "
           "auto time / retrain | auto time / RUM time | auto ToW - RUM ToW |",
           "|---|---|---|---|---|---|---|---|---|"]
    for t in tasks:
        fr = [r for r in rows if r["task"] == t and r["scenario"] in scen]
        if not fr:
            continue
        by = {m: [r for r in fr if r["method"] == m] for m in METHODS}
        if not all(by.values()):
            continue
        tow = {m: [r["tow"] for r in by[m]] for m in METHODS}
        rum_s = sum(r["seconds"] for r in by["RUM"])
        auto_s = sum(r["seconds"] for r in by["auto"])
        out.append(
            f"| {t} | {len({r['seed'] for r in fr})} | {_cell(tow['single:noop'])} | "
            f"{_cell(tow['RUM'])} | {_cell(tow['auto'])} | {time_ratio(by['RUM']):.3f} | "
            f"{time_ratio(by['auto']):.3f} | {auto_s / max(rum_s, 1e-9):.2f} | "
            f"{np.mean(tow['auto']) - np.mean(tow['RUM']):+.3f} |"
        )
    return "\n".join(out)


def per_scenario_table(rows: list[dict], tasks: list[str], scen: list[str]) -> str:
    """Mean ToW of each method on each scenario of a family (one row per task and method)."""
    out = ["| task | method | " + " | ".join(scen) + " |", "|---|---|" + "---|" * len(scen)]
    for t in tasks:
        for m in METHODS:
            cells = [[r["tow"] for r in rows if r["task"] == t and r["method"] == m and r["scenario"] == s]
                     for s in scen]
            if not any(cells):
                continue
            out.append(f"| {t} | {m} | " + " | ".join(_cell(c) if c else "" for c in cells) + " |")
    return "\n".join(out)


def _pairs(rows: list[dict], method: str, scen: list[str]) -> list[tuple[dict, dict]]:
    """(method row, noop row) for every task, seed and scenario in ``scen``."""
    noop = {(r["task"], r["seed"], r["scenario"]): r for r in rows if r["method"] == "single:noop"}
    return [(r, noop[(r["task"], r["seed"], r["scenario"])]) for r in rows
            if r["method"] == method and r["scenario"] in scen
            and (r["task"], r["seed"], r["scenario"]) in noop]


def targets(rows: list[dict], tasks: list[str]) -> str:
    """The issue's targets, each with what was reached."""
    lines = []
    for m in ("RUM", "auto"):
        pairs = _pairs(rows, m, FAMILIES["random"])
        bad = [(r["task"], r["seed"], r["scenario"], r["tow"] - n["tow"]) for r, n in pairs
               if r["tow"] < n["tow"] - NOOP_SLACK]
        lines.append(
            f"- Random family, {m}: ToW >= noop's - {NOOP_SLACK} on {len(pairs) - len(bad)} of "
            f"{len(pairs)} (task, seed, scenario)"
            + (": misses " + ", ".join(f"{t} s{s} {sc} ({d:+.3f})" for t, s, sc, d in bad)
               if bad else "") + "."
        )
    for m in ("RUM", "auto"):
        back = [f"{r['task']} s{r['seed']} {r['scenario']}" for r in rows
                if r["method"] == m and r.get("kept") and r.get("check") != "like-held-out"]
        lines.append(f"- {m} kept the model after its plan lost more than 0.10 of retain "
                     f"accuracy in {len(back)} case(s)" + (f": {', '.join(back)}." if back else "."))
    for t in tasks:
        for m in ("RUM", "auto"):
            cw = [r for r in rows if r["task"] == t and r["method"] == m and r["scenario"] == "class-wise"]
            if cw:
                lines.append(
                    f"- Class-wise, {t}, {m}: ToW {np.mean([r['tow'] for r in cw]):.3f} "
                    f"(min {min(r['tow'] for r in cw):.3f}) at {time_ratio(cw):.3f}x retrain time."
                )
    for t in tasks:
        mx = {m: [r["tow"] for r in rows if r["task"] == t and r["method"] == m and r["scenario"] == "mixed"]
              for m in ("RUM", "auto")}
        if mx["RUM"]:
            lines.append(f"- Mixed, {t}: RUM ToW {np.mean(mx['RUM']):.3f}, auto {np.mean(mx['auto']):.3f}.")
    return "\n".join(lines)


def check_agreement(rows: list[dict], tasks: list[str]) -> str:
    """How often the forget-set check's "keep the model" agrees with the retrained model."""
    out = ["| task | method | cases | kept | keeping was right (oracle) | agree | kept wrongly | "
           "not kept, keeping was right | mean forget-accuracy gap where kept wrongly |",
           "|---|---|---|---|---|---|---|---|---|"]
    scen = [s for s in SCENARIO_NAMES if s != "class-wise"]
    for t in [*tasks, "all"]:
        for m in ("RUM", "auto"):
            pairs = [(r, n) for r, n in _pairs(rows, m, scen) if t == "all" or r["task"] == t]
            if not pairs:
                continue
            # kept by the check (a model kept after its plan lost retain accuracy is not)
            kept = np.array([bool(r.get("kept")) and r.get("check") == "like-held-out"
                             for r, _ in pairs])
            right = np.array([abs(n["forget"] - n["forget_ref"]) <= KEEP_TOLERANCE for _, n in pairs])
            wrong = kept & ~right
            gaps = [abs(n["forget"] - n["forget_ref"]) for (_, n), w in zip(pairs, wrong) if w]
            loss = f"{np.mean(gaps):.3f}" if gaps else "-"
            out.append(f"| {t} | {m} | {len(pairs)} | {kept.sum()} | {right.sum()} | "
                       f"{np.mean(kept == right):.2f} | {wrong.sum()} | {(~kept & right).sum()} | {loss} |")
    return "\n".join(out)


def report(rows: list[dict], tasks: list[str], *, cmd: str, machine: str, wall_s: float | None) -> str:
    parts = [f"## Forget scenarios: {', '.join(tasks)}\n",
             f"Command: `{cmd.strip()}`  \nMachine: {machine}"
             + ("" if wall_s is None else f"  \nWall time: {wall_s:.0f} s") + "\n",
             "Mean ToW against the retrained model ± 95 % CI over seeds and the family's "
             "scenarios; time / retrain: total seconds (profile + plan + execute) over the "
             "retrain oracle's, over the same runs.\n"]
    for fam in ("random", "class-wise", "sub-class", "mixed"):
        parts += [f"### {fam}\n", family_table(rows, fam, tasks), ""]
        if len(FAMILIES[fam]) > 1:
            parts += [per_scenario_table(rows, tasks, FAMILIES[fam]), ""]
    parts += ["### Targets\n", targets(rows, tasks), "",
              "### The forget-set check against the retrained model\n",
              "Over every non-class-wise case (task, seed, scenario): `kept` is how often the "
              "plan kept the model; keeping was right where the original's forget accuracy is "
              f"within {KEEP_TOLERANCE} of the retrained model's. The last column: how far the "
              "original's forget accuracy was from the retrained model's where the model was "
              "kept wrongly (what keeping cost in the forget term of ToW).\n",
              check_agreement(rows, tasks), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> str:
    from benchmarks._report import machine, write_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="digits,tabular,bn-cnn", help="comma-separated subset of: " + ",".join(TASKS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", default=None, help="also save the rows here")
    ap.add_argument("--from-rows", default=None, help="comma-separated row files: report only, run nothing")
    ap.add_argument("--section", default="scenarios")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    cmd = "python -m benchmarks.scenarios " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.from_rows:
        rows = [r for p in args.from_rows.split(",") for r in json.loads(Path(p).read_text())]
        tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
        wall = None
    else:
        tasks = args.tasks.split(",")
        if args.threads:
            torch.set_num_threads(args.threads)
        meths = {m: kw for m, kw in methods(False).items() if m in METHODS}
        t0 = time.perf_counter()
        rows = []
        for t in tasks:
            rows += run_task(t, list(range(args.seeds)), SCENARIO_NAMES, meths, 0, "cpu", "small")
        wall = time.perf_counter() - t0
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, default=str))
    text = report(rows, tasks, cmd=cmd, machine=machine(), wall_s=wall)
    if not args.no_write:
        write_section(args.section, text)
        if not args.from_rows:  # rows read from files are kept where they are
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"rows_{args.section}.json").write_text(json.dumps(rows, default=str))
    print(text)
    return text


if __name__ == "__main__":
    main()
