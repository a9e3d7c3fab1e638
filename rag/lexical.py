"""Lexical index: BM25 (bm25s) over normalised, stemmed tokens (see ``rag.text.tokenize``)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np

from rag.text import tokenize

logging.getLogger("bm25s").setLevel(logging.WARNING)

# bm25s's defaults, passed explicitly so that ``BM25Index.score`` computes what bm25s does.
K1 = 1.5
B = 0.75
EMPTY = "\u2400"  # stands in for a chunk without tokens (bm25s cannot index an empty list)


class LexicalIndex(Protocol):
    """What queries need of a lexical index: ``BM25Index`` or a sharded index's ``ShardedBM25``."""

    @property
    def n_docs(self) -> int: ...

    def search_tokens(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def document_frequencies(self) -> dict[str, int]: ...


class BM25Index:
    """BM25 over pre-tokenised chunks; rows match the chunk rows of the store."""

    def __init__(self, model: bm25s.BM25 | None, n_docs: int):
        self._model = model
        self.n_docs = n_docs

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]]) -> BM25Index:
        if not token_lists:
            return cls(None, 0)
        model = bm25s.BM25(k1=K1, b=B)
        # An empty token list would break bm25s' vocabulary; a sentinel keeps the row.
        model.index([list(t) or [EMPTY] for t in token_lists], show_progress=False)
        return cls(model, len(token_lists))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "n_docs").write_text(str(self.n_docs))
        if self._model is not None:
            self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> BM25Index:
        n_docs = int((directory / "n_docs").read_text())
        if n_docs == 0:
            return cls(None, 0)
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        return cls(model, n_docs)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) with a positive score."""
        return self.search_tokens(tokenize(query), k)

    def document_frequencies(self) -> dict[str, int]:
        """Rows containing each token (what this index's IDF is computed from)."""
        if self._model is None:
            return {}
        indptr = np.asarray(self._model.scores["indptr"])
        df = np.diff(indptr)
        # bm25s may list a token (its empty-string placeholder) with no column in the matrix
        return {t: int(df[i]) for t, i in self._model.vocab_dict.items() if i < len(df) and df[i] > 0}

    @staticmethod
    def idf(df: int, n: int) -> float:
        """The IDF bm25s bakes into its scores (its default "lucene" variant)."""
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    @staticmethod
    def score(query: Sequence[str], docs: Sequence[str], df: Mapping[str, int], n: int, avg_len: float) -> np.ndarray:
        """BM25 of chunks (space-joined tokens, as stored) as bm25s scores them (lucene
        variant), but with corpus statistics given by the caller: a sharded index re-scores
        its candidates with the global ones."""
        weights = [(t, times * BM25Index.idf(df[t], n)) for t, times in Counter(query).items() if df.get(t)]
        out = np.zeros(len(docs), np.float64)
        for i, joined in enumerate(docs):
            doc = joined.split() or [EMPTY]
            norm = K1 * (1 - B + B * len(doc) / avg_len)
            for t, w in weights:  # a repeated query token counts again, as in bm25s
                tf = doc.count(t)
                if tf:
                    out[i] += w * tf / (tf + norm)
        return out

    def search_tokens(
        self, tokens: list[str], k: int, *, token_weights: Mapping[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows); ``token_weights`` scales each token's contribution
        (a sharded index uses it to swap this index's IDF for the global one)."""
        if self._model is None or not tokens or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        vocab = self._model.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if token_weights is None and self._model.nonoccurrence_array is None:
            rows, scores = self._matching_scores([vocab[t] for t in known])
        else:
            if token_weights is None:
                dense = self._model.get_scores(known)
            else:
                dense = sum(token_weights.get(t, 1.0) * self._model.get_scores([t]) for t in known)
            rows = np.flatnonzero(dense > 0)
            scores = dense[rows]
        return _top_k(scores, rows, k)

    def _matching_scores(self, token_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the rows holding a query token, positive scores only.

        The values are bm25s's own: each row's postings are summed in float32 in query-token
        order, as ``get_scores`` does over its dense array. The top-k then only looks at rows
        with a positive score, instead of partitioning an array of every row (0.64 ms a query
        at 100k chunks, now 0.17-0.21). Questions with few postings (under 1/32 of the rows)
        are summed over the matching rows alone; for more, de-duplicating the postings costs
        more than bm25s's dense sum (measured at 100k chunks: eval/PERFORMANCE.md).
        """
        assert self._model is not None
        m = self._model.scores
        data, indices, indptr = m["data"], m["indices"], m["indptr"]
        spans = [(int(indptr[i]), int(indptr[i + 1])) for i in token_ids]
        postings = sum(b - a for a, b in spans)
        if postings * 32 > self.n_docs:
            dense = self._model.get_scores_from_ids(token_ids)
            rows = np.flatnonzero(dense > 0)
            return rows, dense[rows]
        hit_rows = np.concatenate([indices[a:b] for a, b in spans])
        values = np.concatenate([data[a:b] for a, b in spans])
        rows, where = np.unique(hit_rows, return_inverse=True)
        scores = np.zeros(len(rows), dtype=values.dtype)
        np.add.at(scores, where, values)  # unbuffered, in order: the same float32 sums as bm25s
        keep = scores > 0
        return rows[keep], scores[keep]


def _top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (scores, rows), best first; equal scores in row order (deterministic)."""
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        pick = np.flatnonzero(scores >= kth)
        scores, rows = scores[pick], rows[pick]
    order = np.lexsort((rows, -scores))[:k]
    return scores[order].astype(np.float32), rows[order].astype(np.int64)
