"""The ``rum`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from rum._version import __version__


def _cmd_demo(args: argparse.Namespace) -> int:
    from rum.demo import run_demo

    print(run_demo(args.seed, device=args.device, progress=False if args.no_progress else None))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rum.unlearners.registry import UNLEARNERS

    rows = []
    for name in UNLEARNERS.names():
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rum",
        description="Machine unlearning for PyTorch classifiers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  rum demo\n  rum list --json",
    )
    parser.add_argument("--version", action="version", version=f"rum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train an MLP on digits, unlearn mislabeled + ordinary items, print the evaluation",
        description="Train a small MLP on scikit-learn's digits with 5% flipped labels, forget "
        "10% of the training set (the flipped items plus ordinary ones) with the default "
        "pipeline and single unlearners, and compare each with retraining.",
        epilog="example:\n  rum demo --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=_cmd_demo)

    lst = sub.add_parser(
        "list",
        help="list the registered unlearners",
        epilog="example:\n  rum list --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from rum.exceptions import RumError

    try:
        return int(args.func(args) or 0)
    except RumError as err:
        print(f"rum {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
