"""The commands of the ``rum`` command line and the helpers they share (files in, files out)."""

from __future__ import annotations

import argparse
import inspect
import json
import os
from pathlib import Path
from typing import Any

_RESERVED = {"model", "forget_set", "retain_set", "random_state", "device", "progress", "profile",
             "retain_guard", "policy", "unlearner"}


class CLIError(Exception):
    """A usage problem found by the command line itself (exit status 2)."""


# -- helpers ------------------------------------------------------------------------------------
def parse_options(pairs: list[str] | None, where: str = "-o") -> dict[str, Any]:
    """Turn ``["epochs=3", "lr=0.01", "optimizer=sgd"]`` into keyword options.

    Values are read as JSON when they parse (numbers, ``true``/``false``/``null``,
    lists, objects) and kept as strings otherwise.

    Examples:
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
            "--seed, --device, --retain-guard, --policy, --unlearner); use those instead."
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


def _check_outputs(args: argparse.Namespace, outputs: tuple[str, ...],
                   inputs: tuple[str, ...] = ()) -> None:
    """Fail before any work when an output cannot be written, or would overwrite an input
    or another output of the same command."""
    seen: dict[Path, str] = {}
    for flag in inputs:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value:
            seen[Path(value).resolve()] = flag
    for flag in outputs:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if not value:
            continue
        path = Path(value).resolve()
        if path in seen:
            raise CLIError(f"{flag} {value!r} is also {seen[path]}; rum never writes over its own "
                           "inputs or outputs. Give another path.")
        seen[path] = flag
        if path.is_dir():
            raise CLIError(f"{flag} {value!r} is a folder; give the path of a file in it.")
        if not path.parent.is_dir():
            raise CLIError(f"{flag} {value!r}: the folder {str(path.parent)!r} does not exist; create it first.")
        if len(path.name.encode()) > 250:
            raise CLIError(f"{flag}: the file name is too long ({len(path.name)} characters).")
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise CLIError(f"{flag} {value!r}: cannot write there (permission denied).")


def _write(path: str, flag: str, writer: Any) -> None:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place, so that
    ``path`` is never left half-written."""
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        writer(tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise CLIError(f"{flag} {path!r}: cannot write ({err.strerror or err}).") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(obj: Any, path: str, flag: str) -> None:
    _write(path, flag, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2)))


def _read_record(cls: Any, path: str, flag: str, how: str) -> Any:
    """A record (profile, plan) saved as JSON, or a clear error naming ``flag``."""
    from rum.exceptions import InvalidFileError, RumError

    if not Path(path).is_file():
        raise CLIError(f"{flag} {path!r}: no such file. Write one with `{how}`.")
    try:
        return cls.load(path)
    except InvalidFileError as err:
        raise InvalidFileError(f"{flag}: {err} Write one with `{how}`.") from None
    except RumError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise InvalidFileError(
            f"{flag} {path!r} is not a file written by `{how}` ({type(err).__name__}: {err})."
        ) from None


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


