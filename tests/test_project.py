"""Project-level promises: the README commands, CI, the examples and the public surface."""

from __future__ import annotations

import pathlib
import re

import pytest

import rum

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_command(tag: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {tag} -->(.*?)<!-- /{tag} -->", text, re.S).group(1)
    lines = [ln for ln in block.splitlines() if ln.startswith("pip ")]
    assert len(lines) == 1, lines
    return lines[0]


def test_readme_has_exactly_the_two_setup_commands():
    demo, tests = _readme_command("demo-command"), _readme_command("test-command")
    assert demo.startswith("pip install torch==2.13.0") and demo.endswith("rum demo")
    assert tests.startswith("pip install torch==2.13.0") and "pytest" in tests
    assert "[dev]" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci and "README.md" in ci


def test_public_surface_is_small_and_documented():
    assert len(rum.__all__) <= 30
    for name in rum.__all__:
        obj = getattr(rum, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


@pytest.mark.parametrize("module", ["rum", "rum.data", "rum.metrics", "rum.unlearners"])
def test_doctests(module):
    import doctest
    import importlib

    mod = importlib.import_module(module)
    failures = 0
    for sub in [mod, *[importlib.import_module(n) for n in _submodules(mod)]]:
        failures += doctest.testmod(sub, optionflags=doctest.ELLIPSIS).failed
    assert failures == 0


def _submodules(mod):
    import pkgutil

    if not hasattr(mod, "__path__"):
        return []
    return [m.name for m in pkgutil.walk_packages(mod.__path__, mod.__name__ + ".")]


def test_no_tracked_file_holds_merge_conflict_markers():
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[1]
    try:
        files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    marker = re.compile(r"^(<{7}|>{7})( |$)", re.M)
    bad = []
    for name in files:
        path = root / name
        if path.suffix in {".png", ".npz", ".pt"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if marker.search(text):
            bad.append(name)
    assert not bad, f"merge conflict markers left in {bad}"
