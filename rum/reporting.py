"""``rum.report``: a self-contained HTML page about one unlearning run."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rum._audit import Audit
from rum._records import fmt, jsonable, load_json
from rum._version import __version__
from rum.exceptions import InvalidFileError, InvalidParameterError
from rum.executor.result import UnlearnResult
from rum.metrics._evaluate import EvaluationReport

__all__ = ["report", "render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1040px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.2rem;margin:32px 0 8px;border-bottom:2px solid #d9dde5;padding-bottom:4px}
.meta{color:#5a6273;font-size:.9rem;margin-bottom:16px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:8px 20px 16px;margin-top:16px}
table{border-collapse:collapse;margin:8px 0;font-size:.9rem}
th,td{padding:4px 10px;border-bottom:1px solid #e8eaef;text-align:left}
th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{background:#eef3fb;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:1.25rem}.card span{color:#5a6273;font-size:.8rem}
.warn{background:#fff4e0;border-left:4px solid #e8a33d;padding:6px 12px;margin:8px 0}
.note{color:#5a6273;font-style:italic}
figure{margin:8px 0}figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
figcaption{color:#5a6273;font-size:.85rem}
code{background:#eef1f6;padding:1px 4px;border-radius:3px}
"""


# -- inputs -------------------------------------------------------------------------------------
def _as_result(result: Any) -> UnlearnResult:
    if isinstance(result, UnlearnResult):
        return result
    if isinstance(result, (str, Path)):
        result = _read_json(result, "result")
    if isinstance(result, Mapping):
        try:
            return UnlearnResult.from_dict(dict(result))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidFileError(
                f"result: not an unlearning result ({type(err).__name__}: {err}). Pass the "
                "UnlearnResult returned by rum.unlearn/rum.execute, or the JSON written by "
                "result.save(path) or `rum run --result`."
            ) from None
    raise InvalidParameterError(
        "result must be an UnlearnResult, its to_dict() or the path of its JSON file, "
        f"got {type(result).__name__}."
    )


def _read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InvalidFileError(f"{what}: no such file {str(p)!r}. Check the path.")
    try:
        return load_json(p)
    except InvalidFileError as err:
        raise InvalidFileError(f"{what}: {err}") from None


def _is_audit(obj: Any) -> bool:
    return isinstance(obj, Audit) or (isinstance(obj, Mapping) and obj.get("record") == "audit")


def _as_audit(audit: Any) -> Audit:
    if isinstance(audit, (str, Path)):
        audit = _read_json(audit, "audit")
    if isinstance(audit, Audit):
        return audit
    if _is_audit(audit):
        try:
            return Audit.from_dict(dict(audit))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidFileError(
                f"audit: not an audit ({type(err).__name__}: {err}). Pass the Audit returned by "
                "rum.audit, or the JSON written by audit.save(path)."
            ) from None
    raise InvalidParameterError(
        "audit must be an Audit (from rum.audit), its to_dict() or the path of its JSON file, "
        f"got {type(audit).__name__}."
    )


def _as_evaluations(evaluation: Any) -> list[EvaluationReport]:
    if evaluation is None:
        return []
    if isinstance(evaluation, (str, Path)):
        evaluation = _read_json(evaluation, "evaluation")
    if isinstance(evaluation, (EvaluationReport, Mapping)):
        evaluation = [evaluation]
    if not isinstance(evaluation, Sequence):
        raise InvalidParameterError(
            "evaluation must be an EvaluationReport (from rum.evaluate), a list of them, their "
            f"to_dict() or the path of a JSON file, got {type(evaluation).__name__}."
        )
    out = []
    for e in evaluation:
        if isinstance(e, EvaluationReport):
            out.append(e)
        elif isinstance(e, Mapping):
            try:
                out.append(EvaluationReport.from_dict(dict(e)))
            except (KeyError, TypeError, ValueError) as err:
                raise InvalidFileError(
                    f"evaluation: not an evaluation report ({type(err).__name__}: {err}). Use the "
                    "JSON written by `rum evaluate --out`."
                ) from None
        else:
            raise InvalidParameterError(
                f"evaluation entries must be EvaluationReport objects, got {type(e).__name__}."
            )
    return out


def _reference_seconds(reference: Any) -> float | None:
    if reference is None:
        return None
    if isinstance(reference, numbers.Real) and not isinstance(reference, bool):
        return float(reference)
    ref = _as_result(reference)
    return float(ref.timings.get("total", sum(s.seconds for s in ref.steps)))


