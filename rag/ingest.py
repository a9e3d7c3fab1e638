"""Ingestion: documents -> chunks + sentences -> vectors -> a new complete index version.

Incremental by content hash: unchanged documents keep their vectors, changed ones are
re-embedded, removed ones dropped. Every run that changes something writes a *new* version
directory aside and then switches ``CURRENT`` to it atomically (see ``rag.index``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rag import dense, lexicon
from rag.chunking import Chunker, document_sentences
from rag.config import Settings
from rag.embedding import Embedder, embed_in_batches
from rag.index import (
    CURRENT,
    FORMAT_VERSION,
    MANIFEST,
    EmbedderMismatch,
    Index,
    IndexCorrupt,
    IndexProblem,
    current_version,
    data_files,
    fsync_dir,
    sha256_file,
    version_name,
)
from rag.lexical import BM25Index
from rag.schema import Document
from rag.store import ChunkRow, DocRow, SentenceRow, write_store
from rag.text import detect_language, tokenize

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def content_hash(doc: Document) -> str:
    h = hashlib.sha256()
    for part in (doc.title, doc.text, doc.url or ""):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class IngestReport:
    """What an ingest (or removal) did."""

    version: int | None
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    embedded_texts: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class PreparedChunk(NamedTuple):
    """A chunk of a prepared document; sentence numbers count within the document."""

    ordinal: int
    start: int
    end: int
    first_sentence: int
    last_sentence: int  # exclusive
    tokens: str  # BM25 tokens, space separated


@dataclass
class Prepared:
    """One document ready to be written: chunks, sentences and (once embedded) vectors.

    This is the hand-over between "prepare + embed" (here in one process, or spread over a
    cluster by ``rag.distributed``) and "write a version" (always ``Indexer``), so every
    engine produces the same on-disk index. Documents an update keeps come from the old
    version the same way (``from_index``), vectors included.
    """

    doc: Document
    lang: str
    hash: str
    chunks: list[PreparedChunk]
    sentences: list[tuple[int, int]]  # (start, end) in the document text
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None

    def texts(self) -> list[str]:
        """What gets embedded, in vector order: the chunks, then the sentences."""
        return [self.doc.text[c.start : c.end] for c in self.chunks] + [self.doc.text[s:e] for s, e in self.sentences]

    @classmethod
    def from_index(cls, idx: Index, doc_id: str) -> Prepared:
        """A document's chunks, sentences and vectors as stored in ``idx`` (no re-embedding)."""
        r = idx.doc_row[doc_id]
        c_rows, s_rows = idx.document_rows(r)
        s0 = int(np.searchsorted(idx.sentence_doc, r, "left"))  # the document's first sentence row
        chunks = [
            PreparedChunk(
                int(idx.chunk_ordinal[j]),
                int(idx.chunk_start[j]),
                int(idx.chunk_end[j]),
                int(idx.chunk_first_sentence[j]) - s0,
                int(idx.chunk_last_sentence[j]) - s0,
                idx.chunk_tokens[j],
            )
            for j in c_rows
        ]
        sentences = [(int(idx.sentence_start[j]), int(idx.sentence_end[j])) for j in s_rows]
        doc = Document(doc_id, idx.titles[r], idx.texts[r], idx.urls[r], idx.sources[r])
        p = cls(doc, idx.langs[r], idx.hashes[doc_id], chunks, sentences)
        p.chunk_vectors = np.asarray(idx.chunk_vectors[c_rows], np.float32)
        p.sentence_vectors = np.asarray(idx.sentence_vectors[s_rows], np.float32)
        return p

    def set_vectors(self, vectors: np.ndarray) -> None:
        """Split the vectors of ``texts()`` into chunk and sentence vectors."""
        n = len(self.chunks)
        self.chunk_vectors, self.sentence_vectors = vectors[:n], vectors[n:]


# Prepares and embeds fresh (document, content hash) pairs, in any order; may record stage
# timings. ``Indexer.prepare`` is the single-process one, ``rag.distributed`` a Ray one.
Preparer = Callable[[list[tuple[Document, str]], dict[str, float]], list[Prepared]]


