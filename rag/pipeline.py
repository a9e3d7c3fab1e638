"""The whole question-answering pipeline, read top to bottom:

    question -> Query (analysed and embedded once) -> retrieve -> rerank -> read -> AskResult

The stages (contracts in ``rag.stages``) are injected: ``RAG`` builds today's defaults (hybrid
RRF retriever, linear max-sim reranker, the reader ``settings.reader`` names) for any not given.
``RAG`` owns the embedder and the live index version; the CLI and the HTTP API are thin shells
over it. Each call works on one index snapshot from start to end, so an index update swapping in
a new version mid-request never mixes versions in one answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag.config import Settings, get_settings
from rag.embedding import Embedder, make_embedder
from rag.index import Index, IndexCorrupt, IndexNotFound, IndexProblem
from rag.ingest import Indexer, IngestReport, Progress, clean_stale_temporaries
from rag.loading import Skipped, load_paths
from rag.reranking import LinearMaxSimReranker
from rag.retrieval import FusionWeights, HybridRetriever
from rag.schema import AskResult, Document, Passage
from rag.sharding import ShardedIndexer, live_version, make_indexer, open_index
from rag.stages import Query, Reader, Reranker, Retriever, analyse, check_features, make_reader


@dataclass(frozen=True)
class Snapshot:
    """One opened index version: what a request works on from start to end."""

    index: Index


class RAG:
    """Ask and search over the index in ``settings.index`` (or ``index_dir``).

    ``retriever``, ``reranker`` and ``reader`` replace the default stages (``reranker=NoReranker()``
    turns reranking off). The reader's ``features`` must be provided by the other two stages,
    unless ``allow_uncalibrated`` (evaluation ablations that knowingly reuse its calibration).
    ``verify`` checks the whole index version (checksums, offsets) before serving it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        index_dir: Path | str | None = None,
        embedder: Embedder | None = None,
        retriever: Retriever | None = None,
        reranker: Reranker | None = None,
        reader: Reader | None = None,
        allow_uncalibrated: bool = False,
        verify: bool = False,
    ):
        self.settings = settings or get_settings()
        self.index_dir = Path(index_dir or self.settings.index)
        self.retriever: Retriever = retriever or HybridRetriever(FusionWeights(k=self.settings.rrf_k), candidates=self.settings.candidates)
        self.reranker: Reranker = reranker or LinearMaxSimReranker()
        self.reader: Reader = reader or make_reader(self.settings)
        if not allow_uncalibrated:
            check_features(self.reader, self.retriever, self.reranker)
        self.embedder = embedder or make_embedder(self.settings)
        self._snapshot: Snapshot | None = None
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._last_check = 0.0
        self._cache: OrderedDict[tuple[Any, ...], AskResult] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Killed writers leave temporaries that a successful write would only clear much later.
        clean_stale_temporaries(self.index_dir)
        self.reload(missing_ok=True, verify=verify)

    # --- index lifecycle -------------------------------------------------------------------
    def reload(self, *, missing_ok: bool = False, verify: bool = False) -> None:
        """Open the live index version (a no-op when it is the one already open); with
        ``verify``, switch to it only if it passes the full ``Index.verify``."""
        with self._reload_lock:
            self._reload(missing_ok, verify)

    def refresh(self) -> None:
        """Pick up a version written by another process (``rag ingest``, a roll-out that swapped
        ``CURRENT``), checking at most every ``reload_interval_s``; a stat, not a reload, when
        nothing changed."""
        now = time.monotonic()
        if self.settings.reload_interval_s <= 0 or now - self._last_check < self.settings.reload_interval_s:
            return
        self._last_check = now
        try:
            live = live_version(self.index_dir)
        except IndexProblem:
            return  # keep serving the version we have
        snap = self._snapshot
        # A roll-out may swap a symlinked index root to another release whose version number
        # happens to be the same, so the release directory counts as well as the number.
        moved = snap is not None and os.path.realpath(self.index_dir) != os.path.realpath(snap.index.root)
        if live is not None and (snap is None or live != snap.index.version or moved):
            try:
                # Written elsewhere, so not trusted as written: checksums first, never wrong answers.
                self.reload(verify=True)
            except IndexProblem:
                logging.getLogger(__name__).exception("index version %s cannot be opened; still serving the previous one", live)

    def _reload(self, missing_ok: bool, verify: bool = False) -> None:
        try:
            index = open_index(self.index_dir)  # sharded or not
        except IndexNotFound:
            if missing_ok:
                return
            raise
        current = self._snapshot
        if (
            current is not None
            and current.index.version == index.version
            and os.path.realpath(current.index.root) == os.path.realpath(index.root)
        ):
            index.close()
            return
        problems = index.verify() if verify else []
        if problems:
            index.close()
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise IndexCorrupt(
                f"index version {index.path} failed verification: {'; '.join(problems[:5])}{more}; "
                "see `rag verify`, rebuild with `rag ingest --rebuild`"
            )
        try:
            index.check_embedder(self.embedder.model_id, self.embedder.dim)
        except IndexProblem:
            index.close()
            raise
        self._snapshot = Snapshot(index)
        with self._cache_lock:
            self._cache.clear()

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise IndexNotFound(f"no index in {self.index_dir} (build one with `rag ingest`)")
        return snap

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def indexer(self, progress: Progress | None = None) -> Indexer | ShardedIndexer:
        return make_indexer(self.index_dir, self.embedder, self.settings, progress)

    def ingest_documents(
        self, documents: Sequence[Document], *, prune: bool = False, rebuild: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Index documents and switch queries to the new version."""
        with self._write_lock:
            report = self.indexer(progress).ingest(documents, prune=prune, rebuild=rebuild)
            self.reload()
            return report

    def ingest_paths(self, paths: Sequence[Path | str], **kwargs: Any) -> tuple[IngestReport, list[Skipped]]:
        loaded = load_paths(paths, max_file_bytes=self.settings.max_file_bytes)
        return self.ingest_documents(loaded.documents, **kwargs), loaded.skipped

    def remove(self, doc_ids: Sequence[str]) -> IngestReport:
        with self._write_lock:
            report = self.indexer().remove(doc_ids)
            self.reload()
            return report

    # --- queries ---------------------------------------------------------------------------
    def live(self) -> Snapshot:
        """The live snapshot, after picking up a version another process wrote. A caller that
        must report the version it worked on takes it here and passes it on."""
        self.refresh()
        return self.snapshot

    def analyse(self, question: str, *, language: str | None = None, topic: str | None = None) -> Query:
        """``question`` analysed and embedded, ready for ``ask``/``search`` (and reusable across
        systems that share this embedder, as ``rag eval`` does); ``topic``: see ``stages.analyse``."""
        return analyse(question, self.embedder, language, topic=topic)

    def _query(self, question: str | Query, language: str | None) -> Query:
        if isinstance(question, Query):
            return question.embedded(self.embedder)
        return analyse(question, self.embedder, language)

    def rank(self, query: Query, n: int, index: Index) -> list[Passage]:
        """The ``n`` best passages by the retriever, then the reranker: every passage of the list
        carries the last stage's score. The reranker sees at least its ``depth`` candidates, so
        for ``n`` up to the depth the list is a prefix of the same ranking."""
        candidates = self.retriever.retrieve(query, max(n, self.reranker.depth), index)
        return self.reranker.rerank(query, candidates, index)[:n]

    def search(
        self,
        query: str | Query,
        k: int | None = None,
        *,
        language: str | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[Passage]:
        """The ``k`` (default ``top_k``) best passages for ``query``."""
        snap = snapshot or self.live()
        return self.rank(self._query(query, language), k or self.settings.top_k, snap.index)

    def ask(
        self,
        question: str | Query,
        k: int | None = None,
        *,
        language: str | None = None,
        snapshot: Snapshot | None = None,
    ) -> AskResult:
        """Answer ``question`` with a cited extractive span, or abstain. ``k`` (default ``top_k``)
        is the number of passages cited; the answer does not depend on it."""
        snap = snapshot or self.live()
        k = k or self.settings.top_k
        t0 = time.perf_counter()
        query = question if isinstance(question, Query) else analyse(question, None, language)
        key = (snap.index.version, query.cache_key, k)
        cached = self._cache_get(key)
        if cached is not None:
            total = (time.perf_counter() - t0) * 1e3
            return replace(cached, question=query.text, timings_ms={"cache_hit": 1.0, "total": total})

        query = query.embedded(self.embedder)
        t1 = time.perf_counter()
        # The reader reads the top of the reranker's ranking of a fixed pool of candidates, so
        # the answer never depends on how many passages are cited; a longer citation list is
        # ranked on its own (every passage it lists scored by the reranker).
        pool = max(self.reader.context_passages, self.reranker.depth)
        candidates = self.retriever.retrieve(query, max(k, pool), snap.index)
        t2 = time.perf_counter()
        ranked = self.reranker.rerank(query, [replace(p) for p in candidates[:pool]], snap.index)
        cited = ranked[:k] if k <= pool else self.reranker.rerank(query, candidates, snap.index)[:k]
        t3 = time.perf_counter()
        reading = self.reader.read(query, ranked[: self.reader.context_passages], snap.index)
        t4 = time.perf_counter()
        result = AskResult(
            question=query.text,
            language=query.language,
            answerable=reading.answer is not None,
            answer=reading.answer,
            citations=cited,
            timings_ms={
                "embed": (t1 - t0) * 1e3,
                "retrieve": (t2 - t1) * 1e3,
                "rerank": (t3 - t2) * 1e3,
                "answer": (t4 - t3) * 1e3,
                "total": (t4 - t0) * 1e3,
            },
            index_version=snap.index.version,
        )
        self._cache_put(key, result)
        return result

    # --- answer cache: helpdesks see the same questions again and again ---------------------
    def _cache_get(self, key: tuple[Any, ...]) -> AskResult | None:
        if self.settings.cache_size <= 0:
            return None
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple[Any, ...], value: AskResult) -> None:
        if self.settings.cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
