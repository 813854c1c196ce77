"""Compare two runs of the RUM suite row by row: every field but the timings must be equal.

    python -m benchmarks.rum_suite --scenarios random,mixed --threads 1 --no-write --rows a.json
    (change the code, or check out another commit)
    python -m benchmarks.rum_suite --scenarios random,mixed --threads 1 --no-write --rows b.json
    python -m benchmarks.compare_rows a.json b.json

A change that should not change behaviour (a refactor) must give the same rows to the last
digit on the same machine and thread count. Exits with status 1 when a row differs.
"""

from __future__ import annotations

import argparse
import json
import sys

#: Fields that measure time, and so differ from run to run.
TIME_FIELDS = {"seconds", "profile_s", "plan_s", "retrain_s"}


def _key(row: dict) -> tuple:
    return (row["task"], row.get("scale", "small"), row["seed"], row["scenario"], row["method"])


def compare(a: list[dict], b: list[dict]) -> list[str]:
    """One line per difference between the rows ``a`` and ``b`` (matched by task, seed,
    scenario and method); rows present in one run only count as differences.

    Examples:
        >>> row = {"task": "digits", "seed": 0, "scenario": "random", "method": "RUM", "tow": 0.9,
        ...        "seconds": 1.0}
        >>> compare([row], [{**row, "seconds": 2.0}])
        []
        >>> compare([row], [{**row, "tow": 0.8}])
        ["('digits', 'small', 0, 'random', 'RUM'): tow 0.9 != 0.8"]
    """
    ra, rb = {_key(r): r for r in a}, {_key(r): r for r in b}
    out = [f"{k}: only in the first run" for k in ra if k not in rb]
    out += [f"{k}: only in the second run" for k in rb if k not in ra]
    for k in ra.keys() & rb.keys():
        for field in sorted((ra[k].keys() | rb[k].keys()) - TIME_FIELDS):
            if ra[k].get(field) != rb[k].get(field):
                out.append(f"{k}: {field} {ra[k].get(field)!r} != {rb[k].get(field)!r}")
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first")
    ap.add_argument("second")
    args = ap.parse_args(argv)
    a, b = (json.loads(open(p).read()) for p in (args.first, args.second))
    diffs = compare(a, b)
    print(f"{len(a)} and {len(b)} rows; {len(diffs)} difference(s) outside the timings")
    for line in diffs[:50]:
        print(" ", line)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
