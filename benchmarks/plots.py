"""Figures for the RUM suite: ToW per method and scenario, from the rows the suite saved.

    python -m benchmarks.plots      # after python -m benchmarks.rum_suite

Reads ``benchmarks/results/rows_rum-suite-*.json``, writes
``docs/img/rum-suite-<task>.png`` and a ``rum-suite-plots`` section of
docs/benchmarks.md that shows them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks._report import write_section
from benchmarks.rum_suite import DEFAULT_SEEDS, RESULTS, SCENARIOS
from benchmarks.tasks import TASKS

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def plot_task(rows: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if not m.startswith("RUM^F")]
    scen = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(methods)
    cmap = plt.get_cmap("tab20")
    for j, m in enumerate(methods):
        means = [np.mean([r["tow"] for r in rows if r["scenario"] == s and r["method"] == m] or [np.nan])
                 for s in scen]
        style = dict(edgecolor="black", linewidth=1.2) if m in ("RUM", "auto") else {}
        ax.bar(np.arange(len(scen)) + j * width, means, width, label=m, color=cmap(j % 20), **style)
    ax.set_xticks(np.arange(len(scen)) + 0.4 - width / 2)
    ax.set_xticklabels(scen)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("ToW against retrain (mean over seeds)")
    ax.set_title(f"{task}: single unlearners, RUM and auto per forget scenario")
    ax.legend(ncol=6, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.32))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_table(rows: list[dict]) -> str:
    """Mean ToW of every method on every task, and across tasks."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = ["| method | " + " | ".join(tasks) + " | mean over tasks | worst task |",
           "|---" * (len(tasks) + 3) + "|"]
    scored = []
    for m in methods:
        per = [np.mean([r["tow"] for r in rows if r["task"] == t and r["method"] == m]) for t in tasks]
        scored.append((np.mean(per), m, per))
    for mean, m, per in sorted(scored, key=lambda x: -x[0]):
        out.append(f"| {m} | " + " | ".join(f"{v:.3f}" for v in per) + f" | {mean:.3f} | {min(per):.3f} |")
    return "\n".join(out)


def summary_section(rows: list[dict]) -> str:
    """The ``rum-suite-summary`` section: how the rows were made, then :func:`summary_table`."""
    seeds = sorted({len({r["seed"] for r in rows if r["task"] == t}) for t in {r["task"] for r in rows}})
    scen = len({r["scenario"] for r in rows})
    n = " or ".join(map(str, seeds))
    flag = f" --seeds {seeds[0]}" if len(seeds) == 1 and seeds[0] != DEFAULT_SEEDS else ""
    return (
        "## RUM suite: summary across tasks\n\nCommand: `python -m benchmarks.plots` (reads the "
        f"rows saved by `python -m benchmarks.rum_suite --tasks <task> --threads 1{flag}`, one run "
        f"per task, below). Mean ToW against retrain over the {scen} forget scenarios and {n} "
        "seeds of each task, sorted by the mean over tasks. `retrain (another seed)` is the same "
        "recipe retrained from another seed: how close two retrains get, the ceiling for every "
        "other row.\n\n" + summary_table(rows)
    )


def full_runs(cache: Path = RESULTS) -> list[Path]:
    """The rows files of full small runs (``rows_rum-suite-<task>[-<task>...].json``).

    The quick, large and partial runs save rows too, under names of their own;
    they are left out of the summary and the figures.
    """
    prefix = "rows_rum-suite-"
    return [f for f in sorted(cache.glob(prefix + "*.json"))
            if all(t in TASKS for t in f.stem.removeprefix(prefix).split("-"))]


def main() -> None:
    lines = []
    all_rows: list[dict] = []
    for f in full_runs():
        rows = json.loads(f.read_text())
        all_rows += rows
        for task in dict.fromkeys(r["task"] for r in rows):
            out = IMG / f"rum-suite-{task}.png"
            plot_task([r for r in rows if r["task"] == task], task, out)
            lines.append(f"![ToW per scenario on {task}](img/{out.name})\n")
            print("wrote", out)
    if not all_rows:
        print(f"no rows of a full suite run in {RESULTS}: run python -m benchmarks.rum_suite "
              "(or one task of it, --tasks <task>) first; nothing was written")
        return
    write_section("rum-suite-summary", summary_section(all_rows))
    if lines:
        write_section(
            "rum-suite-plots",
            "### Figures\n\nCommand: `python -m benchmarks.plots` (from the rows the suite "
            "runs above saved). Bars: mean ToW over seeds; outlined: RUM and auto.\n\n"
            + "\n".join(lines),
        )


if __name__ == "__main__":
    main()
