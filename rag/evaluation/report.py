"""Presenting an evaluation: the terminal table, the JSON text, and the report directory
(``report.md``, ``metrics.json``, ``scores.jsonl``, ``hitk.png``) that ``rag eval --report DIR``
writes. The tables and report.md end with the 95% intervals of ``rag.evaluation.uncertainty``;
``scores.jsonl`` holds every question's scores, so two runs can be compared question by question."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rag.evaluation.harness import EvalRun, hit_curves, question_scores
from rag.evaluation.uncertainty import IntervalRow, intervals

FAILURES_SHOWN = 40  # failures listed in report.md (metrics.json has them all)


def to_json(summary: dict[str, Any]) -> str:
    """The summary as one line of JSON (Arabic kept readable)."""
    return json.dumps(summary, ensure_ascii=False)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _scope(summary: dict[str, Any], system: str, lang: str | None) -> dict[str, Any]:
    """The retrieval/answer/abstention blocks of one system, overall or for one language."""
    base = summary if system == "system" else summary["baselines"][system]
    return base if lang is None else base["by_language"][lang]


def systems(summary: dict[str, Any]) -> list[str]:
    """The full system, then the baselines the run compared it with."""
    return ["system", *summary.get("baselines", {})]


def metric_rows(summary: dict[str, Any], lang: str | None) -> list[tuple[str, list[str]]]:
    """(metric label, [system, bm25, dense]) rows for one scope; abstention for every system."""
    rows: list[tuple[str, list[str]]] = []
    for block in ("retrieval", "answer", "abstention"):
        for name in summary[block]:
            digits = 1 if name == "mean_span_tokens" else 3
            values = [_fmt(_scope(summary, s, lang).get(block, {}).get(name), digits) for s in systems(summary)]
            rows.append((f"{block} {name}", values))
    return rows


def _languages(summary: dict[str, Any]) -> list[str]:
    return [lang for lang, block in summary["by_language"].items() if block["questions"]["total"]]


def _scopes(summary: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(language or None for all, heading) for every scope with questions in it."""
    q = summary["questions"]
    out: list[tuple[str | None, str]] = [
        (None, f"all ({q['total']} questions: {q['answerable']} answerable, {q['unanswerable']} unanswerable)")
    ]
    for lang in _languages(summary):
        c = summary["by_language"][lang]["questions"]
        out.append((lang, f"{lang} ({c['total']}: {c['answerable']} answerable, {c['unanswerable']} unanswerable)"))
    return out


def tables(summary: dict[str, Any]) -> list[Table]:
    """One rich table per scope (all, then each language present): system vs bm25 vs dense."""
    out = []
    for lang, heading in _scopes(summary):
        t = Table(title=heading, title_justify="left")
        t.add_column("metric")
        for s in systems(summary):
            t.add_column(s, justify="right")
        for label, values in metric_rows(summary, lang):
            t.add_row(label, *values)
        out.append(t)
    return out


def dataset_line(summary: dict[str, Any]) -> str:
    d = summary["dataset"]
    parts = [
        f"{d['name']} ({d['format']}, split {d['split']})",
        f"k={d['k']}",
        f"model {d['model']}",
        f"index v{d['index_version']}: {d['n_documents']} docs, {d['n_chunks']} chunks",
    ]
    if d.get("gold_mismatches") is not None:
        parts.append(f"gold mismatches {d['gold_mismatches']}/{d['gold_answers']}")
    if d.get("reader_seen"):
        parts.append(
            f"NOT HELD OUT: {d['reader_seen']}/{summary['questions']['total']} questions from articles the reader trained or was tuned on"
        )
    return " · ".join(parts)


# the interval table's short metric names, so that it fits a terminal
_SHORT = {
    "answer hit@1": "hit@1",
    "answer em": "EM",
    "answer f1": "F1",
    "abstention answered_rate": "answered",
    "abstention abstained_rate": "abstained",
}


