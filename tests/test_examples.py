"""Every script in examples/ runs to completion at small settings.

Examples are discovered, so a new ``examples/*.py`` is covered without
editing this file. Each runs in its own process (examples may register
plug-ins or start Ray) from a scratch folder, with ``RUM_EXAMPLE_QUICK=1`` in
the environment: an example reads it to shrink its settings (fewer epochs,
seeds or models) so that the whole set stays fast. An example whose optional
dependency is not installed (for example ``ray``) is skipped, not failed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT_S = 300


def top_level_imports(path: pathlib.Path) -> set[str]:
    """The top-level packages an example imports (absolute imports only)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def missing_imports(path: pathlib.Path) -> list[str]:
    return sorted(n for n in top_level_imports(path) if n != "rum" and importlib.util.find_spec(n) is None)


def test_examples_are_found():
    assert (ROOT / "examples" / "quickstart.py") in EXAMPLES


def test_import_scan_sees_optional_dependencies(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("import os\nfrom not_a_real_pkg_xyz.sub import thing\nimport rum.demo\nfrom . import y\n")
    assert top_level_imports(script) == {"os", "not_a_real_pkg_xyz", "rum"}
    assert missing_imports(script) == ["not_a_real_pkg_xyz"]


@pytest.mark.slow  # runs the examples
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    missing = missing_imports(script)
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}")
    env = dict(os.environ)
    env["RUM_EXAMPLE_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"{script.name} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-3000:]}"
        f"\n--- stderr ---\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip(), f"{script.name} printed nothing; an example should show its result"


@pytest.mark.slow  # runs the examples
def test_custom_unlearner_example_passes_the_kit():
    from rum.testing import check_unlearner

    path = ROOT / "examples" / "custom_unlearner.py"
    spec = importlib.util.spec_from_file_location("rum_example_custom_unlearner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = check_unlearner(module.UniformForget(epochs=3))
    assert set(result.values()) == {"passed"}
