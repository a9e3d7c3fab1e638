"""Answer feedback: the append-only store (torn lines, size bound, threads and processes), its
export to a QA set ``rag eval`` runs, ``POST /feedback`` and ``rag feedback``."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from rag.config import Settings
from rag.evaluation.harness import load_jsonl, read_jsonl, run_jsonl
from rag.feedback import (
    AnswerRef,
    FeedbackFull,
    FeedbackStore,
    encode_record,
    export_qa,
    make_record,
    question_id,
    question_key,
    read_feedback,
    write_jsonl,
)
from rag.pipeline import RAG

SPACE_Q = "متى وصل مسبار الأمل إلى مدار المريخ؟"
COFFEE_Q = "When did UNESCO inscribe Arabic coffee?"
KEY = "feedback-key-1"


def _record(question: str = "ما هو مسبار الأمل؟", helpful: bool = True, answer: AnswerRef | None = None, **kw) -> dict:
    return make_record(question=question, helpful=helpful, answer=answer, **kw)


def _span(doc_id: str = "ar_space", start: int = 0, end: int = 10, text: str | None = "أطلقت دولة") -> AnswerRef:
    return AnswerRef(doc_id, start, end, text, doc_found=text is not None)


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def test_append_writes_one_private_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=1 << 20)
    assert not path.exists() and store.size() == 0  # nothing happens before the first append
    first = _record(answer=_span(), language="ar", index_version=3, comment="مفيد")
    store.append(first)
    store.append(_record("What is the Hope probe?", helpful=False))
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    assert "مفيد".encode() in lines[0]  # Arabic as is, not \u escapes
    assert json.loads(lines[0]) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    read = store.read()
    assert [r["question"] for r in read.records] == ["ما هو مسبار الأمل؟", "What is the Hope probe?"]
    assert read.bad_lines == [] and not read.torn_tail
    assert first["ts"].endswith("Z") and len(first["id"]) == 32


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=1 << 20)
    for i in range(3):
        store.append(_record(f"question number {i}"))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"v":1,"id":"abc","question":"cut sh')  # a write cut short by a crash
    read = read_feedback(path)
    assert len(read.records) == 3 and read.bad_lines == [4] and read.torn_tail

    store.append(_record("after the crash"))
    assert path.read_bytes().startswith(whole)  # earlier lines untouched
    read = read_feedback(path)
    assert [r["question"] for r in read.records] == ["question number 0", "question number 1", "question number 2", "after the crash"]
    assert read.bad_lines == [4] and not read.torn_tail  # the fragment is one skipped line of its own


def test_garbage_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    good = json.dumps(_record("a fine question"))
    path.write_bytes(b"\n".join([good.encode(), b"not json", b"\xff\xfe", b'{"question": 5, "helpful": true}', b"", good.encode()]) + b"\n")
    read = read_feedback(path)
    assert len(read.records) == 2 and read.bad_lines == [2, 3, 4] and not read.torn_tail
    assert read_feedback(tmp_path / "missing.jsonl").records == []


def test_size_bound_refuses_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    one = len(json.dumps(_record("q" * 50), ensure_ascii=False)) + 1
    store = FeedbackStore(path, max_bytes=2 * one + one // 2)
    store.append(_record("q" * 50))
    store.append(_record("q" * 50))
    before = path.read_bytes()
    with pytest.raises(FeedbackFull, match="full"):
        store.append(_record("q" * 50))
    assert path.read_bytes() == before


def test_a_failed_write_takes_back_its_partial_line(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=1 << 20)
    store.append(_record("kept"))
    before = path.read_bytes()
    real_write = os.write

    def half_then_disk_full(fd: int, data) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_disk_full)
    with pytest.raises(FeedbackFull, match="disk"):
        store.append(_record("lost"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    store.append(_record("next"))
    assert [r["question"] for r in read_feedback(path).records] == ["kept", "next"]


def test_records_text_utf8_cannot_hold_are_refused(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.jsonl", max_bytes=1 << 20)
    with pytest.raises(ValueError, match="Unicode"):
        store.append(_record("bad \ud800 question"))


def test_concurrent_threads_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=1 << 24)
    n_threads, per_thread = 8, 40

    def work(t: int) -> None:
        for i in range(per_thread):
            store.append(_record(f"thread {t} question {i} " + "س" * (i * 37 % 500)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    read = read_feedback(path)
    assert read.bad_lines == [] and len(read.records) == n_threads * per_thread
    assert len({r["id"] for r in read.records}) == n_threads * per_thread


def _append_from_process(path: str, worker: int, count: int) -> None:
    store = FeedbackStore(path, max_bytes=1 << 24)  # a store per process: only flock is shared
    for i in range(count):
        store.append(_record(f"process {worker} question {i} " + "x" * (i * 53 % 3000)))


def test_concurrent_processes_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_from_process, args=(str(path), w, 30)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    read = read_feedback(path)
    assert read.bad_lines == [] and len(read.records) == 120


WRITER = """
import sys
from rag.feedback import FeedbackStore, make_record
store = FeedbackStore(sys.argv[1], max_bytes=1 << 30)
i = 0
while True:
    store.append(make_record(question=f"killed writer question {i} " + "ق" * 20000, helpful=i % 2 == 0, answer=None))
    i += 1
