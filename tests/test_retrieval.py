"""Retrieval: reciprocal rank fusion worked out by hand, retriever modes, and real rankings
(Arabic, English and cross-lingual) on a small index."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.config import Settings
from rag.retrieval import Candidates, FusionWeights, fuse
from rag.text import tokenize

# dense ranks rows 3, 1, 2; BM25 ranks rows 2, 5.
CANDIDATES = Candidates(
    dense_rows=np.array([3, 1, 2], np.int64),
    dense_scores=np.array([0.9, 0.8, 0.7], np.float32),
    bm25_rows=np.array([2, 5], np.int64),
    bm25_scores=np.array([12.0, 3.0], np.float32),
)
WEIGHTS = FusionWeights(dense=1.0, bm25_ar=1.0, bm25_en=0.3, k=60)


def test_rrf_hybrid_arabic_weights_both_lists_equally():
    fused = fuse(CANDIDATES, WEIGHTS, "ar", "hybrid")
    # row 2: 1/(60+3) + 1/(60+1); row 3: 1/61; rows 1 and 5 tie at 1/62 (lower row first)
    assert [(r, d, b) for r, _, d, b in fused] == [(2, 3, 1), (3, 1, None), (1, 2, None), (5, None, 2)]
    scores = [s for _, s, _, _ in fused]
    assert scores == pytest.approx([1 / 63 + 1 / 61, 1 / 61, 1 / 62, 1 / 62])


def test_rrf_hybrid_english_damps_bm25():
    fused = fuse(CANDIDATES, WEIGHTS, "en", "hybrid")
    assert [r for r, *_ in fused] == [2, 3, 1, 5]
    assert [s for _, s, _, _ in fused] == pytest.approx([1 / 63 + 0.3 / 61, 1 / 61, 1 / 62, 0.3 / 62])


def test_rrf_bm25_weight_decides_between_lists():
    # With BM25 weighted up, BM25's second row overtakes dense's second and third.
    strong = FusionWeights(dense=1.0, bm25_ar=2.0, bm25_en=2.0, k=60)
    fused = fuse(CANDIDATES, strong, "ar", "hybrid")
    assert [r for r, *_ in fused] == [2, 5, 3, 1]
    assert fused[1][1] == pytest.approx(2 / 62)


def test_rrf_k_flattens_the_head():
    small_k = fuse(CANDIDATES, FusionWeights(k=1), "ar", "hybrid")
    assert small_k[0][1] == pytest.approx(1 / 4 + 1 / 2)


def test_single_retriever_modes_keep_their_own_scores_and_order():
    dense = fuse(CANDIDATES, WEIGHTS, "ar", "dense")
    assert [(r, round(s, 4)) for r, s, _, _ in dense] == [(3, 0.9), (1, 0.8), (2, 0.7)]
    bm25 = fuse(CANDIDATES, WEIGHTS, "ar", "bm25")
    assert [(r, s) for r, s, _, _ in bm25] == [(2, 12.0), (5, 3.0)]


def test_fusion_of_nothing_is_empty():
    empty = Candidates(*(np.zeros(0, t) for t in (np.int64, np.float32, np.int64, np.float32)))
    assert fuse(empty, WEIGHTS, "ar", "hybrid") == []


def test_fusion_weights_by_language():
    assert WEIGHTS.bm25("ar") == 1.0 and WEIGHTS.bm25("en") == 0.3
    assert WEIGHTS.bm25("en", translated=True) == 0.6 and WEIGHTS.bm25("ar", translated=True) == 1.0
    translated = Candidates(CANDIDATES.dense_rows, CANDIDATES.dense_scores, CANDIDATES.bm25_rows, CANDIDATES.bm25_scores, True)
    assert [s for _, s, _, _ in fuse(translated, WEIGHTS, "en", "hybrid")][0] == pytest.approx(1 / 63 + 0.6 / 61)


# --- on a real small index ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_rag(small_index, e5):
    from rag.pipeline import RAG

    return RAG(Settings(index=small_index), embedder=e5)


@pytest.fixture(scope="module")
def systems(small_index, e5, small_rag):
    """The default system and the single-list baselines (no reranker), by retrieval mode."""
    from rag.pipeline import RAG
    from rag.reranking import NoReranker
    from rag.retrieval import BM25Retriever, DenseRetriever

    def baseline(retriever):
        return RAG(Settings(index=small_index), embedder=e5, retriever=retriever, reranker=NoReranker(), allow_uncalibrated=True)

    return {"hybrid": small_rag, "dense": baseline(DenseRetriever()), "bm25": baseline(BM25Retriever())}


@pytest.mark.parametrize(
    ("query", "doc_id"),
    [
        ("متى وصل مسبار الأمل إلى مدار المريخ؟", "ar_space"),  # Arabic -> Arabic
        ("كم عدد المسؤولين المشاركين في القمة العالمية للحكومات؟", "ar_summit"),
        ("When did UNESCO inscribe Arabic coffee as heritage?", "en_coffee"),  # English -> English
        ("How many palm trees are there in the Emirates?", "ar_palms"),  # English -> Arabic
        ("When did the Hope probe reach Mars?", "ar_space"),
        ("ما النكهة التي تضاف إلى القهوة العربية؟", "en_coffee"),  # Arabic -> English
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_the_right_passage_ranks_first(systems, query, doc_id, mode):
    passages = systems[mode].search(query, 3)
    assert passages[0].doc_id == doc_id, [p.doc_id for p in passages]


def test_an_english_question_searches_bm25_with_its_words_arabic_neighbours(small_rag, systems):
    from rag.retrieval import bm25_terms

    index = small_rag.live().index
    query = small_rag.analyse("When is the festival held?")
    terms, translated = bm25_terms(index, query)
    assert translated and terms[: len(query.terms)] == list(query.terms)
    assert tokenize("مهرجان")[0] in terms  # "festival" -> مهرجان, a word of the Arabic document
    # through BM25 alone the Arabic document is found; the English words match nothing there
    assert systems["bm25"].search(query, 3)[0].doc_id == "ar_palms"
    assert systems["bm25"].search(replace(query, word_vectors=None), 3) == []
    assert bm25_terms(index, small_rag.analyse("كم عدد أشجار النخيل؟")) == (list(small_rag.analyse("كم عدد أشجار النخيل؟").terms), False)
    bare = replace(query, word_vectors=None)  # analysed without the embedder
    assert bm25_terms(index, bare) == (list(query.terms), False)


def test_bm25_mode_finds_arabic_word_forms(systems):
    # "المسبار"/"بالمسبار" and "مسبار" share a stem; dense is not consulted at all
    passages = systems["bm25"].search("بالمسبار", 3)
    assert [p.doc_id for p in passages] == ["ar_space"]
    assert passages[0].dense_rank is None and passages[0].bm25_rank == 1


def test_passages_carry_provenance_and_exact_offsets(small_rag):
    index = small_rag.snapshot.index
    passages = small_rag.search("القمة العالمية للحكومات في دبي", 4)
    assert len(passages) == 4
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    top = passages[0]
    assert top.doc_id == "ar_summit" and top.dense_rank is not None and top.bm25_rank is not None
    for p in passages:
        assert index.texts[index.doc_row[p.doc_id]][p.start : p.end] == p.text
        assert p.chunk_id.startswith(p.doc_id + "#") and p.title == index.titles[index.doc_row[p.doc_id]]
        assert set(p.to_dict()) == {"chunk_id", "doc_id", "title", "text", "start", "end", "score", "dense_rank", "bm25_rank"}


def test_k_bounds_the_number_of_passages(small_rag):
    assert len(small_rag.search("دبي", 2)) == 2
    assert len(small_rag.search("دبي", 50)) == small_rag.snapshot.index.n_chunks


def test_same_language_sentences_lose_the_language_gap(mixed_index, e5):
    from rag.index import Index
    from rag.retrieval import SAME_LANGUAGE_GAP, language_offsets

    idx = Index.open(mixed_index)
    n = idx.n_sentences
    english = np.array([idx.sentence_text(r).startswith("Government") for r in range(n)])
    gap = SAME_LANGUAGE_GAP[e5.model_id]
    np.testing.assert_allclose(language_offsets(idx, 0, n, "en"), gap["en"] * english, atol=1e-6)
    np.testing.assert_allclose(language_offsets(idx, 0, n, "ar"), gap["ar"] * ~english, atol=1e-6)
    np.testing.assert_allclose(language_offsets(idx, 1, 3, "en"), [0.0, 0.0], atol=1e-6)
    idx.close()


def test_models_without_a_measured_gap_are_not_calibrated(mixed_index, e5, monkeypatch):
    import rag.retrieval
    from rag.index import Index
    from rag.retrieval import language_offsets

    monkeypatch.setattr(rag.retrieval, "SAME_LANGUAGE_GAP", {"some/other-model": {"en": 0.5, "ar": 0.5}})
    idx = Index.open(mixed_index)
    assert not language_offsets(idx, 0, idx.n_sentences, "en").any()
    idx.close()
