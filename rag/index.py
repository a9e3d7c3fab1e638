"""The on-disk index and its read side.

Layout of an index directory::

    index/
      CURRENT            name of the live version ("v000003"), replaced atomically
      v000003/           one immutable, complete version
        manifest.json    format, model id and dims, counts, sha256 of every file
        store.sqlite     documents, chunks, sentences (text and offsets)
        chunks.npy       chunk vectors (row i = chunk row i)
        sentences.npy    sentence vectors (row j = sentence row j)
        dense.faiss      FAISS index over chunks.npy
        bm25/            BM25 over the chunks' tokens
      .lock              held by writers (one ingest at a time)

A version is written aside, fsynced and renamed into place before ``CURRENT`` moves to it,
so readers only ever see complete versions and a crash mid-write leaves the last good one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag import dense
from rag.checksum import sha256_file
from rag.lexical import BM25Index, LexicalIndex
from rag.lexicon import Lexicon
from rag.store import Store
from rag.text import detect_language

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"


class IndexProblem(RuntimeError):
    """Base for index problems users should see as a clear message."""


class IndexNotFound(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class EmbedderMismatch(IndexProblem):
    pass


def version_name(version: int) -> str:
    return f"v{version:06d}"


def current_version(root: Path) -> int | None:
    """The live version number, or None when the directory holds no index."""
    try:
        raw = (root / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    name = raw.decode("utf-8", "replace").strip()
    if not name.startswith("v") or not name[1:].isascii() or not name[1:].isdigit():
        raise IndexCorrupt(f"{root / CURRENT} does not name a version: {name!r}")
    return int(name[1:])


def data_files(version_dir: Path) -> list[Path]:
    """Every file of a version except the manifest, in a stable order."""
    return sorted(p for p in version_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    row: int
    doc_row: int
    doc_id: str
    ordinal: int
    start: int
    end: int
    first_sentence: int
    last_sentence: int


class Index:
    """One opened, immutable index version: everything a query needs, loaded once."""

    def __init__(self, root: Path, version: int):
        self.root = root
        self.version = version
        self.path = root / version_name(version)
        try:
            self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_bytes())
        except FileNotFoundError as exc:
            raise IndexCorrupt(f"{self.path} has no {MANIFEST} (the version {root / CURRENT} names is missing or incomplete)") from exc
        except ValueError as exc:  # JSON syntax, or bytes that are not UTF-8
            raise IndexCorrupt(f"{self.path / MANIFEST} is not valid JSON: {exc}") from exc
        if not isinstance(self.manifest, dict):
            raise IndexCorrupt(f"{self.path / MANIFEST} is not a JSON object")
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexCorrupt(
                f"index format {self.manifest.get('format_version')} is not supported "
                f"(this version reads format {FORMAT_VERSION}); rebuild with `rag ingest --rebuild`"
            )
        try:
            self._load()
        except (OSError, ValueError, RuntimeError, KeyError, sqlite3.Error) as exc:
            raise IndexCorrupt(f"index version {self.path} cannot be read ({self._damaged_files()}): {exc}") from exc
        problems = self.consistency_errors()
        if problems:
            raise IndexCorrupt(f"index version {self.path} is inconsistent ({self._damaged_files()}): " + "; ".join(problems[:5]))

    def _damaged_files(self) -> str:
        """Which files differ from the manifest's checksums (only computed when opening fails),
        so the error names the file to look at rather than just the version."""
        damaged = []
        for name, digest in self.manifest.get("files", {}).items():
            f = self.path / name
            if not f.is_file():
                damaged.append(f"{name} missing")
            elif sha256_file(f) != digest:
                damaged.append(f"{name} checksum mismatch")
        return ", ".join(damaged) or "all checksums match"

    @classmethod
    def open(cls, root: Path | str) -> Index:
        root = Path(root)
        version = current_version(root)
        if version is None:
            raise IndexNotFound(f"no index in {root} (build one with `rag ingest`)")
        return cls(root, version)

    def _load(self) -> None:
        p = self.path
        self.store = Store(p / "store.sqlite")
        docs = self.store.documents()
        self.doc_ids = [d.doc_id for d in docs]
        self.titles = [d.title for d in docs]
        self.urls = [d.url for d in docs]
        self.sources = [d.source for d in docs]
        self.langs = [d.lang for d in docs]
        self.hashes = {d.doc_id: d.content_hash for d in docs}
        self.texts = [d.text for d in docs]
        self.doc_row = {d.doc_id: d.row for d in docs}
        chunks = self.store.chunks()
        self.chunk_doc = np.array([c.doc_row for c in chunks], np.int64)
        self.chunk_ordinal = np.array([c.ordinal for c in chunks], np.int64)
        self.chunk_start = np.array([c.start for c in chunks], np.int64)
        self.chunk_end = np.array([c.end for c in chunks], np.int64)
        self.chunk_first_sentence = np.array([c.first_sentence for c in chunks], np.int64)
        self.chunk_last_sentence = np.array([c.last_sentence for c in chunks], np.int64)
        self.chunk_tokens = [c.tokens for c in chunks]
        sentences = self.store.sentences()
        self.sentence_doc = np.array([s.doc_row for s in sentences], np.int64)
        self.sentence_start = np.array([s.start for s in sentences], np.int64)
        self.sentence_end = np.array([s.end for s in sentences], np.int64)
        self._idf: tuple[dict[str, float], float] | None = None
        self.chunk_vectors = np.load(p / "chunks.npy", mmap_mode="r")
        self.sentence_vectors = np.load(p / "sentences.npy", mmap_mode="r")
        self.dense: dense.DenseIndex = dense.load(p / "dense.faiss", vectors=self.chunk_vectors)  # exact re-scoring for ivfpq
        self.bm25: LexicalIndex = BM25Index.load(p / "bm25")
        self.lexicon: Lexicon | None = Lexicon.load(p, self.manifest["model_id"])  # English questions' Arabic BM25 terms

    # --- identity ------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def n_documents(self) -> int:
        return len(self.doc_ids)

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_doc)

    @property
    def n_sentences(self) -> int:
        return len(self.sentence_doc)

    def check_embedder(self, model_id: str, dim: int) -> None:
        """Refuse to query this index with vectors from another model."""
        if model_id != self.model_id or dim != self.dim:
            raise EmbedderMismatch(
                f"index {self.path} was built with {self.model_id} ({self.dim} dims) but the "
                f"configured embedder is {model_id} ({dim} dims); use the same embedder or "
                "rebuild with `rag ingest --rebuild`"
            )

    # --- text access ---------------------------------------------------------------------
    def chunk_text(self, row: int) -> str:
        return self.texts[self.chunk_doc[row]][self.chunk_start[row] : self.chunk_end[row]]

    def sentence_text(self, row: int) -> str:
        return self.texts[self.sentence_doc[row]][self.sentence_start[row] : self.sentence_end[row]]

    def sentences_arabic(self, first: int, last: int) -> np.ndarray:
        """Whether each sentence in ``[first, last)`` is mostly Arabic, detected on first use
        and kept (an int8 per sentence): the answer stage calibrates cosines by language."""
        langs = getattr(self, "_sentence_arabic", None)  # -1: not detected yet
        if langs is None or len(langs) != self.n_sentences:
            langs = self._sentence_arabic = np.full(self.n_sentences, -1, np.int8)
        part = langs[first:last]
        for i in np.flatnonzero(part < 0).tolist():
            part[i] = detect_language(self.sentence_text(first + i)) == "ar"
        return part.astype(bool)

    def document_rows(self, doc_row: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk rows, sentence rows) of document row ``doc_row``: a writer appends each
        document's chunks and sentences together, in document order, so each is one contiguous
        run, found by binary search."""

        def run(rows_doc: np.ndarray) -> np.ndarray:
            return np.arange(np.searchsorted(rows_doc, doc_row, "left"), np.searchsorted(rows_doc, doc_row, "right"))

        return run(self.chunk_doc), run(self.sentence_doc)

    def chunk_info(self, row: int) -> ChunkInfo:
        d = int(self.chunk_doc[row])
        return ChunkInfo(
            row,
            d,
            self.doc_ids[d],
            int(self.chunk_ordinal[row]),
            int(self.chunk_start[row]),
            int(self.chunk_end[row]),
            int(self.chunk_first_sentence[row]),
            int(self.chunk_last_sentence[row]),
        )

    def idf(self) -> tuple[dict[str, float], float]:
        """The BM25 index's IDF of every token over the chunks (computed once per version), and
        the IDF an unseen token gets."""
        if self._idf is None:
            n = max(self.n_chunks, 1)
            df = self.bm25.document_frequencies()
            self._idf = ({t: BM25Index.idf(f, n) for t, f in df.items()}, BM25Index.idf(0, n))
        return self._idf

    # --- verification --------------------------------------------------------------------
    def consistency_errors(self) -> list[str]:
        """Cheap structural checks run on every open."""
        errs: list[str] = []
        n, m = self.n_chunks, self.n_sentences
        counts = self.manifest.get("counts", {})
        if counts.get("documents") != self.n_documents:
            errs.append(f"manifest says {counts.get('documents')} documents, store has {self.n_documents}")
        if counts.get("chunks") != n:
            errs.append(f"manifest says {counts.get('chunks')} chunks, store has {n}")
        if counts.get("sentences") != m:
            errs.append(f"manifest says {counts.get('sentences')} sentences, store has {m}")
        if self.chunk_vectors.shape != (n, self.dim):
            errs.append(f"chunk vectors have shape {self.chunk_vectors.shape}, expected {(n, self.dim)}")
        if self.sentence_vectors.shape != (m, self.dim):
            errs.append(f"sentence vectors have shape {self.sentence_vectors.shape}, expected {(m, self.dim)}")
        if self.dense.ntotal != n:
            errs.append(f"FAISS holds {self.dense.ntotal} vectors for {n} chunks")
        if self.bm25.n_docs != n:
            errs.append(f"BM25 holds {self.bm25.n_docs} rows for {n} chunks")
        if self.lexicon is not None and self.lexicon.dim != self.dim:
            errs.append(f"lexicon vectors have {self.lexicon.dim} dimensions, expected {self.dim}")
        return errs

    def verify(self) -> list[str]:
        """Full check: file checksums, SQLite integrity, counts, offsets. Empty list = healthy."""
        errs: list[str] = []
        expected = self.manifest.get("files", {})
        present = {str(f.relative_to(self.path)): f for f in data_files(self.path)}
        for name, digest in expected.items():
            f = present.get(name)
            if f is None:
                errs.append(f"missing file {name}")
            elif sha256_file(f) != digest:
                errs.append(f"checksum mismatch for {name}")
        for name in sorted(set(present) - set(expected)):
            errs.append(f"unexpected file {name}")
        errs += [f"sqlite: {e}" for e in self.store.integrity_errors()]
        errs += self.consistency_errors()
        lengths = np.array([len(t) for t in self.texts], np.int64)
        if self.n_chunks:
            bad = np.flatnonzero((self.chunk_start < 0) | (self.chunk_end > lengths[self.chunk_doc]) | (self.chunk_start >= self.chunk_end))
            errs += [f"chunk row {r} ({self.doc_ids[self.chunk_doc[r]]}) has offsets outside its document" for r in bad[:10]]
            bad_s = np.flatnonzero(
                (self.chunk_first_sentence < 0)
                | (self.chunk_last_sentence > self.n_sentences)
                | (self.chunk_first_sentence > self.chunk_last_sentence)
            )
            errs += [f"chunk row {r} points at sentences outside the table" for r in bad_s[:10]]
            empty = [r for r, t in enumerate(self.chunk_tokens) if t is None]
            errs += [f"chunk row {r} has no BM25 tokens" for r in empty[:10]]
        if self.n_sentences:
            bad = np.flatnonzero(
                (self.sentence_start < 0) | (self.sentence_end > lengths[self.sentence_doc]) | (self.sentence_start >= self.sentence_end)
            )
            errs += [f"sentence row {r} has offsets outside its document" for r in bad[:10]]
        if self.n_chunks and not np.all(np.isfinite(np.asarray(self.chunk_vectors))):
            errs.append("chunk vectors contain NaN or infinity")
        return errs

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in data_files(self.path)) + (self.path / MANIFEST).stat().st_size

    def close(self) -> None:
        self.store.close()
