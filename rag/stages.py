"""The stage contracts of the query path, and the reader registry.

    question -> Query (analysed once) -> Retriever -> Reranker -> Reader -> Reading

* ``Query``: the question analysed once (language, normalised text, BM25 terms, question type,
  numbers, embedding). Every stage takes it; none re-reads the raw string.
* ``Retriever.retrieve(query, k, index)``: candidates, best first, each with
  ``Passage.retrieval_score`` (and its provenance: rank in each list).
* ``Reranker.rerank(query, passages, index)``: the same passages re-scored and re-ordered, each
  with ``Passage.rerank_score``. ``rag.reranking.NoReranker`` is the identity.
* ``Reader.read(query, passages, index)``: a ``Reading``: the answer or an abstention, the
  probability that the passages answer the question, and the candidate answers.

Stages take the index version in the call (``RAG`` holds one per snapshot), so a stage object
is configuration only and the same object serves every version. Each stage names the score
features it writes (``provides``); a reader names those its fitted calibrations were fitted on
(``features``), and ``RAG`` refuses a combination that does not provide them, so swapping the
reranker cannot silently feed a reader scores on a scale it was not fitted for.

A new reader is one module with a class satisfying ``Reader`` plus one line in ``READERS`` (or a
``register_reader`` call); it is then selectable with ``RAG_READER``, ``rag ask --reader`` and
``rag eval --reader``, or passed directly as ``RAG(reader=...)``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import numpy as np

from rag import lexicon
from rag.focus import question_type
from rag.schema import Answer, Passage
from rag.text import detect_language, follow_up_for_reader, normalize, question_for_reader, tokenize

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.embedding import Embedder
    from rag.index import Index

_DIGITS = re.compile(r"\d+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Query:
    """A question analysed once; what every stage receives instead of the raw text."""

    text: str  # as asked
    language: str  # "ar" | "en"
    normalized: str  # rag.text.normalize of the whitespace-collapsed text (matching only)
    reading: str  # what the span reader reads: rag.text.question_for_reader (a follow-up: follow_up_for_reader)
    terms: tuple[str, ...]  # BM25 tokens, in question order (a repeated word counts again)
    kind: str | None  # rag.focus.question_type of reading (a follow-up: of its turn, else its topic): "date" | "number" | ...
    numbers: frozenset[str]  # digit strings in the normalised text ("2040")
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)  # the query embedding
    words: tuple[str, ...] = ()  # English content words, looked up in the index's Arabic lexicon (rag.lexicon)
    word_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)  # their embeddings

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Equal for questions that differ only in spacing (and that every stage treats alike). The
        reading is part of it: a chat follow-up reads differently from the same text asked alone."""
        return self.normalized, self.language, " ".join(self.reading.split())

    def embedded(self, embedder: Embedder) -> Query:
        """This query with its embedding and, for an embedder with a lexicon, its words' (computed
        here, once, in one call; a no-op when it has one)."""
        if self.vector is not None:
            return self
        words = self.words if lexicon.measured(embedder.model_id) else ()
        vector, word_vectors = lexicon.embed_with_words(embedder, self.text, words)
        return replace(self, vector=vector, word_vectors=word_vectors)


def analyse(question: str, embedder: Embedder | None = None, language: str | None = None, *, topic: str | None = None) -> Query:
    """Analyse ``question`` once: language (detected unless given), normalised text, the text
    the reader reads, terms, question type and numbers; with an ``embedder`` also its vector.

    With ``topic`` (the earlier question a chat follow-up continues), ``question`` is the
    follow-up turn: retrieval and everything shown read "topic question", the reader reads the
    turn's question with what the topic was about (``rag.text.follow_up_for_reader``)."""
    turn = question
    if topic:
        question = f"{topic} {turn}"
    normalized = normalize(" ".join(question.split()))
    # a follow-up is in the language the user writes now (as the chat reply is), unless it has no letters ("2019?")
    language = language or detect_language(turn if _LETTER.search(turn) else question)
    # the reader learnt from well-formed MSA questions; BM25 and everything shown keep the user's
    # text, and the embedder drops only diacritics and tatweel (rag.text.text_for_embedding)
    reading = follow_up_for_reader(turn, topic, language) if topic else question_for_reader(question, language)
    query = Query(
        text=question,
        language=language,
        normalized=normalized,
        reading=reading,
        terms=tuple(tokenize(question)),
        # a follow-up asks what its turn asks ("ومتى؟" after "كم عدد...؟"); "وماذا عن الأردن؟" what its topic did
        kind=(question_type(question_for_reader(turn, language)) or question_type(topic)) if topic else question_type(reading),
        numbers=frozenset(_DIGITS.findall(normalized)),
        words=lexicon.question_words(question) if language == "en" else (),
    )
    return query.embedded(embedder) if embedder is not None else query


# --- stage protocols ------------------------------------------------------------------------------


