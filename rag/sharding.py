"""Sharded indexes: documents partitioned over N ordinary indexes, served as one.

Layout::

    index/
      shards.json            {"version": 7, "n_shards": 3, "shards": [{"dir": ..., "version": ...}]}
      shard-000-of-003/      a normal index (CURRENT + versions), see ``rag.index``
      shard-001-of-003/
      shard-002-of-003/
      .lock

A document lives in shard ``blake2b(doc_id) mod N``. ``shards.json`` pins one version of
every shard and is replaced atomically after all shards are written, so readers switch from
one complete set of shard versions to the next, never to a mix.

Serving: ``ShardedIndex`` is an ``Index`` whose rows are global (shard 0's rows first, then
shard 1's...), so retrieval and answering run on it unchanged. Its ``dense`` and ``bm25``
query every shard in parallel and merge. Merging is exact for the dense list (cosine scores
are comparable across shards). BM25 scores are not: each shard's IDF and average chunk
length come from its own chunks. So each shard proposes candidates scored with global IDF
(document frequencies summed over shards when the index opens), and the merged candidates
are re-scored exactly with global statistics (``ShardedBM25``). With global top-n lists,
reciprocal rank fusion sees the same ranks as over one unsharded index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np

from rag import dense
from rag.config import Settings
from rag.embedding import Embedder
from rag.index import (
    CURRENT,
    MANIFEST,
    Index,
    IndexCorrupt,
    IndexNotFound,
    current_version,
    fsync_dir,
    version_name,
)
from rag.ingest import (
    Indexer,
    IngestReport,
    Prepared,
    Preparer,
    Progress,
    chunking_record,
    content_hash,
    writer_lock,
)
from rag.lexical import BM25Index
from rag.lexicon import Lexicon
from rag.schema import Document
from rag.text import tokenize

SHARDS = "shards.json"
FORMAT_VERSION = 1


# --- layout ------------------------------------------------------------------------------
def shard_of(doc_id: str, n_shards: int) -> int:
    """The shard a document belongs to: stable across processes and Python versions (unlike
    ``hash``), and spreads ids evenly whatever their shape."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "big") % n_shards


def shard_dir(i: int, n_shards: int) -> str:
    # The shard count is in the name, so re-sharding writes new directories beside the live ones.
    return f"shard-{i:03d}-of-{n_shards:03d}"


def read_layout(root: Path | str) -> dict[str, Any] | None:
    """The parsed ``shards.json``, or None when ``root`` is not a sharded index."""
    path = Path(root) / SHARDS
    try:
        layout = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise IndexCorrupt(f"{path} is not valid JSON: {exc}") from exc
    if layout.get("format_version") != FORMAT_VERSION or not isinstance(layout.get("shards"), list):
        raise IndexCorrupt(f"{path} is not a shard manifest of format {FORMAT_VERSION}")
    return layout


def is_sharded(root: Path | str) -> bool:
    return (Path(root) / SHARDS).is_file()


def live_version(root: Path | str) -> int | None:
    """The version queries should see: the shard manifest's, or ``CURRENT``'s."""
    layout = read_layout(root)
    return int(layout["version"]) if layout is not None else current_version(Path(root))


def open_index(root: Path | str) -> Index:
    """The live index in ``root``, sharded or not. A symlinked ``root`` is resolved first, so
    an opened index keeps reading the release it opened after the link is swapped to
    another (the roll-out in docs/deployment.md)."""
    root = Path(root).resolve()
    layout = read_layout(root)
    return ShardedIndex(root, layout) if layout is not None else Index.open(root)


def make_indexer(
    root: Path | str, embedder: Embedder, settings: Settings, progress: Progress | None = None, *, shards: int | None = None
) -> Indexer | ShardedIndexer:
    """The writer for ``root``: sharded when it already is or ``shards`` is given."""
    if shards is not None or is_sharded(root):
        return ShardedIndexer(root, embedder, settings, progress, shards=shards)
    return Indexer(root, embedder, settings, progress)


# --- serving -------------------------------------------------------------------------------
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = Lock()


