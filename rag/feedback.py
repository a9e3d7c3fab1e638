"""Feedback on answers ("was this helpful?"): a durable append-only store and its QA export.

**Store.** ``POST /feedback`` appends one JSON object per line to ``RAG_FEEDBACK_PATH``
(``FeedbackStore.append``). A line is written whole in one ``write`` under a process lock
(``threading.Lock``) and a file lock (``fcntl.flock``, for several server processes), then
``fsync``ed before the request is answered. So a crash mid-write can leave at most one torn
last line: earlier lines are never touched (the file is only appended to), the reader skips and
counts a torn line (``read_feedback``), and the next append starts on a fresh line rather than
gluing itself to the fragment. The file stops growing at ``RAG_FEEDBACK_MAX_BYTES``
(``FeedbackFull``) instead of filling the disk.

A record holds what the request carried and nothing about who sent it (no address, no key):

    {"v": 1, "id": "<uuid hex>", "ts": "2025-01-31T12:00:00.123Z", "request_id": "...",
     "question": "...", "language": "ar" | "en" | null, "helpful": true,
     "answer": {"doc_id", "start", "end", "text", "doc_found"} | null,   # null: the service abstained
     "index_version": <the client's> | null, "live_index_version": <the server's> | null,
     "comment": "..." | null}

``answer.text`` is ``document.text[start:end]`` at record time, so the file is self-contained
after documents change; it is null when the document was deleted since (``doc_found: false``)
or no longer holds the offsets.

**Export** (``export_qa``, ``rag feedback export``) turns the records into the QA format of
``eval/qa/corpus_qa.jsonl`` that ``rag eval`` runs, one line per question (deduplicated by
``question_key``), questions with an unhelpful vote first. The gold answer is what users
confirmed: the spans with more helpful than unhelpful votes, or, for a helpful "not in the
documents", no answer (an unanswerable item). A question with no confirmed answer gets
``"answers": null`` and ``"needs_review": true``: unhelpful means "wrong or unhelpful", not
"unanswerable", so a reviewer writes the gold (or ``[]``) and clears the flag; until then
``rag eval`` skips it and says how many it skipped. Every line keeps the votes
(``feedback``) and the answers the service gave (``given``), so nothing is lost by grouping.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import threading
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.text import detect_language, normalize

RECORD_VERSION = 1
MAX_COMMENT_CHARS = 1000
EXPORT_SPLIT = "dev"  # feedback questions are for looking at errors and tuning, not for reporting
MAX_EXPORTED_COMMENTS = 10  # per question, the most recent


class FeedbackFull(Exception):
    """Storing this record would take the file beyond its size bound (or the disk is full)."""


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerRef:
    """The answer a piece of feedback is about: a span of a document, its text when known."""

    doc_id: str
    start: int
    end: int
    text: str | None
    doc_found: bool

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "text": self.text, "doc_found": self.doc_found}


def utc_timestamp(now: dt.datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_record(
    *,
    question: str,
    helpful: bool,
    answer: AnswerRef | None,
    language: str | None = None,
    index_version: int | None = None,
    live_index_version: int | None = None,
    comment: str | None = None,
    request_id: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """One store line (see the module docstring), with a fresh id and the current UTC time."""
    return {
        "v": RECORD_VERSION,
        "id": uuid.uuid4().hex,
        "ts": utc_timestamp(now),
        "request_id": request_id,
        "question": question,
        "language": language,
        "helpful": helpful,
        "answer": answer.to_dict() if answer is not None else None,
        "index_version": index_version,
        "live_index_version": live_index_version,
        "comment": comment,
    }


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One line of UTF-8 JSON (Arabic as is). ``ValueError`` for text UTF-8 cannot hold (lone surrogates)."""
    try:
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"record holds text that is not valid Unicode: {exc.reason}") from None


def _valid_record(r: Any) -> bool:
    """The fields the export relies on have the right types."""
    if not isinstance(r, dict) or not isinstance(r.get("question"), str) or not isinstance(r.get("helpful"), bool):
        return False
    a = r.get("answer")
    if a is None:
        return True
    return (
        isinstance(a, dict)
        and isinstance(a.get("doc_id"), str)
        and all(isinstance(a.get(k), int) and not isinstance(a.get(k), bool) for k in ("start", "end"))
        and (a.get("text") is None or isinstance(a.get("text"), str))
    )


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


