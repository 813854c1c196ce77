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
    """A small rum.__all__, each name with a docstring and an example in it."""
    assert len(rum.__all__) <= 30
    for name in rum.__all__:
        obj = getattr(rum, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
            assert ">>>" in obj.__doc__, f"rum.{name} has no docstring example"


@pytest.mark.slow  # every docstring example of the package
@pytest.mark.parametrize("module", ["rum"])
def test_doctests(module):
    """Every docstring example of every module of the package runs as written."""
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
    return [m.name for m in pkgutil.walk_packages(mod.__path__, mod.__name__ + ".")
            if not m.name.endswith("__main__")]  # runs the command line when imported


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


# -- the layered house ---------------------------------------------------------------------------
def test_no_module_imports_a_layer_above_its_own():
    """The import-linter contract in pyproject.toml: apps > facade > stages > runner > plug-ins >
    runtime > foundation, counting imports inside functions too."""
    import os

    from importlinter.cli import lint_imports

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert lint_imports(no_cache=True) == 0, "an import breaks rum's layers: run `lint-imports`"
    finally:
        os.chdir(cwd)


def test_the_import_graph_has_no_cycle():
    import grimp
    import networkx as nx

    graph = grimp.build_graph("rum", include_external_packages=False, cache_dir=None)
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_node(m)
        g.add_edges_from((m, imported) for imported in graph.find_modules_directly_imported_by(m))
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "rum").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines (a sign that one does two jobs): {long}"


PUBLIC_MODULES = ["rum", "rum.policies", "rum.unlearners", "rum.profiler", "rum.planner",
                  "rum.executor", "rum.influence", "rum.requests", "rum.metrics", "rum.testing",
                  "rum.exceptions"]


def _documented_objects() -> list:
    """The objects docs/api.md renders: every `::: path`, and the members listed under one."""
    import importlib

    def resolve(path):
        # as mkdocstrings does: the longest importable module, then attributes
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
        raise ImportError(path)

    out, current = [], None
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        if line.startswith("::: "):
            current = line[4:].strip()
            out.append(resolve(current))
        elif line.strip().startswith("members: [") and current:
            names = line.split("[", 1)[1].rstrip("]").split(",")
            out.extend(resolve(f"{current}.{n.strip()}") for n in names)
    return out


def test_the_api_reference_lists_every_public_name():
    import importlib
    import types

    documented = _documented_objects()
    missing = []
    for module in PUBLIC_MODULES:
        mod = importlib.import_module(module)
        if module == "rum.exceptions":
            continue  # rendered whole, with every member
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name == "__version__" or isinstance(obj, types.ModuleType):
                continue
            if not any(obj is d for d in documented) and not isinstance(obj, (str, int, float)):
                missing.append(f"{module}.{name}")
            elif isinstance(obj, (str, tuple, dict)) and f"{module}.{name}" not in (ROOT / "docs" / "api.md").read_text() \
                    and not any(f"rum.{sub}.{name}" in (ROOT / "docs" / "api.md").read_text()
                                for sub in ("policies", "planner", "profiler")):
                missing.append(f"{module}.{name}")
    assert not missing, f"public names missing from docs/api.md: {missing}"