# -- figures ------------------------------------------------------------------------------------
def _figure_module():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _profile_figure(Figure, res: UnlearnResult) -> str:
    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    prof = res.profile
    if np.isfinite(prof.entanglement).any():
        prof.plot(ax=ax1)
        ax1.set_title("forget items by group")
    else:  # no entanglement scores: show memorization per item instead of a flat line
        sc = ax1.scatter(np.arange(len(prof)), prof.memorization, c=prof.groups, cmap="viridis", s=12)
        ax1.set_xlabel("forget item")
        ax1.set_ylabel(f"memorization ({prof.scorers.get('memorization', '?')})")
        ax1.set_title("memorization per item (entanglement not computed)")
        ax1.legend(*sc.legend_elements(), title="group", loc="best")
    mem = res.profile.memorization
    for s in res.profile.summary:
        vals = mem[res.profile.groups == s.group]
        vals = vals[np.isfinite(vals)]
        if len(vals):
            ax2.hist(vals, bins=20, alpha=0.6, label=f"group {s.group} ({s.size})")
    ax2.set_xlabel("memorization")
    ax2.set_ylabel("items")
    ax2.set_title("memorization per group")
    if res.profile.n_groups:
        ax2.legend(loc="best", fontsize=8)
    return _png(fig)


def _time_figure(Figure, res: UnlearnResult, ref_seconds: float | None) -> str:
    labels, values, colours = [], [], []
    for key in ("profile", "plan"):
        if key in res.timings:
            labels.append(key)
            values.append(float(res.timings[key]))
            colours.append("#9aa5b8")
    for s in res.steps:
        labels.append(f"step {s.step}: {s.unlearner} (group {s.group})")
        values.append(float(s.seconds))
        colours.append("#d9534f" if s.status != "ok" else "#3b73c4")
    if ref_seconds is not None:
        labels.append("retrain (reference)")
        values.append(ref_seconds)
        colours.append("#e8a33d")
    fig = Figure(figsize=(8, 0.45 * len(labels) + 1.2))
    ax = fig.subplots()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, color=colours)
    ax.set_yticks(y, labels)
    ax.set_xlabel("seconds")
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.2f}s", va="center", fontsize=8)
    ax.set_xlim(0, max(values + [1e-3]) * 1.2)
    return _png(fig)


def _metrics_figure(Figure, rows: list[tuple[str, list[float]]], columns: list[str]) -> str:
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(columns))
    palette = ["#9aa5b8", "#3b73c4", "#e8a33d", "#5cb85c"]
    for j, col in enumerate(columns):
        vals = [r[1][j] for r in rows]
        vals = [np.nan if v is None else v for v in vals]
        ax.bar(x + (j - (len(columns) - 1) / 2) * width, vals, width, label=col, color=palette[j % 4])
    ax.set_xticks(x, [r[0] for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _audit_figure(Figure, audit: Audit) -> str:
    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    curves = [("audited model", False, "#d9534f")]
    if audit.reference_scores is not None:
        curves.append(("retrained reference", True, "#3b73c4"))
    floor = 0.5 / max(1, len(audit.negatives))
    for label, ref, colour in curves:
        fpr, tpr = audit.roc(reference=ref)
        auc = audit.reference_auc if ref else audit.auc
        ax1.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), color=colour, label=f"{label} (AUC {auc:.3f})")
    ax1.plot([floor, 1], [floor, 1], color="#9aa5b8", linestyle="--", label="chance")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("false-positive rate (test items called forget items)")
    ax1.set_ylabel("true-positive rate")
    ax1.set_title("ROC of the attack (log-log: the low-FPR end matters)")
    ax1.legend(loc="lower right", fontsize=8)
    top = max(2.5, float(np.quantile(np.concatenate([audit.scores, audit.negative_scores]), 0.98)))
    bins = np.linspace(0, top, 30)
    ax2.hist(np.minimum(audit.negative_scores, top), bins=bins, alpha=0.5, color="#9aa5b8",
             label="test items (audited model)")
    ax2.hist(np.minimum(audit.scores, top), bins=bins, alpha=0.6, color="#d9534f",
             label="forget items (audited model)")
    if audit.reference_scores is not None:
        ax2.hist(np.minimum(audit.reference_scores, top), bins=bins, histtype="step", linewidth=2,
                 color="#3b73c4", label="forget items (retrained reference)")
    ax2.axvline(2.0, color="#5a6273", linestyle=":", label="p = 1 %")
    ax2.set_xlabel("score: -log10 p under 'never trained on it' (clipped)")
    ax2.set_ylabel("items")
    ax2.set_title("per-item scores")
    ax2.legend(loc="upper right", fontsize=8)
    return _png(fig)