def chunking_record(settings: Settings) -> dict[str, int]:
    """How chunks are cut, as a manifest records it: documents chunked another way are chunked again."""
    return {"tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap}


def prepare_document(doc: Document, h: str, chunker: Chunker) -> Prepared:
    """Sentences and chunks of one document (no vectors yet); the only chunking code path."""
    sentences = document_sentences(doc)
    index_of = {(s.start, s.end): i for i, s in enumerate(sentences)}
    chunks = []
    for c in chunker.split(doc, sentences):
        ids = [index_of[(s.start, s.end)] for s in c.sentences]
        first, last = (ids[0], ids[-1] + 1) if ids else (0, 0)
        chunks.append(PreparedChunk(c.ordinal, c.start, c.end, first, last, " ".join(tokenize(c.text))))
    return Prepared(doc, detect_language(doc.text), h, chunks, [(s.start, s.end) for s in sentences])


@contextmanager
def writer_lock(root: Path):
    """One writer at a time per index directory (across processes)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def clean_stale_temporaries(root: Path) -> list[str]:
    """Remove what killed writers left in ``root`` (``.tmp-v*`` version directories, a half-written
    ``CURRENT`` pointer) and in its shard directories; return the names removed.

    Safe beside writers in other processes: it runs only when it gets the writer lock at once
    (non-blocking); a live writer holds that lock for its whole write, so a temporary found then
    belongs to a writer that is gone. Busy, missing or read-only index directories are left alone.
    """
    roots = [root, *sorted(p for p in root.glob("shard-*-of-*") if p.is_dir())] if root.is_dir() else []
    removed: list[str] = []
    for r in roots:
        try:
            fh = open(r / ".lock", "a+")  # noqa: SIM115 - held across the cleanup below
        except OSError:
            continue  # read-only index: nothing we could remove anyway
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a writer is at work: its temporaries are live
            try:
                for tmp in dict.fromkeys([*r.glob(".tmp-*"), *r.glob(f".{CURRENT}.tmp"), *r.glob(".*.tmp-*")]):
                    if tmp.is_dir() and not tmp.is_symlink():
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        tmp.unlink(missing_ok=True)
                    removed.append(str(tmp.relative_to(root)))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    if removed:
        log.warning("removed %d leftovers of interrupted index writes in %s: %s", len(removed), root, ", ".join(removed))
    return removed


class Indexer:
    """Builds and updates the index under ``root`` with one embedder."""

    def __init__(
        self,
        root: Path | str,
        embedder: Embedder,
        settings: Settings,
        progress: Progress | None = None,
        known_words: lexicon.Lexicon | None = None,
    ):
        self.root = Path(root)
        self.embedder = embedder
        self.settings = settings
        # word vectors to reuse when there is no previous version here (a re-shard's sources)
        self.known_words = known_words
        self.progress = progress or (lambda stage, done, total: None)
        self.chunker = Chunker(embedder.token_count, settings.chunk_tokens, settings.chunk_overlap)

    # --- public --------------------------------------------------------------------------
    def ingest(
        self, documents: Sequence[Document], *, prune: bool = False, rebuild: bool = False, prepare: Preparer | None = None
    ) -> IngestReport:
        """Add or update ``documents``; with ``prune``, drop indexed documents not among them.

        ``prepare`` chunks and embeds the new and changed documents (default: ``self.prepare``,
        in this process); the diff, the version layout and the atomic switch stay here.
        """
        with writer_lock(self.root):
            old = self._open_old(rebuild)
            incoming = {d.doc_id: d for d in documents}  # the last one of a duplicated id wins
            removed = [i for i in (old.doc_ids if old else []) if prune and i not in incoming]
            return self._write(old, list(incoming.values()), removed, prepare or self.prepare)

    def prepare(self, items: list[tuple[Document, str]], timings: dict[str, float]) -> list[Prepared]:
        """Chunk and embed fresh documents in this process (the default ``Preparer``)."""
        t0 = time.perf_counter()
        prepared = [prepare_document(doc, h, self.chunker) for doc, h in items]
        t1 = time.perf_counter()
        self._embed(prepared)
        timings["chunk"], timings["embed"] = t1 - t0, time.perf_counter() - t1
        return prepared

    def remove(self, doc_ids: Iterable[str]) -> IngestReport:
        """Delete documents; unknown ids raise ``KeyError`` and nothing is written."""
        with writer_lock(self.root):
            old = self._open_old(False)
            ids = list(dict.fromkeys(doc_ids))
            missing = [i for i in ids if old is None or i not in old.doc_row]
            if missing:
                raise KeyError(", ".join(missing))
            return self._write(old, [], ids, self.prepare)

    # --- internals -----------------------------------------------------------------------
    def _open_old(self, rebuild: bool) -> Index | None:
        if rebuild or current_version(self.root) is None:
            return None
        old = Index.open(self.root)
        try:
            old.check_embedder(self.embedder.model_id, self.embedder.dim)
            # Unchanged documents keep the old version's rows and vectors: copying them from a
            # damaged file would carry the damage into a new version with valid checksums.
            problems = old.verify()
            if problems:
                raise IndexCorrupt(
                    f"the live index version {old.path} is damaged ({'; '.join(problems[:5])}); "
                    "an update would copy the damage: rebuild with `rag ingest --rebuild`"
                )
        except (EmbedderMismatch, IndexCorrupt):
            old.close()
            raise
        return old

    def _write(self, old: Index | None, documents: list[Document], removed: list[str], prepare: Preparer) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport(version=old.version if old else None, removed=list(removed))
        todo: list[tuple[Document, str]] = []
        # A document is unchanged only if it was chunked as it would be now: after a change of
        # RAG_CHUNK_TOKENS/OVERLAP every document is chunked again (as the sharded writer does),
        # else the manifest would claim one chunking over chunks of two.
        chunking = chunking_record(self.settings)
        recorded = old.manifest.get("chunking") if old is not None else None
        same_chunking = old is not None and recorded in (None, chunking)  # None: a manifest that predates the record
        if old is not None and not same_chunking:
            given = {d.doc_id for d in documents} | set(removed)
            kept = [i for i in old.doc_ids if i not in given]
            if kept:
                old.close()
                raise IndexProblem(
                    f"the index was chunked with {recorded}, the settings say {chunking}: give every "
                    f"document again with --rebuild (or --prune), or set RAG_CHUNK_TOKENS/RAG_CHUNK_OVERLAP back "
                    f"({len(kept)} indexed documents were not given, e.g. {kept[0]!r})"
                )
        for doc in documents:
            h = content_hash(doc)
            if old is not None and same_chunking and old.hashes.get(doc.doc_id) == h:
                report.unchanged.append(doc.doc_id)
                continue
            (report.updated if old is not None and doc.doc_id in old.doc_row else report.added).append(doc.doc_id)
            todo.append((doc, h))
        if not report.changed and old is not None:
            old.close()
            report.timings_s["total"] = time.perf_counter() - t0
            return report

        by_id = {p.doc.doc_id: p for p in prepare(todo, report.timings_s)}
        fresh = {doc.doc_id: by_id[doc.doc_id] for doc, _ in todo}  # input order, whatever order came back
        report.embedded_texts = sum(len(p.chunks) + len(p.sentences) for p in fresh.values())

        t2 = time.perf_counter()
        order: list[str] = [i for i in (old.doc_ids if old else []) if i not in removed]
        order += [i for i in fresh if i not in (old.doc_row if old else {})]
        version = (old.version if old else self._last_version()) + 1
        self._write_version(version, order, fresh, old)
        report.version = version
        report.timings_s["write"] = time.perf_counter() - t2
        if old is not None:
            old.close()
        self._collect_garbage(version)
        report.timings_s["total"] = time.perf_counter() - t0
        return report

    def _embed(self, prepared: list[Prepared]) -> int:
        texts = [t for p in prepared for t in p.texts()]
        total = len(texts)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.progress("embed", done, total)

        self.progress("embed", 0, total)
        vectors = embed_in_batches(
            self.embedder.embed_passages, texts, self.embedder.dim, batch_size=self.settings.batch_size, on_batch=tick
        )
        i = 0
        for p in prepared:
            n = len(p.chunks) + len(p.sentences)
            p.set_vectors(vectors[i : i + n])
            i += n
        return total

    def _last_version(self) -> int:
        versions = [int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()]
        return max(versions, default=0)

    def _write_version(self, version: int, order: list[str], fresh: dict[str, Prepared], old: Index | None) -> None:
        docs: list[DocRow] = []
        chunks: list[ChunkRow] = []
        sentences: list[SentenceRow] = []
        chunk_vecs: list[np.ndarray] = []
        sent_vecs: list[np.ndarray] = []
        for doc_row, doc_id in enumerate(order):
            assert old is not None or doc_id in fresh
            # a kept document's rows and vectors come from the old version, unchanged
            p = fresh[doc_id] if doc_id in fresh else Prepared.from_index(old, doc_id)  # type: ignore[arg-type]
            s_base, c_base = len(sentences), len(chunks)
            d = p.doc
            docs.append(DocRow(doc_row, d.doc_id, d.title, d.text, d.url, d.source, p.lang, p.hash))
            sentences += [SentenceRow(s_base + i, doc_row, s, e) for i, (s, e) in enumerate(p.sentences)]
            chunks += [
                ChunkRow(c_base + i, doc_row, c.ordinal, c.start, c.end, s_base + c.first_sentence, s_base + c.last_sentence, c.tokens)
                for i, c in enumerate(p.chunks)
            ]
            assert p.chunk_vectors is not None and p.sentence_vectors is not None, f"{doc_id} was not embedded"
            chunk_vecs.append(p.chunk_vectors)
            sent_vecs.append(p.sentence_vectors)

        dim = self.embedder.dim
        cv = np.concatenate(chunk_vecs) if chunk_vecs else np.zeros((0, dim), np.float32)
        sv = np.concatenate(sent_vecs) if sent_vecs else np.zeros((0, dim), np.float32)
        kind = dense.choose_kind(self.settings.faiss_index, len(cv), self.settings.ann_threshold)

        tmp = self.root / f".tmp-{version_name(version)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        final = self.root / version_name(version)
        pointer = self.root / f".{CURRENT}.tmp"
        switched = False
        try:
            tmp.mkdir(parents=True)
            write_store(tmp / "store.sqlite", docs, chunks, sentences)
            np.save(tmp / "chunks.npy", cv.astype(np.float32))
            np.save(tmp / "sentences.npy", sv.astype(np.float32))
            dense.save(dense.build(cv, kind), tmp / "dense.faiss")
            BM25Index.build([c.tokens.split() for c in chunks]).save(tmp / "bm25")
            if self.settings.lexicon_words:
                previous = old.lexicon if old is not None and old.lexicon is not None else self.known_words
                words = partial(self.progress, "words")  # the progress bar's second stage
                lex = lexicon.build((d.text for d in docs), self.embedder, previous, self.settings.lexicon_words, words)
                if lex is not None:
                    lex.save(tmp)
            files = data_files(tmp)
            manifest = {
                "format_version": FORMAT_VERSION,
                "version": version,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "model_id": self.embedder.model_id,
                "dim": dim,
                "faiss_index": kind,
                "chunking": chunking_record(self.settings),
                "counts": {"documents": len(docs), "chunks": len(chunks), "sentences": len(sentences)},
                "documents": {d.doc_id: d.content_hash for d in docs},
                "files": {str(f.relative_to(tmp)): sha256_file(f) for f in files},
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
            for f in [*files, tmp / MANIFEST]:
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
            for directory in {f.parent for f in files} | {tmp}:
                fsync_dir(directory)
            shutil.rmtree(final, ignore_errors=True)  # a leftover of a crashed run, never live
            os.rename(tmp, final)
            fsync_dir(self.root)
            with open(pointer, "w") as fh:
                fh.write(version_name(version))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(pointer, self.root / CURRENT)
            switched = True
            fsync_dir(self.root)
        except BaseException:
            # A write that failed (a full disk, a read-only folder) takes its files with it, so a
            # full disk is not left full; the live version is the one CURRENT named before.
            shutil.rmtree(tmp, ignore_errors=True)
            pointer.unlink(missing_ok=True)
            if not switched:
                shutil.rmtree(final, ignore_errors=True)
            raise
        log.info("index version %s written: %d documents, %d chunks", version, len(docs), len(chunks))

    def _collect_garbage(self, live: int) -> None:
        """Drop old versions beyond ``keep_versions`` and leftovers of crashed writers."""
        keep = max(self.settings.keep_versions, 1)
        versions = sorted(int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit())
        for v in versions:
            if v > live or v <= live - keep:
                shutil.rmtree(self.root / version_name(v), ignore_errors=True)
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
