"""Ingestion: incremental updates by content hash, prune/remove, version garbage collection,
and the atomic-write guarantee (an interrupted or killed build leaves the last good index)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index import Index, current_version
from rag.ingest import Indexer, content_hash
from rag.pipeline import RAG
from rag.schema import Document
from rag.testing import RecordingEmbedder

QUESTIONS = [
    "متى وصل مسبار الأمل إلى مدار المريخ؟",
    "How many palm trees are there in the UAE?",
    "When did UNESCO inscribe Arabic coffee?",
]


def _indexer(root: Path, embedder, **settings) -> Indexer:
    return Indexer(root, embedder, Settings(index=root, **settings))


def _behaviour(root: Path, e5) -> list[dict]:
    """What a fresh pipeline over ``root`` answers and cites (timings aside)."""
    rag = RAG(Settings(index=root), embedder=e5)
    out = []
    for q in QUESTIONS:
        d = rag.ask(q).to_dict()
        d.pop("timings_ms")
        out.append(d)
    rag.snapshot.index.close()
    return out


@pytest.fixture(scope="module")
def small_behaviour(small_index, e5) -> list[dict]:
    """How the untouched small index answers ``QUESTIONS``."""
    return _behaviour(small_index, e5)


def _doc_vectors(idx: Index, doc_id: str) -> tuple[bytes, bytes]:
    r = idx.doc_row[doc_id]
    return (
        np.asarray(idx.chunk_vectors[idx.chunk_doc == r]).tobytes(),
        np.asarray(idx.sentence_vectors[idx.sentence_doc == r]).tobytes(),
    )


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("v"))


# --- first build -------------------------------------------------------------------------------


def test_first_build_embeds_every_chunk_and_sentence(tmp_path, e5, small_docs):
    rec = RecordingEmbedder(e5)
    report = _indexer(tmp_path / "index", rec).ingest(small_docs)
    idx = Index.open(tmp_path / "index")
    assert report.version == 1 and report.changed
    assert report.added == [d.doc_id for d in small_docs]
    assert report.embedded_texts == len(rec.passages) == idx.n_chunks + idx.n_sentences
    assert idx.verify() == []
    assert set(idx.hashes.values()) == {content_hash(d) for d in small_docs}
    idx.close()


def test_content_hash_covers_title_text_and_url():
    d = Document("a", "t", "نص")
    assert content_hash(d) == content_hash(Document("a", "t", "نص"))
    assert (
        len(
            {
                content_hash(d),
                content_hash(replace(d, title="x")),
                content_hash(replace(d, text="x")),
                content_hash(replace(d, url="http://x")),
            }
        )
        == 4
    )


# --- incremental -------------------------------------------------------------------------------


def test_unchanged_reingest_writes_nothing(small_index_copy, e5, small_docs):
    rec = RecordingEmbedder(e5)
    report = _indexer(small_index_copy, rec).ingest(small_docs)
    assert not report.changed and report.version == 1
    assert report.embedded_texts == 0 and rec.passages == []
    assert report.unchanged == [d.doc_id for d in small_docs]
    assert current_version(small_index_copy) == 1 and _versions(small_index_copy) == ["v000001"]


def test_changing_one_document_reembeds_only_it(small_index_copy, e5, small_docs):
    old = Index.open(small_index_copy)
    before = {d.doc_id: _doc_vectors(old, d.doc_id) for d in small_docs}
    old.close()

    changed = replace(small_docs[1], text=small_docs[1].text + " وأرسل المسبار أكثر من مليار صورة إلى الأرض.")
    docs = [changed if d.doc_id == changed.doc_id else d for d in small_docs]
    rec = RecordingEmbedder(e5)
    report = _indexer(small_index_copy, rec).ingest(docs)

    assert report.version == 2 and report.updated == [changed.doc_id] and report.added == []
    new = Index.open(small_index_copy)
    r = new.doc_row[changed.doc_id]
    n_changed = int((new.chunk_doc == r).sum() + (new.sentence_doc == r).sum())
    assert report.embedded_texts == len(rec.passages) == n_changed
    assert all(t in changed.text for t in rec.passages)
    for d in small_docs:
        if d.doc_id != changed.doc_id:
            assert _doc_vectors(new, d.doc_id) == before[d.doc_id], d.doc_id
    assert new.texts[r] == changed.text
    assert new.verify() == []
    new.close()


def test_adding_a_document_embeds_only_it(small_index_copy, e5, small_docs):
    extra = Document("en_falcon", "Falconry", "Falconry is a traditional sport in the Emirates. Falcons are trained for hunting.")
    rec = RecordingEmbedder(e5)
    report = _indexer(small_index_copy, rec).ingest([*small_docs, extra])
    assert report.added == ["en_falcon"] and len(report.unchanged) == 4
    assert all(t in extra.text for t in rec.passages) and rec.passages
    idx = Index.open(small_index_copy)
    assert idx.doc_ids[-1] == "en_falcon" and idx.n_documents == 5 and idx.verify() == []
    idx.close()


def test_duplicated_id_in_one_ingest_keeps_the_last(tmp_path, e5):
    docs = [Document("a", "t", "النسخة الأولى."), Document("a", "t", "النسخة الثانية.")]
    _indexer(tmp_path / "index", e5).ingest(docs)
    idx = Index.open(tmp_path / "index")
    assert idx.doc_ids == ["a"] and idx.texts == ["النسخة الثانية."]
    idx.close()


def test_prune_drops_documents_not_given(small_index_copy, e5, small_docs):
    rec = RecordingEmbedder(e5)
    report = _indexer(small_index_copy, rec).ingest(small_docs[:2], prune=True)
    assert sorted(report.removed) == sorted(d.doc_id for d in small_docs[2:])
    assert rec.passages == []
    idx = Index.open(small_index_copy)
    assert idx.doc_ids == [d.doc_id for d in small_docs[:2]]
    assert idx.verify() == []
    idx.close()


def test_without_prune_other_documents_stay(small_index_copy, e5, small_docs):
    report = _indexer(small_index_copy, e5).ingest(small_docs[:1])
    assert not report.changed
    idx = Index.open(small_index_copy)
    assert idx.n_documents == 4
    idx.close()


def test_rebuild_reembeds_everything(small_index_copy, e5, small_docs):
    rec = RecordingEmbedder(e5)
    report = _indexer(small_index_copy, rec).ingest(small_docs, rebuild=True)
    idx = Index.open(small_index_copy)
    assert report.version == 2 and report.embedded_texts == idx.n_chunks + idx.n_sentences
    idx.close()


# --- remove ------------------------------------------------------------------------------------


def test_a_change_of_chunking_chunks_every_document_again_or_is_refused(small_index_copy, e5, small_docs):
    from rag.index import IndexProblem

    # not every indexed document given: they would keep the old chunking under a manifest of the new
    with pytest.raises(IndexProblem, match="chunked with"):
        _indexer(small_index_copy, e5, chunk_tokens=40, chunk_overlap=8).ingest(small_docs[:1])
    assert current_version(small_index_copy) == 1  # nothing written
    # every document given: all chunked again, none "unchanged"
    report = _indexer(small_index_copy, e5, chunk_tokens=40, chunk_overlap=8).ingest(small_docs)
    assert report.unchanged == [] and sorted(report.updated) == sorted(d.doc_id for d in small_docs)
    idx = Index.open(small_index_copy)
    assert idx.manifest["chunking"] == {"tokens": 40, "overlap": 8}
    assert all(e5.token_count(idx.chunk_text(r)) - e5.token_count("") <= 40 for r in range(len(idx.chunk_start)))
    idx.close()


def test_remove_deletes_one_document(small_index_copy, e5, small_docs):
    old = Index.open(small_index_copy)
    kept = {d.doc_id: _doc_vectors(old, d.doc_id) for d in small_docs if d.doc_id != "ar_palms"}
    old.close()
    report = _indexer(small_index_copy, e5).remove(["ar_palms"])
    assert report.removed == ["ar_palms"] and report.version == 2 and report.embedded_texts == 0
    idx = Index.open(small_index_copy)
    assert "ar_palms" not in idx.doc_row and idx.n_documents == 3
    assert {i: _doc_vectors(idx, i) for i in kept} == kept
    assert idx.verify() == []
    idx.close()
    rag = RAG(Settings(index=small_index_copy), embedder=e5)
    assert all(p.doc_id != "ar_palms" for p in rag.search("كم عدد النخيل في الإمارات؟", 10))


def test_remove_unknown_id_raises_and_writes_nothing(small_index_copy, e5):
    before = sorted(p.name for p in small_index_copy.iterdir())
    with pytest.raises(KeyError, match="no_such_doc"):
        _indexer(small_index_copy, e5).remove(["ar_space", "no_such_doc"])
    assert sorted(p.name for p in small_index_copy.iterdir()) == before
    assert current_version(small_index_copy) == 1
    idx = Index.open(small_index_copy)
    assert "ar_space" in idx.doc_row
    idx.close()


def test_remove_from_missing_index_raises(tmp_path, e5):
    with pytest.raises(KeyError):
        _indexer(tmp_path / "index", e5).remove(["a"])


# --- versions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("keep", "expected"), [(1, ["v000004"]), (2, ["v000003", "v000004"])])
def test_old_versions_are_garbage_collected(small_index_copy, e5, small_docs, keep, expected):
    indexer = _indexer(small_index_copy, e5, keep_versions=keep)
    for i in range(3):
        indexer.ingest([Document(f"extra{i}", "t", f"وثيقة إضافية رقم {i}.")])
    assert current_version(small_index_copy) == 4
    assert _versions(small_index_copy) == expected


# --- interrupted builds ---------------------------------------------------------------------------


def _change(small_docs) -> list[Document]:
    return [*small_docs[:3], replace(small_docs[3], text=small_docs[3].text + " Cardamom is added while brewing.")]


# Failing mid-write (store written, BM25 not), before the version is renamed into place, and
# after the rename but before CURRENT switches to it.
@pytest.mark.parametrize("target", ["rag.ingest.BM25Index.build", "os.rename", "os.replace"])
def test_interrupted_build_leaves_the_previous_version_live(small_index_copy, e5, small_docs, small_behaviour, monkeypatch, target):

    def boom(*args, **kwargs):
        raise OSError("disk failure in the middle of writing")

    monkeypatch.setattr(target, boom)
    with pytest.raises(OSError, match="disk failure"):
        _indexer(small_index_copy, e5).ingest(_change(small_docs))
    monkeypatch.undo()

    # the failed write took its files with it (a full disk is not left full), before any rerun
    assert not list(small_index_copy.glob(".tmp-*")) and not (small_index_copy / "v000002").exists()
    assert not (small_index_copy / ".CURRENT.tmp").exists()
    assert current_version(small_index_copy) == 1
    idx = Index.open(small_index_copy)
    assert idx.version == 1 and idx.verify() == []
    idx.close()
    assert _behaviour(small_index_copy, e5) == small_behaviour

    # the next run completes and leaves no half-written leftovers behind
    report = _indexer(small_index_copy, e5).ingest(_change(small_docs))
    assert report.version == 2 and report.updated == ["en_coffee"]
    assert not list(small_index_copy.glob(".tmp-*"))
    idx = Index.open(small_index_copy)
    assert idx.version == 2 and idx.verify() == []
    idx.close()


def test_leftover_tmp_and_unreferenced_version_are_ignored_then_cleaned(small_index_copy, e5, small_docs, small_behaviour):
    junk_tmp = small_index_copy / ".tmp-v000002-99999"
    junk_tmp.mkdir()
    (junk_tmp / "store.sqlite").write_bytes(b"half written")
    junk_version = small_index_copy / "v000002"  # renamed into place, CURRENT never switched
    junk_version.mkdir()
    (junk_version / "manifest.json").write_text("{")

    assert Index.open(small_index_copy).version == 1
    assert _behaviour(small_index_copy, e5) == small_behaviour

    report = _indexer(small_index_copy, e5).ingest(_change(small_docs))
    assert report.version == 2
    assert not junk_tmp.exists()
    idx = Index.open(small_index_copy)
    assert idx.version == 2 and idx.verify() == []
    idx.close()


# A real process, really killed: `rag ingest` of a changed corpus into the small index,
# SIGKILLed after its first embedding batch (batches of 2, so most of the embedding is still
# to come). The hook only prints a marker; the CLI path is unchanged.
_KILLABLE_INGEST = """
import rag.ingest as ingest

