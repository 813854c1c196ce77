"""The benchmark suite's quick setting runs in CI and reports every method it promises."""

from __future__ import annotations

from benchmarks import rum_suite


def test_quick_suite_reports_rum_auto_and_singles_against_retrain():
    text = rum_suite.main(["--quick", "--no-write", "--fz-runs", "4", "--threads", "1"])
    for method in ("single:noop", "single:finetune", "RUM", "auto"):
        assert f"| {method} |" in text
    assert "| method | random | mem-high | mixed |" in text
    assert "- RUM: ToW >= best single unlearner on" in text
    assert "time" in text and "x retrain" in text