def _pool() -> ThreadPoolExecutor:
    """One process-wide pool for shard queries (a pool per index would leak threads when the
    service swaps index versions while old ones still finish requests)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=min(32, 4 * (os.cpu_count() or 1)), thread_name_prefix="shard")
        return _POOL


class _Rows:
    """Global row view over the shards' vector matrices (each memory-mapped)."""

    def __init__(self, parts: list[np.ndarray], base: np.ndarray, dim: int):
        self.parts, self.base, self.dim = parts, base, dim
        self.shape = (int(base[-1]), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            s = int(np.searchsorted(self.base, start, "right") - 1) if start < stop else 0
            if step == 1 and start < stop <= self.base[s + 1]:  # one shard: a view
                return self.parts[s][start - self.base[s] : stop - self.base[s]]
            key = np.arange(start, stop, step)
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        rows = np.asarray(key, np.int64).reshape(-1)
        out = np.empty((len(rows), self.dim), np.float32)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"rows out of range 0..{self.shape[0]}")
        which = np.searchsorted(self.base, rows, "right") - 1
        for s in np.unique(which).tolist():
            mask = which == s
            out[mask] = self.parts[s][rows[mask] - self.base[s]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        full = np.concatenate([np.asarray(p) for p in self.parts]) if self.parts else np.zeros((0, self.dim), np.float32)
        return full.astype(dtype) if dtype is not None else full


def _merge(parts: list[tuple[np.ndarray, np.ndarray]], base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-shard (scores, local rows) into the global top-``k`` (scores, global rows); ties
    go to the lower global row, as in one index."""
    scores = np.concatenate([s for s, _ in parts]) if parts else np.zeros(0, np.float32)
    rows = np.concatenate([r + base[i] for i, (_, r) in enumerate(parts)]) if parts else np.zeros(0, np.int64)
    order = np.lexsort((rows, -scores))[:k]
    return scores[order].astype(np.float32), rows[order].astype(np.int64)


class ShardedDense:
    """The shards' FAISS indexes behind the one call ``rag.dense.search`` makes."""

    def __init__(self, index: ShardedIndex):
        self._index = index
        self.ntotal = sum(s.dense.ntotal for s in index.shards)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-shaped (scores, rows) of shape (n_queries, k), rows padded with -1."""
        ix = self._index
        out_d = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for qi, q in enumerate(queries):
            parts = ix.map_shards(lambda s, q=q: dense.search(s.dense, q, k))
            d, r = _merge(parts, ix.chunk_base, k)
            out_d[qi, : len(d)], out_i[qi, : len(r)] = d, r
        return out_d, out_i


class ShardedBM25:
    """The shards' BM25 indexes, merged as if they were one.

    Each shard scores its chunks with global IDF (its per-token scores rescaled by global
    IDF / shard IDF); the best ``CANDIDATES_FACTOR * k`` of all shards are then re-scored
    exactly from their tokens with global document frequencies, chunk count and average
    chunk length. The top ``k`` and its scores are those of one unsharded index unless a
    true top-``k`` chunk fell below the candidate cut, which only the shard-local length
    normalisation (a few percent of a score) could do. The re-scoring is Python over
    ``2k`` token lists: about 1 ms for k=50 (eval/PERFORMANCE.md).
    """

    CANDIDATES_FACTOR = 2

    def __init__(self, index: ShardedIndex):
        self._index = index
        self.n_docs = sum(s.bm25.n_docs for s in index.shards)
        self._df = [s.bm25.document_frequencies() for s in index.shards]
        self.df: dict[str, int] = {}
        for d in self._df:
            for t, f in d.items():
                self.df[t] = self.df.get(t, 0) + f
        self._avg_len: float | None = None

    @property
    def avg_len(self) -> float:
        """Mean tokens per chunk over all shards (counted on first use)."""
        if self._avg_len is None:
            total = sum(max(len(t.split()), 1) for t in self._index.chunk_tokens)
            self._avg_len = total / max(self.n_docs, 1)
        return self._avg_len

    def document_frequencies(self) -> dict[str, int]:
        """Chunks containing each token, over all shards (global IDF is computed from these)."""
        return self.df

    def weights(self, shard: int, tokens: Iterable[str]) -> dict[str, float]:
        """Global IDF / shard IDF of each token the shard knows."""
        n_s, df_s = self._index.shards[shard].bm25.n_docs, self._df[shard]
        return {t: BM25Index.idf(self.df[t], self.n_docs) / BM25Index.idf(df_s[t], n_s) for t in set(tokens) if t in df_s}

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.search_tokens(tokenize(query), k)

    def search_tokens(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        ix = self._index
        if len(ix.shards) == 1:  # its own statistics are the global ones
            return ix.shards[0].bm25.search_tokens(tokens, k)
        n = max(k, 0) * self.CANDIDATES_FACTOR

        def one(i: int) -> tuple[np.ndarray, np.ndarray]:
            bm25 = ix.shards[i].bm25
            assert isinstance(bm25, BM25Index)  # a shard is a plain index
            return bm25.search_tokens(tokens, n, token_weights=self.weights(i, tokens))

        _, rows = _merge(ix.map_shards(one, by_number=True), ix.chunk_base, n)
        exact = BM25Index.score(tokens, [ix.chunk_tokens[r] for r in rows.tolist()], self.df, self.n_docs, self.avg_len)
        keep = exact > 0
        return _merge([(exact[keep], rows[keep])], np.zeros(1, np.int64), k)


class ShardedIndex(Index):
    """All shards of one ``shards.json`` version, as one ``Index`` with global row ids.

    Global doc/chunk/sentence row = the shard's row + the rows of the shards before it, so
    ``chunk_first_sentence`` etc. point at global sentence rows and every ``Index`` method
    (``chunk_info``, ``chunk_text``, ``idf``...) works unchanged on the concatenated arrays.
    Vectors stay in the shards' memory-mapped files (``_Rows`` maps rows to shards).
    """

    def __init__(self, root: Path, layout: dict[str, Any]):  # not super().__init__: that opens one version dir
        self.root = self.path = Path(root)
        self.layout = layout
        self.version = int(layout["version"])
        self.shards: list[Index] = []
        try:
            for entry in layout["shards"]:
                self.shards.append(Index(self.root / entry["dir"], int(entry["version"])))
        except IndexNotFound as exc:
            self.close()
            raise IndexCorrupt(f"{self.root / SHARDS} names a shard that is missing: {exc}") from exc
        except BaseException:
            self.close()
            raise
        models = {(s.model_id, s.dim) for s in self.shards}
        if len(models) != 1:
            self.close()
            raise IndexCorrupt(f"the shards of {self.root} were built with different embedders: {sorted(models)}")
        first = self.shards[0].manifest
        self.manifest = {
            "format_version": first["format_version"],
            "version": self.version,
            "created": layout.get("created", first["created"]),
            "model_id": first["model_id"],
            "dim": first["dim"],
            "faiss_index": ",".join(sorted({s.manifest["faiss_index"] for s in self.shards})),
            "chunking": first.get("chunking"),
            "n_shards": len(self.shards),
            "counts": {k: sum(s.manifest["counts"][k] for s in self.shards) for k in ("documents", "chunks", "sentences")},
        }
        self._combine()
        self.lexicon = Lexicon.merge([s.lexicon for s in self.shards if s.lexicon is not None])
        problems = self.consistency_errors()
        if problems:
            self.close()
            raise IndexCorrupt(f"sharded index {self.root} is inconsistent: " + "; ".join(problems[:5]))
        self.dense = ShardedDense(self)
        self.bm25 = ShardedBM25(self)

    def _combine(self) -> None:
        sh = self.shards
        self.doc_base = np.cumsum([0] + [s.n_documents for s in sh]).astype(np.int64)
        self.chunk_base = np.cumsum([0] + [s.n_chunks for s in sh]).astype(np.int64)
        self.sentence_base = np.cumsum([0] + [s.n_sentences for s in sh]).astype(np.int64)
        db, cb, sb = self.doc_base, self.chunk_base, self.sentence_base

        def cat(name: str, offset: np.ndarray | None = None) -> np.ndarray:
            arrays = [getattr(s, name) + (offset[i] if offset is not None else 0) for i, s in enumerate(sh)]
            return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)

        self.doc_ids = [d for s in sh for d in s.doc_ids]
        self.titles = [t for s in sh for t in s.titles]
        self.urls = [u for s in sh for u in s.urls]
        self.sources = [x for s in sh for x in s.sources]
        self.langs = [x for s in sh for x in s.langs]
        self.texts = [t for s in sh for t in s.texts]
        self.hashes = {k: v for s in sh for k, v in s.hashes.items()}
        self.doc_row = {d: i for i, d in enumerate(self.doc_ids)}
        self.chunk_doc = cat("chunk_doc", db)
        self.chunk_ordinal = cat("chunk_ordinal")
        self.chunk_start = cat("chunk_start")
        self.chunk_end = cat("chunk_end")
        self.chunk_first_sentence = cat("chunk_first_sentence", sb)
        self.chunk_last_sentence = cat("chunk_last_sentence", sb)
        self.chunk_tokens = [t for s in sh for t in s.chunk_tokens]
        self.sentence_doc = cat("sentence_doc", db)
        self.sentence_start = cat("sentence_start")
        self.sentence_end = cat("sentence_end")
        self._idf = None
        dim = sh[0].dim
        self.chunk_vectors = _Rows([s.chunk_vectors for s in sh], cb, dim)
        self.sentence_vectors = _Rows([s.sentence_vectors for s in sh], sb, dim)

    def map_shards(self, fn: Any, *, by_number: bool = False) -> list[Any]:
        """``fn(shard)`` (or ``fn(i)``) for every shard, in parallel, results in shard order."""
        args = range(len(self.shards)) if by_number else self.shards
        if len(self.shards) == 1:
            return [fn(a) for a in args]
        return list(_pool().map(fn, args))

    # --- checks --------------------------------------------------------------------------
    def consistency_errors(self) -> list[str]:
        errs: list[str] = []
        if len(self.doc_row) != len(self.doc_ids):
            errs.append("a document id is in more than one shard")
        n = len(self.shards)
        if int(self.layout.get("n_shards", n)) != n:
            errs.append(f"{SHARDS} says {self.layout.get('n_shards')} shards and lists {n}")
        for i, s in enumerate(self.shards):
            wrong = [d for d in s.doc_ids if shard_of(d, n) != i]
            if wrong:
                errs.append(f"{s.root.name} holds {len(wrong)} documents of other shards (e.g. {wrong[0]})")
        return errs

    def verify(self) -> list[str]:
        errs = [f"{s.root.name}: {e}" for s in self.shards for e in s.verify()]
        return errs + self.consistency_errors()

    def size_bytes(self) -> int:
        return sum(s.size_bytes() for s in self.shards) + (self.root / SHARDS).stat().st_size

    def close(self) -> None:
        for s in self.shards:
            s.close()


# --- writing -------------------------------------------------------------------------------
def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class ShardedIndexer:
    """Builds and updates a sharded index; same interface as ``Indexer``.

    Documents are routed to their shard and each shard is an ordinary ``Indexer`` (so the
    incremental update, manifest and atomic version switch are the single-index ones); new
    and changed documents of all shards are prepared in one call of the ``Preparer``, so a
    Ray engine runs one job, not one per shard. Changing the shard count (or turning a plain
    index into a sharded one) re-partitions every document into new shard directories,
    reusing the stored vectors, then swaps ``shards.json``.
    """

    def __init__(
        self, root: Path | str, embedder: Embedder, settings: Settings, progress: Progress | None = None, *, shards: int | None = None
    ):
        if shards is not None and shards < 1:
            raise ValueError("a sharded index needs at least one shard")
        self.root = Path(root)
        self.embedder = embedder
        # Keep the version shards.json pins until the next shards.json replaces it.
        self.settings = settings.model_copy(update={"keep_versions": max(2, settings.keep_versions)})
        self.progress = progress
        self.n_shards = shards
        self._local = Indexer(self.root, embedder, self.settings, progress)  # its prepare() only

    # --- public --------------------------------------------------------------------------
    def ingest(
        self, documents: Sequence[Document], *, prune: bool = False, rebuild: bool = False, prepare: Preparer | None = None
    ) -> IngestReport:
        t0 = time.perf_counter()
        prepare = prepare or self._local.prepare
        with writer_lock(self.root):
            layout = read_layout(self.root)
            n = self.n_shards or (int(layout["n_shards"]) if layout else 1)
            if layout is None or int(layout["n_shards"]) != n:
                report = self._relayout(layout, n, documents, prune=prune, rebuild=rebuild, prepare=prepare)
            else:
                report = self._update(layout, documents, prune=prune, rebuild=rebuild, prepare=prepare)
        report.timings_s["total"] = time.perf_counter() - t0
        return report

    def remove(self, doc_ids: Iterable[str]) -> IngestReport:
        """Delete documents; unknown ids raise ``KeyError`` and nothing is written."""
        with writer_lock(self.root):
            layout = read_layout(self.root)
            if layout is None:
                raise IndexNotFound(f"no sharded index in {self.root}")
            n = int(layout["n_shards"])
            ids = list(dict.fromkeys(doc_ids))
            present = [self._hashes(e) for e in layout["shards"]]
            missing = [i for i in ids if i not in present[shard_of(i, n)]]
            if missing:
                raise KeyError(", ".join(missing))
            report = IngestReport(version=int(layout["version"]), removed=ids)
            entries = [dict(e) for e in layout["shards"]]
            for s in sorted({shard_of(i, n) for i in ids}):
                r = self._shard(entries[s]["dir"]).remove([i for i in ids if shard_of(i, n) == s])
                entries[s]["version"] = r.version
            report.version = self._publish(entries, int(layout["version"]) + 1, n)
            return report

    # --- internals -----------------------------------------------------------------------
    def _shard(self, name: str, known_words: Lexicon | None = None) -> Indexer:
        return Indexer(self.root / name, self.embedder, self.settings, known_words=known_words)

    def _hashes(self, entry: Mapping[str, Any]) -> dict[str, str]:
        """doc_id -> content hash of a shard version, read from its manifest alone."""
        path = self.root / entry["dir"] / version_name(int(entry["version"])) / MANIFEST
        return dict(json.loads(path.read_text())["documents"])

    def _prepare_all(self, todo: list[tuple[Document, str]], prepare: Preparer, report: IngestReport) -> Preparer:
        """Run ``prepare`` once over every shard's fresh documents; the shards' writers then
        look their items up (and prepare locally whatever they unexpectedly miss)."""
        done = {(p.doc.doc_id, p.hash): p for p in prepare(todo, report.timings_s)} if todo else {}
        report.embedded_texts += sum(len(p.chunks) + len(p.sentences) for p in done.values())

        def lookup(items: list[tuple[Document, str]], timings: dict[str, float]) -> list[Prepared]:
            missing = [(d, h) for d, h in items if (d.doc_id, h) not in done]
            if missing:
                extra = self._local.prepare(missing, timings)
                report.embedded_texts += sum(len(p.chunks) + len(p.sentences) for p in extra)
                done.update({(p.doc.doc_id, p.hash): p for p in extra})
            return [done[(d.doc_id, h)] for d, h in items]

        return lookup

    def _update(
        self, layout: dict[str, Any], documents: Sequence[Document], *, prune: bool, rebuild: bool, prepare: Preparer
    ) -> IngestReport:
        n = int(layout["n_shards"])
        incoming = {d.doc_id: d for d in documents}
        routed: list[list[Document]] = [[] for _ in range(n)]
        for d in incoming.values():
            routed[shard_of(d.doc_id, n)].append(d)
        old = [{} if rebuild else self._hashes(e) for e in layout["shards"]]
        todo = [(d, h) for s in range(n) for d in routed[s] if old[s].get(d.doc_id) != (h := content_hash(d))]
        report = IngestReport(version=int(layout["version"]))
        lookup = self._prepare_all(todo, prepare, report)
        entries = [dict(e) for e in layout["shards"]]
        changed = False
        for s, entry in enumerate(entries):
            r = self._shard(entry["dir"]).ingest(routed[s], prune=prune, rebuild=rebuild, prepare=lookup)
            for name in ("added", "updated", "unchanged", "removed"):
                getattr(report, name).extend(getattr(r, name))
            if r.version != entry["version"]:
                entry["version"], changed = r.version, True
        if changed:
            report.version = self._publish(entries, int(layout["version"]) + 1, n)
        return report

    def _relayout(
        self, layout: dict[str, Any] | None, n: int, documents: Sequence[Document], *, prune: bool, rebuild: bool, prepare: Preparer
    ) -> IngestReport:
        """Write every document into ``n`` new shards, then switch ``shards.json`` to them."""
        plain = current_version(self.root)
        sources: list[Index] = []
        if layout is not None:
            sources = [Index(self.root / e["dir"], int(e["version"])) for e in layout["shards"]]
        elif plain is not None:
            sources = [Index.open(self.root)]
        try:
            for src in sources:
                src.check_embedder(self.embedder.model_id, self.embedder.dim)
            old_hash = {d: h for src in sources for d, h in src.hashes.items()}
            incoming = {d.doc_id: d for d in documents}
            report = IngestReport(version=int(layout["version"]) if layout else plain)
            if not rebuild and not prune:  # keep what the old layout held, as a plain ingest would
                for src in sources:
                    for doc_id in src.doc_ids:
                        if doc_id not in incoming:
                            row = src.doc_row[doc_id]
                            incoming[doc_id] = Document(doc_id, src.titles[row], src.texts[row], src.urls[row], src.sources[row])
            if not rebuild:
                report.removed = sorted(set(old_hash) - set(incoming))
            routed: list[list[Document]] = [[] for _ in range(n)]
            todo: list[tuple[Document, str]] = []
            reusable: dict[str, Index] = {} if rebuild else {doc_id: src for src in sources for doc_id in src.doc_ids}
            chunking = chunking_record(self.settings)
            reused: dict[tuple[str, str], Index] = {}  # read from the source when its shard is written
            for d in incoming.values():
                routed[shard_of(d.doc_id, n)].append(d)
                h = content_hash(d)
                holder = reusable.get(d.doc_id)
                if holder is not None and holder.hashes[d.doc_id] == h and holder.manifest.get("chunking") == chunking:
                    reused[(d.doc_id, h)] = holder
                    report.unchanged.append(d.doc_id)
                else:
                    todo.append((d, h))
                    (report.updated if d.doc_id in old_hash and not rebuild else report.added).append(d.doc_id)
            lookup = self._prepare_all(todo, prepare, report)

            def with_reused(items: list[tuple[Document, str]], timings: dict[str, float]) -> list[Prepared]:
                fresh = lookup([it for it in items if (it[0].doc_id, it[1]) not in reused], timings)
                by_key = {(p.doc.doc_id, p.hash): p for p in fresh}
                return [
                    Prepared.from_index(reused[(d.doc_id, h)], d.doc_id) if (d.doc_id, h) in reused else by_key[(d.doc_id, h)]
                    for d, h in items
                ]

            entries: list[dict[str, Any]] = []
            known_words = None if rebuild else Lexicon.merge([src.lexicon for src in sources if src.lexicon is not None])
            for s in range(n):
                name = shard_dir(s, n)
                written = self._shard(name, known_words).ingest(routed[s], rebuild=True, prepare=with_reused)
                entries.append({"dir": name, "version": written.version})
        finally:
            for src in sources:
                src.close()
        previous = max(int(layout["version"]) if layout else 0, plain or 0)
        report.version = self._publish(entries, previous + 1, n)
        self._drop_old_layout(layout, plain, {e["dir"] for e in entries})
        return report

    def _publish(self, entries: list[dict[str, Any]], version: int, n: int) -> int:
        layout = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "n_shards": n,
            "partition": "blake2b(doc_id, 8 bytes, big-endian) mod n_shards",
            "shards": entries,
        }
        _atomic_write(self.root / SHARDS, json.dumps(layout, indent=1))
        return version

    def _drop_old_layout(self, layout: dict[str, Any] | None, plain: int | None, keep: set[str]) -> None:
        """After the switch: the previous shard directories, or the plain index's versions.
        Processes still serving them keep their open files (POSIX); new opens read the new
        ``shards.json``."""
        for e in layout["shards"] if layout else []:
            if e["dir"] not in keep:
                shutil.rmtree(self.root / e["dir"], ignore_errors=True)
        if plain is not None:
            (self.root / CURRENT).unlink(missing_ok=True)
            for p in self.root.glob("v*"):
                if p.name[1:].isdigit():
                    shutil.rmtree(p, ignore_errors=True)
