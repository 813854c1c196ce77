"""Compare every registered unlearner (default settings) on the digits demo scenario.

For each seed: build ``rum.demo.digits_scenario(seed)``, retrain the oracle
with ``rum.demo.RECIPE``, run each unlearner with its defaults, and evaluate
against the oracle (forget/retain/test accuracy, MIA, ToW, ToW-MIA, seconds,
speed-up over the retrain measured in the same run). Reports mean and 95 %
Student-t confidence interval over seeds.

    python -m benchmarks.unlearners            # 5 seeds
    python -m benchmarks.unlearners --quick    # 3 seeds
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import rum
from rum.demo import RECIPE, digits_scenario

COLUMNS = ("forget", "retain", "test", "mia", "tow", "tow_mia", "seconds", "speedup")


def ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t confidence interval."""
    from scipy import stats

    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return float(a.mean()), float("nan")
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return float(a.mean()), float(half)


def run_seed(seed: int, names: list[str]) -> dict[str, dict[str, float]]:
    sc = digits_scenario(seed)
    common = dict(device="cpu", random_state=seed, progress=False)
    oracle = rum.unlearn(sc.model, sc.forget, sc.retain, unlearner="retrain", **RECIPE, **common)
    retrain_s = oracle.timings["total"]
    rows = {}
    for name in names:
        if name == "retrain":
            res = oracle
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = rum.unlearn(sc.model, sc.forget, sc.retain, unlearner=name, **common)
        rep = rum.evaluate(
            res.model, forget_set=sc.forget, retain_set=sc.retain, test_set=sc.test,
            reference=oracle.model, random_state=seed,
        )
        s = res.timings["total"]
        rows[name] = dict(
            forget=rep.model.forget, retain=rep.model.retain, test=rep.model.test,
            mia=rep.model.mia, tow=rep.tow, tow_mia=rep.tow_mia, seconds=s,
            speedup=retrain_s / max(s, 1e-9),
        )
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 5")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [0, 1, 2] if args.quick else [0, 1, 2, 3, 4]
    names = rum.list_unlearners()
    per_seed = []
    t0 = time.perf_counter()
    for seed in seeds:
        per_seed.append(run_seed(seed, names))
        print(f"seed {seed} done ({time.perf_counter() - t0:.0f}s)", flush=True)
    head = "| unlearner | forget acc | retain acc | test acc | MIA | ToW | ToW-MIA | seconds | speed-up vs retrain |"
    lines = [head, "|" + "---|" * 9]
    order = sorted(names, key=lambda n: -np.mean([r[n]["tow"] for r in per_seed]))
    for name in order:
        cells = []
        for col in COLUMNS:
            m, h = ci([r[name][col] for r in per_seed])
            if col == "seconds":
                cells.append(f"{m:.2f} ± {h:.2f}")
            elif col == "speedup":
                cells.append(f"{m:.1f}x ± {h:.1f}")
            else:
                cells.append(f"{m:.3f} ± {h:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    from benchmarks._report import machine, write_section

    cmd = "python -m benchmarks.unlearners" + (" --quick" if args.quick else "")
    body = "\n".join(
        [
            "## Unlearners on the digits demo",
            "",
            f"Command: `{cmd}`. Machine: {machine()}.",
            "",
            "Scenario: `rum.demo.digits_scenario(seed)` (MLP on scikit-learn digits, 5 % flipped "
            "labels; forget set = the flipped items plus ordinary ones, 10 % of the training "
            "set). Oracle: `retrain` with `rum.demo.RECIPE`. Every unlearner runs with its "
            f"default settings. Seeds {seeds}; mean ± 95 % Student-t CI. Accuracies are "
            "fractions; ToW and ToW-MIA are measured against the oracle of the same seed; "
            "speed-up = the oracle's seconds / the unlearner's seconds in the same run. Sorted "
            "by ToW.",
            "",
            *lines,
            "",
            NOTES,
        ]
    )
    write_section("unlearners", body)
    print(body)
    return body


NOTES = """Notes on the defaults (honest reading of the table):

- `retrain` is the oracle itself (ToW 1 by definition).
- Seconds were measured on a shared 2-core virtual machine whose speed varies between runs
  (an earlier run of this table measured about a quarter of these seconds), with one torch
  thread; hence the wide intervals. Every unlearner except `retrain` runs in well
  under a second here; the speed-ups are ratios within each seed's run.
- `l1-sparse` and `scrub` defaults were tuned on this scenario over seeds 0-5, `salun` over
  seeds 0-2 (grids in their docstrings), so their rows here are optimistic: the same seeds
  were used for tuning. `l1-sparse` is sensitive to the number of optimiser steps: its L1
  pull per step is `lr * alpha`, so on a much larger retain set lower `alpha` or `epochs`.
  `scrub` has a sharp threshold in `msteps` (2 max passes barely move, 3 forget) and in
  `lr` (0.05 wrecks test accuracy), and its max pass grows with the forget-set size.
- Sanity check off the tuning scenario (one seed, not part of this benchmark): an MLP
  (256 hidden) on mnist1d, 3,000 items, 5 % flipped labels, forget = 300 items. ToW against
  retrain: l1-sparse 0.66, random-label 0.70, neggrad+ 0.62, salun 0.56, noop 0.31,
  finetune 0.31, neggrad 0.31, **scrub 0.29** (it overshoots: test accuracy 0.34 against the
  oracle's 0.57; use `lr=0.005`-`0.01` or `msteps=2` on larger forget sets).
- `finetune` (paper defaults, lr 0.01) and `neggrad` are weak here: they leave most
  memorised mislabeled items remembered, as the lessons of early experiments predicted.
  Larger `lr` for `neggrad` quickly destroys test accuracy.
- `ssd`, `bad-teacher`, `boundary-shrink` and `unsir` (added in 0.2.0) were not tuned on
  this scenario: their defaults come from three models and three forget scenarios (the
  defaults check below, seeds 0-1). This forget set mixes memorised mislabeled items with
  ordinary ones, which none of them is made for: `ssd` barely moves it (it dampens
  weights specific to the forget set, and these items share their weights with their
  classes), `boundary-shrink` and `unsir` are class-wise methods, and `bad-teacher` pushes
  every forget item towards a random network's near-uniform output, ordinary items too.
- The rows of the earlier unlearners differ from the previous run of this table in the
  third digit (MIA, a few accuracies) because the host differs: scrub, salun, random-label,
  neggrad+, finetune and l1-sparse give bit-identical weights before and after the 0.2.0
  additions (checked by hash on seed 1).
- Single unlearners treat the whole mixed forget set alike; RUM plans split it by
  memorization and give each group its own unlearner."""


if __name__ == "__main__":
    main()
