"""Does RUM plan better with better memorization scores?

    python -m benchmarks.memorization_sources --threads 1     # 3 tasks x 9 scenarios x 3 seeds
    python -m benchmarks.memorization_sources --tasks digits --seeds 1 --no-write

RUM groups the forget set by a memorization score and gives each group an
unlearner by its rank. This benchmark runs the default ``rum`` policy on the
RUM suite's tasks and forget scenarios with the groups cut on other scores:

* ``neighbors`` (the default; label disagreement with the nearest retain items);
* ``confidence`` (post-hoc: one minus the model's confidence in the label);
* the training-dynamics proxies a :class:`rum.profiler.MemorizationRecorder`
  recorded while the model trained (``recorded:confidence``,
  ``recorded:max_confidence``);
* Feldman-Zhang memorization from 16 retrains on 70 % subsets, the ground
  truth the suite's scenarios are built from (far too costly to compute
  before an unlearning request; here as the ceiling of what a better score
  could buy).

Every row is scored against the same retrain oracle as the suite.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks.rum_suite import CLASSIC_SCENARIOS as SCENARIOS
from benchmarks.rum_suite import RESULTS, ci, run_task, time_ratio

#: Row label -> ``rum.unlearn`` arguments (resolved by :func:`benchmarks.rum_suite.with_memorization`).
SOURCES = {
    "neighbors (default)": {},
    "confidence (post-hoc)": {"memorization": "confidence"},
    "recorded confidence": {"memorization": "recorded:confidence"},
    "recorded max-confidence": {"memorization": "recorded:max_confidence"},
    "Feldman-Zhang (16 retrains)": {"memorization": "feldman-zhang"},
}


def _seed_means(rows: list[dict]) -> list[float]:
    """Mean ToW over the scenarios of each seed."""
    return [float(np.mean([r["tow"] for r in rows if r["seed"] == s])) for s in sorted({r["seed"] for r in rows})]


def summarise(rows: list[dict], tasks: list[str]) -> str:
    """A table of mean ToW per task, then each task's ToW per scenario."""
    n_seeds = len({r["seed"] for r in rows})
    lines = [
        f"Mean ToW against retrain over the 9 forget scenarios (± 95 % CI over {n_seeds} seed(s) "
        "of the per-seed means), and the mixed scenario's ToW. Time / retrain: total seconds over "
        "total retrain seconds, all tasks together (scores that are passed in cost RUM nothing; "
        "their own cost is outside it).\n",
        "| groups cut on | " + " | ".join(f"{t} | {t} mixed" for t in tasks) + " | mean over tasks | time / retrain |",
        "|---|" + "---|---|" * len(tasks) + "---|---|",
    ]
    for src in SOURCES:
        cells, means = [], []
        for t in tasks:
            mr = [r for r in rows if r["task"] == t and r["method"] == src]
            mu, h = ci(_seed_means(mr))
            means.append(mu)
            mixed = np.mean([r["tow"] for r in mr if r["scenario"] == "mixed"])
            cells.append(f"{mu:.3f}" + ("" if np.isnan(h) else f" ± {h:.3f}") + f" | {mixed:.3f}")
        ratio = time_ratio([r for r in rows if r["method"] == src])
        lines.append(f"| {src} | " + " | ".join(cells) + f" | {np.mean(means):.3f} | {ratio:.3f} |")
    for t in tasks:
        lines += ["", f"#### {t}: mean ToW per scenario\n",
                  "| groups cut on | " + " | ".join(SCENARIOS) + " |",
                  "|---|" + "---|" * len(SCENARIOS)]
        for src in SOURCES:
            vals = [np.mean([r["tow"] for r in rows if r["task"] == t and r["method"] == src
                             and r["scenario"] == s]) for s in SCENARIOS]
            lines.append(f"| {src} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    from benchmarks._report import machine, write_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="digits,mnist1d,tabular", help="comma-separated")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = args.tasks.split(",")
    t0 = time.perf_counter()
    rows = []
    for task in tasks:
        rows += run_task(task, list(range(args.seeds)), SCENARIOS, SOURCES, 16, "cpu", "small")
    cmd = "python -m benchmarks.memorization_sources " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:])
    text = (
        "## RUM with other memorization scores\n\n"
        f"Command: `{cmd.strip()}`  \nMachine: {machine()}  \n"
        f"Wall time: {time.perf_counter() - t0:.0f} s. Tasks, scenarios, seeds and oracle as in the "
        "RUM suite; only the scores RUM's groups are cut on change.\n\n" + summarise(rows, tasks)
    )
    if not args.no_write:
        write_section("memorization-sources", text)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "rows_memorization-sources.json").write_text(json.dumps(rows, default=str))
    print(text)
    return text


if __name__ == "__main__":
    main()
