"""The stage contracts (rag.stages): the analysed Query, the reader registry, the feature check
that keeps a reader off stages it was not fitted on, and stages plugged into RAG by argument.

A model-free embedder (``WordHashEmbedder``) keeps these fast: ranking quality is not under
test, the seams are."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rag.answering import NoReader, SentenceReader
from rag.config import Settings
from rag.index import Index
from rag.pipeline import RAG
from rag.reranking import LinearMaxSimReranker, NoReranker
from rag.retrieval import BM25Retriever, DenseRetriever, HybridRetriever
from rag.schema import Answer, Document, Passage, SentenceSpan
from rag.stages import (
    READERS,
    Query,
    Reader,
    Reading,
    Reranker,
    Retriever,
    StageMismatch,
    analyse,
    make_reader,
    reader_names,
    register_reader,
)
from rag.testing import WordHashEmbedder
from rag.text import tokenize

DOCS = [
    Document("summit", "القمة", "تُعقد القمة العالمية للحكومات في دبي من 12 إلى 14 فبراير. ويشارك فيها 4000 مسؤول."),
    Document("coffee", "Coffee", "Arabic coffee is flavoured with cardamom. UNESCO listed it in 2015."),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Settings, WordHashEmbedder]:
    emb = WordHashEmbedder()
    settings = Settings(index=tmp_path_factory.mktemp("stages") / "index", cache_size=0)
    RAG(settings, embedder=emb).ingest_documents(DOCS)
    return settings, emb


# --- Query ----------------------------------------------------------------------------------------


def test_query_is_analysed_once_with_everything_stages_need():
    emb = WordHashEmbedder()
    q = analyse("  كم عدد المسؤولين   في القمة عام ٢٠٢٤؟ ", emb)
    assert q.text == "  كم عدد المسؤولين   في القمة عام ٢٠٢٤؟ "  # as asked
    assert q.language == "ar" and q.kind == "number"
    assert q.normalized == "كم عدد المسوولين في القمه عام 2024؟"  # spaces collapsed, letters unified
    assert q.numbers == frozenset({"2024"})
    assert q.terms == tuple(tokenize(q.text)) and "كم" not in q.terms and "2024" in q.terms  # BM25 tokens
    assert q.vector is not None and q.vector.shape == (emb.dim,) and emb.query_calls == 1
    assert q.embedded(emb) is q and emb.query_calls == 1  # embedded once
    assert analyse("When is it?", language="ar").language == "ar"  # a given language wins
    assert analyse("When is it?").vector is None  # no embedder, no vector


def test_the_reader_and_the_question_type_read_dialect_question_words_in_msa():
    q = analyse("مين رئيس مجلس ادارة AuVe Tech؟")
    assert q.text == "مين رئيس مجلس ادارة AuVe Tech؟"  # shown and embedded as asked
    assert q.reading == "من رئيس مجلس ادارة AuVe Tech؟" and q.kind == "person"
    assert analyse("ايمتى تنعقد القمة؟").kind == "date" and analyse("وين انعقد المؤتمر؟").kind == "place"
    assert analyse("When is it?").reading == "When is it?"
    assert analyse("who is the CEO of TMRW ").reading == "who is the CEO of TMRW?"  # a chat question, asked
    assert analyse("كم عدد المتحدثين").reading == "كم عدد المتحدثين؟"
    # and without the marks the embedder drops too: the reader learnt from plain spelling
    assert analyse("مِين رئيــس المَجلِس؟").reading == "من رئيس المجلس؟"


def test_a_follow_up_is_retrieved_joined_to_its_topic_and_read_with_its_own_question_first():
    topic = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
    follow_up, joined = analyse("ومتى عقد؟", topic=topic), analyse(f"{topic} ومتى عقد؟")
    # retrieval and everything shown see the joined text, as before
    assert (follow_up.text, follow_up.terms, follow_up.normalized, follow_up.language) == (
        joined.text,
        joined.terms,
        joined.normalized,
        "ar",
    )
    assert follow_up.reading == "ومتى عقد عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
    assert joined.reading.startswith("كم عدد")  # the topic's question first: the reader answered "28"
    assert (follow_up.kind, joined.kind) == ("date", "number")  # the turn's question type
    assert follow_up.cache_key != joined.cache_key  # one text, two readings: never one cached answer
    # a turn without a question type ("and what about Jordan?") asks what its topic asked
    assert analyse("وماذا عن الأردن؟", topic="متى وقعت الإمارات اتفاقية التعاون مع مصر؟").kind == "date"
    assert analyse("ومتى عقد؟", topic="") == analyse("ومتى عقد؟")
    # in the language the user writes now; a turn without letters takes the topic's
    assert analyse("and when was it held?", topic=topic).language == "en"
    assert analyse("2019?", topic="When was the summit held?").language == "en"


def test_cache_key_ignores_spacing_only():
    a, b = analyse("متى  تعقد القمة؟"), analyse(" متى تعقد\tالقمة؟")
    assert a.cache_key == b.cache_key
    assert analyse("متى تعقد القمة؟", language="en").cache_key != a.cache_key
    assert a == b or a.text != b.text  # equality never compares vectors (arrays)
    assert analyse("x", WordHashEmbedder()) == analyse("x", WordHashEmbedder())


# --- registry ---------------------------------------------------------------------------------------


def test_make_reader_by_setting_and_by_name():
    assert isinstance(make_reader(Settings(reader="sentence")), SentenceReader)
    # "none" = no reading model: the sentence answering, the fast mode (issue 14)
    assert isinstance(make_reader(Settings(reader="none")), SentenceReader)
    assert isinstance(make_reader(Settings(), "retrieval"), NoReader)
    with pytest.raises(ValueError, match="unknown reader 'nope'.*none, retrieval, sentence, span"):
        make_reader(Settings(reader="nope"))


def test_a_registered_reader_is_selectable_by_name(monkeypatch):
    monkeypatch.setattr("rag.stages._FACTORIES", {})
    monkeypatch.setattr("rag.stages.READERS", dict(READERS))
    register_reader("always-first", lambda settings: FirstPassageReader())
    assert "always-first" in reader_names()
    assert isinstance(make_reader(Settings(reader="always-first")), FirstPassageReader)
    register_reader("by-path", "rag.answering:NoReader.from_settings")
    assert isinstance(make_reader(Settings(reader="by-path")), NoReader)


def test_default_stages_satisfy_the_protocols():
    assert isinstance(HybridRetriever(), Retriever) and isinstance(DenseRetriever(), Retriever)
    assert isinstance(LinearMaxSimReranker(), Reranker) and isinstance(NoReranker(), Reranker)
    assert isinstance(SentenceReader(), Reader) and isinstance(NoReader(), Reader)


# --- the feature check --------------------------------------------------------------------------------


def test_a_reader_refuses_stages_it_was_not_fitted_on(tiny):
    settings, emb = tiny
    settings = settings.model_copy(update={"reader": "sentence"})  # the reader fitted on rerank:linear-maxsim
    with pytest.raises(StageMismatch, match="rerank:linear-maxsim"):
        RAG(settings, embedder=emb, reranker=NoReranker())
    with pytest.raises(StageMismatch, match="allow_uncalibrated"):
        RAG(settings, embedder=emb, retriever=BM25Retriever(), reranker=NoReranker())
    # knowingly (the evaluation baselines), or with a reader that relies on nothing
    RAG(settings, embedder=emb, reranker=NoReranker(), allow_uncalibrated=True)
    RAG(settings, embedder=emb, reranker=NoReranker(), reader=NoReader())


class CosineReranker:
    """Another reranker: the passage cosine alone, under its own feature name."""

    provides = frozenset({"rerank:passage-cosine"})
    depth = 10

    def rerank(self, query: Query, passages: list[Passage], index: Index) -> list[Passage]:
        assert query.vector is not None
        for p in passages:
            p.rerank_score = float(np.asarray(index.chunk_vectors[p.row]) @ query.vector)
        return sorted(passages, key=lambda p: -p.score)


class FirstPassageReader:
    """Another reader: the first sentence of the first passage, fitted on the cosine reranker."""

    name = "first"
    features = frozenset({"rerank:passage-cosine"})
    context_passages = 2

    def __init__(self) -> None:
        self.seen: list[int] = []

    def read(self, query: Query, passages: Sequence[Passage], index: Index) -> Reading:
        self.seen.append(len(passages))
        if not passages:
            return Reading(None, 0.0)
        p = passages[0]
        first = int(index.chunk_first_sentence[p.row])
        s, e = int(index.sentence_start[first]), int(index.sentence_end[first])
        text = index.texts[index.doc_row[p.doc_id]][s:e]
        a = Answer(text, p.doc_id, p.title, s, e, 0.9, sentence=SentenceSpan(text, s, e))
        return Reading(a, 0.9, [a])


def test_new_stages_plug_in_by_constructor_argument(tiny):
    settings, emb = tiny
    reader = FirstPassageReader()
    with pytest.raises(StageMismatch):  # the default reranker does not give it its feature
        RAG(settings, embedder=emb, reader=reader)
    rag = RAG(settings, embedder=emb, reranker=CosineReranker(), reader=reader)
    result = rag.ask("UNESCO cardamom coffee", k=1)
    assert result.answerable and result.answer.doc_id == "coffee"
    assert result.answer.text == DOCS[1].text[result.answer.start : result.answer.end]
    assert reader.seen == [2]  # its context_passages, though one passage is cited
    assert all(c.score == c.rerank_score for c in result.citations)


def test_no_reranker_keeps_retrieval_order_and_scores(tiny):
    settings, emb = tiny
    plain = RAG(settings, embedder=emb, reranker=NoReranker(), reader=NoReader())
    passages = plain.search("القمة العالمية", 2)
    assert all(p.rerank_score is None and p.score == p.retrieval_score for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
