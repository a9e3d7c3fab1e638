"""Stage contracts: the small typed records passed forward through the pipeline.

load -> ``Document``; chunk -> ``Chunk`` (with its ``Sentence`` spans); retrieve -> ``Passage``;
answer -> ``Answer`` inside an ``AskResult``. Every ``start``/``end`` is a character offset into
the stored original ``Document.text`` (never into normalised text), so
``document.text[start:end] == text`` holds everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Document:
    """A cleaned source document, as stored and shown to users."""

    doc_id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None  # file path (or "api") it came from


@dataclass(frozen=True, slots=True)
class Span:
    """A character range of a document's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of a document, with offsets into the document text."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrieval unit: a contiguous slice of one document plus the sentences it overlaps."""

    doc_id: str
    ordinal: int  # position of the chunk within its document
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...] = ()

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"


@dataclass(slots=True)
class Passage:
    """A retrieved chunk with its fused score and where the score came from."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    dense_rank: int | None = None  # 1-based rank in the dense list, None if absent
    bm25_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None
    row: int = -1  # internal row id in the index

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
            "dense_rank": self.dense_rank,
            "bm25_rank": self.bm25_rank,
        }


@dataclass(frozen=True, slots=True)
class Focus:
    """A short factoid span (number, date, name) inside the answer sentence."""

    text: str
    start: int
    end: int
    kind: str  # "number" | "date" | "name" | ...


@dataclass(slots=True)
class Answer:
    """The extractive answer: a verbatim span of one document."""

    text: str
    doc_id: str
    title: str
    start: int
    end: int
    score: float
    focus: Focus | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "doc_id": self.doc_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 6),
        }
        if self.focus is not None:
            out["focus"] = asdict(self.focus)
        return out


@dataclass(slots=True)
class AskResult:
    """What ``ask`` returns, and exactly what ``rag ask --json`` and ``POST /ask`` serialise."""

    question: str
    language: str
    answerable: bool
    answer: Answer | None
    citations: list[Passage] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    index_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "language": self.language,
            "answerable": self.answerable,
            "answer": self.answer.to_dict() if self.answer else None,
            "citations": [
                {
                    "doc_id": p.doc_id,
                    "title": p.title,
                    "text": p.text,
                    "start": p.start,
                    "end": p.end,
                    "score": round(float(p.score), 6),
                }
                for p in self.citations
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "index_version": self.index_version,
        }
