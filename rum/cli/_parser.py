"""The argument parser of the ``rum`` command line."""

from __future__ import annotations

import argparse
from typing import Any

from rum._version import __version__
from rum.cli._commands import (
    _cmd_demo,
    _cmd_evaluate,
    _cmd_list,
    _cmd_plan,
    _cmd_profile,
    _cmd_report,
    _cmd_run,
)

_FMT = argparse.RawDescriptionHelpFormatter


def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=required, metavar="PATH",
                   help="the trained weights: a state_dict saved with torch.save (.pt) or .safetensors")
    g.add_argument("--arch", required=required, metavar="MODULE:FUNCTION",
                   help="function that builds the untrained model, e.g. rum.demo:make_mlp or "
                        "my_models.py:build (your own code: rum imports and runs it)")
    g.add_argument("--arch-kwargs", metavar="JSON", default=None,
                   help="keyword arguments of the --arch function as a JSON object, e.g. '{\"hidden\": 64}'")


def _add_data(p: argparse.ArgumentParser, *, forget: bool | None = True, retain: bool | None = False,
              what: str = "") -> None:
    """--forget / --retain (required when True, optional when False, absent when None), data keys."""
    for flag, need, text in (("--forget", forget, "the items to forget"),
                             ("--retain", retain, "the retained training data")):
        if need is not None:
            p.add_argument(flag, required=need, metavar="PATH", help=f"{text}{what} (.npz or .pt)")
    p.add_argument("--x-key", default="X", metavar="KEY", help="name of the feature array in data files (default X)")
    p.add_argument("--y-key", default="y", metavar="KEY", help="name of the label array in data files (default y)")


def _add_run(p: argparse.ArgumentParser, seed: str = "random seed (default 0)", *, prefix: str = "",
             device: bool = True, guard: str | None = None) -> None:
    """--seed, and for commands that unlearn --device, --no-progress and --retain-guard."""
    p.add_argument("--seed", type=int, default=0, help=seed)
    if not device:
        return
    p.add_argument("--device", default="auto", help=f"{prefix}auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help=f"{prefix}hide progress bars")
    if guard is not None:
        p.add_argument("--retain-guard", default="0.5", metavar="FRACTION|none", help=guard)


def _add_policy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default=None,
                   help="planning policy: rum (default), auto, uniform, vanilla, shuffle, mapping "
                        "(see rum.policies)")
    p.add_argument("-P", "--policy-option", action="append", metavar="KEY=VALUE", default=[],
                   help="option of the policy, e.g. -P budget=30 (auto), -P unlearner=finetune "
                        "(uniform), -P 'unlearners={\"high\": \"salun\"}' (rum); repeatable, values "
                        "read as JSON when possible")


def _add_output(p: argparse.ArgumentParser, target: str, out: str, *, required: bool = False) -> None:
    """-o options passed to ``target``, --out, --json."""
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", default=[],
                   help=f"keyword option passed to {target} (repeatable; values are read as JSON when possible)")
    p.add_argument("--out", required=required, metavar="PATH", help=out)
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")