@runtime_checkable
class Retriever(Protocol):
    """First stage: candidate passages from the whole index."""

    @property
    def provides(self) -> frozenset[str]:
        """Score features it writes, e.g. {"retrieval:rrf"}."""
        ...

    def retrieve(self, query: Query, k: int, index: Index) -> list[Passage]:
        """The ``k`` best passages, best first, with ``retrieval_score`` set."""
        ...


@runtime_checkable
class Reranker(Protocol):
    """Second stage: re-scores the retriever's candidates."""

    @property
    def provides(self) -> frozenset[str]:
        """Score features it writes, e.g. {"rerank:linear-maxsim"}."""
        ...

    @property
    def depth(self) -> int:
        """Candidates it wants to see: RAG asks the retriever for at least this many."""
        ...

    def rerank(self, query: Query, passages: list[Passage], index: Index) -> list[Passage]:
        """All of ``passages``, re-ordered best first, each with ``rerank_score`` set."""
        ...


@dataclass
class Reading:
    """What a reader concluded from the passages."""

    answer: Answer | None  # None = abstain: the passages do not answer the question
    confidence: float  # probability that the passages answer the question
    candidates: list[Answer] = field(default_factory=list)  # best first; may be empty


@runtime_checkable
class Reader(Protocol):
    """Last stage: the answer span (or an abstention) from the top passages."""

    @property
    def name(self) -> str:
        """Its name in the registry (reported by ``rag eval``)."""
        ...

    @property
    def features(self) -> frozenset[str]:
        """Upstream score features its fitted weights and calibrations rely on; RAG checks that
        the configured retriever and reranker provide them."""
        ...

    @property
    def context_passages(self) -> int:
        """How many of the top passages it reads (the same whatever ``top_k`` is)."""
        ...

    def read(self, query: Query, passages: Sequence[Passage], index: Index) -> Reading: ...


class Provenance(Protocol):
    """What a trained model read (rag.reader.provenance.Seen)."""

    def holds(self, title: str, paragraph: str) -> bool:
        """Whether a question over ``paragraph`` of article ``title`` is not held out from it."""
        ...


@runtime_checkable
class TrainedReader(Protocol):
    """A reader trained on QA data: it says what it read, so that ``rag eval`` flags the
    questions whose numbers are not held out from it (the span reader: reader.json's ``seen``)."""

    @property
    def seen(self) -> Provenance | None:
        """None when its model does not record what it read."""
        ...


class StageMismatch(ValueError):
    """A reader was combined with stages that do not produce the scores it was fitted on."""


def check_features(reader: Reader, retriever: Retriever, reranker: Reranker) -> None:
    """Raise ``StageMismatch`` unless the retriever and reranker provide the reader's features."""
    provided = retriever.provides | reranker.provides
    missing = reader.features - provided
    if missing:
        raise StageMismatch(
            f"the {reader.name!r} reader was fitted on {sorted(missing)}, which this system does not "
            f"produce (retriever {type(retriever).__name__} and reranker {type(reranker).__name__} "
            f"provide {sorted(provided)}); refit the reader for these stages, or pass "
            "allow_uncalibrated=True to use it as it is (evaluation ablations)"
        )


# --- reader registry ------------------------------------------------------------------------------

# name -> "module:callable"; the callable takes the Settings and returns a Reader. Imported only
# when selected, so a reader's heavy dependencies never load for the others.
READERS: dict[str, str] = {
    "span": "rag.reader.runtime:SpanReader.from_settings",
    "sentence": "rag.answering:SentenceReader.from_settings",
    # "none": no reading model, the sentence answering (issue 14's fast mode and baseline)
    "none": "rag.answering:SentenceReader.from_settings",
    "retrieval": "rag.answering:NoReader.from_settings",
}
_FACTORIES: dict[str, Callable[[Settings], Reader]] = {}


def register_reader(name: str, factory: Callable[[Settings], Reader] | str) -> None:
    """Make a reader selectable by ``name`` (a callable, or a "module:callable" path)."""
    if isinstance(factory, str):
        READERS[name] = factory
        _FACTORIES.pop(name, None)
    else:
        _FACTORIES[name] = factory
        READERS.pop(name, None)


def reader_names() -> list[str]:
    return sorted({*READERS, *_FACTORIES})


def _load(path: str) -> Callable[[Settings], Reader]:
    module, _, attr = path.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{path} is not callable")
    return cast("Callable[[Settings], Reader]", obj)


def make_reader(settings: Settings, name: str | None = None) -> Reader:
    """The reader called ``name`` (default ``settings.reader``), built from the settings."""
    name = name or settings.reader
    factory = _FACTORIES.get(name)
    if factory is None:
        if name not in READERS:
            raise ValueError(f"unknown reader {name!r}; known readers: {', '.join(reader_names())}")
        factory = _load(READERS[name])
    return factory(settings)
