"""SQLite store of documents, chunks and sentences: the source of truth for text and offsets.

Rows are dense integers: chunk row ``i`` is vector ``i`` in FAISS and document ``i`` in BM25;
sentence row ``j`` is row ``j`` of the sentence vectors.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE documents (
    row INTEGER PRIMARY KEY,
    doc_id TEXT UNIQUE NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    source TEXT,
    lang TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,
    doc_row INTEGER NOT NULL REFERENCES documents(row),
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL,
    last_sentence INTEGER NOT NULL,  -- exclusive
    tokens TEXT NOT NULL             -- BM25 tokens, space separated (re-index without re-tokenising)
);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY,
    doc_row INTEGER NOT NULL REFERENCES documents(row),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_row);
CREATE INDEX sentences_doc ON sentences(doc_row);
"""


@dataclass(frozen=True, slots=True)
class DocRow:
    row: int
    doc_id: str
    title: str
    text: str
    url: str | None
    source: str | None
    lang: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class ChunkRow:
    row: int
    doc_row: int
    ordinal: int
    start: int
    end: int
    first_sentence: int
    last_sentence: int
    tokens: str


@dataclass(frozen=True, slots=True)
class SentenceRow:
    row: int
    doc_row: int
    start: int
    end: int


def write_store(
    path: Path,
    documents: Iterable[DocRow],
    chunks: Iterable[ChunkRow],
    sentences: Iterable[SentenceRow],
) -> None:
    """Write a new store file in one transaction (the caller makes it durable)."""
    con = sqlite3.connect(path)
    try:
        con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        with con:
            con.executemany(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
                ((d.row, d.doc_id, d.title, d.text, d.url, d.source, d.lang, d.content_hash) for d in documents),
            )
            con.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                ((c.row, c.doc_row, c.ordinal, c.start, c.end, c.first_sentence, c.last_sentence, c.tokens) for c in chunks),
            )
            con.executemany(
                "INSERT INTO sentences VALUES (?,?,?,?)",
                ((s.row, s.doc_row, s.start, s.end) for s in sentences),
            )
    finally:
        con.close()


class Store:
    """Read-only access to a store file; one connection per thread, opened once."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._connect()  # fail now, not on the first request, if the file is unusable

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def documents(self) -> list[DocRow]:
        rows = self._connect().execute("SELECT * FROM documents ORDER BY row").fetchall()
        return [DocRow(*r) for r in rows]

    def document_meta(self) -> list[tuple[int, str, str, str | None, str, str]]:
        """(row, doc_id, title, url, lang, content_hash) of every document, without the text."""
        sql = "SELECT row, doc_id, title, url, lang, content_hash FROM documents ORDER BY row"
        return self._connect().execute(sql).fetchall()

    def document_text(self, doc_row: int) -> str:
        r = self._connect().execute("SELECT text FROM documents WHERE row = ?", (doc_row,)).fetchone()
        if r is None:
            raise KeyError(doc_row)
        return r[0]

    def chunks(self) -> list[ChunkRow]:
        rows = self._connect().execute("SELECT * FROM chunks ORDER BY row").fetchall()
        return [ChunkRow(*r) for r in rows]

    def sentences(self) -> list[SentenceRow]:
        rows = self._connect().execute("SELECT * FROM sentences ORDER BY row").fetchall()
        return [SentenceRow(*r) for r in rows]

    def integrity_errors(self) -> list[str]:
        r = self._connect().execute("PRAGMA integrity_check").fetchall()
        return [] if r == [("ok",)] else [str(x[0]) for x in r]

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
