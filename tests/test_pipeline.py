"""End to end over the real corpus: the issue's acceptance questions, the exact-offset
invariant across the whole QA set, the answer cache, and index lifecycle through ``RAG``."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index import IndexNotFound
from rag.pipeline import RAG
from rag.schema import AskResult, Document

QA = Path(__file__).resolve().parents[1] / "eval" / "qa" / "corpus_qa.jsonl"


def assert_slices_back(index, result: AskResult) -> None:
    """Every span in ``result`` is exactly the document text at its offsets."""
    a = result.answer
    if a is not None:
        text = index.texts[index.doc_row[a.doc_id]]
        assert text[a.start : a.end] == a.text, result.question
        assert a.title == index.titles[index.doc_row[a.doc_id]]
        if a.focus is not None:
            assert a.start <= a.focus.start < a.focus.end <= a.end
            assert text[a.focus.start : a.focus.end] == a.focus.text, result.question
    for c in result.citations:
        assert index.texts[index.doc_row[c.doc_id]][c.start : c.end] == c.text, result.question


# --- the acceptance questions ----------------------------------------------------------


def test_arabic_question_answers_from_the_agreement_document(corpus_rag):
    result = corpus_rag.ask("متى وُقّعت اتفاقية التعاون بين حكومتي الإمارات والأردن؟")
    assert result.language == "ar" and result.answerable
    assert result.answer.doc_id == "004_c148b1530f858010"
    assert_slices_back(corpus_rag.snapshot.index, result)


def test_english_question_answers_from_the_forum_document(corpus_rag):
    result = corpus_rag.ask("Who is the CEO of TMRW among the forum speakers?")
    assert result.language == "en" and result.answerable
    assert result.answer.doc_id == "002_37161d73928ee183"
    assert_slices_back(corpus_rag.snapshot.index, result)
    d = result.to_dict()
    assert set(d) == {"question", "language", "answerable", "answer", "citations", "timings_ms", "index_version"}
    assert any(c["doc_id"] == "002_37161d73928ee183" for c in d["citations"])


def test_question_the_corpus_cannot_answer_abstains(corpus_rag):
    result = corpus_rag.ask("Who will host the World Government Summit in 2040?")
    assert result.answerable is False, f"answered: {result.answer}"
    assert result.answer is None and result.to_dict()["answer"] is None
    assert result.citations  # passages are still returned
    assert_slices_back(corpus_rag.snapshot.index, result)


@pytest.mark.parametrize("question", ["What is the capital of Azerbaijan?", "متى وُقّعت اتفاقية التعاون بين حكومتي الإمارات والأردن؟"])
def test_top_k_does_not_change_the_answer_or_the_abstention(corpus_rag, question):
    """Regression (issue 13, bug 1): the reader read every retrieved passage, so citing more
    (k=10, 50) made "the capital of Azerbaijan" answerable where k=1 and k=5 abstained."""
    results = [corpus_rag.ask(question, k) for k in (1, 5, 10, 50)]
    assert [len(r.citations) for r in results[:3]] == [1, 5, 10]
    answers = {
        (r.answerable, r.answer.to_dict() if r.answer else None)
        == (results[0].answerable, results[0].answer.to_dict() if results[0].answer else None)
        for r in results
    }
    assert answers == {True}, [(r.answerable, r.answer and r.answer.text[:40]) for r in results]
    if question.startswith("What is the capital"):
        assert not results[0].answerable  # off the corpus' topics


def test_the_reader_reads_the_same_passages_whatever_top_k(corpus_index, e5):
    """Regression (issue 13, bug 1), structurally: the reader's input never depends on k, also
    past the reranker's depth, where the cited list is longer than the pool it reranks."""
    from rag.answering import SentenceReader

    class Recording(SentenceReader):
        def read(self, query, passages, index):
            self.seen.append([p.chunk_id for p in passages])
            return super().read(query, passages, index)

    reader = Recording()
    reader.seen = []
    rag = RAG(Settings(index=corpus_index, cache_size=0), embedder=e5, reader=reader)
    for k in (1, 5, 20, 30, 50):
        result = rag.ask("ما هي القمة العالمية للحكومات؟", k)
        assert len(result.citations) == min(k, rag.snapshot.index.n_chunks)
        assert all(c.score == c.rerank_score for c in result.citations)
    assert len(reader.seen) == 5 and all(seen == reader.seen[0] for seen in reader.seen)


def test_ranked_lists_carry_the_final_stage_score_whatever_their_length(corpus_rag):
    """Regression (issue 13, bug 2): one scale per list, the reranker's, for every passage."""
    for k in (5, 30, 50):
        passages = corpus_rag.search("منتدى تبادل الخبرات الحكومية", k)
        assert all(p.rerank_score is not None and p.score == p.rerank_score for p in passages)
        assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    head = [p.chunk_id for p in corpus_rag.search("منتدى تبادل الخبرات الحكومية", 5)]
    assert [p.chunk_id for p in corpus_rag.search("منتدى تبادل الخبرات الحكومية", 20)][:5] == head


