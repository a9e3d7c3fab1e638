"""eval/chat_followups.py and its set, eval/qa/chat_followups.jsonl: follow-up turns over our QA set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.schema import Answer
from rag.stages import Query

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def followups(load_script):
    return load_script("eval/chat_followups.py")


def test_each_row_is_a_question_of_our_qa_set_asked_after_its_topic(followups) -> None:
    qa = {r["id"]: r for r in map(json.loads, (ROOT / "eval/qa/corpus_qa.jsonl").read_text(encoding="utf-8").splitlines())}
    rows = followups.load()
    assert len({(r["id"], r.get("form", "")) for r in rows}) == len(rows) >= 150  # each question once per form
    assert {r["split"] for r in rows} == {"dev", "test"} and {r.get("form", "") for r in rows} == {"", "refers"}
    for r in rows:
        asked, topic = qa[r["id"]], qa[r["topic_id"]]
        assert (r["answers"], r["lang"], r["split"]) == (asked["answers"], asked["lang"], asked["split"]), r["id"]
        assert r["topic"] == topic["question"] and topic["answers"] and topic["split"] == r["split"] and topic["lang"] == r["lang"]
        if r["answers"]:  # an answerable follow-up continues a question on the same document
            assert topic["doc_id"] == asked["doc_id"] and topic["id"] < r["id"]
        assert r["turn"].strip()
        if r.get("form") == "refers":  # refers back without a continuation word
            assert not r["turn"].lower().startswith(("and ", "also ", "but ", "what about", "how about", "و", "ف", "طيب"))
    assert sum(not r["answers"] for r in rows) >= 20  # near misses asked as follow-ups: abstention counts too


def test_measure_answers_each_row_with_each_arm_and_scores_the_turns_gold(followups) -> None:
    rows = [
        {
            "id": "q1",
            "lang": "ar",
            "split": "dev",
            "topic_id": "q0",
            "topic": "كم عدد المتحدثين في المنتدى؟",
            "turn": "وأين انعقد؟",
            "answers": ["القاهرة"],
        },
        {
            "id": "u1",
            "lang": "ar",
            "split": "dev",
            "topic_id": "q0",
            "topic": "كم عدد المتحدثين في المنتدى؟",
            "turn": "وكم سعرها؟",
            "answers": [],
        },
        {
            "id": "q2",
            "lang": "en",
            "split": "dev",
            "topic_id": "q0",
            "topic": "How many speakers?",
            "turn": "Who chaired the forum's first session?",
            "answers": ["Ann Lee"],
        },
    ]

    def ask(query: Query) -> Answer | None:  # right only when the reader reads the turn first
        if query.reading.startswith("وأين"):
            return Answer("القاهرة", "d", "t", 0, 7, 0.9)
        if query.reading.startswith("Who"):
            return Answer("Ann Lee", "d", "t", 0, 7, 0.9)
        return Answer("28", "d", "t", 0, 2, 0.9) if "عدد" in query.reading else None

    scored = followups.measure(rows, ask)
    assert len(scored) == 3 * len(rows)
    by = {(s.id, s.arm): s for s in scored}
    assert by["q1", "joined"].f1 == 0.0 and by["q1", "service"].f1 == 1.0 and by["q1", "service"].follow_up
    assert by["q1", "alone"].f1 == 1.0 and by["q1", "alone"].reading == "وأين انعقد؟"  # the turn without its topic
    assert by["q2", "joined"].f1 == by["q2", "service"].f1 == 1.0 and not by["q2", "joined"].follow_up  # a new question
    assert by["u1", "service"].answered and by["u1", "service"].f1 == 0.0 and not by["u1", "alone"].answered
    table = {(t["scope"], t["arm"]): t for t in followups.table(scored)}
    assert table["all", "service"]["f1"] == 1.0 and table["all", "joined"]["f1"] == 0.5
    assert table["follow-ups", "joined"]["answerable"] == 1 and table["all", "joined"]["unanswerable"] == 1
    assert table["all", "joined"]["abstained"] == table["all", "service"]["abstained"] == 0
    assert table["all", "alone"]["abstained"] == 1
    assert table["refers", "service"]["answerable"] == table["refers", "service"]["unanswerable"] == 0  # no such rows here


def test_a_few_real_rows_through_the_shipped_pipeline(followups, corpus_rag, e5) -> None:
    rows = [r for r in followups.load(split="dev") if r["lang"] == "ar"][:4]
    scored = followups.measure(rows, lambda q: corpus_rag.ask(q).answer, e5.token_count, 48)
    assert len(scored) == 12
    for s in scored:
        assert 0.0 <= s.f1 <= 1.0 and (s.answer is not None) == s.answered
        if s.follow_up and s.arm == "service":
            turn = next(r["turn"] for r in rows if r["id"] == s.id)
            assert s.reading.startswith(turn.rstrip("؟?").split()[0].replace("ووين", "وأين"))


def test_distractors_are_one_file_per_article_title_first(followups, tmp_path) -> None:
    article = {"title": "القاهرة", "paragraphs": [{"context": "القاهرة عاصمة مصر.", "qas": []}, {"context": "يمر بها النيل.", "qas": []}]}
    for name, file in (("xquad", "xquad.ar.json"), ("arcd", "arcd.train.json")):
        (tmp_path / "data" / name).mkdir(parents=True)
        more = {"title": "القاهرة", "paragraphs": [{"context": "فيها الأزهر.", "qas": []}]}  # the same title listed again
        (tmp_path / "data" / name / file).write_text(json.dumps({"data": [article, {**article, "title": name}, more]}), encoding="utf-8")
    assert followups.write_distractors(tmp_path / "out", tmp_path / "data") == 4
    files = sorted((tmp_path / "out").glob("*.txt"))
    assert [f.name.split("_")[0] for f in files] == ["arcd", "arcd", "xquad", "xquad"]
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert texts.count("القاهرة\n\nالقاهرة عاصمة مصر.\n\nيمر بها النيل.\n\nفيها الأزهر.") == 2  # one file per title, paragraphs kept
