"""The forget-scenarios page counts its targets and the check's agreement as it says."""

from __future__ import annotations

from benchmarks.rum_suite import CLASSIC_SCENARIOS, FAMILIES, SCENARIOS
from benchmarks.scenarios import SCENARIO_NAMES, check_agreement, targets


def _row(task, seed, scenario, method, tow, forget=1.0, forget_ref=1.0, kept=False):
    return dict(task=task, seed=seed, scenario=scenario, method=method, tow=tow, forget=forget,
                forget_ref=forget_ref, kept=kept, seconds=1.0, retrain_s=10.0,
                check="like-held-out" if kept else "to-unlearn")


def test_the_new_scenarios_leave_the_first_full_runs_alone():
    assert SCENARIOS[:9] == CLASSIC_SCENARIOS and "subgroup" in CLASSIC_SCENARIOS
    assert set(SCENARIO_NAMES) == {"random-1", "random-5", "random", "class-wise", "subgroup", "mixed"}
    assert all(s in SCENARIOS for fam in FAMILIES.values() for s in fam)


def test_random_target_counts_each_case_below_noop_by_more_than_the_slack():
    rows = [
        _row("t", 0, "random", "single:noop", 0.90), _row("t", 0, "random", "RUM", 0.896),
        _row("t", 0, "random", "auto", 0.95),
        _row("t", 1, "random-1", "single:noop", 0.90), _row("t", 1, "random-1", "RUM", 0.894),
        _row("t", 1, "random-1", "auto", 0.90),
    ]
    text = targets(rows, ["t"])
    assert "RUM: ToW >= noop's - 0.005 on 1 of 2" in text and "t s1 random-1 (-0.006)" in text
    assert "auto: ToW >= noop's - 0.005 on 2 of 2" in text


def test_check_agreement_reads_the_oracle_off_the_noop_row():
    rows = [
        # kept, and the original's forget accuracy matches the retrained model's: right
        _row("t", 0, "random", "single:noop", 0.99, forget=1.0, forget_ref=0.99),
        _row("t", 0, "random", "RUM", 0.99, kept=True),
        # kept, but the retrained model gets 10 points fewer right: kept wrongly
        _row("t", 1, "random", "single:noop", 0.90, forget=1.0, forget_ref=0.90),
        _row("t", 1, "random", "RUM", 0.90, kept=True),
        # not kept where keeping was wrong: agrees
        _row("t", 2, "mixed", "single:noop", 0.5, forget=1.0, forget_ref=0.5),
        _row("t", 2, "mixed", "RUM", 0.9),
    ]
    line = next(x for x in check_agreement(rows, ["t"]).splitlines() if x.startswith("| t | RUM"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:] == ["3", "2", "1", "0.67", "1", "0", "0.100"]
