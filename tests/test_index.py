"""The on-disk index: manifest, loading, and detection of corrupted or truncated files
(by ``Index.open``, ``Index.verify`` and ``rag verify``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.config import Settings
from rag.index import (
    EmbedderMismatch,
    Index,
    IndexCorrupt,
    IndexNotFound,
    current_version,
    sha256_file,
    version_name,
)


def _flip_byte(path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_manifest_describes_the_version(small_index, small_docs, e5):
    idx = Index.open(small_index)
    m = idx.manifest
    assert idx.version == m["version"] == current_version(small_index) == 1
    assert m["model_id"] == e5.model_id and m["dim"] == e5.dim == 384
    assert m["counts"] == {"documents": 4, "chunks": idx.n_chunks, "sentences": idx.n_sentences}
    assert idx.n_documents == 4 and idx.n_chunks >= 4 and idx.n_sentences == 12
    assert sorted(m["documents"]) == sorted(d.doc_id for d in small_docs)
    # every data file is listed with its real checksum, and nothing else
    files = {str(p.relative_to(idx.path)) for p in idx.path.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(m["files"]) == files
    assert {"store.sqlite", "chunks.npy", "sentences.npy", "dense.faiss", "bm25/n_docs"} <= files
    for name, digest in m["files"].items():
        assert sha256_file(idx.path / name) == digest
    idx.close()


def test_loaded_index_is_consistent(small_index, small_docs):
    idx = Index.open(small_index)
    assert idx.verify() == []
    by_id = {d.doc_id: d for d in small_docs}
    assert [by_id[i].text for i in idx.doc_ids] == idx.texts
    assert [by_id[i].title for i in idx.doc_ids] == idx.titles
    for row in range(idx.n_chunks):
        info = idx.chunk_info(row)
        assert idx.chunk_text(row) == idx.texts[info.doc_row][info.start : info.end]
        for s in range(info.first_sentence, info.last_sentence):
            assert idx.sentence_doc[s] == info.doc_row
    np.testing.assert_allclose(np.linalg.norm(idx.chunk_vectors, axis=1), 1.0, atol=1e-5)
    assert idx.dense.ntotal == idx.n_chunks and idx.bm25.n_docs == idx.n_chunks
    assert idx.size_bytes() > 0
    idx.close()


def test_open_without_index_raises_not_found(tmp_path):
    with pytest.raises(IndexNotFound, match="rag ingest"):
        Index.open(tmp_path / "nothing")


def test_current_pointing_at_garbage_is_corrupt(small_index_copy):
    (small_index_copy / "CURRENT").write_text("latest")
    with pytest.raises(IndexCorrupt, match="CURRENT"):
        Index.open(small_index_copy)


def test_current_pointing_at_a_missing_version_is_corrupt(small_index_copy):
    (small_index_copy / "CURRENT").write_text(version_name(9))
    with pytest.raises(IndexCorrupt, match="manifest"):
        Index.open(small_index_copy)


def test_unsupported_format_version_asks_for_a_rebuild(small_index_copy):
    path = small_index_copy / "v000001" / "manifest.json"
    m = json.loads(path.read_text())
    m["format_version"] = 999
    path.write_text(json.dumps(m))
    with pytest.raises(IndexCorrupt, match="rebuild"):
        Index.open(small_index_copy)


def test_check_embedder_refuses_another_model(small_index):
    idx = Index.open(small_index)
    idx.check_embedder(idx.model_id, idx.dim)
    with pytest.raises(EmbedderMismatch, match="other-model"):
        idx.check_embedder("other-model", idx.dim)
    with pytest.raises(EmbedderMismatch):
        idx.check_embedder(idx.model_id, 768)
    idx.close()


# --- corruption ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chunks.npy", "sentences.npy", "dense.faiss", "store.sqlite"])
def test_flipped_last_byte_is_reported_by_verify(small_index_copy, name):
    # damage that still loads: only the checksums can tell
    _flip_byte(small_index_copy / "v000001" / name)
    idx = Index.open(small_index_copy)
    problems = idx.verify()
    idx.close()
    assert f"checksum mismatch for {name}" in problems


@pytest.mark.parametrize("name", ["chunks.npy", "dense.faiss", "store.sqlite"])
def test_flipped_header_byte_refuses_to_open_naming_the_file(small_index_copy, name):
    _flip_byte(small_index_copy / "v000001" / name, 3)
    with pytest.raises(IndexCorrupt) as info:
        Index.open(small_index_copy)
    assert f"{name} checksum mismatch" in str(info.value)


def test_flipped_vector_byte_is_the_only_problem_reported(small_index_copy):
    _flip_byte(small_index_copy / "v000001" / "chunks.npy")  # a vector component, not the header
    idx = Index.open(small_index_copy)
    assert idx.verify() == ["checksum mismatch for chunks.npy"]
    idx.close()


@pytest.mark.parametrize("name", ["store.sqlite", "dense.faiss", "chunks.npy", "sentences.npy", "bm25/n_docs", "bm25/vocab.index.json"])
def test_truncated_file_refuses_to_open_naming_the_file(small_index_copy, name):
    _truncate(small_index_copy / "v000001" / name)
    with pytest.raises(IndexCorrupt) as info:
        Index.open(small_index_copy)
    assert name in str(info.value)


def test_missing_file_refuses_to_open_naming_the_file(small_index_copy):
    os.remove(small_index_copy / "v000001" / "dense.faiss")
    with pytest.raises(IndexCorrupt, match="dense.faiss"):
        Index.open(small_index_copy)


def test_unexpected_file_is_reported(small_index_copy):
    (small_index_copy / "v000001" / "stray.bin").write_bytes(b"x")
    idx = Index.open(small_index_copy)
    assert idx.verify() == ["unexpected file stray.bin"]
    idx.close()


def test_counts_that_disagree_with_the_manifest_are_inconsistent(small_index_copy):
    path = small_index_copy / "v000001" / "manifest.json"
    m = json.loads(path.read_text())
    m["counts"]["chunks"] += 1
    path.write_text(json.dumps(m))
    with pytest.raises(IndexCorrupt, match="chunks"):
        Index.open(small_index_copy)


# --- rag verify -----------------------------------------------------------------------------------


def test_rag_verify_exit_codes(small_index_copy):
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", "--index", str(small_index_copy)])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.stdout

    _flip_byte(small_index_copy / "v000001" / "chunks.npy")
    bad = runner.invoke(app, ["verify", "--index", str(small_index_copy)])
    assert bad.exit_code == 1
    assert "checksum mismatch for chunks.npy" in bad.stderr


def test_rag_verify_on_a_truncated_store(small_index_copy):
    _truncate(small_index_copy / "v000001" / "store.sqlite")
    result = CliRunner().invoke(app, ["verify", "--index", str(small_index_copy)])
    assert result.exit_code == 1
    assert "store.sqlite" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- FAISS kinds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_faiss_kinds_are_selectable(tmp_path, e5, small_docs, kind):
    from rag.ingest import Indexer
    from rag.pipeline import RAG

    root = tmp_path / "index"
    settings = Settings(index=root, faiss_index=kind)
    Indexer(root, e5, settings).ingest(small_docs)
    idx = Index.open(root)
    assert idx.manifest["faiss_index"] == kind
    assert idx.verify() == []
    idx.close()
    from rag.reranking import NoReranker
    from rag.retrieval import DenseRetriever

    rag = RAG(settings, embedder=e5, retriever=DenseRetriever(), reranker=NoReranker(), allow_uncalibrated=True)
    assert rag.search("متى وصل مسبار الأمل إلى المريخ؟", 1)[0].doc_id == "ar_space"


def test_sentence_languages_are_detected_per_sentence(mixed_index):
    idx = Index.open(mixed_index)
    flags = idx.sentences_arabic(0, idx.n_sentences)
    expected = [idx.sentence_text(r).startswith("Government") is False for r in range(idx.n_sentences)]
    assert flags.tolist() == expected and flags.sum() == idx.n_sentences - 1
    # a later sub-range reads the same cached flags
    assert idx.sentences_arabic(1, 3).tolist() == [True, True]
    idx.close()
