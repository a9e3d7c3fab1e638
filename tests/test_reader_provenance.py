"""What a reader model has read (its manifest's ``seen`` block), and how ``rag eval`` counts the
questions that are not held out from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.evaluation.harness import load_squad, reader_seen
from rag.evaluation.report import dataset_line
from rag.reader.data import QAExample, reader_corpus
from rag.reader.provenance import Seen, fingerprint
from rag.reader.runtime import Manifest, default_model_dir
from rag.stages import TrainedReader, make_reader

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _example(article: str, context: str) -> QAExample:
    return QAExample("q", "arcd", article, 0, "سؤال؟", context, ())


def test_a_fingerprint_ignores_how_whitespace_runs_and_nothing_else():
    assert fingerprint("مدينة  الواحة\nتأسست عام 1950") == fingerprint(" مدينة الواحة تأسست عام 1950 ")
    assert fingerprint("مدينة الواحة تأسست عام 1950") != fingerprint("مدينة الواحة تأسست عام 1951")
    assert len(fingerprint("x")) == 16


def test_a_question_is_seen_by_its_article_or_by_its_paragraph_under_another_title():
    seen = Seen.of([_example("Oasis_City", "مدينة الواحة تأسست عام 1950.")])
    assert seen.holds("Oasis_City", "فقرة أخرى من المقال نفسه.")  # the article was split whole
    assert seen.holds("Another_Title", "مدينة  الواحة تأسست عام 1950.")  # the paragraph, re-saved elsewhere
    assert not seen.holds("Bridge", "الجسر يربط ضفتي النهر.")
    assert Seen.from_dict(json.loads(json.dumps(seen.to_dict()))) == seen


@pytest.mark.parametrize(
    "raw",
    [None, [], {"articles": []}, {"articles": [], "paragraphs": "abc"}, {"articles": ["XYZ"], "paragraphs": []}],
    ids=["none", "a-list", "no-paragraphs", "paragraphs-a-string", "not-hex"],
)
def test_a_malformed_seen_block_is_refused(raw):
    with pytest.raises(ValueError, match="seen"):
        Seen.from_dict(raw)


def test_the_shipped_model_says_it_read_the_train_and_dev_articles_and_no_test_one():
    seen = Manifest.read(default_model_dir()).seen
    assert seen is not None
    corpus = reader_corpus(DATA)
    assert all(seen.holds(e.article, e.context) for e in corpus["train"] + corpus["dev"])
    assert not any(seen.holds(e.article, e.context) for e in corpus["test"])


def _squad(path: Path) -> Path:
    def article(title: str, contexts: list[str]) -> dict:
        paragraphs = [
            {"context": c, "qas": [{"id": f"{title}-{i}", "question": "ما هذا؟", "answers": [{"text": c[:5], "answer_start": 0}]}]}
            for i, c in enumerate(contexts)
        ]
        return {"title": title, "paragraphs": paragraphs}

    data = [article("Oasis_City", ["مدينة الواحة تأسست عام 1950.", "يسكنها 40 ألف نسمة."]), article("Bridge", ["الجسر يربط ضفتي النهر."])]
    path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False), encoding="utf-8")
    return path


def test_eval_counts_the_questions_the_span_reader_is_not_held_out_from(tmp_path):
    squad = load_squad(_squad(tmp_path / "squad.json"))
    bridge = next(d for d in squad.documents if d.title == "Bridge")

    def model(name: str, seen: Seen | None) -> Path:
        copy = tmp_path / name
        shutil.copytree(default_model_dir(), copy)
        manifest = json.loads((copy / "reader.json").read_text(encoding="utf-8"))
        manifest.pop("seen", None)
        if seen is not None:
            manifest["seen"] = seen.to_dict()
        (copy / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
        return copy

    span = make_reader(Settings(reader="span", reader_model=model("read-bridge", Seen.of([_example("Bridge", bridge.text)]))))
    assert isinstance(span, TrainedReader)
    assert reader_seen(span, squad, squad.items) == 1  # the one question over the Bridge article
    assert reader_seen(span, squad, squad.items[:2]) == 0
    assert reader_seen(make_reader(Settings(reader="sentence")), squad, squad.items) is None  # nothing trained
    silent = make_reader(Settings(reader="span", reader_model=model("silent", None)))
    assert reader_seen(silent, squad, squad.items) is None  # a model that does not say


def test_the_report_says_when_questions_are_not_held_out():
    dataset = {"name": "x", "format": "squad", "split": "dev", "k": 5, "model": "m", "index_version": 1, "n_documents": 2, "n_chunks": 2}
    summary = {"dataset": {**dataset, "reader_seen": 3}, "questions": {"total": 4}}
    assert "NOT HELD OUT: 3/4 questions" in dataset_line(summary)
    assert "HELD OUT" not in dataset_line({"dataset": {**dataset, "reader_seen": 0}, "questions": {"total": 4}})
