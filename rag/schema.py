"""The records passed forward through the pipeline (the stages themselves: ``rag.stages``).

load -> ``Document``; chunk -> ``Chunk`` (with its ``Sentence`` spans); retrieve and rerank ->
``Passage``; read -> ``Answer`` inside an ``AskResult``. Every ``start``/``end`` is a character
offset into the stored original ``Document.text`` (never into normalised text), so
``document.text[start:end] == text`` holds everywhere.

Each record has one serialiser, ``to_dict``: the JSON ``rag ask --json`` prints and the HTTP
service returns (validated there against the response models of ``api.schemas``).
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
    """A retrieved chunk. Each ranking stage writes its own score: the retriever
    ``retrieval_score`` (and the provenance fields), a reranker ``rerank_score``; ``score`` is
    the score of the last stage that ranked the list, so one list has one scale."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    retrieval_score: float
    rerank_score: float | None = None
    dense_rank: int | None = None  # 1-based rank in the dense list, None if absent
    bm25_rank: int | None = None
    # BM25 score over the query's best BM25 score (1.0 = the best lexical match), None when
    # the chunk is not in the BM25 list
    bm25_relative: float | None = None
    row: int = -1  # internal row id in the index

    @property
    def score(self) -> float:
        """The final ranking stage's score: the reranker's when the list was reranked."""
        return self.retrieval_score if self.rerank_score is None else self.rerank_score

    def to_dict(self, *, provenance: bool = True) -> dict[str, Any]:
        """The passage as ``GET /search`` returns it; without ``provenance`` (chunk id and the
        rank in each retriever's list) as ``POST /ask`` cites it."""
        out: dict[str, Any] = {"chunk_id": self.chunk_id} if provenance else {}
        out.update(
            doc_id=self.doc_id,
            title=self.title,
            text=self.text,
            start=self.start,
            end=self.end,
            score=round(float(self.score), 6),
        )
        if provenance:
            out.update(dense_rank=self.dense_rank, bm25_rank=self.bm25_rank)
        return out


@dataclass(frozen=True, slots=True)
class Focus:
    """A short factoid span (number, date, name) inside the answer sentence."""

    text: str
    start: int
    end: int
    kind: str  # "number" | "date" | "name" | ...


@dataclass(frozen=True, slots=True)
class SentenceSpan:
    """The sentence of a document that holds an answer."""

    text: str
    start: int
    end: int


@dataclass(slots=True)
class Answer:
    """The extractive answer: a verbatim span of one document, and the reader's confidence
    that the documents answer the question (``score``)."""

    text: str
    doc_id: str
    title: str
    start: int
    end: int
    score: float
    focus: Focus | None = None
    # The sentence holding the span. A sentence-level reader answers with the sentence itself;
    # a span reader answers with a short span and puts its sentence here.
    sentence: SentenceSpan | None = None

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
        s = self.sentence
        if s is not None and (s.start, s.end) != (self.start, self.end):  # only news when it differs
            out["sentence"] = asdict(s)
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
            "citations": [p.to_dict(provenance=False) for p in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "index_version": self.index_version,
        }