_DATA_NOTE = (
    "data files: .npz with arrays X (features) and y (integer labels), or .pt holding\n"
    "{'X': tensor, 'y': tensor} or an (X, y) pair; model: a state_dict (.pt/.safetensors)\n"
    "plus --arch module:function building the architecture (your code, imported and run).\n"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rum",
        description="Machine unlearning for PyTorch classifiers: profile the forget set, plan an "
        "unlearner per group, run the plan, evaluate against retraining, write a report.",
        formatter_class=_FMT,
        epilog="examples:\n"
        "  rum demo                       # the digits demo, end to end\n"
        "  rum demo --export demo/        # save the demo model and data to try the commands below\n"
        "  rum list\n"
        "  rum run --model demo/model.pt --arch rum.demo:make_mlp --forget demo/forget.npz \\\n"
        "          --retain demo/retain.npz --out demo/unlearned.pt --result demo/result.json\n"
        "  rum report --result demo/result.json --out demo/report.html\n\n"
        "Run `rum COMMAND --help` for each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"rum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, description: str, examples: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description, formatter_class=_FMT,
                           epilog="examples:\n" + examples)
        p.set_defaults(func=func)
        return p

    demo = command(
        "demo", "train an MLP on digits, unlearn mislabeled + ordinary items, print the evaluation",
        "Train a small MLP on scikit-learn's digits with 5%% flipped labels, forget 10%% of the "
        "training set (the flipped items plus ordinary ones) with the default pipeline and single "
        "unlearners, and compare each with retraining. With --export, only train the model and "
        "write it and the data splits to a folder, to try the other commands on.",
        "  rum demo --seed 1\n  rum demo --export demo/", _cmd_demo)
    _add_run(demo)
    demo.add_argument("--export", metavar="DIR", default=None,
                      help="write model.pt, forget.npz, retain.npz and test.npz to DIR instead of running the demo")
    demo.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")

    lst = command("list", "list the registered unlearners",
                  "List the registered unlearners with their capability tags.",
                  "  rum list\n  rum list 'neggrad*' --json", _cmd_list)
    lst.add_argument("pattern", nargs="?", default=None, help="glob pattern on the names, e.g. 'neggrad*'")
    lst.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")

    prof = command(
        "profile", "score the forget items and group them (writes profile JSON)",
        "Score every forget item (memorization, entanglement) and split the forget set into "
        "groups, as rum.profile() does. -o options are passed to rum.profile().\n\n" + _DATA_NOTE,
        "  rum profile --model model.pt --arch rum.demo:make_mlp --forget forget.npz \\\n"
        "              --retain retain.npz --out profile.json\n"
        "  rum profile --model model.pt --arch models.py:build --arch-kwargs '{\"width\": 2}' \\\n"
        "              --forget forget.pt --json", _cmd_profile)
    _add_model_args(prof)
    _add_data(prof)
    _add_run(prof, device=False)
    _add_output(prof, "rum.profile()", "write the profile as JSON")

    pln = command(
        "plan", "turn a profile into a plan of unlearning steps (dry run: nothing is changed)",
        "Show which unlearner would run on which group, in which order, as rum.plan() does. "
        "Reads a profile JSON (from `rum profile --out`), or profiles the model first when given "
        "--model/--arch/--forget. Nothing is unlearned. A search policy (--policy auto) searches "
        "on a copy of the model (--model, --arch, --forget and --retain needed) and prints what "
        "it tried. -o options are passed to rum.plan().\n\n" + _DATA_NOTE,
        "  rum plan --profile profile.json\n"
        "  rum plan --profile profile.json --policy uniform -P unlearner=finetune --out plan.json\n"
        "  rum plan --profile profile.json --policy mapping \\\n"
        "           -P 'unlearners={\"0\": \"finetune\", \"1\": [\"neggrad+\", {\"epochs\": 2}]}'\n"
        "  rum plan --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz\n"
        "  rum plan --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz \\\n"
        "           --policy auto -P budget=30 --seed 4 --out plan.json   # then: rum run --plan plan.json --seed 4",
        _cmd_plan)
    pln.add_argument("--profile", metavar="PATH", help="a profile JSON written by `rum profile --out`")
    _add_model_args(pln, required=False)
    _add_data(pln, forget=False, retain=False, what=", to profile first")
    _add_run(pln, "random seed for profiling and for a search policy (default 0)",
             prefix="for a search policy: ",
             guard="for a search policy: the retain guard its trials run under, as in "
                   "`rum run --retain-guard` (default 0.5); replay the plan with the same value")
    _add_policy(pln)
    pln.add_argument("--profile-option", action="append", metavar="KEY=VALUE", default=[],
                     help="keyword option passed to rum.profile() when profiling first (repeatable)")
    _add_output(pln, "rum.plan()", "write the plan as JSON (for `rum run --plan`)")

    run = command(
        "run", "unlearn: write the unlearned weights and the result JSON",
        "Make the model forget the --forget items and save the unlearned weights, as "
        "rum.unlearn() does: the RUM pipeline by default (its policy with --policy), one "
        "unlearner with --unlearner (its hyper-parameters as -o key=value), or a saved plan "
        "with --plan. -o options are passed to rum.unlearn().\n\n" + _DATA_NOTE,
        "  rum run --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz \\\n"
        "          --out unlearned.pt --result result.json\n"
        "  rum run ... --unlearner finetune -o epochs=3 -o lr=0.01 --out unlearned.pt\n"
        "  rum run ... --policy auto -P budget=30 --out unlearned.pt\n"
        "  rum run ... --plan plan.json --out unlearned.pt --device cuda", _cmd_run)
    _add_model_args(run)
    _add_data(run)
    run.add_argument("--unlearner", default=None, help="run this one unlearner (see `rum list`) instead of the pipeline")
    _add_policy(run)
    run.add_argument("--plan", metavar="PATH", help="run this saved plan (from `rum plan --out`)")
    _add_run(run, guard="undo a step that loses more than this fraction of the retain accuracy "
                        "above the majority-class rate (default 0.5; 'none' turns it off)")
    run.add_argument("--strict", action="store_true", help="exit with status 1 when a step diverged or collapsed")
    run.add_argument("--result", metavar="PATH", help="write the result (profile, plan, timings, metrics) as JSON")
    _add_output(run, "rum.unlearn()", "where to write the unlearned state_dict (.pt or .safetensors)",
                required=True)

    ev = command(
        "evaluate", "accuracies, membership inference and ToW against a retrained model",
        "Score a model on the forget, retain and test sets, as rum.evaluate() does; with "
        "--reference (the weights of a model retrained without the forget set, same "
        "architecture) also the gaps, ToW and ToW-MIA.\n\n" + _DATA_NOTE,
        "  rum evaluate --model unlearned.pt --arch rum.demo:make_mlp --forget forget.npz \\\n"
        "               --retain retain.npz --test test.npz --reference retrained.pt --out evaluation.json",
        _cmd_evaluate)
    _add_model_args(ev)
    ev.add_argument("--reference", metavar="PATH", help="weights of the retrained model (same --arch)")
    ev.add_argument("--test", required=True, metavar="PATH", help="held-out data")
    _add_data(ev, retain=True)
    ev.add_argument("--name", default="model", help="label of the model in the table")
    _add_run(ev, "seed of the membership-inference attack (default 0)", device=False)
    ev.add_argument("--out", metavar="PATH", help="write the evaluation as JSON (for `rum report`)")
    ev.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")

    rep = command(
        "report", "write a self-contained HTML report of a run",
        "Write one HTML file (figures embedded, nothing loaded from the network) with the "
        "profile, the plan, the time per step and the metrics of a run, as rum.report() does.",
        "  rum report --result result.json --out report.html\n"
        "  rum report --result result.json --evaluation evaluation.json --reference retrain.json --out report.html",
        _cmd_report)
    rep.add_argument("--result", required=True, metavar="PATH", help="result JSON from `rum run --result`")
    rep.add_argument("--evaluation", metavar="PATH", help="evaluation JSON from `rum evaluate --out`")
    rep.add_argument("--reference", metavar="PATH", help="result JSON of a retrain run, to show the speed-up")
    rep.add_argument("--title", default=None, help="page title")
    rep.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write")
    rep.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    return parser
