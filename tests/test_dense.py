"""Dense index types: exact flat, and the compressed IVF-PQ (codes memory-mapped, candidates
re-scored with the exact vectors); size estimates per type. Synthetic clustered vectors."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from rag import dense

DIM = 384


def _clustered(n: int, seed: int = 0, noise: float = 0.6) -> np.ndarray:
    """Unit vectors around 20 centres, the way topic clusters look in embedding space."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 20, n)] + noise * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return _clustered(800)


@pytest.fixture(scope="module")
def ivfpq_file(tmp_path_factory, vectors) -> tuple[Path, Path]:
    """An IVF-PQ index saved as a version would store it, next to its exact vectors."""
    d = tmp_path_factory.mktemp("ivfpq")
    dense.save(dense.build(vectors, "ivfpq"), d / "dense.faiss")
    np.save(d / "chunks.npy", vectors)
    return d / "dense.faiss", d / "chunks.npy"


def test_ivfpq_is_chosen_only_when_there_is_enough_to_train():
    assert dense.choose_kind("ivfpq", dense.IVFPQ_MIN_VECTORS - 1, 50_000) == "flat"
    assert dense.choose_kind("ivfpq", dense.IVFPQ_MIN_VECTORS, 50_000) == "ivfpq"
    assert dense.choose_kind("auto", 10, 50_000) == "flat"
    with pytest.raises(ValueError, match="at least 256"):
        dense.build(_clustered(100), "ivfpq")


def test_ivfpq_codes_are_48_bytes_for_384_dims(vectors):
    index = dense.build(vectors, "ivfpq")
    assert isinstance(index, faiss.IndexIVFPQ)
    assert index.pq.M == 48 and index.pq.nbits == 8 and index.code_size == 48
    assert index.ntotal == len(vectors) and 1 <= index.nprobe <= index.nlist


def test_loaded_ivfpq_is_memory_mapped_and_refined(ivfpq_file):
    path, chunks = ivfpq_file
    index = dense.load(path, vectors=np.load(chunks, mmap_mode="r"))
    assert isinstance(index, dense.Refined)
    maps = Path("/proc/self/maps").read_text()
    assert str(path) in maps  # the inverted lists are read through the page cache
    # without the exact vectors it stays a plain FAISS index
    assert isinstance(dense.load(path), faiss.IndexIVFPQ)


def _queries(vectors: np.ndarray, n: int = 50) -> np.ndarray:
    """Questions near indexed passages: perturbed copies of some vectors."""
    rng = np.random.default_rng(1)
    q = vectors[:n] + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_refined_scores_are_exact_cosines_and_recall_is_high(ivfpq_file, vectors):
    path, chunks = ivfpq_file
    refined = dense.load(path, vectors=np.load(chunks, mmap_mode="r"))
    raw = dense.load(path)
    recall, raw_recall = [], []
    for q in _queries(vectors):
        scores, rows = dense.search(refined, q, 10)
        assert len(rows) == 10 and len(set(rows.tolist())) == 10
        np.testing.assert_allclose(scores, vectors[rows] @ q, rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores) <= 1e-7)  # best first
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        recall.append(len(exact & set(rows.tolist())) / 10)
        raw_recall.append(len(exact & set(dense.search(raw, q, 10)[1].tolist())) / 10)
    assert np.mean(recall) >= 0.9, np.mean(recall)
    assert np.mean(recall) > np.mean(raw_recall)  # re-scoring is what makes PQ usable


def test_refined_search_of_more_than_the_index_holds(ivfpq_file):
    path, chunks = ivfpq_file
    index = dense.load(path, vectors=np.load(chunks, mmap_mode="r"))
    _, rows = dense.search(index, _queries(np.load(chunks), 1)[0], index.ntotal + 5)
    assert len(rows) <= index.ntotal and (rows >= 0).all()


def test_index_bytes_per_type():
    n = 1_000_000
    assert dense.index_bytes("flat", n, DIM) == n * DIM * 4
    assert dense.index_bytes("hnsw", n, DIM) > dense.index_bytes("flat", n, DIM)
    per_vector = dense.index_bytes("ivfpq", n, DIM) / n
    assert 56 <= per_vector < 64  # 48 code bytes + 8 id bytes, plus centroids spread over n
    with pytest.raises(ValueError):
        dense.index_bytes("lsh", n, DIM)