# -- html ---------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return f'<td class="num">{_e(fmt(value))}</td>'
    if value is None:
        return '<td class="num">-</td>'
    return f"<td>{_e(fmt(value))}</td>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(src: str | None, caption: str, note: str) -> str:
    if src is None:
        return f'<p class="note">{_e(note)}</p>'
    return f'<figure><img src="{src}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in jsonable(dict(params)).items() if v is not None)


def _audit_section(audit: Audit, Figure, no_plot: str) -> str:
    how = ("U-LiRA: the shadows trained with the forget set were unlearned with "
           f"<code>{_e(audit.unlearn)}</code> first, so the test asks whether the model looks "
           "unlearned or never trained" if audit.mode == "u-lira" else
           "LiRA: the test asks whether the model looks trained with each item or never trained on it")
    cards = [_card(fmt(audit.auc), "attack AUC (0.5: forgotten)"),
             _card(fmt(audit.attack["tpr@1%fpr"]), "TPR at 1 % FPR"),
             _card(f"{100 * audit.attack['flagged']:.1f} %", "forget items with p < 1 %")]
    if audit.reference_auc is not None:
        cards.append(_card(fmt(audit.reference_auc), "AUC of the retrained reference"))
    cards.append(_card(f"{audit.n_shadows}", f"shadows ({audit.cost_retrains:.1f} retrains of compute)"))
    rows = [("audited model", *(audit.attack.get(k) for k in ("auc", "tpr@1%fpr", "tpr@0.1%fpr", "flagged")))]
    if audit.reference_attack is not None:
        rows.append(("retrained reference", *(audit.reference_attack.get(k)
                                               for k in ("auc", "tpr@1%fpr", "tpr@0.1%fpr", "flagged"))))
    top = [(int(i), audit.scores[i], audit.log_lr[i], audit.detectability[i], audit.memorization[i])
           for i in audit.most_at_risk(10)]
    src = _audit_figure(Figure, audit) if Figure is not None and len(audit) else None
    body = [
        f'<div class="cards">{"".join(cards)}</div>',
        f"<p>A per-example likelihood-ratio attack on {len(audit)} forget items against "
        f"{len(audit.negatives)} held-out test items with the same labels, with {audit.n_shadows} "
        f"shadow models ({audit.variance} variance, seed <code>{_e(audit.seed)}</code>). {how}. "
        "An item's score is -log10 of the probability that a model retrained without the forget "
        "set looks at least this much like the alternative: about 0.43 on average for a retrain, "
        "2 for p = 1 %.</p>",
        _table(["model", "AUC", "TPR@1%FPR", "TPR@0.1%FPR", "flagged (p<1%)"], rows),
        _figure(src, "ROC of the attack and the per-item scores", no_plot),
        "<h3>Forget items most at risk</h3>",
        _table(["forget index", "score", "log LR", "detectability", "memorization"], top),
    ]
    if len(audit.negatives) < 1000:
        body.append(f'<p class="note">With {len(audit.negatives)} test items the smallest false-'
                    f"positive rate above 0 is {1 / max(1, len(audit.negatives)):.4f}: TPR at 0.1 % "
                    "FPR is the rate at zero false positives.</p>")
    return f'<section id="audit"><h2>Audit: did it really forget?</h2>{"".join(body)}</section>'


def _page(title: str, parts: list[str]) -> str:
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1>"
        f'<div class="meta">rum {_e(__version__)}, written {_e(when)}</div>'
        + "".join(parts)
        + "</main></body></html>\n"
    )