def _policy(args: argparse.Namespace, default: str | None = "rum") -> Any:
    """The policy of ``--policy NAME`` and ``-P key=value`` options (``default`` when neither is given)."""
    from rum.policies import make_policy

    options = parse_options(args.policy_option, "-P")
    if args.policy is None and not options:
        return None if default is None else make_policy(default)
    return make_policy(args.policy or "rum", options, "--policy")


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
                "suits": list(t.suits),
                "params": cls._param_names(),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rum._records import table

    print(
        table(
            ["name", "class", "needs retain", "cost", "suits", "source"],
            [[r["name"], r["class"], str(r["needs_retain"]), r["cost"], ", ".join(r["suits"]) or "-",
              r["source"]] for r in rows],
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
    from rum._data import as_data

    _, _, retain, prof = _profiled_inputs(args, options)
    n_retain = 0 if retain is None else len(as_data(retain, "--retain", allow_empty=True))
    return prof, n_retain


def _cmd_profile(args: argparse.Namespace) -> int:
    options = parse_options(args.option)
    _check_outputs(args, outputs=("--out",), inputs=("--model", "--forget", "--retain"))
    prof, _ = _profile_from_args(args, options)
    _emit(prof, args, "profile")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import rum
    from rum.policies import SearchPolicy

    plan_options = parse_options(args.option)
    profile_options = parse_options(args.profile_option, "--profile-option")
    _check_forwarded(rum.plan, plan_options, "rum.plan()")
    _check_outputs(args, outputs=("--out",), inputs=("--profile", "--model", "--forget", "--retain"))
    policy = _policy(args)
    if isinstance(policy, SearchPolicy):
        return _plan_search(args, policy, plan_options, profile_options)
    from rum._runtime.guard import RETAIN_GUARD

    if _guard_value(args.retain_guard) != RETAIN_GUARD:
        raise CLIError("--retain-guard sets the guard a search policy's trials run under (--policy auto); "
                       "for another plan give it where the plan runs: `rum run --plan ... --retain-guard`.")
    if args.profile:
        if args.model or args.forget:
            raise CLIError("give either --profile or --model/--arch/--forget (to profile first), not both.")
        prof = _read_record(rum.Profile, args.profile, "--profile", "rum profile --out")
    else:
        missing = [f for f, v in (("--model", args.model), ("--arch", args.arch), ("--forget", args.forget)) if not v]
        if missing:
            raise CLIError(
                "give --profile PROFILE.json, or --model, --arch and --forget to profile first "
                f"(missing: {', '.join(missing)})."
            )
        prof, n_retain = _profile_from_args(args, profile_options)
        plan_options.setdefault("n_retain", n_retain)  # lets the plan print its cost
    the_plan = rum.plan(prof, policy, **plan_options)
    _emit(the_plan, args, "plan")
    return 0


def _plan_search(args: argparse.Namespace, policy: Any, plan_options: dict, profile_options: dict) -> int:
    """``rum plan --policy auto``: profile, then search on a copy of the model (as ``rum run``
    would, with the same seed), and print the plan with what the search tried."""
    import rum

    missing = [f for f, v in (("--model", args.model), ("--arch", args.arch), ("--forget", args.forget),
                              ("--retain", args.retain)) if not v]
    if args.profile or missing:
        raise CLIError(
            f"--policy {policy.label} tries unlearners on the model and data: give --model, --arch, "
            "--forget and --retain (it profiles them itself"
            + (", so drop --profile)." if args.profile else ")")
            + (f"; missing: {', '.join(missing)}." if missing else "")
        )
    model, forget, retain, prof = _profiled_inputs(args, profile_options)
    the_plan = rum.plan(prof, policy, model=model, forget_set=forget, retain_set=retain,
                        random_state=args.seed, device=args.device,
                        retain_guard=_guard_value(args.retain_guard),
                        progress=False if (args.no_progress or args.json) else None, **plan_options)
    _emit(the_plan, args, "plan")
    if not args.json and the_plan.search is not None:
        print(f"\n{the_plan.search}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import rum

    options = parse_options(args.option)
    if args.plan and (args.unlearner or options or args.policy or args.policy_option):
        raise CLIError("--plan runs a saved plan as it is; drop --unlearner, --policy, -P and -o.")
    _check_forwarded(rum.unlearn, options, "rum.unlearn()")
    _check_outputs(args, outputs=("--out", "--result"),
                   inputs=("--model", "--forget", "--retain", "--plan"))
    the_plan = None
    if args.plan:
        the_plan = _read_record(rum.Plan, args.plan, "--plan", "rum plan --out")
    policy = _policy(args, default=None)
    model = _load_model(args)
    forget = _load(args.forget, "--forget", args)
    retain = _load(args.retain, "--retain", args)
    progress = False if (args.no_progress or args.json) else None
    common = dict(device=args.device, random_state=args.seed, progress=progress,
                  retain_guard=_guard_value(args.retain_guard))
    if the_plan is not None:
        result = rum.execute(the_plan, model, forget, retain, **common)
    else:
        result = rum.unlearn(model, forget, retain, unlearner=args.unlearner, policy=policy,
                             **common, **options)
    from rum._io import save_state_dict

    _write(args.out, "--out", lambda tmp: save_state_dict(result.model, tmp))
    if args.result:
        _write_json(result.to_dict(), args.result, "--result")
    if args.json:
        _print_json(result.to_dict() | {"model_path": args.out, "result_path": args.result})
    else:
        print(result)
        if result.search is not None:  # what a search policy tried, one row per candidate and stage
            print(f"\n{result.search}")
        print(f"unlearned weights written to {args.out}" + (f", result to {args.result}" if args.result else ""))
    return 0 if not result.diverged or not args.strict else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import rum

    _check_outputs(args, outputs=("--out",),
                   inputs=("--model", "--reference", "--forget", "--retain", "--test"))
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

    _check_outputs(args, outputs=("--out",), inputs=("--result", "--evaluation", "--reference"))
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