@dataclass
class FeedbackRead:
    """What ``read_feedback`` found: the records, and the lines it skipped (1-based numbers)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)  # not JSON, or not a feedback record
    torn_tail: bool = False  # the last of them is an unfinished last line (a write cut short)


def read_feedback(path: Path | str) -> FeedbackRead:
    """Every readable record of the file, in order; unreadable lines are skipped and counted.
    A missing file reads as no records."""
    out = FeedbackRead()
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return out
    try:
        # A shared lock waits for a writer's line to be whole (``append`` holds the exclusive
        # lock for one write): unlocked, 3 of about 11,700 reads during writes saw half a line.
        fcntl.flock(fd, fcntl.LOCK_SH)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    if complete:
        lines = lines[:-1]  # the empty string after the final newline
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            record = None
        if _valid_record(record):
            out.records.append(record)
        else:
            out.bad_lines.append(lineno)
            if lineno == len(lines) and not complete:
                out.torn_tail = True
    return out


class FeedbackStore:
    """The append-only JSONL file of feedback records; safe across threads and processes.

    Nothing happens on construction: the folder and file are created by the first append.
    """

    def __init__(self, path: Path | str, max_bytes: int):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line and fsync it; ``FeedbackFull`` when the file would pass
        ``max_bytes`` or the disk is full (nothing is written then), ``ValueError`` for a record
        JSON cannot hold, ``OSError`` for other I/O failures."""
        line = encode_record(record)
        with self._lock:
            created = not self.path.exists()
            if created:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # Read-write so the last byte can be checked; O_APPEND puts every write at the end.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
                size = os.fstat(fd).st_size
                # A write cut short (a crash, a full disk) left a line without its newline:
                # start on a line of our own so the fragment stays one skipped line.
                data = b"\n" + line if size and os.pread(fd, 1, size - 1) != b"\n" else line
                if size + len(data) > self.max_bytes:
                    raise FeedbackFull(f"the feedback file is full ({size} of {self.max_bytes} bytes)")
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except OSError as exc:
                    _truncate_quietly(fd, size)  # take back a partial line
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise FeedbackFull("the disk holding the feedback file is full") from exc
                    raise
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)  # the new file's name is durable too

    def read(self) -> FeedbackRead:
        with self._lock:
            return read_feedback(self.path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # the torn line stays; readers skip it and the next append starts a new line


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Export to a QA set
# --------------------------------------------------------------------------------------------


def question_key(question: str) -> str:
    """The form questions are deduplicated by: ``rag.text.normalize`` (diacritics, alef/hamza/ya
    forms, digits, Latin case), whitespace collapsed, punctuation at either end dropped
    ("What is TMRW?" = "what is tmrw", "ما هي القمة؟" = "ما هى القمه")."""
    text = " ".join(normalize(unicodedata.normalize("NFKC", question)).split())
    lo, hi = 0, len(text)
    while lo < hi and unicodedata.category(text[lo])[0] in "PZ":
        lo += 1
    while hi > lo and unicodedata.category(text[hi - 1])[0] in "PZ":
        hi -= 1
    return text[lo:hi]


def question_id(key: str) -> str:
    """A stable id per deduplicated question, so exports of a growing file line up."""
    return "fb-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


_Given = tuple[str, int, int, str | None] | None  # (doc_id, start, end, text), None = abstained


@dataclass
class _Votes:
    helpful: int = 0
    unhelpful: int = 0
    doc_found: bool = True


@dataclass
class _Question:
    """All feedback on one deduplicated question."""

    question: str  # as last asked
    language: str | None = None
    helpful: int = 0
    unhelpful: int = 0
    first: str = ""
    last: str = ""
    versions: set[int] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)
    given: dict[_Given, _Votes] = field(default_factory=dict)

    def add(self, r: Mapping[str, Any]) -> None:
        ts = str(r.get("ts") or "")
        self.question = r["question"]
        if r.get("language") in ("ar", "en"):
            self.language = r["language"]
        self.first = min(self.first, ts) if self.first else ts
        self.last = max(self.last, ts)
        if isinstance(r.get("index_version"), int):
            self.versions.add(r["index_version"])
        if isinstance(r.get("comment"), str) and r["comment"].strip():
            self.comments.append(r["comment"])
        a = r.get("answer")
        key: _Given = (a["doc_id"], a["start"], a["end"], a.get("text")) if a else None
        votes = self.given.setdefault(key, _Votes())
        if a and not a.get("doc_found", True):
            votes.doc_found = False
        if r["helpful"]:
            self.helpful += 1
            votes.helpful += 1
        else:
            self.unhelpful += 1
            votes.unhelpful += 1

    def gold(self) -> tuple[list[str] | None, str | None]:
        """(answers, doc_id): confirmed spans of the best-confirmed document; ``([], None)`` for a
        confirmed abstention; ``(None, None)`` when nothing is confirmed (needs review)."""
        confirmed = [(k, v) for k, v in self.given.items() if k is not None and k[3] and v.helpful > v.unhelpful]
        if confirmed:
            confirmed.sort(key=lambda kv: -kv[1].helpful)  # stable: ties keep first-seen order
            doc_id = confirmed[0][0][0]
            answers = list(dict.fromkeys(str(k[3]) for k, _ in confirmed if k is not None and k[0] == doc_id))
            return answers, doc_id
        abstained = self.given.get(None)
        if abstained is not None and abstained.helpful > abstained.unhelpful:
            return [], None
        return None, None

    def given_list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for k, v in self.given.items():
            votes: dict[str, Any] = {"helpful": v.helpful, "unhelpful": v.unhelpful}
            if k is None:
                out.append({"abstained": True, **votes})
            else:
                doc_id, start, end, text = k
                out.append({"doc_id": doc_id, "start": start, "end": end, "text": text, "doc_found": v.doc_found, **votes})
        return sorted(out, key=lambda g: (-g["unhelpful"], g["helpful"]))