def render_report(
    result: Any,
    *,
    evaluation: Any = None,
    reference: Any = None,
    title: str | None = None,
    figures: bool = True,
    audit: Any = None,
) -> str:
    """The HTML of :func:`report` as a string (see there for the arguments).

    Examples:
        >>> import numpy as np, rum
        >>> from rum.reporting import render_report
        >>> plan = rum.Plan((rum.Step(0, [0, 1], "noop"),), n_forget=2)
        >>> res = rum.UnlearnResult(None, plan, rum.Profile.single_group(np.array([0.1, 0.9])), ())
        >>> "<h2>Plan</h2>" in render_report(res, figures=False)
        True
    """
    Figure = _figure_module() if figures else None
    no_plot = (
        "Figures need matplotlib: pip install 'rum-unlearn[plot]'."
        if figures
        else "Figures were turned off."
    )
    if isinstance(result, (str, Path)):
        result = _read_json(result, "result")
    aud = None if audit is None else _as_audit(audit)
    if _is_audit(result):  # a page about an audit alone
        if aud is not None or evaluation is not None or reference is not None:
            raise InvalidParameterError(
                "result is an audit: pass the unlearning result as result= and the audit as "
                "audit= to show both, or the audit alone without evaluation= or reference=."
            )
        return _page(title or "rum audit report", [_audit_section(_as_audit(result), Figure, no_plot)])
    res = _as_result(result)
    evals = _as_evaluations(evaluation)
    ref_seconds = _reference_seconds(reference)
    prof, plan = res.profile, res.plan
    total = float(res.timings.get("total", sum(s.seconds for s in res.steps)))
    title = title or "rum unlearning report"

    parts: list[str] = []
    # Summary
    cards = [
        _card(str(len(prof) or plan.n_forget), "forget items"),
        _card(str(prof.n_groups), "groups"),
        _card(f"{len(plan)} ({plan.policy})", "steps (policy)"),
        _card(f"{total:.2f}s", "total time"),
    ]
    if ref_seconds is not None and total > 0:
        cards.append(_card(f"{ref_seconds / total:.1f}x", f"faster than retraining ({ref_seconds:.2f}s)"))
    m = res.metrics
    if "forget_acc_after" in m:
        cards.append(_card(fmt(m.get("forget_acc_after")), "forget accuracy after"))
    if evals and evals[0].tow is not None:
        cards.append(_card(fmt(evals[0].tow), f"ToW of {evals[0].name}"))
    summary = [f'<div class="cards">{"".join(cards)}</div>']
    timing_txt = ", ".join(f"{k} {float(v):.3f}s" for k, v in res.timings.items())
    summary.append(
        f"<p>Ran on <code>{_e(res.device)}</code> with seed <code>{_e(res.seed)}</code>."
        + (f" Time: {_e(timing_txt)}." if timing_txt else "")
        + "</p>"
    )
    for s in res.steps:
        if s.status != "ok":
            summary.append(f'<div class="warn">Step {s.step} ({_e(s.unlearner)}): {_e(s.status)}. {_e(s.message)}</div>')
    parts.append(f'<section id="summary"><h2>Summary</h2>{"".join(summary)}</section>')

    # Profile
    scorers = ", ".join(f"{k}: {v}" for k, v in prof.scorers.items()) or "not recorded"
    rows = [(g.group, g.size, g.memorization, g.entanglement, g.es) for g in prof.summary]
    body = [
        f"<p>Scorers: {_e(scorers)}. Groups are ordered easiest first.</p>",
        _table(["group", "size", "mean memorization", "mean entanglement", "ES"], rows),
    ]
    if len(prof):
        order = np.argsort(-np.nan_to_num(prof.memorization, nan=-np.inf), kind="stable")[:10]
        top = [(int(i), prof.memorization[i], prof.entanglement[i], int(prof.groups[i])) for i in order]
        body.append("<h3>Most memorized forget items</h3>")
        body.append(_table(["forget index", "memorization", "entanglement", "group"], top))
    src = _profile_figure(Figure, res) if Figure is not None and len(prof) else None
    body.append(_figure(src, "Profile: forget items coloured by group (memorization against entanglement when computed), and memorization per group", no_plot))
    parts.append(f'<section id="profile"><h2>Profile</h2>{"".join(body)}</section>')

    # Plan
    rows = [
        (i, s.group, len(s.indices), s.unlearner, s.retain_policy, _params(s.params))
        for i, s in enumerate(plan.steps)
    ]
    parts.append(
        f'<section id="plan"><h2>Plan</h2><p>Policy <code>{_e(plan.policy)}</code>, '
        f"{len(plan)} step(s) run in order, each from the previous step's model.</p>"
        + _table(["step", "group", "items", "unlearner", "retain policy", "parameters"], rows)
        + "</section>"
    )

    # What the auto policy's search tried
    if res.search is not None:
        parts.append(
            '<section id="search"><h2>Search</h2>'
            f"<p>{_e(res.search.summary())}. A trial's score is how far each group's forget "
            "accuracy is from its target plus the retain accuracy lost (lower is "
            "better); a candidate is kept when it beats doing nothing. Group -1 is the repair "
            "over the whole forget set.</p>"
            + _table(res.search.COLUMNS, res.search.rows())
            + "</section>"
        )

    # Time
    rows = [
        (s.step, s.unlearner, s.n_items, s.iterations, s.final_loss, s.seconds, s.status)
        for s in res.steps
    ]
    src = _time_figure(Figure, res, ref_seconds) if Figure is not None else None
    parts.append(
        '<section id="time"><h2>Time per step</h2>'
        + _table(["step", "unlearner", "items", "iterations", "last loss", "seconds", "status"], rows)
        + _figure(src, "Seconds per stage and step", no_plot)
        + "</section>"
    )

    # Metrics
    ref_scores = next((e.reference for e in evals if e.reference is not None), None)
    columns = ["before", "after"] + (["retrain"] if ref_scores is not None else [])
    metric_rows: list[tuple[str, list[float]]] = []
    for split in ("forget", "retain"):
        before, after = m.get(f"{split}_acc_before"), m.get(f"{split}_acc_after")
        if before is None and after is None:
            continue
        vals = [before, after]
        if ref_scores is not None:
            vals.append(getattr(ref_scores, split))
        metric_rows.append((f"{split} accuracy", vals))
    body = []
    if metric_rows:
        body.append(_table(["metric", *columns], [(n, *v) for n, v in metric_rows]))
        src = _metrics_figure(Figure, metric_rows, columns) if Figure is not None else None
        body.append(_figure(src, "Accuracy before and after unlearning", no_plot))
    else:
        body.append('<p class="note">The result records no metrics.</p>')
    if evals:
        erows = [
            (e.name, e.model.forget, e.model.retain, e.model.test, e.model.mia, e.tow, e.tow_mia)
            for e in evals
        ]
        if ref_scores is not None:
            r = ref_scores
            erows.append(("retrain (reference)", r.forget, r.retain, r.test, r.mia, 1.0, 1.0))
        body.append("<h3>Evaluation</h3>")
        body.append(
            "<p>Accuracies, the membership-inference score (fraction of forget items judged "
            "non-members) and, against the retrained reference, ToW and ToW-MIA (1 = identical to "
            "retraining).</p>"
        )
        body.append(_table(["model", "forget acc", "retain acc", "test acc", "MIA", "ToW", "ToW-MIA"], erows))
    else:
        body.append(
            '<p class="note">No evaluation given: run <code>rum.evaluate</code> (or '
            "<code>rum evaluate</code>) against a retrained model to add ToW and MIA scores.</p>"
        )
    parts.append(f'<section id="metrics"><h2>Metrics</h2>{"".join(body)}</section>')

    if aud is not None:
        parts.append(_audit_section(aud, Figure, no_plot))
    return _page(title, parts)


