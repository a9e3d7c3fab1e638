"""eval/reader_robustness.py: the ways of typing it measures, and its table on a few real dev
questions read by the shipped model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.reader.data import QAExample
from rag.text import question_for_reader

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def robustness(load_script):
    return load_script("eval/reader_robustness.py")


def test_each_way_of_typing_is_undone_by_what_the_reader_reads_but_spelling(robustness) -> None:
    question = "متى انعقد المؤتمر الذي حضره 250 مسؤولاً؟"
    for name, language, rewrite in robustness.TYPINGS:
        if language != "ar":
            continue
        typed = rewrite(question)
        assert typed != question, name
        if name.startswith("hamza-less"):
            assert question_for_reader(typed, "ar") != question_for_reader(question, "ar")  # not undone: measured, not fixed
        else:
            assert question_for_reader(typed, "ar") == question_for_reader(question, "ar"), name
    assert robustness.dialect("من أدار الجلسة؟") == "مين أدار الجلسة؟"
    assert robustness.no_question_mark("Who chaired it?") == "Who chaired it"


def test_measure_scores_each_column_with_the_reader_it_is_given(robustness) -> None:
    def ex(question: str) -> QAExample:
        context = "انعقد المؤتمر في القاهرة عام 2018."
        start = context.index("القاهرة")
        return QAExample("q", "arcd", "t", 0, question, context, ((start, start + len("القاهرة")),))

    questions = {"ar": [ex("أين انعقد المؤتمر؟"), ex("ماذا حدث؟")], "en": []}

    def read(question: str, context: str) -> str:  # right only for MSA "أين"
        return "القاهرة" if question.startswith("أين") else "2018"

    rows = {r["typing"]: r for r in robustness.measure(read, questions)}
    dialect = rows["dialect question words"]
    assert dialect["questions"] == 2
    assert dialect["as written"] == 0.5 and dialect["as typed"] == 0.0
    assert dialect["as written, read for the reader"] == dialect["as typed, read for the reader"] == 0.5
    assert "lower case" not in rows  # no English questions


def test_the_table_on_real_dev_questions(robustness) -> None:
    from rag.reader.runtime import SpanScorer

    scorer = SpanScorer()

    def read(question: str, context: str) -> str:
        found = scorer.score(question, [context])
        return context[found[0].start : found[0].end] if found else ""

    questions = robustness.dev_questions(DATA)
    assert len(questions["ar"]) > 150 and len(questions["en"]) > 50
    rows = robustness.measure(read, questions, limit=6)
    assert {r["typing"] for r in rows} >= {"dialect question words", "diacritics", "lower case"}
    for r in rows:
        assert r["questions"] == 6 and all(0.0 <= r[k] <= 1.0 for k in robustness.COLUMNS)
