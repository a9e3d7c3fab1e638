"""Validation of the project's own QA evaluation set (eval/qa/corpus_qa.jsonl).

Plain data checks, no model: schema, unique ids, answers are verbatim spans of the
corpus document they point at, unanswerable questions are well formed, and the
dev/test splits each cover both languages, every document and unanswerable items.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QA_PATH = ROOT / "eval" / "qa" / "corpus_qa.jsonl"
CORPUS_DIR = ROOT / "corpus"

REQUIRED_KEYS = {"id", "lang", "question", "answers", "doc_id", "split"}
LANGS = {"ar", "en"}
SPLITS = {"dev", "test"}


def _load_rows():
    rows = []
    with QA_PATH.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:  # pragma: no cover - reported as failure
                pytest.fail(f"line {lineno}: invalid JSON: {e}")
    return rows


@pytest.fixture(scope="module")
def rows():
    assert QA_PATH.is_file(), f"missing {QA_PATH}"
    return _load_rows()


@pytest.fixture(scope="module")
def corpus():
    docs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt"))}
    assert docs, f"no documents in {CORPUS_DIR}"
    return docs


def _answerable(rows):
    return [r for r in rows if r["answers"]]


def _unanswerable(rows):
    return [r for r in rows if not r["answers"]]


def test_schema(rows):
    assert rows, "QA set is empty"
    for r in rows:
        assert isinstance(r, dict)
        assert set(r) >= REQUIRED_KEYS, f"{r.get('id')}: missing {REQUIRED_KEYS - set(r)}"
        assert isinstance(r["id"], str) and r["id"]
        assert r["lang"] in LANGS, r["id"]
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        assert isinstance(r["answers"], list), r["id"]
        assert all(isinstance(a, str) and a.strip() for a in r["answers"]), r["id"]
        assert len(r["answers"]) <= 3, r["id"]
        assert r["doc_id"] is None or isinstance(r["doc_id"], str), r["id"]
        assert r["split"] in SPLITS, r["id"]


def test_unique_ids(rows):
    dupes = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_unique_questions(rows):
    dupes = [q for q, n in Counter(r["question"] for r in rows).items() if n > 1]
    assert not dupes, f"duplicate questions: {dupes}"


def test_answers_are_verbatim_spans(rows, corpus):
    missing = []
    for r in _answerable(rows):
        assert r["doc_id"] in corpus, f"{r['id']}: unknown doc_id {r['doc_id']!r}"
        text = corpus[r["doc_id"]]
        missing += [(r["id"], a) for a in r["answers"] if a not in text]
    assert not missing, f"answers not found verbatim in their document: {missing}"


def test_unanswerable_form(rows):
    for r in _unanswerable(rows):
        assert r["answers"] == [], r["id"]
        assert r["doc_id"] is None, f"{r['id']}: unanswerable question must have doc_id null"
    for r in _answerable(rows):
        assert r["doc_id"] is not None, r["id"]


def test_counts(rows):
    assert len(_answerable(rows)) >= 80
    assert len(_unanswerable(rows)) >= 20
    for lang in LANGS:
        assert sum(1 for r in _answerable(rows) if r["lang"] == lang) >= 30, lang
        assert sum(1 for r in _unanswerable(rows) if r["lang"] == lang) >= 8, lang


def test_all_documents_covered(rows, corpus):
    per_doc = Counter(r["doc_id"] for r in _answerable(rows))
    assert set(corpus) <= set(per_doc), f"uncovered documents: {set(corpus) - set(per_doc)}"
    assert set(per_doc) <= set(corpus)
    assert all(per_doc[d] >= 10 for d in corpus), per_doc


def test_splits_are_stratified(rows, corpus):
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        assert {r["lang"] for r in part} == LANGS, f"{split}: missing a language"
        assert {r["lang"] for r in _answerable(part)} == LANGS, split
        assert {r["lang"] for r in _unanswerable(part)} == LANGS, split
        assert {r["doc_id"] for r in _answerable(part)} == set(corpus), f"{split}: missing a document"
    n_dev = sum(1 for r in rows if r["split"] == "dev")
    assert 0.25 <= n_dev / len(rows) <= 0.55, n_dev
