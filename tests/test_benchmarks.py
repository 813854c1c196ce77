"""The benchmark suite's quick setting runs in CI and reports every method it promises."""

from __future__ import annotations

import pytest

import rum
from benchmarks import rum_suite

pytestmark = pytest.mark.slow  # the benchmark harness


def test_quick_suite_reports_rum_auto_and_singles_against_retrain():
    text = rum_suite.main(["--quick", "--no-write", "--fz-runs", "4", "--threads", "1"])
    for method in ("single:noop", "single:finetune", "RUM", "auto"):
        assert f"| {method} |" in text
    assert "| method | random | mem-high | mixed |" in text
    assert "- RUM: ToW >= best single unlearner on" in text
    assert "time" in text and "x retrain" in text
    # the noise ceiling is a real second retrain: another seed, so not the oracle's own weights
    row = next(line for line in text.splitlines() if line.startswith(f"| {rum_suite.ANOTHER_RETRAIN} |"))
    mean_tow = float(row.split("|")[-4])
    assert 0.5 < mean_tow < 1.0
    assert "- Noise ceiling: retraining with another seed scores mean ToW" in text


def test_auto_target_estimators_are_the_brute_force_neighbour_agreement():
    import numpy as np
    import torch

    from benchmarks.auto_targets import K, first_hidden, label_agreement

    g = torch.Generator().manual_seed(0)
    keys, query = torch.randn(60, 5, generator=g), torch.randn(7, 5, generator=g)
    yk, yq = torch.randint(0, 3, (60,), generator=g), torch.randint(0, 3, (7,), generator=g)
    cos = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(keys, dim=1).T
    nearest = cos.topk(K, dim=1).indices
    want = (yk[nearest] == yq[:, None]).float().mean(1).numpy()
    np.testing.assert_allclose(label_agreement(query, yq, keys, yk), want)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert torch.equal(first_hidden(net, keys), torch.relu(net[0](keys)).detach())
    assert first_hidden(torch.nn.Sequential(torch.nn.Linear(5, 2)), keys) is None


