"""Lexical index: BM25 (bm25s) over normalised, stemmed tokens (see ``rag.text.tokenize``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from rag.text import tokenize

logging.getLogger("bm25s").setLevel(logging.WARNING)


class BM25Index:
    """BM25 over pre-tokenised chunks; rows match the chunk rows of the store."""

    def __init__(self, model: bm25s.BM25 | None, n_docs: int):
        self._model = model
        self.n_docs = n_docs

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]]) -> "BM25Index":
        if not token_lists:
            return cls(None, 0)
        model = bm25s.BM25()
        # An empty token list would break bm25s' vocabulary; a sentinel keeps the row.
        model.index([list(t) or ["\u2400"] for t in token_lists], show_progress=False)
        return cls(model, len(token_lists))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "n_docs").write_text(str(self.n_docs))
        if self._model is not None:
            self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> "BM25Index":
        n_docs = int((directory / "n_docs").read_text())
        if n_docs == 0:
            return cls(None, 0)
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        return cls(model, n_docs)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) with a positive score."""
        return self.search_tokens(tokenize(query), k)

    def search_tokens(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._model is None or not tokens or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        vocab = self._model.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = self._model.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        keep = scores[top] > 0
        return scores[top][keep].astype(np.float32), top[keep].astype(np.int64)
