"""SQLite store: what is written is read back row for row, read-only, integrity checked."""

from __future__ import annotations

import sqlite3

import pytest

from rag.store import ChunkRow, DocRow, SentenceRow, Store, write_store

AR_TEXT = "تُعقد القمة في دبي. ويشارك فيها 4000 مسؤول."
EN_TEXT = "The summit is held in Dubai."

DOCS = [
    DocRow(0, "ar_doc", "القمة", AR_TEXT, None, "corpus/ar_doc.txt", "ar", "h1"),
    DocRow(1, "en_doc", "Summit", EN_TEXT, "https://example.org/s", None, "en", "h2"),
]
SENTENCES = [SentenceRow(0, 0, 0, 19), SentenceRow(1, 0, 20, len(AR_TEXT)), SentenceRow(2, 1, 0, len(EN_TEXT))]
CHUNKS = [
    ChunkRow(0, 0, 0, 0, len(AR_TEXT), 0, 2, "قم دبي 4000 مسوول"),
    ChunkRow(1, 1, 0, 0, len(EN_TEXT), 2, 3, "summit held dubai"),
]


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "store.sqlite"
    write_store(path, DOCS, CHUNKS, SENTENCES)
    s = Store(path)
    yield s
    s.close()


def test_rows_read_back_exactly(store):
    assert store.documents() == DOCS
    assert store.chunks() == CHUNKS
    assert store.sentences() == SENTENCES
    by_id = {d.doc_id: d for d in store.documents()}
    assert by_id.get("en_doc") == DOCS[1]
    assert by_id.get("missing") is None
    assert store.document_text(0) == AR_TEXT
    assert [m[:3] for m in store.document_meta()] == [(0, "ar_doc", "القمة"), (1, "en_doc", "Summit")]


def test_offsets_slice_the_stored_text(store):
    texts = {d.row: d.text for d in store.documents()}
    assert [texts[s.doc_row][s.start : s.end] for s in store.sentences()] == [
        "تُعقد القمة في دبي.",
        "ويشارك فيها 4000 مسؤول.",
        EN_TEXT,
    ]


def test_document_text_unknown_row_raises(store):
    with pytest.raises(KeyError):
        store.document_text(7)


def test_store_is_read_only(store):
    with pytest.raises(sqlite3.OperationalError):
        store._connect().execute("DELETE FROM documents")


def test_integrity_check_passes_on_a_fresh_store(store):
    assert store.integrity_errors() == []


def test_duplicate_doc_id_is_rejected(tmp_path):
    d = DOCS[0]
    twin = DocRow(1, d.doc_id, d.title, d.text, d.url, d.source, d.lang, d.content_hash)
    with pytest.raises(sqlite3.IntegrityError):
        write_store(tmp_path / "s.sqlite", [d, twin], [], [])


def test_opening_a_file_that_is_not_a_database_fails(tmp_path):
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Store(path).documents()


def test_each_thread_gets_its_own_connection(store):
    import threading

    seen = []

    def read():
        seen.append(len(store.documents()))
        store.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2, 2, 2, 2]
    assert len(store.documents()) == 2  # this thread's connection is untouched
