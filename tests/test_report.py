"""Tests for rag.evaluation.report: the report directory (Markdown, JSON, a real PNG), the terminal tables
and the JSON text, on a small hand-built evaluation run (no model)."""

from __future__ import annotations

import json
import struct

import pytest
from rich.console import Console

from rag.evaluation.harness import EvalRun, Outcome, QAItem, QuestionResult, summarize
from rag.evaluation.report import markdown, print_summary, tables, to_json, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run() -> EvalRun:
    items = [
        QAItem("q1", "ar", "متى تأسست مدينة الواحة؟", ("1950",), "oasis"),
        QAItem("q2", "en", "How many visitors | per year?", ("4,000",), "festival"),
        QAItem("u1", "en", "Price of a ticket?", (), None),
    ]
    hit = Outcome(["oasis", "festival"], ["تأسست مدينة الواحة عام 1950."], True, "تأسست مدينة الواحة عام 1950.", "oasis", "1950")
    miss = Outcome(["oasis", "festival"], ["..."], True, "The festival is held in July.", "festival")
    false = Outcome(["festival"], ["..."], True, "تباع التذاكر عند البوابة.", "festival")
    results = [
        QuestionResult(items[0], {"system": hit, "bm25": hit, "dense": hit}, 120.0),
        QuestionResult(items[1], {"system": miss, "bm25": Outcome([], [], False), "dense": miss}, 180.0),
        QuestionResult(items[2], {"system": false, "bm25": Outcome([], [], False), "dense": false}, 150.0),
    ]
    dataset = {
        "name": "tiny",
        "format": "jsonl",
        "split": "all",
        "limit": None,
        "k": 5,
        "model": "m",
        "index_version": 3,
        "n_documents": 2,
        "n_chunks": 2,
    }
    return EvalRun(summarize(results, dataset, 5), results)


def test_write_report_writes_markdown_json_and_a_valid_png(tmp_path):
    pytest.importorskip("matplotlib")  # the plot extra
    run = _run()
    paths = write_report(tmp_path / "out", run)
    assert {p.name for p in paths.values()} == {"report.md", "metrics.json", "scores.jsonl", "hitk.png"}
    assert all(p.is_file() for p in paths.values())

    assert json.loads(paths["metrics"].read_text(encoding="utf-8")) == run.summary

    png = paths["plot"].read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 100 and height > 100
    assert png.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")

    md = paths["report"].read_text(encoding="utf-8")
    assert "![hit@k of the gold document](hitk.png)" in md
    assert "| metric | system | bm25 | dense |" in md
    assert "## ar (1: 1 answerable, 0 unanswerable)" in md
    assert "| q2 | en | answer |" in md and "| u1 | en | false_answer |" in md
    assert "How many visitors \\| per year?" in md  # a pipe in a question does not break the table


def test_the_report_holds_every_question_s_scores_and_the_intervals(tmp_path):
    paths = write_report(tmp_path / "out", _run())
    lines = [json.loads(line) for line in paths["scores"].read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 9  # three questions, three systems
    q2 = next(x for x in lines if x["system"] == "system" and x["id"] == "q2")
    assert q2 == {"system": "system", "id": "q2", "lang": "en", "answerable": True, "answered": True, "hit": 0.0, "em": 0.0, "f1": 0.0}
    assert next(x for x in lines if x["system"] == "bm25" and x["id"] == "q2")["answered"] is False
    md = paths["report"].read_text(encoding="utf-8")
    assert "## How sure: 95% intervals" in md
    assert "| scope | metric | n | system | bm25 | dense | system − bm25 | system − dense |" in md
    # hit@1: 1 of 2 for every system (Wilson 0.095-0.905), the same questions: no difference
    assert "| all | answer hit@1 | 2 | 0.500 [0.095, 0.905] | 0.500 [0.095, 0.905] | 0.500 [0.095, 0.905] | +0.000 [+0.000, +0.000] |" in md
    assert "| all | abstention abstained_rate | 1 | 0.000 [0.000, 0.793] |" in md  # u1 answered falsely


def test_the_terminal_shows_the_system_s_intervals_and_its_difference_from_the_sentence_answering():
    from rag.evaluation.uncertainty import intervals

    run = _run()
    for r in run.results:  # the span reader's run: the sentence answering as the only baseline
        r.outcomes = {"system": r.outcomes["system"], "sentence": r.outcomes["bm25"]}
    console = Console(record=True, width=80)
    print_summary(run.summary, console, intervals(run.results))
    text = console.export_text()
    assert "system − sentence" in text
    assert "│ all   │ answered  │ 2 │ 1.000 (0.34, 1.00) │ +0.500 (+0.00, +1.00) │" in text


def test_markdown_headers_name_the_systems_the_run_compared():
    run = _run()
    only = {**run.summary, "baselines": {"sentence": run.summary["baselines"]["bm25"]}}  # e.g. span reader, --no-baselines
    md = markdown(only)
    assert "| metric | system | sentence |\n|---|---:|---:|" in md and "bm25" not in md
    row = next(line for line in md.splitlines() if line.startswith("| answer hit@1 |"))
    assert row.count("|") == 4  # as many cells as headers


def test_a_failed_report_write_leaves_no_partial_report(tmp_path, monkeypatch):
    from rag.evaluation import report

    out = tmp_path / "out"
    write_report(out, _run())
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "markdown", broken)  # the last file written fails
    with pytest.raises(OSError, match="disk full"):
        write_report(out, _run())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier report, whole


def test_markdown_rows_show_each_system_side_by_side():
    md = markdown(_run().summary)
    # answer hit@1 over the two answerable questions: system 1/2, bm25 1/2, dense 1/2
    assert "| answer hit@1 | 0.500 | 0.500 | 0.500 |" in md
    # retrieval hit@1: q1 at rank 1 for all; q2 (gold "festival") at rank 2 for system/dense, absent for bm25
    assert "| retrieval hit@1 | 0.500 | 0.500 | 0.500 |" in md
    assert "| retrieval mrr@10 | 0.750 | 0.500 | 0.750 |" in md


def test_terminal_tables_cover_all_and_each_language():
    summary = _run().summary
    ts = tables(summary)
    assert len(ts) == 3  # all, ar, en
    assert [c.header for c in ts[0].columns] == ["metric", "system", "bm25", "dense"]
    console = Console(record=True, width=120)
    print_summary(summary, console)
    text = console.export_text()
    assert "retrieval mrr@10" in text and "0.750" in text
    assert "failures: 2 (answer 1, false_answer 1)" in text


def test_to_json_is_one_line_with_arabic_readable():
    summary = _run().summary
    text = to_json(summary)
    assert "\n" not in text and "تباع التذاكر" in text  # the false answer, listed in failures
    assert json.loads(text) == summary


def test_without_the_plot_extra_the_report_has_no_plot(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were not installed
    paths = write_report(tmp_path / "report", _run())
    assert set(paths) == {"report", "metrics", "scores"} and not (tmp_path / "report" / "hitk.png").exists()
    assert "hitk.png" not in paths["report"].read_text(encoding="utf-8")


def test_the_service_imports_without_matplotlib():
    import subprocess
    import sys

    code = "import sys; sys.modules['matplotlib'] = None; import api.app, rag.cli, rag.pipeline, rag.evaluation.harness; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"
