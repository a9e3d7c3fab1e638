"""Embedders that stand in for, or wrap, the real one: shared by the tests, ``rag bench`` and the
scripts in ``benchmarks/``. None of them is used by the service.

* ``RecordingEmbedder``: the real embedder, recording the passages it embeds and how long that took.
* ``MemoEmbedder``: the real embedder, each distinct text embedded once (questions can be
  embedded up front in one batch).
* ``WordHashEmbedder``: no model at all: deterministic bag-of-words vectors (when offsets, not
  ranking quality, are under test), counting its query calls.
* ``SyntheticEmbedder``: vectors for a synthetic corpus mixed from real paragraph vectors.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

import numpy as np

from rag.embedding import Embedder
from rag.text import normalize


class _Wrapper:
    """Delegates everything to ``inner`` (subclasses override what they observe)."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.model_id: str = inner.model_id
        self.dim: int = inner.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def token_count(self, text: str) -> int:
        return self.inner.token_count(text)


class RecordingEmbedder(_Wrapper):
    """The real embedder, recording which passages it embeds, in how many calls and how long,
    and each call's query texts (the lexicon's words at ingest; a question and its words)."""

    def __init__(self, inner: Embedder):
        super().__init__(inner)
        self.passages: list[str] = []
        self.query_calls: list[list[str]] = []
        self.seconds = 0.0
        self.calls = 0

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.embed_passages(texts)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.passages += list(texts)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.embed_queries(texts)
        self.seconds += time.perf_counter() - t0
        self.query_calls.append(list(texts))
        return out


class MemoEmbedder(_Wrapper):
    """The real embedder, remembering each text's vector (the model is deterministic, so only
    the first time costs anything); ``questions`` are embedded up front, in one batch."""

    def __init__(self, inner: Embedder, questions: Sequence[str] = ()):
        super().__init__(inner)
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        if questions:
            self.embed_queries(list(questions))

    def _embed(self, kind: str, fn: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if (kind, t) not in self._memo]
        if todo:
            for t, v in zip(todo, fn(todo), strict=True):
                self._memo[kind, t] = v
        return np.stack([self._memo[kind, t] for t in texts]) if texts else fn(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed("query", self.inner.embed_queries, list(texts))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed("passage", self.inner.embed_passages, list(texts))


class WordHashEmbedder:
    """Deterministic bag-of-normalised-words vectors: embedding quality is not under test where
    this is used, and it keeps a hundred index builds to seconds. Tokens are words + 2."""

    def __init__(self, dim: int = 64):
        self.model_id = f"word-hash-{dim}"
        self.dim = dim
        self.query_calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for w in normalize(text).split():
            v[int.from_bytes(hashlib.blake2b(w.encode("utf-8", "surrogatepass"), digest_size=2).digest(), "big") % self.dim] += 1
        v[0] += 1e-3  # never all zeros
        return v / np.linalg.norm(v)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.query_calls += 1
        return self.embed_passages(texts)

    def token_count(self, text: str) -> int:
        return len(text.split()) + 2


class SyntheticEmbedder:
    """Vectors for the synthetic growth corpus of ``rag bench`` without running the model 100k times.

    Each synthetic document is registered with the base paragraphs it was mixed from; its chunk
    gets ``base[a] + w * base[b]`` plus a little noise, its sentences more noise. Ingest embeds a
    document's chunks then its sentences, so texts that are not a registered chunk belong to the
    last registered one. Tokens are counted by the real model (the chunker needs real sizes).
    """

    def __init__(self, real: Embedder, base: np.ndarray, seed: int = 0):
        self.real = real
        self.model_id, self.dim = real.model_id, real.dim
        self.base = base
        self.origin: dict[str, tuple[int, int, float]] = {}
        self._current = (0, 0, 0.0)
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def _key(text: str) -> str:
        return text.strip()[:80]

    def register(self, text: str, a: int, b: int, w: float) -> None:
        self.origin[self._key(text)] = (a, b, w)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            hit = self.origin.get(self._key(t))
            sigma = 0.25 if hit is not None else 0.45
            if hit is not None:
                self._current = hit
            a, b, w = self._current
            v = self.base[a] + w * self.base[b] + sigma * self._rng.standard_normal(self.dim) / np.sqrt(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed_queries(texts)

    def token_count(self, text: str) -> int:
        return self.real.token_count(text)
