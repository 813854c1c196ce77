"""The rum command line, on real saved models and data files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import rum
from rum.cli import build_parser, main, parse_options
from tests.conftest import state_equal, untimed

ARCH = "rum.demo:make_mlp"
COMMANDS = ["demo", "list", "profile", "plan", "run", "evaluate", "report"]


@pytest.fixture(scope="module")
def files(digits, tmp_path_factory):
    """The digits demo model saved as a state_dict, and its splits as .npz files."""
    d = tmp_path_factory.mktemp("cli")
    torch.save(digits.model.state_dict(), d / "model.pt")
    for name in ("forget", "retain", "test"):
        X, y = getattr(digits, name)
        np.savez(d / f"{name}.npz", X=X, y=y)
    return d


def model_args(d, model="model.pt"):
    return ["--model", str(d / model), "--arch", ARCH]


def data_args(d, *names):
    out = []
    for n in names:
        out += [f"--{n}", str(d / f"{n}.npz")]
    return out


def load(path):
    m = rum.demo.make_mlp()
    m.load_state_dict(torch.load(path, weights_only=True))
    return m


# -- the existing commands -----------------------------------------------------------------------
def test_list_prints_every_unlearner_as_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(rum.list_unlearners())
    assert all({"needs_retain", "cost", "source", "suits", "params"} <= set(r) for r in rows)
    finetune = next(r for r in rows if r["name"] == "finetune")
    assert finetune["params"] == rum.get_unlearner("finetune")._param_names()
    assert next(r for r in rows if r["name"] == "boundary-shrink")["suits"] == ["class-wise"]


def test_list_filters_by_pattern(capsys):
    assert main(["list", "neggrad*", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == rum.list_unlearners("neggrad*")


@pytest.mark.slow  # a whole demo or a real process
def test_demo_prints_the_evaluation_table(capsys):
    assert main(["demo", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "rum (default pipeline)" in out and "retrain (reference)" in out
    assert "rum auto (searched plan)" in out
    assert "ToW" in out and "speed-up" in out


def test_demo_export_writes_loadable_files(digits, tmp_path, monkeypatch, capsys):
    import rum.demo

    # The scenario is the session's (same seed) rather than a second 20-second training run.
    monkeypatch.setattr(rum.demo, "digits_scenario", lambda seed=0, **kw: digits)
    assert main(["demo", "--export", str(tmp_path / "demo"), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert paths["arch"] == ARCH
    assert state_equal(load(paths["model"]), digits.model)
    with np.load(paths["forget"]) as f:
        np.testing.assert_array_equal(f["X"], digits.forget[0])
        np.testing.assert_array_equal(f["y"], digits.forget[1])


def test_a_bad_device_exits_non_zero_with_a_message(capsys):
    assert main(["demo", "--device", "tpu9"]) == 2
    assert "device='tpu9'" in capsys.readouterr().err


@pytest.mark.slow  # a whole demo or a real process
def test_module_entry_point_and_help():
    out = subprocess.run([sys.executable, "-m", "rum.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert all(c in out.stdout for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples_and_json(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text and f"rum {command}" in text and "--json" in text


# -- options ------------------------------------------------------------------------------------
def test_options_are_read_as_json_when_they_parse():
    assert parse_options(["epochs=3", "lr=1e-3", "optimizer=sgd", "flag=true", "x=null", "g=[1,2]"]) == {
        "epochs": 3, "lr": 0.001, "optimizer": "sgd", "flag": True, "x": None, "g": [1, 2],
    }
    assert parse_options(["max-grad-norm=5"]) == {"max_grad_norm": 5}


# -- run / profile / plan / evaluate / report against the Python API ----------------------------
def test_run_with_one_unlearner_equals_the_python_call(files, digits, capsys):
    out = files / "ft.pt"
    rc = main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--unlearner",
               "finetune", "-o", "epochs=1", "-o", "lr=0.05", "--seed", "3", "--device", "cpu",
               "--out", str(out), "--result", str(files / "ft.json"), "--json"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    expected = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="finetune",
                           epochs=1, lr=0.05, random_state=3, device="cpu", progress=False)
    assert state_equal(load(out), expected.model)
    saved = rum.UnlearnResult.load(files / "ft.json")
    assert saved.plan == expected.plan and saved.seed == 3
    assert saved.metrics == pytest.approx(expected.metrics)
    assert printed["model_path"] == str(out) and printed["steps"][0]["unlearner"] == "finetune"


def test_run_strict_fails_on_a_collapsed_step_unless_the_guard_is_off(files, digits, capsys):
    wreck = ["run", *model_args(files), *data_args(files, "forget", "retain"), "--unlearner",
             "neggrad", "-o", "lr=0.5", "-o", "epochs=3", "--device", "cpu", "--strict",
             "--out", str(files / "wreck.pt"), "--json"]
    with pytest.warns(rum.exceptions.DivergenceWarning):
        assert main(wreck) == 1
    assert json.loads(capsys.readouterr().out)["steps"][0]["status"] == "collapsed"
    assert state_equal(load(files / "wreck.pt"), digits.model)
    assert main([*wreck, "--retain-guard", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["retain_acc_after"] < 0.2


def test_plan_auto_searches_and_run_replays_it_to_rum_unlearns_model(files, digits, capsys):
    plan_path, out = files / "auto_plan.json", files / "auto_planned.pt"
    assert main(["plan", *model_args(files), *data_args(files, "forget", "retain"), "--policy",
                 "auto", "--seed", "4", "--device", "cpu", "--out", str(plan_path)]) == 0
    text = capsys.readouterr().out
    assert "Plan (auto" in text and "auto search:" in text and "do nothing" in text
    expected = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=4,
                           device="cpu", progress=False)
    saved = rum.Plan.load(plan_path)
    assert saved == expected.plan and untimed(saved.search) == untimed(expected.search)
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--plan",
                 str(plan_path), "--seed", "4", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert state_equal(load(out), expected.model)


def test_plan_auto_searches_under_the_retain_guard_it_is_given(files, digits, capsys):
    plan_path, out = files / "auto_plan_guarded.json", files / "auto_guarded.pt"
    assert main(["plan", *model_args(files), *data_args(files, "forget", "retain"), "--policy",
                 "auto", "--retain-guard", "0.02", "--device", "cpu", "--out", str(plan_path)]) == 0
    expected = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0,
                           device="cpu", progress=False, retain_guard=0.02)
    default = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0,
                          device="cpu", progress=False)
    saved = rum.Plan.load(plan_path)
    assert saved == expected.plan != default.plan  # the strict guard refuses a step the default keeps
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--plan",
                 str(plan_path), "--retain-guard", "0.02", "--device", "cpu", "--no-progress",
                 "--out", str(out)]) == 0
    assert state_equal(load(out), expected.model)


def test_run_auto_takes_a_json_list_of_candidates(files, digits, capsys):
    out = files / "auto.pt"
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--policy",
                 "auto", "-P", 'candidates=["neggrad", ["finetune", {"epochs": 2}]]', "--seed", "4",
                 "--device", "cpu", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = rum.unlearn(digits.model, digits.forget, digits.retain, random_state=4,
                           policy=rum.policies.Auto(candidates=["neggrad", ("finetune", {"epochs": 2})]),
                           device="cpu", progress=False)
    assert state_equal(load(out), expected.model)
    assert [s["unlearner"] for s in printed["steps"]] == [s.unlearner for s in expected.plan.steps]
    # the candidates are the groups'; the repair is the default one
    assert {s.unlearner for s in expected.plan.steps if s.group != -1} <= {"neggrad", "finetune", "noop"}
    assert {s.unlearner for s in expected.plan.steps if s.group == -1} <= {"neggrad+", "finetune", "noop"}
    # what the search tried comes with the result: in the JSON, and as a table in the text
    got = rum.planner.SearchReport.from_dict(printed["plan"]["search"])
    assert untimed(got) == untimed(expected.search)
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--policy",
                 "auto", "--seed", "4", "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "auto search:" in text and "do nothing" in text and "kept" in text


def test_plan_auto_takes_a_budget_option(files, digits, capsys):
    plan_path = files / "budget_plan.json"
    # a budget spent before any stage starts: the plan does nothing, and its report says why
    assert main(["plan", *model_args(files), *data_args(files, "forget", "retain"), "--policy",
                 "auto", "-P", "budget=1e-9", "--device", "cpu", "--out", str(plan_path)]) == 0
    assert "budget 1e-09s, cut short: reference" in capsys.readouterr().out
    plan = rum.Plan.load(plan_path)
    assert [s.unlearner for s in plan.steps] == ["noop"] and plan.search.budget == 1e-9


def test_profile_plan_run_chain_equals_the_python_pipeline(files, digits, capsys):
    prof_path, plan_path, out = files / "profile.json", files / "plan.json", files / "planned.pt"
    assert main(["profile", *model_args(files), *data_args(files, "forget", "retain"),
                 "--seed", "1", "--out", str(prof_path)]) == 0
    expected_profile = rum.profile(digits.model, digits.forget, digits.retain, random_state=1)
    assert rum.Profile.load(prof_path) == expected_profile
    assert main(["plan", "--profile", str(prof_path), "--policy", "uniform", "-P",
                 'unlearner=["neggrad+", {"epochs": 2}]', "--out", str(plan_path)]) == 0
    text = capsys.readouterr().out
    expected_plan = rum.plan(expected_profile, rum.policies.Uniform(("neggrad+", {"epochs": 2})))
    assert rum.Plan.load(plan_path) == expected_plan and "neggrad+" in text
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--plan",
                 str(plan_path), "--seed", "2", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    expected = rum.execute(expected_plan, digits.model, digits.forget, digits.retain,
                           random_state=2, device="cpu", progress=False)
    assert state_equal(load(out), expected.model)


def test_plan_can_profile_first(files, digits, capsys):
    assert main(["plan", *model_args(files), *data_args(files, "forget", "retain"),
                 "--policy", "uniform", "-P", "unlearner=finetune", "--json"]) == 0
    plan = rum.Plan.from_dict(json.loads(capsys.readouterr().out))
    assert plan == rum.plan(rum.profile(digits.model, digits.forget, digits.retain, random_state=0),
                            rum.policies.Uniform("finetune"), n_retain=len(digits.retain[1]))
    assert all(c is not None for c in plan.estimated_cost())  # the dry run shows its cost


def test_evaluate_equals_the_python_call_and_feeds_the_report(files, digits, capsys):
    ref = files / "ref.pt"
    other = rum.unlearn(digits.model, digits.forget, digits.retain, unlearner="neggrad",
                        random_state=0, device="cpu", progress=False).model
    torch.save(other.state_dict(), ref)
    ev_path = files / "evaluation.json"
    assert main(["evaluate", *model_args(files), *data_args(files, "forget", "retain", "test"),
                 "--reference", str(ref), "--name", "original", "--out", str(ev_path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = rum.evaluate(digits.model, forget_set=digits.forget, retain_set=digits.retain,
                        test_set=digits.test, reference=other, name="original").to_dict()
    assert got == want and got["tow"] is not None
    # the result of an earlier run plus this evaluation make a report
    res = files / "res.json"
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--unlearner",
                 "noop", "--out", str(files / "noop.pt"), "--result", str(res)]) == 0
    html_path = files / "report.html"
    assert main(["report", "--result", str(res), "--evaluation", str(ev_path), "--reference",
                 str(res), "--out", str(html_path)]) == 0
    text = html_path.read_text()
    assert "<h2>Plan</h2>" in text and "original" in text and "retrain (reference)" in text


def test_pt_data_files_dicts_tuples_and_custom_keys(files, digits, tmp_path, capsys):
    X, y = digits.forget
    torch.save({"features": torch.as_tensor(X), "labels": torch.as_tensor(y)}, tmp_path / "f.pt")
    torch.save((torch.as_tensor(digits.retain[0]), torch.as_tensor(digits.retain[1])), tmp_path / "r.pt")
    assert main(["profile", *model_args(files), "--forget", str(tmp_path / "f.pt"), "--x-key", "features",
                 "--y-key", "labels", "--json"]) == 0
    got = rum.Profile.from_dict(json.loads(capsys.readouterr().out))
    assert got == rum.profile(digits.model, digits.forget, random_state=0)
    from rum._io import load_data

    assert torch.equal(load_data(tmp_path / "r.pt").y, torch.as_tensor(digits.retain[1]))


def test_safetensors_weights_round_trip(files, digits, tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    save_file(digits.model.state_dict(), str(tmp_path / "m.safetensors"))
    out = tmp_path / "u.safetensors"
    assert main(["run", "--model", str(tmp_path / "m.safetensors"), "--arch", ARCH,
                 *data_args(files, "forget"), "--unlearner", "noop", "--out", str(out)]) == 0
    from rum._io import load_model

    assert state_equal(load_model(out, ARCH), digits.model)


# -- errors: exit status 2 and a message that says what to fix ----------------------------------
def _error_cases(d):
    torch.save(rum.demo.make_mlp(), d / "pickled_module.pt")  # a whole module, not a state_dict
    np.savez(d / "no_y.npz", X=np.zeros((3, 64), np.float32))
    (d / "data.csv").write_text("1,2,3\n")
    run = ["run", *data_args(d, "forget", "retain"), "--out", str(d / "x.pt")]
    return {
        "missing model file": (["run", "--model", str(d / "nope.pt"), "--arch", ARCH, *run[1:]],
                               "no such file"),
        "arch without colon": (["run", "--model", str(d / "model.pt"), "--arch", "rum.demo.make_mlp", *run[1:]],
                               "module:function"),
        "arch module missing": (["run", "--model", str(d / "model.pt"), "--arch", "nomod_xyz:f", *run[1:]],
                                "cannot import module"),
        "arch function missing": (["run", "--model", str(d / "model.pt"), "--arch", "rum.demo:make_mpl", *run[1:]],
                                  "make_mlp"),
        "shape mismatch": (["run", *model_args(d), "--arch-kwargs", '{"hidden": 8}', *run[1:]],
                           "shape mismatches"),
        "missing keys": (["run", "--model", str(d / "model.pt"), "--arch", "torch.nn:Identity", *run[1:]],
                         "unexpected keys"),
        "bad arch kwargs json": (["run", *model_args(d), "--arch-kwargs", "{hidden: 8}", *run[1:]],
                                 "not valid JSON"),
        "pickled module": (["run", "--model", str(d / "pickled_module.pt"), "--arch", ARCH, *run[1:]],
                           "state_dict"),
        "npz without y": (["run", *model_args(d), "--forget", str(d / "no_y.npz"), "--out", str(d / "x.pt")],
                          "--y-key"),
        "bad data suffix": (["run", *model_args(d), "--forget", str(d / "data.csv"), "--out", str(d / "x.pt")],
                            "use a .npz file"),
        "bad option syntax": ([*run[:1], *model_args(d), *run[1:], "-o", "epochs"], "key=value"),
        "unknown unlearner": ([*run[:1], *model_args(d), *run[1:], "--unlearner", "finetun"], "finetune"),
        "unknown hyper-parameter": ([*run[:1], *model_args(d), *run[1:], "--unlearner", "finetune", "-o", "epoch=2"],
                                    "epochs"),
        "reserved option": ([*run[:1], *model_args(d), *run[1:], "-o", "random_state=3"], "--seed"),
        "missing output folder": (["run", *model_args(d), *data_args(d, "forget"), "--out", str(d / "no" / "x.pt")],
                                  "does not exist"),
        "unknown profile option": (["profile", *model_args(d), *data_args(d, "forget"), "-o", "colour=1"],
                                   "not an option of rum.profile()"),
        "plan without profile": (["plan"], "--profile"),
        "plan with a bad profile": (["plan", "--profile", str(d / "forget.npz")], "--profile"),
        "auto plan without retain": (["plan", *model_args(d), *data_args(d, "forget"), "--policy", "auto"],
                                     "give --model, --arch, --forget and --retain"),
        "auto plan from a profile": (["plan", "--profile", str(d / "forget.npz"), "--policy", "auto"],
                                     "drop --profile"),
        "retain guard on a plan that is not searched": (
            ["plan", *model_args(d), *data_args(d, "forget"), "--retain-guard", "0.2"],
            "search policy's trials"),
        "retain guard as an option": ([*run[:1], *model_args(d), *run[1:], "-o", "retain_guard=0.2"],
                                      "--retain-guard"),
        "report of a missing result": (["report", "--result", str(d / "nope.json"), "--out", str(d / "r.html")],
                                       "no such file"),
        "retain guard not a number": ([*run[:1], *model_args(d), *run[1:], "--retain-guard", "half"],
                                      "--retain-guard 'half'"),
        "retain guard out of range": ([*run[:1], *model_args(d), *run[1:], "--retain-guard", "2"],
                                      "retain_guard"),
        "wrong number of classes": (["evaluate", *model_args(d), "--arch-kwargs", '{"n_classes": 3}',
                                     *data_args(d, "forget", "retain", "test")], "shape mismatches"),
        # nothing is written over an input or another output, and outputs are checked first
        "output over the input model": (["run", *model_args(d), *data_args(d, "forget", "retain"),
                                         "--unlearner", "noop", "--out", str(d / "model.pt")],
                                        "also --model"),
        "result over the weights": ([*run[:1], *model_args(d), *run[1:], "--result", str(d / "x.pt")],
                                    "--result"),
        "output is a folder": (["run", *model_args(d), *data_args(d, "forget"), "--out", str(d)],
                               "is a folder"),
        "unknown policy option": ([*run[:1], *model_args(d), *run[1:], "--policy", "auto", "-P",
                                   "budgt=3"], "Did you mean 'budget'"),
        "bad policy option": ([*run[:1], *model_args(d), *run[1:], "--policy", "auto", "-P",
                               "budget=-3"], "'budget' parameter of Auto"),
        "policy option without a policy's option": (
            [*run[:1], *model_args(d), *run[1:], "--unlearner", "noop", "--policy", "uniform"],
            "not both"),
    }


def test_error_cases_exit_2_with_a_fix(files, capsys):
    failures = []
    for name, (argv, hint) in _error_cases(files).items():
        rc = main(argv)
        err = capsys.readouterr().err
        if rc != 2 or "error:" not in err or hint not in err or "Traceback" in err:
            failures.append(f"{name}: rc={rc} err={err!r}")
    assert not failures, "\n".join(failures)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "m.pt"])
    assert exc.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.slow  # a whole demo or a real process
def test_a_user_error_prints_no_traceback_in_a_real_process(files):
    out = subprocess.run(
        [sys.executable, "-m", "rum.cli", "run", "--model", str(files / "missing.pt"), "--arch", ARCH,
         "--forget", str(files / "forget.npz"), "--out", str(files / "x.pt")],
        capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("rum run: error:") and "Traceback" not in out.stderr


def test_every_command_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_nothing_is_written_when_an_output_clashes(files):
    before = (files / "model.pt").read_bytes()
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--unlearner",
                 "noop", "--out", str(files / "model.pt")]) == 2
    assert (files / "model.pt").read_bytes() == before
    out = files / "clash.pt"
    assert main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--unlearner",
                 "noop", "--out", str(out), "--result", str(out)]) == 2
    assert not out.exists()


def test_a_plan_file_never_imports_the_code_it_names(files, tmp_path, monkeypatch, capsys):
    """A plan is data: a module next to it (or anywhere on the path) is never imported."""
    marker = tmp_path / "imported"
    (tmp_path / "planted_rum_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    plan = {"policy": "manual", "n_forget": 126, "n_retain": 0,
            "steps": [{"group": -1, "indices": list(range(126)), "unlearner": "planted_rum_module:Thing",
                       "params": {}}]}
    for name in ("planted_rum_module:Thing", "this:x"):  # a stdlib module prints on import
        plan["steps"][0]["unlearner"] = name
        path = tmp_path / "plan.json"
        path.write_text(json.dumps(plan))
        with pytest.raises(rum.exceptions.UnknownUnlearnerError, match="never imports"):
            rum.Plan.load(path)
        rc = main(["run", *model_args(files), *data_args(files, "forget", "retain"), "--plan", str(path),
                   "--out", str(tmp_path / "out.pt")])
        assert rc == 2 and "never imports" in capsys.readouterr().err
    assert not marker.exists()
    assert "planted_rum_module" not in sys.modules and "this" not in sys.modules
    # an unknown plain name lists the registered unlearners
    plan["steps"][0]["unlearner"] = "finetun"
    with pytest.raises(rum.exceptions.UnknownUnlearnerError, match="Did you mean 'finetune'.*Known"):
        rum.Plan.from_dict(plan)
