"""Write a benchmark's results into its own section of docs/benchmarks.md or one of its sub-pages."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_SUB = DOC.parent / "benchmarks"
#: The page a section is written to: that of the first prefix its name starts with. The
#: RUM suite's summary and figures stay on the short page (DOC), every table on a sub-page.
PAGES: tuple[tuple[str, Path], ...] = (
    ("rum-suite-summary", DOC),
    ("rum-suite-plots", DOC),
    ("rum-suite-auto-budget", _SUB / "budget.md"),
    ("rum-suite-large-budget", _SUB / "budget.md"),
    ("rum-suite-large-", _SUB / "large-scale.md"),
    ("rum-suite-", _SUB / "rum-suite.md"),
    ("auto-targets", _SUB / "auto.md"),
    ("memorization-sources", _SUB / "memorization-sources.md"),
    ("profiler", _SUB / "profiler.md"),
    ("unlearners", _SUB / "unlearners.md"),
    ("defaults", _SUB / "defaults.md"),
    ("influence", _SUB / "influence.md"),
    ("audit", _SUB / "audit.md"),
    ("scenarios", _SUB / "scenarios.md"),
)


def _cpu_model() -> str:
    """The CPU's model name on Linux (results differ in their last digits between CPU models)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine() -> str:
    """One line describing where the numbers were measured."""
    import numpy
    import sklearn
    import torch

    cpu = _cpu_model() or platform.processor() or platform.machine()
    gpu = ""
    if torch.cuda.is_available():
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPU cores{gpu}; "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )


def page(name: str) -> Path:
    """The page section ``name`` belongs on (:data:`PAGES`; :data:`DOC` for a name no prefix matches)."""
    return next((doc for prefix, doc in PAGES if name.startswith(prefix)), DOC)


def write_section(name: str, body: str, doc: Path | None = None) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` (append if absent).

    The page is ``doc``, or else the one :func:`page` names for the section.
    """
    doc = doc or page(name)
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