def test_calibrated_target_is_the_held_out_accuracy_at_the_same_agreement():
    import numpy as np

    from benchmarks.auto_targets import calibrated

    # held out: wrong below agreement 0.5, right above it, except one miss at 0.7, which
    # pools with 0.6 (an accuracy of 1/2 there); in between, linear; outside, clipped
    agree = np.array([0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    correct = np.array([0, 0, 0, 0, 1, 0, 1, 1], float)
    got = calibrated(np.array([0.05, 0.45, 0.65, 0.85, 0.95]), agree, correct)
    np.testing.assert_allclose(got, [0.0, 0.25, 0.5, 1.0, 1.0])
    # monotone in agreement, inside [0, 1], whatever the held-out pattern
    rng = np.random.default_rng(0)
    a, c = rng.random(50), (rng.random(50) < 0.6).astype(float)
    q = np.sort(rng.random(30))
    out = calibrated(q, a, c)
    assert np.all(np.diff(out) >= -1e-12) and out.min() >= 0 and out.max() <= 1


def test_targets_count_rum_or_auto_per_scenario_against_the_best_single():
    # three scenarios: RUM wins "a", auto wins "b", neither reaches the bar on "c"
    tow = {"single:x": (0.8, 0.8, 0.8), "RUM": (0.9, 0.7, 0.7), "auto": (0.6, 0.85, 0.79)}
    rows = [
        {"task": "t", "seed": seed, "scenario": s, "method": m, "tow": v, "tow_mia": v,
         "seconds": 1.0, "retrain_s": 2.0 + 4 * seed, "profile_s": 0.1}
        for m, vals in tow.items() for s, v in zip("abc", vals) for seed in (0, 1)
    ]
    text = rum_suite.summarise(rows, ["t"], list("abc"), dict.fromkeys(tow))
    assert "- RUM: ToW >= best single unlearner on 1/3 scenarios" in text
    assert "- auto: ToW >= best single unlearner on 1/3 scenarios" in text
    assert "- RUM or auto, the better of the two on each scenario: ToW >= best single unlearner on 2/3" in text
    # total seconds over total retrain seconds (2 / 8), not the mean of the ratios (1/2 + 1/6) / 2
    assert "time 0.250x retrain" in text


def test_memorization_sources_resolve_to_ground_truth_or_recorded_scores():
    import numpy as np
    import torch

    from benchmarks.tasks import Task
    from rum.profiler import MemorizationRecorder

    rec = MemorizationRecorder(4)
    # items 0-3 seen once: confident and right, right, unsure, wrong
    rec(0, torch.arange(4), torch.tensor([[4.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 3.0]]), torch.zeros(4, dtype=torch.long))
    task = Task("t", None, None, None, None, None, None, {}, recorder=rec)
    mem, idx = np.array([0.0, 0.1, 0.5, 0.9]), np.array([3, 1])
    fz = rum_suite.with_memorization({"memorization": "feldman-zhang", "epochs": 2}, task, mem, idx)
    assert fz["memorization"].tolist() == [0.9, 0.1] and fz["epochs"] == 2
    got = rum_suite.with_memorization({"memorization": "recorded:correctness"}, task, mem, idx)
    assert got["memorization"].tolist() == [1.0, 0.0]  # item 3 was wrong, item 1 right
    conf = rum_suite.with_memorization({"memorization": "recorded:confidence"}, task, mem, idx)["memorization"]
    assert conf[0] > 0.9 and 0.2 < conf[1] < 0.3  # 1 - softmax confidence in label 0
    for kw in ({}, {"memorization": "neighbors"}):
        assert rum_suite.with_memorization(kw, task, mem, idx) == kw


def test_memorization_sources_table_averages_scenarios_per_seed_then_seeds():
    from benchmarks import memorization_sources as ms

    rows = [
        {"task": "t", "seed": seed, "scenario": s, "method": m, "tow": tow,
         "seconds": 1.0, "retrain_s": 4.0}
        for m in ms.SOURCES for seed, tow0 in ((0, 0.6), (1, 0.8))
        for s, tow in zip(rum_suite.SCENARIOS, [tow0] * 8 + [tow0 + 0.09])
    ]
    text = ms.summarise(rows, ["t"])
    # per-seed means 0.61 and 0.81; 95 % CI with 1 degree of freedom: 12.706 * 0.1 = 1.271
    assert "| neighbors (default) | 0.710 ± 1.271 | 0.700 | 0.710 | 0.250 |" in text


def test_recording_while_training_leaves_the_model_unchanged():
    import numpy as np
    import torch

    from benchmarks.tasks import load_task, train

    def short(seed):
        task = load_task("tabular", seed)
        task.recipe = {**task.recipe, "epochs": 8}
        return task

    plain = train(short(0), 0)
    watched = train(short(0), 0, record=True)
    assert plain.recorder is None
    for a, b in zip(plain.model.state_dict().values(), watched.model.state_dict().values()):
        assert torch.equal(a, b)
    assert watched.recorder.epochs == 8
    assert np.isfinite(watched.recorder.scores("correctness")).all()  # every item was recorded


def test_suite_summary_names_the_seeds_and_scenarios_its_rows_have():
    from benchmarks.plots import summary_section
    from benchmarks.rum_suite import DEFAULT_SEEDS

    def rows(n_seeds, scenarios=("random", "mixed")):
        return [dict(task=t, seed=s, scenario=sc, method=m, tow=0.5 + 0.1 * (m == "RUM"))
                for t in ("digits", "tabular") for s in range(n_seeds) for sc in scenarios
                for m in ("RUM", "auto")]

    two = summary_section(rows(2))
    assert "--threads 1 --seeds 2`" in two and "over the 2 forget scenarios and 2 seeds" in two
    full = summary_section(rows(DEFAULT_SEEDS, ("random",)))
    assert "--seeds" not in full
    assert f"over the 1 forget scenarios and {DEFAULT_SEEDS} seeds" in full
    assert full.index("| RUM | 0.600 | 0.600 | 0.600 | 0.600 |") < full.index("| auto | 0.500")


def test_a_run_of_a_few_scenarios_forgets_the_same_items_as_the_full_run():
    import numpy as np
    import pytest

    from benchmarks.tasks import load_task, train

    task = load_task("tabular", 0)
    task.recipe = {**task.recipe, "epochs": 5}
    task = train(task, 0)
    mem = np.random.default_rng(0).random(len(task.y_train))
    full = rum_suite.make_scenarios(task, mem, 0, rum_suite.SCENARIOS)
    assert list(full) == rum_suite.SCENARIOS
    # random, mixed and subgroup draw from one generator: asking for a later one alone
    # must not give it the draws of the earlier ones
    for names in (["subgroup"], ["mixed", "es-high"], ["mem-high", "random"]):
        part = rum_suite.make_scenarios(task, mem if "mem-high" in names else None, 0, names)
        assert list(part) == names
        for name in names:
            np.testing.assert_array_equal(part[name], full[name])
    assert not rum_suite.needs_memorization(["random", "mixed"], {"RUM": {}})
    assert rum_suite.needs_memorization(["random", "mem-low"], {"RUM": {}})
    assert rum_suite.needs_memorization(["random"], {"RUM": {"memorization": "feldman-zhang"}})
    with pytest.raises(ValueError, match="need the memorization"):
        rum_suite.make_scenarios(task, None, 0, ["mem-low"])
    with pytest.raises(ValueError, match="unknown scenario"):
        rum_suite.make_scenarios(task, mem, 0, ["mem-lowest"])


def test_large_quick_and_partial_runs_never_replace_the_full_runs_tables(tmp_path):
    import argparse

    import pytest

    from benchmarks.plots import full_runs
    from benchmarks.tasks import load_task

    def section(tasks, **kw):
        args = {"quick": False, "scale": "small", "scenarios": None, "methods": None, **kw}
        return rum_suite.default_section(argparse.Namespace(**args), tasks)

    assert section(["mnist1d"]) == "rum-suite-mnist1d"
    assert section(["digits", "tabular"]) == "rum-suite-digits-tabular"
    assert section(["mnist1d"], scale="large") == "rum-suite-large-mnist1d"
    assert section(["digits"], methods="RUM,auto") == "rum-suite-partial-digits"
    assert section(["digits"], quick=True) == "rum-suite-quick"
    for s in ("mnist1d", "digits-tabular", "large-mnist1d", "partial-digits", "quick"):
        (tmp_path / f"rows_rum-suite-{s}.json").write_text("[]")
    assert [f.name for f in full_runs(tmp_path)] == [
        "rows_rum-suite-digits-tabular.json", "rows_rum-suite-mnist1d.json"]
    with pytest.raises(ValueError, match="mnist1d only"):
        load_task("digits", 0, scale="large")


def test_the_suite_names_the_choices_when_a_method_or_scenario_is_unknown(capsys):
    import pytest

    for flag, wrong, known in (("--methods", "RUM,rum", "single:neggrad+"),
                               ("--scenarios", "random,memo-high", "mem-high"),
                               ("--tasks", "digits,mnist", "mnist1d")):
        with pytest.raises(SystemExit):
            rum_suite.main([flag, wrong, "--no-write"])
        err = capsys.readouterr().err
        assert f"{flag}: unknown ['{wrong.split(',')[1]}']" in err and known in err
    with pytest.raises(SystemExit):
        rum_suite.main(["--scale", "large", "--tasks", "digits", "--no-write"])
    assert "--scale large exists for mnist1d only" in capsys.readouterr().err


def test_a_partial_run_says_which_singles_it_ran_and_whether_it_needed_feldman_zhang():
    def text(meths, scenarios, scale="small"):
        rows = [{"task": "mnist1d", "seed": 0, "scenario": s, "method": m, "tow": 0.9, "tow_mia": 0.9,
                 "seconds": 1.0, "retrain_s": 10.0, "profile_s": 0.1} for m in meths for s in scenarios]
        return rum_suite.report(rows, ["mnist1d"], scenarios, meths, cmd="python -m benchmarks.rum_suite",
                                wall_s=5, fz_runs=16, scale=scale, machine="here")

    part = {m: {} for m in ("RUM", "single:finetune")}
    small = text(part, ["random"])
    assert "no scenario of this run needs Feldman-Zhang" in small
    assert "best single unlearner this run ran on that scenario" in small
    assert small.startswith("## RUM suite: mnist1d (RUM, single:finetune)\n")  # a partial run says which
    large = text(part, ["random", "mem-high"], scale="large")
    assert large.startswith("## RUM suite: mnist1d at the large scale (40,000 samples) (RUM, single:finetune)\n")
    assert "Feldman-Zhang with 16 runs" in large
    full = text(rum_suite.methods(False), ["random"])
    assert full.startswith("## RUM suite: mnist1d\n")
    assert "best single unlearner on that scenario" in full
    alone = text({"auto": {}}, ["random"])  # no single unlearner ran: there is nothing to count wins against
    assert "- auto: time 0.100x retrain" in alone and "ToW >= best single" not in alone


def test_optional_methods_run_only_when_named_and_cap_every_repair_candidate(capsys):
    import pytest

    from rum.planner.auto import AUTO_REPAIR

    optional = rum_suite.optional_methods()
    assert not set(optional) & set(rum_suite.methods(False))  # a full run never includes them
    policy = optional["auto:repair-8192"]["policy"]
    assert isinstance(policy, rum.policies.Auto)
    assert [(n, {k: v for k, v in p.items() if k != "retain_per_epoch"}) for n, p in policy.repair] \
        == [(n, p) for n, p in AUTO_REPAIR]
    assert {p["retain_per_epoch"] for _, p in policy.repair} == {8192}
    with pytest.raises(SystemExit):
        rum_suite.main(["--methods", "auto,auto:repair-9999", "--no-write"])
    assert "auto:repair-8192" in capsys.readouterr().err  # named among the choices


def test_a_budget_relative_to_retraining_becomes_seconds_for_rum():
    kw = rum_suite.optional_methods()["auto:budget-0.2x"]
    (policy,) = rum_suite.with_budget(kw, 12.5).values()
    assert isinstance(policy, rum.policies.Auto) and policy.budget == 2.5
    assert rum_suite.with_budget({"policy": "auto"}, 12.5) == {"policy": "auto"}


def test_the_prepared_device_check_is_valid_bash_and_names_known_scenarios_and_methods():
    import pathlib
    import re
    import subprocess

    script = pathlib.Path(rum_suite.__file__).with_name("device_check.sh")
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    scenarios = re.search(r'SCENARIOS:-([^}]+)}', text).group(1).split(",")
    methods = re.search(r'METHODS:-([^}]+)}', text).group(1).split(",")
    assert set(scenarios) <= set(rum_suite.SCENARIOS)
    assert set(methods) <= set(rum_suite.methods(False)) | set(rum_suite.optional_methods())
    assert "--scale large" in text and '"${DEVICE:-cuda}"' in text


def test_each_section_is_on_the_page_its_script_writes_to(tmp_path):
    import re

    from benchmarks._report import DOC, PAGES, page, write_section

    docs = DOC.parent
    # the default section of every script, and the names the committed runs chose
    assert page("rum-suite-summary") == page("rum-suite-plots") == DOC
    for name, where in (("rum-suite-digits", "rum-suite"), ("rum-suite-quick", "rum-suite"),
                        ("rum-suite-partial-digits", "rum-suite"), ("rum-suite-large-mnist1d", "large-scale"),
                        ("rum-suite-large-cuda", "large-scale"), ("rum-suite-large-repair-cap", "large-scale"),
                        ("rum-suite-auto-budget", "budget"), ("rum-suite-large-budget", "budget"),
                        ("auto-targets", "auto"), ("auto-targets-quick", "auto"),
                        ("memorization-sources", "memorization-sources"), ("profiler", "profiler"),
                        ("unlearners", "unlearners"), ("unlearners-defaults", "unlearners"),
                        ("influence", "influence")):
        assert page(name) == docs / "benchmarks" / f"{where}.md", name
    # every page a section can go to exists and is in the site's nav
    nav = (docs.parent / "mkdocs.yml").read_text()
    for _, doc in PAGES:
        assert doc.exists() and f": {doc.relative_to(docs).as_posix()}\n" in nav, doc
    # each committed section is on the page its script would rewrite, once
    seen = {}
    for doc in [DOC, *sorted((docs / "benchmarks").glob("*.md"))]:
        for name in re.findall(r"^<!-- BEGIN (\S+) -->$", doc.read_text(), re.M):
            assert name not in seen, f"section {name} is on {seen[name].name} and {doc.name}"
            assert page(name) == doc, f"section {name} is on {doc.name}; its script writes {page(name)}"
            seen[name] = doc
    assert {"rum-suite-summary", "rum-suite-digits", "profiler", "influence"} <= set(seen)
    # write_section replaces a section in place, on the page given or the section's own
    mine = tmp_path / "page.md"
    write_section("a", "one", doc=mine)
    write_section("b", "two\n", doc=mine)
    write_section("a", "three", doc=mine)
    assert mine.read_text() == ("# Benchmarks\n\n<!-- BEGIN a -->\nthree\n<!-- END a -->\n\n"
                                "<!-- BEGIN b -->\ntwo\n<!-- END b -->\n")
    assert page("no-such-prefix") == DOC  # a name of no known prefix: the short page, as before


def test_the_defaults_check_counts_real_work_as_the_step_size_issue_defines_it():
    from benchmarks.defaults_check import verdict

    cls = dict(original_forget=1.0, retrain_forget=0.0, original_test=0.95, retrain_test=0.85,
               status="ok")
    # a quarter of the gap closed, 10 points below the retrained model's test accuracy
    assert verdict({**cls, "forget": 0.75, "test": 0.75})["real"]
    assert not verdict({**cls, "forget": 0.80, "test": 0.90})["real"]  # under a quarter
    assert not verdict({**cls, "forget": 0.0, "test": 0.74})["real"]  # 11 points lost
    assert not verdict({**cls, "forget": 0.0, "test": 0.90, "status": "collapsed"})["real"]
    rnd = dict(cls, retrain_forget=0.9, retrain_test=0.95)
    over = verdict({**rnd, "forget": 0.6, "test": 0.9})  # far past the retrained model
    assert not over["real"] and over["closed"] == pytest.approx(-2.0)


def test_the_defaults_matrix_compares_each_default_with_its_best_grid_lr():
    from benchmarks.defaults_check import matrix

    base = dict(model="m", trained_with="Adam", seed=0, status="ok", probes=2)
    rows = [
        {**base, "scenario": "mixed", "method": "scrub", "tow": 0.80, "real": True, "lr": 0.01,
         "seconds": 10.0, "calibration_seconds": 0.5},
        {**base, "scenario": "mixed", "method": "scrub@1", "tow": 0.70, "real": True, "lr": 0.02,
         "seconds": 9.0, "calibration_seconds": 0.0},
        {**base, "scenario": "mixed", "method": "scrub@0.1", "tow": 0.90, "real": True, "lr": 2e-3,
         "seconds": 9.0, "calibration_seconds": 0.0},
        {**base, "scenario": "random", "method": "scrub", "tow": 0.88, "real": False, "lr": 0.01,
         "seconds": 10.0, "calibration_seconds": 2.0},
        {**base, "scenario": "random", "method": "scrub@1", "tow": 0.90, "real": True, "lr": 0.02,
         "seconds": 9.0, "calibration_seconds": 0.0},
    ]
    targets, table = matrix(rows)
    # mixed: 0.80 against the grid's best 0.90 (x0.1) is not within 0.05; random: 0.88 vs 0.90 is
    assert "| 0.900 (x0.1) | no |" in table and "| 0.900 (x1) | yes |" in table
    assert "1/2 (model, scenario, unlearner) cells = 50%" in targets
    assert "| 1/2 = 50% |" in targets
    assert "median 12%, 1/2 cells within 10 %" in targets  # 0.5/10 and 2/10


def test_compare_rows_sees_every_difference_but_the_timings():
    from benchmarks.compare_rows import compare, main

    row = {"task": "digits", "scale": "small", "seed": 0, "scenario": "mixed", "method": "auto",
           "tow": 0.93, "plan": ["neggrad+"], "seconds": 1.0, "plan_s": 0.5}
    assert compare([row], [{**row, "seconds": 9.0, "plan_s": 4.0}]) == []
    assert compare([row], [{**row, "plan": ["noop"]}]) == [
        "('digits', 'small', 0, 'mixed', 'auto'): plan ['neggrad+'] != ['noop']"]
    assert compare([row], []) == ["('digits', 'small', 0, 'mixed', 'auto'): only in the first run"]
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        a, b = f"{d}/a.json", f"{d}/b.json"
        json.dump([row], open(a, "w"))
        json.dump([{**row, "tow": 0.5}], open(b, "w"))
        assert main([a, a]) == 0 and main([a, b]) == 1


def test_quick_audit_benchmark_reports_every_method_and_the_targets():
    from benchmarks import audit

    text = audit.main(["--quick", "--no-write", "--fresh"])
    for method in ("original", audit.ANOTHER_RETRAIN, "RUM", "auto", "single:finetune"):
        assert f"| {method} |" in text
    assert "### digits, mixed" in text and "### digits, class" in text
    assert "Kendall's tau" in text and "- Retrained model, AUC within 0.05 of 0.5" in text
    assert "runs of the original training, counted in items processed" in text
