"""The ``rum`` command line.

Every command works on files: a model saved as a ``state_dict`` (``.pt`` read
with ``weights_only=True``, or ``.safetensors``) plus ``--arch module:function``
that builds its architecture, and data sets in ``.npz`` (arrays ``X``, ``y``)
or ``.pt`` (``{"X": tensor, "y": tensor}``) files. ``-o key=value`` options are
passed on unchanged as keyword arguments of the Python function behind the
command (``rum.profile``, ``rum.plan``, ``rum.unlearn``), so every option of
the library is reachable from the shell.

Errors in the user's input print ``rum <command>: error: <what to fix>`` on
stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from rum._version import __version__

_FMT = argparse.RawDescriptionHelpFormatter
_RESERVED = {"model", "forget_set", "retain_set", "random_state", "device", "progress", "profile",
             "retain_guard"}


class CLIError(Exception):
    """A usage problem found by the command line itself (exit status 2)."""


# -- helpers ------------------------------------------------------------------------------------
def parse_options(pairs: list[str] | None, where: str = "-o") -> dict[str, Any]:
    """Turn ``["epochs=3", "lr=0.01", "optimizer=sgd"]`` into keyword options.

    Values are read as JSON when they parse (numbers, ``true``/``false``/``null``,
    lists, objects) and kept as strings otherwise.

    Example:
        >>> parse_options(["epochs=3", "lr=1e-3", "optimizer=sgd", "unlearners={\\"0\\": \\"noop\\"}"])
        {'epochs': 3, 'lr': 0.001, 'optimizer': 'sgd', 'unlearners': {'0': 'noop'}}
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise CLIError(
                f"{where} {pair!r} must have the form key=value (for example {where} epochs=3)."
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = value
    return out


def _check_forwarded(func: Any, options: dict[str, Any], command: str) -> None:
    """Reject options the Python function behind ``command`` does not accept."""
    clash = sorted(set(options) & _RESERVED)
    if clash:
        raise CLIError(
            f"-o {clash[0]}=... is set by the command's own flags (--model, --forget, --retain, "
            "--seed, --device, --retain-guard); use those instead."
        )
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    allowed = sorted(n for n, p in params.items() if p.kind in kinds and n not in _RESERVED)
    from rum._validation import did_you_mean

    for key in options:
        if key not in allowed:
            raise CLIError(
                f"-o {key}=... is not an option of {command}.{did_you_mean(key, allowed)} "
                f"Accepted: {', '.join(allowed) or 'none'}."
            )


def _check_output(path: str | None, flag: str) -> None:
    """Fail before any work starts when an output file cannot be written."""
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {path!r}: the folder {str(parent)!r} does not exist; create it first.")


def _write_json(obj: Any, path: str, flag: str) -> None:
    try:
        Path(path).write_text(json.dumps(obj, indent=2))
    except OSError as err:
        raise CLIError(f"{flag} {path!r}: cannot write ({err.strerror}).") from None


def _print_json(obj: Any) -> None:
    from rum._records import jsonable

    print(json.dumps(jsonable(obj), indent=2))


def _emit(record: Any, args: argparse.Namespace, what: str) -> None:
    """Write a record's JSON to ``--out`` if given, and print it (JSON or table)."""
    if args.out:
        _write_json(record.to_dict(), args.out, "--out")
    if args.json:
        _print_json(record.to_dict())
    else:
        print(record)
        if args.out:
            print(f"{what} written to {args.out}")


def _load_model(args: argparse.Namespace, path: str | None = None, flag: str = "--model"):
    from rum._io import load_model

    return load_model(path or args.model, args.arch, args.arch_kwargs, name=flag)


def _load(path: str | None, name: str, args: argparse.Namespace):
    if path is None:
        return None
    from rum._io import load_data

    return load_data(path, name, x_key=args.x_key, y_key=args.y_key)


def _guard_value(text: str) -> float | None:
    """``--retain-guard``: ``none``, or a fraction in (0, 1] (rum.unlearn checks the range)."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise CLIError(f"--retain-guard {text!r}: give a fraction in (0, 1], e.g. 0.5, or 'none'.") from None


def _unlearners_value(text: str | None) -> Any:
    """``--unlearners``: a registry name, or JSON (``["finetune", {"epochs": 3}]`` or ``{"0": ...}``)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict):
        return (value[0], value[1])
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            try:
                g = int(k)
            except ValueError:
                raise CLIError(f"--unlearners: group keys must be integers, got {k!r}.") from None
            out[g] = v  # the policy reads a [name, params] list as one pair, other lists as fallbacks
        return out
    return value