def _interval_cells(row: IntervalRow, names: Sequence[str], against: Sequence[str], short: bool = False) -> list[str]:
    """The intervals of ``names``, then the system's differences from ``against`` ("–" where missing)."""
    cells = [(row.systems[n].short() if short else str(row.systems[n])) if n in row.systems else "–" for n in names]
    diffs = [row.differences.get(b) for b in against]
    return cells + ["–" if d is None else d.short(signed=True) if short else d.signed() for d in diffs]


def interval_table(rows: Sequence[IntervalRow]) -> Table:
    """The 95% intervals of the system, and of its difference from the sentence answering on the
    same questions where the run has it (the issue's baseline). Every system's and every
    difference's are in report.md: they do not fit a terminal's 80 columns."""
    against = [n for n in (rows[0].differences if rows else ()) if n == "sentence"]
    t = Table(title="95% intervals (rates: Wilson; F1 and differences: bootstrap over questions)", title_justify="left")
    for col in ["scope", "metric", "n", "system", *(f"system − {b}" for b in against)]:
        t.add_column(col, justify="left" if col in ("scope", "metric") else "right", no_wrap=True)
    for r in rows:
        t.add_row(r.scope, _SHORT.get(r.metric, r.metric), str(r.questions), *_interval_cells(r, ["system"], against, short=True))
    return t


def interval_markdown(rows: Sequence[IntervalRow]) -> list[str]:
    """report.md's interval section (an empty list for no rows)."""
    if not rows:
        return []
    names = list(rows[0].systems)
    baselines = [n for n in names if n != "system"]
    lines = [
        "## How sure: 95% intervals",
        "",
        "Rates (sentence hit, EM, answered, abstained): Wilson score intervals. Mean F1 and every difference: a "
        "percentile bootstrap over the questions (2,000 resamples, seeded), the difference paired question by "
        "question. A difference whose interval holds 0 is not shown to be one.",
        "",
        "| scope | metric | n | " + " | ".join([*names, *(f"system − {b}" for b in baselines)]) + " |",
        "|---|---|---:|" + "---:|" * (len(names) + len(baselines)),
    ]
    for r in rows:
        lines.append(f"| {r.scope} | {r.metric} | {r.questions} | " + " | ".join(_interval_cells(r, names, baselines)) + " |")
    return [*lines, ""]


def print_summary(summary: dict[str, Any], console: Console, interval_rows: Sequence[IntervalRow] = ()) -> None:
    """The terminal view: dataset line, the tables, the intervals (where given), latency and the
    failure count by reason."""
    console.print(dataset_line(summary))
    for t in tables(summary):
        console.print(t)
    if interval_rows:
        console.print(interval_table(interval_rows))
    lat = summary["latency_ms"]
    console.print(f"latency (full ask): p50 {_fmt(lat['p50'], 0)} ms, p95 {_fmt(lat['p95'], 0)} ms")
    console.print(f"failures: {len(summary['failures'])} ({_reason_counts(summary['failures'])})")


def _reason_counts(failures: Sequence[dict[str, Any]]) -> str:
    """ "retrieval 3, answer 2" (or "none")."""
    counts: dict[str, int] = {}
    for f in failures:
        counts[f["reason"]] = counts.get(f["reason"], 0) + 1
    return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "none"


# --------------------------------------------------------------------------------------------
# Report directory
# --------------------------------------------------------------------------------------------