def report(
    result: Any,
    path: str | Path,
    *,
    evaluation: Any = None,
    reference: Any = None,
    title: str | None = None,
    audit: Any = None,
) -> Path:
    """Write a self-contained HTML page about an unlearning run (or an audit).

    The page has a summary, the profile (group table, the most memorized
    items, a memorization/entanglement scatter), the plan, the time of each
    step, and the accuracies before and after unlearning; with
    ``evaluation``, also the scores against the retrained model; with
    ``audit``, the per-example audit (:func:`rum.audit`): the attack's figures,
    its ROC curve, a histogram of per-item scores and the items most at risk.
    ``result`` may itself be an audit, for a page about it alone. Figures are
    PNGs embedded in the page (they need the ``plot`` extra, matplotlib);
    without matplotlib the page says so and keeps the tables. The page loads
    nothing from the network.

    Args:
        result: the :class:`UnlearnResult` (or its ``to_dict()``, or the path
            of the JSON written by ``result.save(path)``), or an
            :class:`~rum.Audit` (or its ``to_dict()`` or JSON path).
        path: where to write the HTML file.
        evaluation: an :class:`EvaluationReport` from :func:`rum.evaluate`, a
            list of them, or the path of their JSON. Its reference scores give
            the "retrain" column.
        reference: the retrained model's :class:`UnlearnResult` (or its
            seconds) to show the speed-up over retraining.
        title: the page title.
        audit: an :class:`~rum.Audit` from :func:`rum.audit` (or its
            ``to_dict()``, or the path of its JSON) to add to the page.

    Returns:
        Path: the file written.

    Examples:
        >>> import rum  # doctest: +SKIP
        >>> result = rum.unlearn(model, forget, retain)  # doctest: +SKIP
        >>> rum.report(result, "report.html")  # doctest: +SKIP
    """
    text = render_report(result, evaluation=evaluation, reference=reference, title=title, audit=audit)
    p = Path(path)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InvalidFileError(f"report: cannot write {str(p)!r} ({err.strerror}). Check the folder exists.") from None
    return p
