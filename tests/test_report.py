"""rum.report: a self-contained HTML page, parsed and checked without a browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import rum
from rum.reporting import render_report

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects what the tests look at: sections, headings, images, tables, links."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.tags: set[str] = set()
        self._heading = False
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag in ("h1", "h2", "h3"):
            self._heading = True
            self.headings.append("")
        if tag == "img":
            self.images.append(a["src"])
        for key in ("src", "href", "action", "srcset", "data"):
            if key in a and a[key] is not None:
                self.urls.append(a[key])
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._heading = False
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._heading:
            self.headings[-1] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def run(digits):
    """A two-group plan executed on the digits model, and an evaluation of it."""
    n = len(digits.forget[1])
    mem = np.linspace(0, 1, n)
    ent = np.linspace(1, 0, n)
    groups = (mem > 0.5).astype(int)
    prof = rum.Profile.from_groups(mem, ent, groups, es={0: 1.5, 1: 3.0},
                                   scorers={"memorization": "test", "entanglement": "test"}, seed=0)
    plan = rum.plan(prof, rum.policies.RUM({0: ("finetune", {"epochs": 1}), 1: "neggrad"}))
    res = rum.execute(plan, digits.model, digits.forget, digits.retain, profile=prof,
                      random_state=0, device="cpu", progress=False)
    ev = rum.evaluate(res.model, forget_set=digits.forget, retain_set=digits.retain,
                      test_set=digits.test, reference=digits.model, name="rum")
    return res, ev


def _strip_time(text: str) -> str:
    return re.sub(r"written \d{4}-\d\d-\d\d \d\d:\d\d", "", text)


def test_report_has_every_section_figure_and_table(run, tmp_path):
    res, ev = run
    path = rum.report(res, tmp_path / "r.html", evaluation=ev, reference=12.0, title="digits <run>")
    page = Page(path.read_text())
    assert page.sections == ["summary", "profile", "plan", "time", "metrics"]
    assert page.headings[0] == "digits <run>"  # escaped in the HTML, read back as text
    assert {"Summary", "Profile", "Plan", "Time per step", "Metrics", "Evaluation"} <= set(page.headings)
    # three figures (profile, time, metrics), each an embedded PNG
    assert len(page.images) == 3
    for src in page.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64" and base64.b64decode(data).startswith(PNG)
    # the plan table lists each step with its group, size and unlearner
    plan_rows = next(t for t in page.tables if t[0][:4] == ["step", "group", "items", "unlearner"])
    assert [(r[1], r[2], r[3]) for r in plan_rows[1:]] == [
        (str(s.group), str(len(s.indices)), s.unlearner) for s in res.plan.steps
    ]
    assert "epochs=1" in plan_rows[1][5]
    # per-step time and the before/after/retrain metrics
    time_rows = next(t for t in page.tables if t[0][:2] == ["step", "unlearner"])
    assert [float(r[5]) for r in time_rows[1:]] == pytest.approx([s.seconds for s in res.steps], abs=1e-4)
    metrics = next(t for t in page.tables if t[0] == ["metric", "before", "after", "retrain"])
    forget_row = dict(zip(metrics[0], metrics[1]))
    assert float(forget_row["after"]) == pytest.approx(res.metrics["forget_acc_after"], abs=1e-4)
    assert float(forget_row["retrain"]) == pytest.approx(ev.reference.forget, abs=1e-4)
    evaluation = next(t for t in page.tables if t[0][0] == "model")
    assert [r[0] for r in evaluation[1:]] == ["rum", "retrain (reference)"]
    assert float(evaluation[1][5]) == pytest.approx(ev.tow, abs=1e-4)
    # group table: one row per group with its ES
    groups = next(t for t in page.tables if t[0][:2] == ["group", "size"])
    assert [r[4] for r in groups[1:]] == ["1.5000", "3.0000"]
    speedup = 12.0 / res.timings["total"]
    assert f"{speedup:.1f}x" in path.read_text()


def test_report_is_self_contained(run, tmp_path):
    res, ev = run
    text = rum.report(res, tmp_path / "r.html", evaluation=ev).read_text()
    page = Page(text)
    assert all(u.startswith("data:") for u in page.urls)
    assert not {"script", "link", "iframe"} & page.tags
    assert "http://" not in text and "https://" not in text


def test_report_from_saved_json_equals_report_from_objects(run, tmp_path):
    res, ev = run
    import json

    res.save(tmp_path / "res.json")
    (tmp_path / "ev.json").write_text(json.dumps(ev.to_dict()))
    direct = render_report(res, evaluation=ev, figures=False)
    loaded = render_report(tmp_path / "res.json", evaluation=tmp_path / "ev.json", figures=False)
    assert _strip_time(direct) == _strip_time(loaded)


def test_without_matplotlib_the_page_says_how_to_get_figures(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now raises ImportError
    text = render_report(run[0])
    page = Page(text)
    assert page.images == [] and "rum-unlearn[plot]" in text
    assert page.sections == ["summary", "profile", "plan", "time", "metrics"]


def test_a_diverged_step_is_flagged(run):
    res, _ = run
    from dataclasses import replace

    steps = (replace(res.steps[0], status="diverged", message="loss became nan"), *res.steps[1:])
    text = render_report(replace(res, steps=steps), figures=False)
    assert 'class="warn"' in text and "loss became nan" in text


def test_bad_inputs_raise_rum_errors(run, tmp_path):
    with pytest.raises(rum.exceptions.InvalidParameterError, match="UnlearnResult"):
        rum.report(42, tmp_path / "x.html")
    with pytest.raises(rum.exceptions.InvalidFileError, match="no such file"):
        rum.report(tmp_path / "missing.json", tmp_path / "x.html")
    with pytest.raises(rum.exceptions.InvalidFileError, match="Check the folder"):
        rum.report(run[0], tmp_path / "no" / "x.html")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium package")
def test_chromium_renders_the_page(run, tmp_path):
    res, ev = run
    path = rum.report(res, tmp_path / "r.html", evaluation=ev)
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2400",
         path.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (2400, 1200)
    # the page is not blank: several distinct colours (figures, tables) are drawn
    assert len(np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


def test_an_auto_result_gets_a_search_section(digits, tmp_path):
    res = rum.unlearn(digits.model, digits.forget, digits.retain, policy="auto", random_state=0,
                      progress=False)
    html = render_report(res, figures=False)
    page = Page(html)
    assert page.sections == ["summary", "profile", "plan", "search", "time", "metrics"]
    trials = next(t for t in page.tables if t[0][:2] == ["group", "unlearner"] and "kept" in t[0])
    assert [(int(r[0]), r[1], r[6] == "yes") for r in trials[1:]] == [
        (t.group, t.unlearner, t.kept) for t in res.search.trials]
    assert [float(r[4]) for r in trials[1:]] == pytest.approx(
        [t.baseline for t in res.search.trials], abs=1e-4)
    assert "short retrain" in html
    # saved and loaded, the result gives the same page
    assert _strip_time(render_report(res.save(tmp_path / "auto.json"), figures=False)) == _strip_time(html)


# -- audits --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audited():
    """An audit record with a reference (made by hand: the page needs no shadows)."""
    from rum._audit._record import attack_summary

    rng = np.random.default_rng(0)
    scores, neg = rng.exponential(1.5, 60), rng.exponential(0.43, 60)
    ref, ref_neg = rng.exponential(0.43, 60), rng.exponential(0.43, 60)
    w = np.ones(60)
    return rum.Audit(
        scores=scores, log_lr=scores * 2 - 1, detectability=rng.uniform(0.5, 1, 60),
        memorization=rng.uniform(0, 1, 60), negative_scores=neg, negatives=np.arange(60),
        negative_weights=w, attack=attack_summary(scores, neg, w), reference_scores=ref,
        reference_negative_scores=ref_neg, reference_attack=attack_summary(ref, ref_neg, w),
        n_shadows=16, seed=0, timings={"train": 16.0, "unlearn": 0.0, "retrain": 1.0, "total": 16.5},
    )


def test_an_audit_gets_a_page_with_roc_histogram_and_items_at_risk(audited, tmp_path):
    path = rum.report(audited, tmp_path / "a.html")
    page = Page(path.read_text())
    assert page.sections == ["audit"] and page.headings[0] == "rum audit report"
    assert len(page.images) == 1 and base64.b64decode(page.images[0].partition(",")[2]).startswith(PNG)
    figures = next(t for t in page.tables if t[0][:2] == ["model", "AUC"])
    assert [r[0] for r in figures[1:]] == ["audited model", "retrained reference"]
    assert float(figures[1][1]) == pytest.approx(audited.auc, abs=1e-4)
    assert float(figures[2][1]) == pytest.approx(audited.reference_auc, abs=1e-4)
    risk = next(t for t in page.tables if t[0][0] == "forget index")
    assert [int(r[0]) for r in risk[1:]] == audited.at_risk.tolist()
    # the same page from the saved JSON
    audited.save(tmp_path / "a.json")
    assert _strip_time(render_report(tmp_path / "a.json", figures=False)) == \
        _strip_time(render_report(audited, figures=False))


def test_an_audit_joins_an_unlearning_report(run, audited, tmp_path, monkeypatch):
    res, ev = run
    page = Page(render_report(res, evaluation=ev, audit=audited.to_dict()))
    assert page.sections == ["summary", "profile", "plan", "time", "metrics", "audit"]
    assert len(page.images) == 4
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    text = render_report(audited)
    assert Page(text).images == [] and "rum-unlearn[plot]" in text
    with pytest.raises(rum.exceptions.InvalidParameterError, match="audit="):
        render_report(audited, audit=audited)
    with pytest.raises(rum.exceptions.InvalidParameterError, match="Audit"):
        render_report(res, audit=42)