def plot_hit_curves(curves: dict[str, list[float | None]], path: Path, title: str) -> None:
    """hit@k (k = 1..n) of the gold document for each system, as a PNG."""
    # Figure without pyplot: no global backend state, no display needed (renders with Agg).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    for name, ys in curves.items():
        ks = [k for k, y in enumerate(ys, 1) if y is not None]
        ax.plot(ks, [y for y in ys if y is not None], marker="o", label=name)
    ax.set_xlabel("k (ranked documents)")
    ax.set_ylabel("hit@k (gold document)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(range(1, max((len(v) for v in curves.values()), default=1) + 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(summary: dict[str, Any], plot_name: str | None = "hitk.png", interval_rows: Sequence[IntervalRow] = ()) -> str:
    """report.md: dataset, the side-by-side tables per scope, their intervals (where given),
    latency, the plot and failures."""
    d = summary["dataset"]
    run_line = f"Run {d.get('date', '')}; options: split `{d['split']}`, limit `{d['limit']}`, k `{d['k']}`."
    lines = [f"# Evaluation: {d['name']}", "", dataset_line(summary), "", run_line, ""]
    for lang, heading in _scopes(summary):
        names = systems(summary)  # the systems this run compared, in the order metric_rows gives
        lines += [f"## {heading}", "", f"| metric | {' | '.join(names)} |", "|---|" + "---:|" * len(names)]
        lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in metric_rows(summary, lang)]
        lines.append("")
    lines += interval_markdown(interval_rows)
    lat = summary["latency_ms"]
    lines += [f"Latency of the full `ask`: p50 {_fmt(lat['p50'], 0)} ms, p95 {_fmt(lat['p95'], 0)} ms.", ""]
    if plot_name:
        lines += ["## Retrieval hit@k", "", f"![hit@k of the gold document]({plot_name})", ""]
    fails = summary["failures"]
    lines += [f"## Failures ({len(fails)}: {_reason_counts(fails)})", ""]
    if fails:
        lines += ["| id | lang | reason | gold rank | question | expected | returned |", "|---|---|---|---:|---|---|---|"]
        for f in fails[:FAILURES_SHOWN]:
            returned = f["returned_text"] or "(abstained)"
            lines.append(
                f"| {_md_escape(f['id'])} | {_md_escape(f['lang'])} | {f['reason']} | {f['gold_rank'] or '–'} | {_md_escape(f['question'][:300])} "
                f"| {_md_escape(' / '.join(f['expected']) or '(unanswerable)')} | {_md_escape(returned[:200])} |"
            )
        if len(fails) > FAILURES_SHOWN:
            lines += ["", f"... {len(fails) - FAILURES_SHOWN} more in metrics.json."]
    return "\n".join(lines) + "\n"


def scores_jsonl(run: EvalRun) -> str:
    """scores.jsonl: one line per question and system (``harness.Scores`` and the system's name)."""
    systems_run = list(run.results[0].outcomes) if run.results else []
    lines = [
        json.dumps({"system": name, **asdict(s)}, ensure_ascii=False) for name in systems_run for s in question_scores(run.results, name)
    ]
    return "".join(line + "\n" for line in lines)


def can_plot() -> bool:
    """Whether matplotlib (the ``plot`` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def write_report(directory: Path | str, run: EvalRun, interval_rows: Sequence[IntervalRow] | None = None) -> dict[str, Path]:
    """Write report.md, metrics.json, scores.jsonl and (with the ``plot`` extra) hitk.png into
    ``directory``; return their paths. ``interval_rows``: ``intervals(run.results)``, computed
    here when not given."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / "report.md", "metrics": out / "metrics.json", "scores": out / "scores.jsonl"}
    if can_plot():
        paths["plot"] = out / "hitk.png"
    # every file is written aside first and moved into place only when all are: a failure leaves
    # the directory as it was, never a report of one run beside metrics of another (or empty)
    staged = {name: path.with_name(f".{path.name}.tmp") for name, path in paths.items()}
    try:
        staged["metrics"].write_text(json.dumps(run.summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if "plot" in staged:
            plot_hit_curves(hit_curves(run.results), staged["plot"], run.summary["dataset"]["name"])
        staged["scores"].write_text(scores_jsonl(run), encoding="utf-8")
        rows = intervals(run.results) if interval_rows is None else interval_rows
        staged["report"].write_text(markdown(run.summary, "hitk.png" if "plot" in paths else None, rows), encoding="utf-8")
        for name, path in paths.items():
            staged[name].replace(path)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return paths
