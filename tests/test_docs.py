"""Every code block in docs/*.md and README.md runs, so the documentation cannot go stale.

Per page, the ```python blocks run in order in one namespace and the ```bash
blocks run each ``rum ...`` line through ``rum.cli.main``, all in a scratch
folder. A block that must not run (it installs packages, or takes minutes)
is preceded by an ``<!-- no-run: reason -->`` comment. Blocks in other
languages (text, json, toml, yaml) are not code to run.

``rum.demo.digits_scenario(0)`` is served from the session's fixture so that
the pages do not each retrain the demo model.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shlex

import pytest

import rum
import rum.demo
from rum.unlearners.registry import UNLEARNERS

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
RUNNABLE = {"python", "py", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(no-run|demo-command|test-command)\b[^>]*-->\s*$")


def blocks(page: pathlib.Path) -> list[tuple[str, str, int, bool]]:
    """(language, code, line, runs) for every fenced block of ``page``."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").splitlines()
        previous = before[-1].strip() if before else ""
        code = "\n".join(ln[len(m["indent"]) :] for ln in m["body"].splitlines())
        out.append((m["lang"].lower(), code, text.count("\n", 0, m.start()) + 1, not MARK.search(previous)))
    return out


def _rel(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT))


def _commands(code: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", code)
    cmds = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        if argv[0] != "rum":
            raise AssertionError(
                f"only `rum ...` commands run in bash blocks; mark the block <!-- no-run: why --> "
                f"if {line!r} must not run"
            )
        cmds.append(argv[1:])
    return cmds


@pytest.fixture()
def fast_demo(digits, monkeypatch):
    original = rum.demo.digits_scenario

    def cached(seed=0, **kw):
        return digits if seed == 0 and not kw else original(seed, **kw)

    monkeypatch.setattr(rum.demo, "digits_scenario", cached)


@pytest.mark.slow  # runs every page's code
@pytest.mark.parametrize("page", [p for p in PAGES if any(b[3] for b in blocks(p))], ids=_rel)
def test_page_code_runs(page, fast_demo, tmp_path, monkeypatch):
    from rum.cli import main

    monkeypatch.chdir(tmp_path)
    registered = set(UNLEARNERS.names())
    namespace: dict = {"__name__": "__docs__"}
    try:
        for lang, code, line, runs in blocks(page):
            if not runs or lang not in RUNNABLE:
                continue
            where = f"{_rel(page)}:{line}"
            if lang in ("python", "py"):
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        exec(compile(code, where, "exec"), namespace)
                except Exception as err:
                    raise AssertionError(f"the block at {where} failed: {type(err).__name__}: {err}") from err
            else:
                for argv in _commands(code):
                    err = io.StringIO()
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                        rc = main(argv)
                    assert rc == 0, f"`rum {' '.join(argv)}` at {where} exited {rc}: {err.getvalue()}"
    finally:
        for name in set(UNLEARNERS.names()) - registered:
            UNLEARNERS.unregister(name)
        try:
            import matplotlib.pyplot as plt

            plt.close("all")
        except ImportError:  # pragma: no cover
            pass


def test_every_code_block_has_a_language_and_runs_or_says_why_not():
    problems = []
    for page in PAGES:
        for lang, code, line, runs in blocks(page):
            where = f"{_rel(page)}:{line}"
            if not lang:
                problems.append(f"{where}: give the block a language (```python, ```bash, ```text)")
            elif lang in RUNNABLE and runs and lang not in ("python", "py"):
                try:
                    _commands(code)
                except AssertionError as err:
                    problems.append(f"{where}: {err}")
    assert not problems, "\n".join(problems)


def test_block_parser_finds_marks_and_languages(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- no-run: slow -->\n```bash\npip install x\n```\n\n"
        "- item\n\n    ```text\n    out\n    ```\n"
    )
    assert blocks(page) == [("python", "x = 1", 3, True), ("bash", "pip install x", 8, False), ("text", "out", 14, True)]
    assert _commands("rum run --a 1 \\\n    --b 2  # note\n# c\n") == [["run", "--a", "1", "--b", "2"]]


def test_nav_lists_every_page():
    nav = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.M))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed, f"missing from nav: {pages - listed}; missing files: {listed - pages}"


def test_ci_builds_the_docs_strictly():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[docs,distributed]"' in ci and "mkdocs build --strict" in ci
