"""The whole question-answering pipeline, read top to bottom:

    question -> embed -> retrieve (dense + BM25, fused) -> answer sentence -> AskResult

``RAG`` owns the embedder and the live index version; the CLI and the HTTP API are thin
shells over it. Each call works on one index snapshot from start to end, so an index update
swapping in a new version mid-request never mixes versions in one answer.
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

from rag.answering import AnswerWeights, answer
from rag.config import Settings, get_settings
from rag.embedding import Embedder, make_embedder
from rag.index import Index, IndexCorrupt, IndexNotFound, IndexProblem
from rag.ingest import Indexer, IngestReport, Progress
from rag.loading import load_paths
from rag.retrieval import FusionWeights, Mode, Retriever
from rag.sharding import ShardedIndexer, live_version, make_indexer, open_index
from rag.schema import AskResult, Document, Passage
from rag.text import detect_language, normalize


@dataclass(frozen=True)
class Snapshot:
    index: Index
    retriever: Retriever


class RAG:
    """Ask and search over the index in ``settings.index`` (or ``index_dir``)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        index_dir: Path | str | None = None,
        embedder: Embedder | None = None,
        fusion: FusionWeights | None = None,
        answering: AnswerWeights | None = None,
    ):
        self.settings = settings or get_settings()
        self.index_dir = Path(index_dir or self.settings.index)
        self.embedder = embedder or make_embedder(self.settings)
        self.fusion = fusion or FusionWeights(k=self.settings.rrf_k)
        self.answering = answering or AnswerWeights()
        self._snapshot: Snapshot | None = None
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._last_check = 0.0
        self._cache: OrderedDict[tuple, AskResult] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.reload(missing_ok=True)

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
            raise IndexCorrupt(f"index version {index.path} failed verification: {'; '.join(problems[:5])}")
        index.check_embedder(self.embedder.model_id, self.embedder.dim)
        self._snapshot = Snapshot(index, Retriever(index, self.fusion, self.settings.candidates))
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

    def ingest_documents(self, documents: Sequence[Document], *, prune: bool = False, rebuild: bool = False, progress: Progress | None = None) -> IngestReport:
        """Index documents and switch queries to the new version."""
        with self._write_lock:
            report = self.indexer(progress).ingest(documents, prune=prune, rebuild=rebuild)
            self.reload()
            return report

    def ingest_paths(self, paths: Sequence[Path | str], **kwargs) -> tuple[IngestReport, list]:
        loaded = load_paths(paths, max_file_bytes=self.settings.max_file_bytes)
        return self.ingest_documents(loaded.documents, **kwargs), loaded.skipped

    def remove(self, doc_ids: Sequence[str]) -> IngestReport:
        with self._write_lock:
            report = self.indexer().remove(doc_ids)
            self.reload()
            return report

    # --- queries ---------------------------------------------------------------------------
    def _snapshot_for(self, snapshot: Snapshot | None) -> Snapshot:
        """The given snapshot (a caller that must know the version it worked on took it), else
        the live one after a refresh."""
        if snapshot is not None:
            return snapshot
        self.refresh()
        return self.snapshot

    def search(
        self, query: str, k: int | None = None, *, language: str | None = None, mode: Mode = "hybrid",
        snapshot: Snapshot | None = None,
    ) -> list[Passage]:
        snap = self._snapshot_for(snapshot)
        lang = language or detect_language(query)
        qvec = self.embedder.embed_queries([query])[0] if mode != "bm25" else None
        return snap.retriever.retrieve(query, qvec, lang, k or self.settings.top_k, mode)

    def ask(
        self, question: str, k: int | None = None, *, language: str | None = None, mode: Mode = "hybrid",
        snapshot: Snapshot | None = None,
    ) -> AskResult:
        """Answer ``question`` with a cited extractive span, or abstain."""
        snap = self._snapshot_for(snapshot)
        k = k or self.settings.top_k
        lang = language or detect_language(question)
        key = (snap.index.version, normalize(" ".join(question.split())), k, lang, mode)
        t0 = time.perf_counter()
        cached = self._cache_get(key)
        if cached is not None:
            total = (time.perf_counter() - t0) * 1e3
            return replace(cached, question=question, timings_ms={"cache_hit": 1.0, "total": total})

        qvec = self.embedder.embed_queries([question])[0]
        t1 = time.perf_counter()
        n = max(k, self.answering.context_passages)
        passages = snap.retriever.retrieve(question, qvec, lang, n, mode)
        t2 = time.perf_counter()
        ans, _, _ = answer(snap.index, question, qvec, passages, self.answering, lang)
        t3 = time.perf_counter()
        result = AskResult(
            question=question,
            language=lang,
            answerable=ans is not None,
            answer=ans,
            citations=passages[:k],
            timings_ms={"embed": (t1 - t0) * 1e3, "retrieve": (t2 - t1) * 1e3, "answer": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3},
            index_version=snap.index.version,
        )
        self._cache_put(key, result)
        return result

    # --- answer cache: helpdesks see the same questions again and again ---------------------
    def _cache_get(self, key: tuple) -> AskResult | None:
        if self.settings.cache_size <= 0:
            return None
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple, value: AskResult) -> None:
        if self.settings.cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