def test_every_span_slices_back_across_the_qa_set(corpus_rag):
    index = corpus_rag.snapshot.index
    rows = [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 100
    answered = 0
    for row in rows:
        result = corpus_rag.ask(row["question"])
        assert result.citations
        assert_slices_back(index, result)
        answered += result.answerable
    assert answered > 0


# --- answer cache ---------------------------------------------------------------------------------


def _without_timings(result: AskResult) -> dict:
    d = result.to_dict()
    d.pop("timings_ms")
    d.pop("question")
    return d


def test_cache_returns_an_equal_result_for_the_same_question_respaced(small_index_copy, e5):
    rag = RAG(Settings(index=small_index_copy), embedder=e5)
    first = rag.ask("متى وصل مسبار الأمل إلى مدار المريخ؟")
    again = rag.ask("  متى   وصل مسبار الأمل\tإلى مدار المريخ؟ ")
    assert again.timings_ms.get("cache_hit") == 1.0 and "cache_hit" not in first.timings_ms
    assert _without_timings(again) == _without_timings(first)
    assert again.question == "  متى   وصل مسبار الأمل\tإلى مدار المريخ؟ "  # echoes what was asked


def test_cache_is_invalidated_by_an_ingest(small_index_copy, e5, small_docs):
    rag = RAG(Settings(index=small_index_copy), embedder=e5)
    question = "How many palm trees are there in the Emirates?"
    before = rag.ask(question)
    assert before.index_version == 1
    changed = replace(small_docs[2], text="تضم دولة الإمارات أكثر من 44 مليون نخلة. ويقام مهرجان ليوا للرطب في الصيف.")
    report = rag.ingest_documents([changed])
    assert report.version == 2 and rag.snapshot.index.version == 2
    after = rag.ask(question)
    assert "cache_hit" not in after.timings_ms and after.index_version == 2
    if after.answer is not None and after.answer.doc_id == "ar_palms":
        assert "44" in after.answer.text
    assert_slices_back(rag.snapshot.index, after)


def test_cache_can_be_turned_off(small_index, e5):
    rag = RAG(Settings(index=small_index, cache_size=0), embedder=e5)
    rag.ask("دبي")
    assert "cache_hit" not in rag.ask("دبي").timings_ms


# --- lifecycle ----------------------------------------------------------------------------------


def test_rag_without_index_is_not_ready_and_says_so(tmp_path, e5):
    rag = RAG(Settings(index=tmp_path / "none"), embedder=e5)
    assert not rag.ready
    with pytest.raises(IndexNotFound, match="rag ingest"):
        rag.ask("سؤال")
    with pytest.raises(IndexNotFound):
        rag.search("سؤال")


def test_first_ingest_through_rag_makes_it_ready(tmp_path, e5, small_docs):
    rag = RAG(Settings(index=tmp_path / "index"), embedder=e5)
    report = rag.ingest_documents(small_docs[:2])
    assert rag.ready and report.version == 1 and rag.snapshot.index.n_documents == 2
    rag.remove(["ar_summit"])
    assert rag.snapshot.index.doc_ids == ["ar_space"] and rag.snapshot.index.version == 2


def test_reload_picks_up_a_version_written_by_another_writer(small_index_copy, e5, small_docs):
    from rag.ingest import Indexer

    reader = RAG(Settings(index=small_index_copy), embedder=e5)
    Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([Document("new", "جديد", "وثيقة جديدة.")])
    assert reader.snapshot.index.version == 1  # still serving the version it opened
    reader.reload()
    assert reader.snapshot.index.version == 2 and "new" in reader.snapshot.index.doc_row


def test_ask_options_language_retriever_and_k(small_index, e5):
    from rag.reranking import NoReranker
    from rag.retrieval import DenseRetriever

    rag = RAG(Settings(index=small_index), embedder=e5, retriever=DenseRetriever(), reranker=NoReranker(), allow_uncalibrated=True)
    result = rag.ask("When did the Hope probe reach Mars?", k=2, language="ar")
    assert result.language == "ar" and len(result.citations) == 2
    assert all(c.bm25_rank is None for c in result.citations)
    assert_slices_back(rag.snapshot.index, result)


def test_refresh_follows_a_symlink_swap_to_a_release_with_the_same_version(tmp_path, e5, small_docs):
    """The roll-out in docs/deployment.md: two releases both at version 1, the link swapped."""
    settings = Settings(reload_interval_s=0.01, cache_size=0)
    releases = []
    for i, doc in enumerate(small_docs[:2]):
        root = tmp_path / f"release-{i}"
        RAG(settings, index_dir=root, embedder=e5).ingest_documents([doc])
        releases.append(root)
    link = tmp_path / "index"
    link.symlink_to(releases[0])
    rag = RAG(settings, index_dir=link, embedder=e5)
    assert rag.snapshot.index.doc_ids == [small_docs[0].doc_id]

    swap = tmp_path / "index.next"
    swap.symlink_to(releases[1])
    swap.replace(link)  # rename(2): atomic
    time.sleep(0.02)
    rag.refresh()
    assert rag.snapshot.index.version == 1
    assert rag.snapshot.index.doc_ids == [small_docs[1].doc_id]