_embed = ingest.embed_in_batches

def embed_in_batches(*args, on_batch=None, **kwargs):
    def tick(n):
        if on_batch:
            on_batch(n)
        print("EMBEDDING", flush=True)
    return _embed(*args, on_batch=tick, **kwargs)

ingest.embed_in_batches = embed_in_batches
from rag.cli import app
app()
"""


@pytest.mark.slow  # a rag ingest process, killed
def test_sigkill_during_ingest_leaves_the_index_intact(small_index_copy, e5, small_docs, small_behaviour, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for d in small_docs:  # every document changed: all of them must be re-embedded
        (corpus / f"{d.doc_id}.txt").write_text(f"{d.title}\n\n{d.text} (updated)", encoding="utf-8")
    env = {**os.environ, "RAG_BATCH_SIZE": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_INGEST, "ingest", str(corpus), "--index", str(small_index_copy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        line = ""
        while "EMBEDDING" not in line and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=1):
                line = proc.stdout.readline()
        alive = proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "EMBEDDING" in line and alive, f"ingest never reached embedding: {stderr}"
    assert proc.returncode == -signal.SIGKILL

    assert current_version(small_index_copy) == 1
    assert _versions(small_index_copy) == ["v000001"]
    idx = Index.open(small_index_copy)
    assert idx.verify() == [] and idx.texts == [d.text for d in small_docs]
    idx.close()
    assert _behaviour(small_index_copy, e5) == small_behaviour

    # the killed writer's lock died with it: the next run goes through
    report = _indexer(small_index_copy, e5).ingest(_change(small_docs))
    assert report.version == 2
    assert not list(small_index_copy.glob(".tmp-*"))