# -- commands -----------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from rum._validation import resolve_device

    resolve_device(args.device, "--device")  # fail before training
    if args.export:
        return _demo_export(args)
    from rum.demo import run_demo

    print(run_demo(args.seed, device=args.device, progress=False if args.no_progress else None))
    return 0


def _demo_export(args: argparse.Namespace) -> int:
    from rum._io import save_data, save_state_dict
    from rum.demo import digits_scenario

    out = Path(args.export)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--export {args.export!r} is a file; give a folder (it is created if missing).")
    out.mkdir(parents=True, exist_ok=True)
    sc = digits_scenario(args.seed)
    files = {
        "model": save_state_dict(sc.model, out / "model.pt"),
        "forget": save_data(sc.forget, out / "forget.npz"),
        "retain": save_data(sc.retain, out / "retain.npz"),
        "test": save_data(sc.test, out / "test.npz"),
    }
    if args.json:
        _print_json({k: str(v) for k, v in files.items()} | {"arch": "rum.demo:make_mlp"})
        return 0
    print(f"wrote the demo model and data to {out}/ (architecture: rum.demo:make_mlp)")
    for k, v in files.items():
        print(f"  {k:<7} {v}")
    d = str(out)
    print(
        "next:\n"
        f"  rum run --model {d}/model.pt --arch rum.demo:make_mlp --forget {d}/forget.npz "
        f"--retain {d}/retain.npz --out {d}/unlearned.pt --result {d}/result.json"
    )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rum.unlearners.registry import UNLEARNERS

    rows = []
    for name in UNLEARNERS.names(args.pattern):
        cls = UNLEARNERS.get(name)
        t = cls.tags
        rows.append(
            {
                "name": name,
                "class": cls.__name__,
                "needs_retain": t.requires_retain,
                "cost": t.cost,
                "stochastic": t.stochastic,
                "exact": t.exact,
                "source": t.source,
                "params": cls._param_names(),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rum._records import table

    print(
        table(
            ["name", "class", "needs retain", "cost", "source"],
            [[r["name"], r["class"], str(r["needs_retain"]), r["cost"], r["source"]] for r in rows],
            "Registered unlearners",
        )
    )
    return 0


def _profiled_inputs(args: argparse.Namespace, options: dict) -> tuple[Any, Any, Any, Any]:
    """The model, forget and retain data of the files, and their profile."""
    import rum

    _check_forwarded(rum.profile, options, "rum.profile()")
    model = _load_model(args)
    forget = _load(args.forget, "--forget", args)
    retain = _load(args.retain, "--retain", args)
    return model, forget, retain, rum.profile(model, forget, retain, random_state=args.seed, **options)


def _profile_from_args(args: argparse.Namespace, options: dict) -> tuple[Any, int]:
    """The profile of the model and data files, and the retain-set size (0 without one)."""
    from rum.data import as_data

    _, _, retain, prof = _profiled_inputs(args, options)
    n_retain = 0 if retain is None else len(as_data(retain, "--retain", allow_empty=True))
    return prof, n_retain


def _cmd_profile(args: argparse.Namespace) -> int:
    options = parse_options(args.option)
    _check_output(args.out, "--out")
    prof, _ = _profile_from_args(args, options)
    _emit(prof, args, "profile")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import rum

    plan_options = parse_options(args.option)
    profile_options = parse_options(args.profile_option, "--profile-option")
    if args.policy is not None:
        plan_options["policy"] = args.policy
    if args.unlearners is not None:
        plan_options["unlearners"] = _unlearners_value(args.unlearners)
    _check_forwarded(rum.plan, plan_options, "rum.plan()")
    _check_output(args.out, "--out")
    if plan_options.get("policy") == "auto":
        return _plan_auto(args, plan_options, profile_options)
    from rum._guard import RETAIN_GUARD

    if _guard_value(args.retain_guard) != RETAIN_GUARD:
        raise CLIError("--retain-guard sets the guard auto's search runs under, so it needs --policy auto; "
                       "for another plan give it where the plan runs: `rum run --plan ... --retain-guard`.")
    if args.profile:
        if args.model or args.forget:
            raise CLIError("give either --profile or --model/--arch/--forget (to profile first), not both.")
        from rum.exceptions import InvalidFileError
        from rum.profiler import Profile

        try:
            prof = Profile.load(args.profile)
        except FileNotFoundError:
            raise CLIError(f"--profile {args.profile!r}: no such file. Write one with `rum profile --out`.") from None
        except (ValueError, KeyError, TypeError) as err:
            raise InvalidFileError(
                f"--profile {args.profile!r} is not a profile written by `rum profile --out` "
                f"({type(err).__name__}: {err})."
            ) from None
    else:
        missing = [f for f, v in (("--model", args.model), ("--arch", args.arch), ("--forget", args.forget)) if not v]
        if missing:
            raise CLIError(
                "give --profile PROFILE.json, or --model, --arch and --forget to profile first "
                f"(missing: {', '.join(missing)})."
            )
        prof, n_retain = _profile_from_args(args, profile_options)
        plan_options.setdefault("n_retain", n_retain)  # lets the plan print its cost
    the_plan = rum.plan(prof, **plan_options)
    _emit(the_plan, args, "plan")
    return 0


def _plan_auto(args: argparse.Namespace, plan_options: dict, profile_options: dict) -> int:
    """``rum plan --policy auto``: profile, then search on a copy of the model (as ``rum run``
    would, with the same seed), and print the plan with what the search tried."""
    import rum

    missing = [f for f, v in (("--model", args.model), ("--arch", args.arch), ("--forget", args.forget),
                              ("--retain", args.retain)) if not v]
    if args.profile or missing:
        raise CLIError(
            "--policy auto tries unlearners on the model and data: give --model, --arch, --forget and "
            "--retain (it profiles them itself" + (", so drop --profile)." if args.profile else ")")
            + (f"; missing: {', '.join(missing)}." if missing else "")
        )
    model, forget, retain, prof = _profiled_inputs(args, profile_options)
    the_plan = rum.plan(prof, model=model, forget_set=forget, retain_set=retain,
                        random_state=args.seed, device=args.device,
                        retain_guard=_guard_value(args.retain_guard),
                        progress=False if (args.no_progress or args.json) else None, **plan_options)
    _emit(the_plan, args, "plan")
    if not args.json:
        print(f"\n{the_plan.search}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import rum

    options = parse_options(args.option)
    if args.policy is not None:
        options["policy"] = args.policy
    if args.unlearners is not None:
        options["unlearners"] = _unlearners_value(args.unlearners)
    if args.plan and (args.unlearner or options):
        raise CLIError("--plan runs a saved plan as it is; drop --unlearner, --policy, --unlearners and -o.")
    _check_forwarded(rum.unlearn, options, "rum.unlearn()")
    for path, flag in ((args.out, "--out"), (args.result, "--result")):
        _check_output(path, flag)
    the_plan = None
    if args.plan:
        from rum.exceptions import InvalidFileError

        if not Path(args.plan).is_file():
            raise CLIError(f"--plan {args.plan!r}: no such file. Write one with `rum plan --out`.")
        try:
            the_plan = rum.Plan.load(args.plan)
        except (ValueError, KeyError, TypeError) as err:
            raise InvalidFileError(
                f"--plan {args.plan!r} is not a plan written by `rum plan --out` ({type(err).__name__}: {err})."
            ) from None
    model = _load_model(args)
    forget = _load(args.forget, "--forget", args)
    retain = _load(args.retain, "--retain", args)
    progress = False if (args.no_progress or args.json) else None
    common = dict(device=args.device, random_state=args.seed, progress=progress,
                  retain_guard=_guard_value(args.retain_guard))
    if the_plan is not None:
        result = rum.execute(the_plan, model, forget, retain, **common)
    else:
        result = rum.unlearn(model, forget, retain, unlearner=args.unlearner, **common, **options)
    from rum._io import save_state_dict

    try:
        save_state_dict(result.model, args.out)
    except OSError as err:
        raise CLIError(f"--out {args.out!r}: cannot write ({err.strerror}).") from None
    if args.result:
        _write_json(result.to_dict(), args.result, "--result")
    if args.json:
        _print_json(result.to_dict() | {"model_path": args.out, "result_path": args.result})
    else:
        print(result)
        if result.search is not None:  # what auto tried, one row per candidate and stage
            print(f"\n{result.search}")
        print(f"unlearned weights written to {args.out}" + (f", result to {args.result}" if args.result else ""))
    return 0 if not result.diverged or not args.strict else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import rum

    _check_output(args.out, "--out")
    model = _load_model(args)
    reference = None
    if args.reference:
        reference = _load_model(args, args.reference, "--reference")
    report = rum.evaluate(
        model,
        forget_set=_load(args.forget, "--forget", args),
        retain_set=_load(args.retain, "--retain", args),
        test_set=_load(args.test, "--test", args),
        reference=reference,
        name=args.name,
        random_state=args.seed,
    )
    _emit(report, args, "evaluation")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import rum

    _check_output(args.out, "--out")
    path = rum.report(
        args.result,
        args.out,
        evaluation=args.evaluation,
        reference=args.reference,
        title=args.title,
    )
    if args.json:
        _print_json({"report": str(path)})
    else:
        print(f"report written to {path}")
    return 0


# -- parser -------------------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=required, metavar="PATH",
                   help="the trained weights: a state_dict saved with torch.save (.pt) or .safetensors")
    g.add_argument("--arch", required=required, metavar="MODULE:FUNCTION",
                   help="function that builds the untrained model, e.g. rum.demo:make_mlp or my_models.py:build")
    g.add_argument("--arch-kwargs", metavar="JSON", default=None,
                   help="keyword arguments of the --arch function as a JSON object, e.g. '{\"hidden\": 64}'")


def _add_data_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--x-key", default="X", metavar="KEY", help="name of the feature array in data files (default X)")
    p.add_argument("--y-key", default="y", metavar="KEY", help="name of the label array in data files (default y)")


def _add_options(p: argparse.ArgumentParser, target: str) -> None:
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", default=[],
                   help=f"keyword option passed to {target} (repeatable; values are read as JSON when possible)")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")


_DATA_NOTE = (
    "data files: .npz with arrays X (features) and y (integer labels), or .pt holding\n"
    "{'X': tensor, 'y': tensor} or an (X, y) pair; model: a state_dict (.pt/.safetensors)\n"
    "plus --arch module:function building the architecture.\n"
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

    demo = sub.add_parser(
        "demo",
        help="train an MLP on digits, unlearn mislabeled + ordinary items, print the evaluation",
        description="Train a small MLP on scikit-learn's digits with 5%% flipped labels, forget "
        "10%% of the training set (the flipped items plus ordinary ones) with the default "
        "pipeline and single unlearners, and compare each with retraining. With --export, only "
        "train the model and write it and the data splits to a folder, to try the other commands on.",
        epilog="examples:\n  rum demo --seed 1\n  rum demo --export demo/",
        formatter_class=_FMT,
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--export", metavar="DIR", default=None,
                      help="write model.pt, forget.npz, retain.npz and test.npz to DIR instead of running the demo")
    _add_json(demo)
    demo.set_defaults(func=_cmd_demo)

    lst = sub.add_parser(
        "list",
        help="list the registered unlearners",
        description="List the registered unlearners with their capability tags.",
        epilog="examples:\n  rum list\n  rum list 'neggrad*' --json",
        formatter_class=_FMT,
    )
    lst.add_argument("pattern", nargs="?", default=None, help="glob pattern on the names, e.g. 'neggrad*'")
    _add_json(lst)
    lst.set_defaults(func=_cmd_list)

    prof = sub.add_parser(
        "profile",
        help="score the forget items and group them (writes profile JSON)",
        description="Score every forget item (memorization, entanglement) and split the forget "
        "set into groups, as rum.profile() does. -o options are passed to rum.profile().\n\n" + _DATA_NOTE,
        epilog="examples:\n"
        "  rum profile --model model.pt --arch rum.demo:make_mlp --forget forget.npz \\\n"
        "              --retain retain.npz --out profile.json\n"
        "  rum profile --model model.pt --arch models.py:build --arch-kwargs '{\"width\": 2}' \\\n"
        "              --forget forget.pt --json",
        formatter_class=_FMT,
    )
    _add_model_args(prof)
    prof.add_argument("--forget", required=True, metavar="PATH", help="the items to forget (.npz or .pt)")
    prof.add_argument("--retain", metavar="PATH", help="the retained training data (.npz or .pt)")
    _add_data_keys(prof)
    prof.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_options(prof, "rum.profile()")
    prof.add_argument("--out", metavar="PATH", help="write the profile as JSON")
    _add_json(prof)
    prof.set_defaults(func=_cmd_profile)

    pln = sub.add_parser(
        "plan",
        help="turn a profile into a plan of unlearning steps (dry run: nothing is changed)",
        description="Show which unlearner would run on which group, in which order, as "
        "rum.plan() does. Reads a profile JSON (from `rum profile --out`), or profiles the model "
        "first when given --model/--arch/--forget. Nothing is unlearned. With --policy auto it "
        "searches on a copy of the model (--model, --arch, --forget and --retain needed) and "
        "prints what it tried. -o options are passed to rum.plan().\n\n" + _DATA_NOTE,
        epilog="examples:\n"
        "  rum plan --profile profile.json\n"
        "  rum plan --profile profile.json --policy uniform --unlearners finetune --out plan.json\n"
        "  rum plan --profile profile.json --unlearners '{\"0\": \"finetune\", \"1\": [\"neggrad+\", {\"epochs\": 2}]}'\n"
        "  rum plan --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz\n"
        "  rum plan --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz \\\n"
        "           --policy auto --seed 4 --out plan.json   # searches on a copy; `rum run --plan plan.json --seed 4`",
        formatter_class=_FMT,
    )
    pln.add_argument("--profile", metavar="PATH", help="a profile JSON written by `rum profile --out`")
    _add_model_args(pln, required=False)
    pln.add_argument("--forget", metavar="PATH", help="the items to forget, to profile first")
    pln.add_argument("--retain", metavar="PATH", help="the retained training data, to profile first")
    _add_data_keys(pln)
    pln.add_argument("--seed", type=int, default=0,
                     help="random seed for profiling, and for the search with --policy auto (default 0)")
    pln.add_argument("--device", default="auto",
                     help="with --policy auto, where its search runs: auto, cpu, cuda or cuda:N (default auto)")
    pln.add_argument("--retain-guard", default="0.5", metavar="FRACTION|none",
                     help="with --policy auto, the retain guard its search runs under, as in "
                          "`rum run --retain-guard` (default 0.5); replay the plan with the same value")
    pln.add_argument("--no-progress", action="store_true", help="with --policy auto, hide its search's progress bar")
    pln.add_argument("--policy", default=None, help="planning policy (see rum.plan); default: rum.plan's")
    pln.add_argument("--unlearners", metavar="NAME|JSON", default=None,
                     help="unlearner for every group (a name), a JSON [name, params] pair, a JSON "
                     "object mapping group ids to those, or with --policy auto a JSON list of "
                     "candidates to try")
    _add_options(pln, "rum.plan()")
    pln.add_argument("--profile-option", action="append", metavar="KEY=VALUE", default=[],
                     help="keyword option passed to rum.profile() when profiling first (repeatable)")
    pln.add_argument("--out", metavar="PATH", help="write the plan as JSON (for `rum run --plan`)")
    _add_json(pln)
    pln.set_defaults(func=_cmd_plan)

    run = sub.add_parser(
        "run",
        help="unlearn: write the unlearned weights and the result JSON",
        description="Make the model forget the --forget items and save the unlearned weights, as "
        "rum.unlearn() does: the RUM pipeline by default, one unlearner with --unlearner (its "
        "hyper-parameters as -o key=value), or a saved plan with --plan. -o options are passed "
        "to rum.unlearn().\n\n" + _DATA_NOTE,
        epilog="examples:\n"
        "  rum run --model model.pt --arch rum.demo:make_mlp --forget forget.npz --retain retain.npz \\\n"
        "          --out unlearned.pt --result result.json\n"
        "  rum run ... --unlearner finetune -o epochs=3 -o lr=0.01 --out unlearned.pt\n"
        "  rum run ... --plan plan.json --out unlearned.pt --device cuda",
        formatter_class=_FMT,
    )
    _add_model_args(run)
    run.add_argument("--forget", required=True, metavar="PATH", help="the items to forget (.npz or .pt)")
    run.add_argument("--retain", metavar="PATH", help="the retained training data (.npz or .pt)")
    _add_data_keys(run)
    run.add_argument("--unlearner", default=None, help="run this one unlearner (see `rum list`) instead of the pipeline")
    run.add_argument("--policy", default=None, help="planning policy of the pipeline (see rum.plan)")
    run.add_argument("--unlearners", metavar="NAME|JSON", default=None,
                     help="the pipeline's unlearner(s) per group, as for `rum plan --unlearners`")
    run.add_argument("--plan", metavar="PATH", help="run this saved plan (from `rum plan --out`)")
    _add_options(run, "rum.unlearn()")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--strict", action="store_true",
                     help="exit with status 1 when a step diverged or collapsed")
    run.add_argument("--retain-guard", default="0.5", metavar="FRACTION|none",
                     help="undo a step that loses more than this fraction of the retain accuracy "
                          "above the majority-class rate (default 0.5; 'none' turns it off)")
    run.add_argument("--out", required=True, metavar="PATH", help="where to write the unlearned state_dict (.pt or .safetensors)")
    run.add_argument("--result", metavar="PATH", help="write the result (profile, plan, timings, metrics) as JSON")
    _add_json(run)
    run.set_defaults(func=_cmd_run)

    ev = sub.add_parser(
        "evaluate",
        help="accuracies, membership inference and ToW against a retrained model",
        description="Score a model on the forget, retain and test sets, as rum.evaluate() does; "
        "with --reference (the weights of a model retrained without the forget set, same "
        "architecture) also the gaps, ToW and ToW-MIA.\n\n" + _DATA_NOTE,
        epilog="examples:\n"
        "  rum evaluate --model unlearned.pt --arch rum.demo:make_mlp --forget forget.npz \\\n"
        "               --retain retain.npz --test test.npz --reference retrained.pt --out evaluation.json",
        formatter_class=_FMT,
    )
    _add_model_args(ev)
    ev.add_argument("--reference", metavar="PATH", help="weights of the retrained model (same --arch)")
    ev.add_argument("--forget", required=True, metavar="PATH", help="the forgotten items")
    ev.add_argument("--retain", required=True, metavar="PATH", help="the retained training data")
    ev.add_argument("--test", required=True, metavar="PATH", help="held-out data")
    _add_data_keys(ev)
    ev.add_argument("--name", default="model", help="label of the model in the table")
    ev.add_argument("--seed", type=int, default=0, help="seed of the membership-inference attack (default 0)")
    ev.add_argument("--out", metavar="PATH", help="write the evaluation as JSON (for `rum report`)")
    _add_json(ev)
    ev.set_defaults(func=_cmd_evaluate)

    rep = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run",
        description="Write one HTML file (figures embedded, nothing loaded from the network) "
        "with the profile, the plan, the time per step and the metrics of a run, as rum.report() does.",
        epilog="examples:\n"
        "  rum report --result result.json --out report.html\n"
        "  rum report --result result.json --evaluation evaluation.json --reference retrain.json --out report.html",
        formatter_class=_FMT,
    )
    rep.add_argument("--result", required=True, metavar="PATH", help="result JSON from `rum run --result`")
    rep.add_argument("--evaluation", metavar="PATH", help="evaluation JSON from `rum evaluate --out`")
    rep.add_argument("--reference", metavar="PATH", help="result JSON of a retrain run, to show the speed-up")
    rep.add_argument("--title", default=None, help="page title")
    rep.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write")
    _add_json(rep)
    rep.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from rum.exceptions import RumError

    try:
        return int(args.func(args) or 0)
    except (RumError, CLIError) as err:
        print(f"rum {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