def _group(records: Iterable[Mapping[str, Any]]) -> dict[str, _Question]:
    groups: dict[str, _Question] = {}
    for r in records:
        if not _valid_record(r):
            continue
        key = question_key(r["question"])
        if not key:
            continue
        groups.setdefault(key, _Question(r["question"])).add(r)
    return groups


def export_qa(records: Iterable[Mapping[str, Any]], *, unhelpful_only: bool = False) -> list[dict[str, Any]]:
    """QA items (``eval/qa`` format plus ``needs_review``, ``feedback`` and ``given``), one per
    question: those with unhelpful votes first (most unhelpful votes, then most recent, first),
    then the others (most helpful votes, then most recent, first)."""
    items = []
    for key, q in _group(records).items():
        if unhelpful_only and not q.unhelpful:
            continue
        answers, doc_id = q.gold()
        item: dict[str, Any] = {
            "id": question_id(key),
            "lang": q.language or detect_language(q.question),
            "question": q.question,
            "answers": answers,
            "doc_id": doc_id,
            "split": EXPORT_SPLIT,
            "needs_review": answers is None,
            "feedback": {
                "helpful": q.helpful,
                "unhelpful": q.unhelpful,
                "first_seen": q.first or None,
                "last_seen": q.last or None,
                "index_versions": sorted(q.versions),
                "comments": q.comments[-MAX_EXPORTED_COMMENTS:],
            },
            "given": q.given_list(),
        }
        items.append(item)
    bad = sorted((i for i in items if i["feedback"]["unhelpful"]), key=lambda i: i["feedback"]["last_seen"] or "", reverse=True)
    bad.sort(key=lambda i: -i["feedback"]["unhelpful"])
    good = sorted((i for i in items if not i["feedback"]["unhelpful"]), key=lambda i: i["feedback"]["last_seen"] or "", reverse=True)
    good.sort(key=lambda i: -i["feedback"]["helpful"])
    return bad + good


def write_jsonl(path: Path | str, items: Sequence[Mapping[str, Any]]) -> None:
    """Write ``items`` as UTF-8 JSON lines (Arabic as is), replacing ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for item in items:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the replace; a failed write leaves nothing behind


# --------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------


def feedback_stats(read: FeedbackRead) -> dict[str, Any]:
    """Counts for ``rag feedback stats``: records, votes, abstentions, languages, questions."""
    records = read.records
    items = export_qa(records)
    languages: dict[str, int] = {}
    for r in records:
        lang = r.get("language") or detect_language(r["question"])
        languages[lang] = languages.get(lang, 0) + 1
    times = [str(r["ts"]) for r in records if r.get("ts")]
    return {
        "records": len(records),
        "helpful": sum(r["helpful"] for r in records),
        "unhelpful": sum(not r["helpful"] for r in records),
        "on_abstentions": sum(r.get("answer") is None for r in records),
        "with_comment": sum(bool(r.get("comment")) for r in records),
        "doc_not_found": sum(bool(r.get("answer")) and not r["answer"].get("doc_found", True) for r in records),
        "languages": dict(sorted(languages.items())),
        "questions": len(items),
        "questions_with_unhelpful": sum(bool(i["feedback"]["unhelpful"]) for i in items),
        "questions_needing_review": sum(i["needs_review"] for i in items),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "bad_lines": len(read.bad_lines),
        "torn_tail": read.torn_tail,
    }
