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

import sys

from rum.cli._commands import CLIError, parse_options
from rum.cli._parser import build_parser

__all__ = ["main", "build_parser", "parse_options", "CLIError"]


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