"""


@pytest.mark.slow  # starts processes
def test_a_writer_killed_mid_stream_never_damages_earlier_records(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "feedback.jsonl"
    root = Path(__file__).resolve().parents[1]
    seen = 0
    for kill in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        time.sleep(0.8 + 0.13 * kill)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        read = read_feedback(path)
        assert len(read.records) >= seen  # nothing written before the kill was lost
        assert all(r["question"].startswith("killed writer question") for r in read.records)
        assert len(read.bad_lines) <= kill + 1  # at most the one line being written, per kill
        seen = len(read.records)
    assert seen > 6
    FeedbackStore(path, max_bytes=1 << 30).append(_record("after the kills"))
    assert read_feedback(path).records[-1]["question"] == "after the kills"


# --------------------------------------------------------------------------------------------
# Export to a QA set
# --------------------------------------------------------------------------------------------


def test_question_key_ignores_spelling_noise() -> None:
    assert question_key("  What is   TMRW? ") == question_key("what is tmrw") == question_key("WHAT IS TMRW ?!")
    assert question_key("مَتى وصلَ مسبارُ الأمل؟") == question_key("متى وصل مسبار الامل")
    assert question_key("ما هي القمة؟") == question_key("ما هى القمه")
    assert question_key("What is TMRW?") != question_key("Who is TMRW?")
    assert question_key("؟؟") == ""


def test_a_read_waits_for_the_line_a_writer_is_writing(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "feedback.jsonl"
    FeedbackStore(path, 1_000_000).append(_record())
    second = encode_record(_record("كم عدد المتحدثين؟", helpful=False))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a writer mid-write, as FeedbackStore.append holds it
    os.write(fd, second[:10])
    got: list = []
    reader = threading.Thread(target=lambda: got.append(read_feedback(path)))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive()  # waiting for the line to be whole, not reading half of it
    os.write(fd, second[10:])
    os.close(fd)  # releases the lock
    reader.join(10)
    assert len(got[0].records) == 2 and got[0].bad_lines == [] and not got[0].torn_tail


def _records() -> list[dict]:
    hope = _span("ar_space", 60, 84, "في فبراير من عام 2021")
    wrong = _span("ar_palms", 0, 20, "تضم دولة الإمارات أكثر")
    return [
        # helpful twice (two spellings of one question), one dissent on another span
        _record(SPACE_Q, True, hope, language="ar", index_version=1, now=None),
        _record("متى وصل مسبارُ الأمل إلى مدار المريخ", True, hope, language="ar", index_version=1),
        # unhelpful, no good answer known: needs review
        _record("How many palm trees are in the UAE?", False, wrong, language="en", index_version=1, comment="wrong document"),
        _record("how many palm trees are in the uae", False, wrong, language="en", index_version=1),
        _record("how many palm trees are in the UAE?!", False, None, language="en", index_version=2),
        # unhelpful once, but another answer was confirmed helpful: evaluable, still listed first
        _record(COFFEE_Q, False, _span("en_coffee", 0, 12, "Arabic coffee"), language="en"),
        _record(COFFEE_Q, True, _span("en_coffee", 81, 134, "UNESCO inscribed Arabic coffee on its list"), language="en"),
        _record(COFFEE_Q, True, _span("en_coffee", 81, 134, "UNESCO inscribed Arabic coffee on its list"), language="en"),
        # a helpful "not in the documents": an unanswerable item
        _record("What is the capital of Japan?", True, None, language="en"),
        # a helpful vote on an answer whose document is gone, and nothing else: nothing to score against
        _record("Who founded the palm festival?", True, AnswerRef("gone", 0, 5, None, doc_found=False)),
    ]


def test_export_puts_unhelpful_first_and_deduplicates(tmp_path: Path) -> None:
    items = export_qa(_records())
    by_q = {i["question"]: i for i in items}
    assert len(items) == 5  # ten records, five questions
    order = [i["feedback"]["unhelpful"] for i in items]
    assert order == sorted(order, reverse=True) and order[:2] == [3, 1]

    palms = items[0]
    assert palms["question"] == "how many palm trees are in the UAE?!"  # as last asked
    assert palms["needs_review"] is True and palms["answers"] is None and palms["doc_id"] is None
    assert palms["feedback"] | {"first_seen": None, "last_seen": None} == {
        "helpful": 0,
        "unhelpful": 3,
        "first_seen": None,
        "last_seen": None,
        "index_versions": [1, 2],
        "comments": ["wrong document"],
    }
    assert palms["given"][0] == {
        "doc_id": "ar_palms",
        "start": 0,
        "end": 20,
        "text": "تضم دولة الإمارات أكثر",
        "doc_found": True,
        "helpful": 0,
        "unhelpful": 2,
    }
    assert palms["given"][1] == {"abstained": True, "helpful": 0, "unhelpful": 1}

    coffee = items[1]
    assert coffee["question"] == COFFEE_Q and not coffee["needs_review"]
    assert coffee["answers"] == ["UNESCO inscribed Arabic coffee on its list"] and coffee["doc_id"] == "en_coffee"

    space = by_q["متى وصل مسبارُ الأمل إلى مدار المريخ"]
    assert space["answers"] == ["في فبراير من عام 2021"] and space["doc_id"] == "ar_space" and space["lang"] == "ar"
    assert space["feedback"]["helpful"] == 2 and space["id"] == question_id(question_key(SPACE_Q))

    japan = by_q["What is the capital of Japan?"]
    assert japan["answers"] == [] and japan["doc_id"] is None and not japan["needs_review"]  # confirmed abstention

    gone = by_q["Who founded the palm festival?"]
    assert gone["needs_review"] and gone["given"][0]["doc_found"] is False

    only_bad = export_qa(_records(), unhelpful_only=True)
    assert [i["question"] for i in only_bad] == [palms["question"], COFFEE_Q]


def test_a_disputed_span_is_not_gold() -> None:
    span = _span("en_coffee", 0, 12, "Arabic coffee")
    items = export_qa([_record(COFFEE_Q, True, span), _record(COFFEE_Q, False, span)])
    assert items[0]["needs_review"] and items[0]["answers"] is None


def test_exported_file_loads_with_the_qa_loader(tmp_path: Path) -> None:
    out = tmp_path / "qa.jsonl"
    write_jsonl(out, export_qa(_records()))
    loaded = read_jsonl(out)
    # needs_review lines are skipped and listed, never read as unanswerable
    assert len(loaded.needs_review) == 2 and len(loaded.items) == 3
    assert [it.question for it in loaded.items][0] == COFFEE_Q  # the file's order: unhelpful first
    assert {it.answerable for it in loaded.items} == {True, False}
    assert [it.id for it in load_jsonl(out)] == [it.id for it in loaded.items]
    assert all(it.split == "dev" for it in loaded.items)
    assert "\\u" not in out.read_text(encoding="utf-8")


def test_rag_eval_runs_an_exported_file(tmp_path: Path, small_index: Path, e5) -> None:
    """Feedback on the small index -> QA file -> the evaluation harness (what `rag eval` runs)."""
    rag = RAG(Settings(index=small_index, reader="sentence"), embedder=e5)
    result = rag.ask(COFFEE_Q, language="en")
    assert result.answer is not None
    a = result.answer
    records = [
        _record(COFFEE_Q, True, AnswerRef(a.doc_id, a.start, a.end, a.text, True), language="en", index_version=1),
        _record("Who won the football cup?", False, None, language="en"),
        _record("What is the capital of Japan?", True, None, language="en"),
    ]
    out = tmp_path / "qa.jsonl"
    write_jsonl(out, export_qa(records))
    run = run_jsonl(out, Settings(index=small_index, reader="sentence"), embedder=e5, baselines=False)
    s = run.summary
    assert s["dataset"]["needs_review_skipped"] == 1
    assert s["questions"]["total"] == 2 and s["questions"]["answerable"] == 1 and s["questions"]["unanswerable"] == 1
    assert s["answer"]["hit@1"] == 1.0 and s["retrieval"]["hit@1"] == 1.0


# --------------------------------------------------------------------------------------------
# POST /feedback
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_rag(small_index: Path, e5) -> RAG:
    return RAG(Settings(index=small_index, reader="sentence"), embedder=e5)


def _settings(index: Path, **overrides) -> Settings:
    base = {
        "index": index,
        "admin_token": None,
        "api_keys": "",
        "cors_origins": "*",
        "rate_limit_per_minute": 0,
        "workers": 2,
        "reader": "sentence",
        "feedback": True,
        "feedback_max_bytes": 1 << 20,
    }
    return Settings(**{**base, **overrides})


@pytest.fixture()
def feedback_file(tmp_path: Path) -> Path:
    return tmp_path / "fb" / "feedback.jsonl"


@pytest.fixture()
def make_client(small_rag: RAG, small_index: Path, feedback_file: Path) -> Iterator[Callable[..., TestClient]]:
    stack: list[TestClient] = []

    def make(rag: RAG | None = None, **overrides) -> TestClient:
        rag = rag or small_rag
        client = TestClient(create_app(_settings(rag.index_dir, **{"feedback_path": feedback_file, **overrides}), rag=rag))
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for c in reversed(stack):
        c.__exit__(None, None, None)


def _error(r, status: int, type_: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == type_ and err["message"] and err["request_id"] == r.headers["x-request-id"]
    return err


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _ask_then_feedback(c: TestClient, question: str, helpful: bool, **extra) -> tuple[dict, object]:
    asked = c.post("/ask", json={"question": question}, headers=extra.pop("headers", None)).json()
    a = asked["answer"]
    body = {
        "question": question,
        "helpful": helpful,
        "answer": {"doc_id": a["doc_id"], "start": a["start"], "end": a["end"]} if a else None,
        "index_version": asked["index_version"],
        "language": asked["language"],
        **extra,
    }
    return asked, c.post("/feedback", json=body, headers={"X-Request-ID": "req-feedback-1"})


def test_feedback_is_stored_with_the_answer_text_and_nothing_about_the_caller(make_client, feedback_file: Path, small_index) -> None:
    c = make_client()
    asked, r = _ask_then_feedback(c, SPACE_Q, True, comment="  exactly right  ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "stored"} and body["stored"] is True and len(body["id"]) == 32
    int(body["id"], 16)
    [line] = _lines(feedback_file)
    a = asked["answer"]
    assert line["id"] == body["id"] and line["request_id"] == "req-feedback-1"
    assert line["question"] == SPACE_Q and line["helpful"] is True and line["language"] == "ar"
    assert line["answer"] == {"doc_id": a["doc_id"], "start": a["start"], "end": a["end"], "text": a["text"], "doc_found": True}
    assert line["index_version"] == line["live_index_version"] == asked["index_version"]
    assert line["comment"] == "exactly right" and line["ts"].endswith("Z")
    assert set(line) == {
        "v",
        "id",
        "ts",
        "request_id",
        "question",
        "language",
        "helpful",
        "answer",
        "index_version",
        "live_index_version",
        "comment",
    }
    raw = feedback_file.read_text(encoding="utf-8")
    assert "testclient" not in raw  # the TestClient's address


def test_feedback_on_an_abstention(make_client, feedback_file: Path) -> None:
    c = make_client()
    r = c.post("/feedback", json={"question": "What is the capital of Japan?", "helpful": False, "answer": None, "index_version": 1})
    assert r.status_code == 201, r.text
    [line] = _lines(feedback_file)
    assert line["answer"] is None and line["helpful"] is False


def test_chat_reply_feedback_uses_its_rag_field(make_client, feedback_file: Path) -> None:
    c = make_client()
    reply = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": COFFEE_Q}]}).json()
    rag = reply["rag"]
    a = rag["answer"]
    r = c.post(
        "/feedback",
        json={
            "question": rag["question"],
            "helpful": True,
            "answer": {k: a[k] for k in ("doc_id", "start", "end")},
            "index_version": rag["index_version"],
            "language": rag["language"],
        },
    )
    assert r.status_code == 201, r.text
    assert _lines(feedback_file)[0]["answer"]["text"] == a["text"]


GOOD = {"question": SPACE_Q, "helpful": True, "answer": {"doc_id": "ar_space", "start": 0, "end": 5}, "index_version": 1}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"helpful": "yes"}, "helpful"),
        ({"helpful": 1}, "helpful"),
        ({"question": 5}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "؟"}, "question"),
        ({"question": "x" * 1001}, "question"),
        ({"answer": {"doc_id": "ar_space", "start": 5, "end": 5}}, "answer"),
        ({"answer": {"doc_id": "ar_space", "start": -1, "end": 5}}, "start"),
        ({"answer": {"doc_id": "ar_space", "start": "0", "end": 5}}, "start"),
        ({"answer": {"doc_id": "ar_space", "start": 0}}, "end"),
        ({"answer": {"doc_id": "ar_space", "start": 0, "end": 100_000}}, "outside document"),
        ({"answer": {"doc_id": "no_such_doc", "start": 0, "end": 5}}, "no document"),
        ({"answer": {"doc_id": "no_such_doc", "start": 0, "end": 5}, "index_version": None}, "no document"),
        ({"answer": {"doc_id": "bad\nid", "start": 0, "end": 5}}, "doc_id"),
        ({"index_version": -1}, "index_version"),
        ({"index_version": "1"}, "index_version"),
        ({"language": "fr"}, "language"),
        ({"comment": "c" * 1001}, "comment"),
        ({"comment": 5}, "comment"),
    ],
)
def test_feedback_rejects_bad_input(make_client, feedback_file: Path, change: dict, where: str) -> None:
    c = make_client()
    err = _error(c.post("/feedback", json={**GOOD, **change}), 422, "validation_error")
    assert where in err["message"] or any(where in ".".join(d["loc"]) for d in err.get("details", [])), err
    assert not feedback_file.exists()


def test_feedback_needs_the_answer_key_and_is_not_confused_by_json_escapes(make_client, feedback_file: Path) -> None:
    c = make_client()
    err = _error(c.post("/feedback", json={"question": SPACE_Q, "helpful": True}), 422, "validation_error")
    assert "answer" in err["message"]
    r = c.post(
        "/feedback",
        content=b'{"question": "\\u0645\\u062a\\u0649 \\u0648\\u0635\\u0644", "helpful": false, "answer": null, "comment": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    _error(r, 422, "validation_error")
    assert not feedback_file.exists()
    assert c.post("/feedback", json={**GOOD, "comment": "x" * 1000}).status_code == 201


def test_a_document_deleted_since_is_accepted_without_text(make_client, feedback_file: Path, small_index_copy: Path, e5) -> None:
    rag = RAG(Settings(index=small_index_copy, reader="sentence"), embedder=e5)
    c = make_client(rag=rag)
    asked = c.post("/ask", json={"question": COFFEE_Q}).json()
    a = asked["answer"]
    v1 = asked["index_version"]
    rag.remove([a["doc_id"]])  # an admin deletes the document meanwhile
    body = {"question": COFFEE_Q, "helpful": False, "answer": {k: a[k] for k in ("doc_id", "start", "end")}, "index_version": v1}
    r = c.post("/feedback", json=body)
    assert r.status_code == 201, r.text
    [line] = _lines(feedback_file)
    assert line["answer"] == {"doc_id": a["doc_id"], "start": a["start"], "end": a["end"], "text": None, "doc_found": False}
    assert line["index_version"] == v1 and line["live_index_version"] == v1 + 1
    # Claiming the live version (or none) for a document it does not hold is a client error.
    _error(c.post("/feedback", json={**body, "index_version": v1 + 1}), 422, "validation_error")
    _error(c.post("/feedback", json={**body, "index_version": None}), 422, "validation_error")


def test_api_keys_guard_feedback_and_the_key_is_not_stored(make_client, feedback_file: Path) -> None:
    c = make_client(api_keys=KEY)
    _error(c.post("/feedback", json=GOOD), 401, "unauthorized")
    _error(c.post("/feedback", json=GOOD, headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    _error(c.post("/feedback", content=b"{not json", headers={"content-type": "application/json"}), 401, "unauthorized")
    assert not feedback_file.exists()
    assert c.post("/feedback", json=GOOD, headers={"X-API-Key": KEY}).status_code == 201
    assert c.post("/feedback", json=GOOD, headers={"Authorization": f"Bearer {KEY}"}).status_code == 201
    raw = feedback_file.read_text(encoding="utf-8")
    from api.security import _fingerprint

    assert KEY not in raw and _fingerprint(KEY) not in raw and len(_lines(feedback_file)) == 2


def test_feedback_counts_against_the_rate_limit(make_client) -> None:
    c = make_client(rate_limit_per_minute=3, api_keys=KEY)
    headers = {"X-API-Key": KEY}
    assert c.post("/ask", json={"question": SPACE_Q}, headers=headers).status_code == 200
    assert c.post("/feedback", json=GOOD, headers=headers).status_code == 201
    assert c.post("/feedback", json=GOOD, headers=headers).status_code == 201
    r = c.post("/feedback", json=GOOD, headers=headers)
    _error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    _error(c.post("/ask", json={"question": SPACE_Q}, headers=headers), 429, "rate_limited")


def test_full_store_answers_507_and_stores_nothing(make_client, feedback_file: Path) -> None:
    c = make_client(feedback_max_bytes=100)
    err = _error(c.post("/feedback", json=GOOD), 507, "feedback_full")
    assert "not stored" in err["message"] and str(feedback_file) not in err["message"]
    assert not feedback_file.exists() or feedback_file.stat().st_size == 0


def test_unwritable_store_answers_503(make_client, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    c = make_client(feedback_path=blocker / "feedback.jsonl")  # its folder cannot be created
    r = c.post("/feedback", json=GOOD)
    err = _error(r, 503, "feedback_unavailable")
    assert str(tmp_path) not in err["message"] and r.headers["retry-after"] == "30"


def test_route_is_off_with_rag_feedback_false(make_client, feedback_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAG_FEEDBACK", "false")
    assert Settings().feedback is False
    c = make_client(feedback=False)
    _error(c.post("/feedback", json=GOOD), 404, "not_found")
    assert "/feedback" not in c.get("/openapi.json").json()["paths"]
    assert not feedback_file.exists()
    on = make_client()
    spec = on.get("/openapi.json").json()["paths"]["/feedback"]["post"]
    assert {"201", "401", "422", "429", "507"} <= set(spec["responses"])


# --------------------------------------------------------------------------------------------
# rag feedback
# --------------------------------------------------------------------------------------------

runner = CliRunner()
ENV = {"COLUMNS": "400", "NO_COLOR": "1"}


def test_cli_export_and_stats(tmp_path: Path) -> None:
    from rag.cli import app

    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, max_bytes=1 << 20)
    for r in _records():
        store.append(r)
    with path.open("ab") as f:
        f.write(b'{"torn')
    out = tmp_path / "qa" / "from-feedback.jsonl"
    result = runner.invoke(app, ["feedback", "export", "--path", str(path), "--out", str(out)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "wrote 5 questions from 10 records" in result.stdout and "2 need review" in result.stdout
    assert "skipped 1 unreadable lines (the last one a torn write)" in " ".join(result.stderr.split())
    items = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert items == export_qa(read_feedback(path).records)

    only = runner.invoke(app, ["feedback", "export", "--path", str(path), "--out", str(out), "--unhelpful-only"], env=ENV)
    assert only.exit_code == 0 and "wrote 2 questions" in only.stdout

    stats = runner.invoke(app, ["feedback", "stats", "--path", str(path), "--json"], env=ENV)
    assert stats.exit_code == 0, stats.output
    s = json.loads(stats.stdout)
    assert (s["records"], s["helpful"], s["unhelpful"], s["on_abstentions"], s["questions"]) == (10, 6, 4, 2, 5)
    assert s["questions_needing_review"] == 2 and s["bad_lines"] == 1 and s["torn_tail"] is True
    table = runner.invoke(app, ["feedback", "stats", "--path", str(path)], env=ENV)
    assert table.exit_code == 0 and "questions needing review" in table.stdout

    other = tmp_path / "host2.jsonl"
    FeedbackStore(other, max_bytes=1 << 20).append(_record("What is the Hope probe?", False))
    both = runner.invoke(app, ["feedback", "stats", "--path", str(path), "--path", str(other), "--json"], env=ENV)
    assert both.exit_code == 0, both.output
    assert json.loads(both.stdout)["records"] == 11 and "host2.jsonl" not in both.stderr  # the torn line is in the first file

    missing = runner.invoke(app, ["feedback", "stats", "--path", str(tmp_path / "none.jsonl")], env=ENV)
    assert missing.exit_code == 2 and "no feedback file" in missing.output
