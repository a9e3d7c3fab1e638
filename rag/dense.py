"""Dense vector index over chunk embeddings (FAISS, inner product on unit vectors = cosine).

Exact search (``flat``) for small corpora; ``hnsw`` (graph) or ``ivf`` (inverted lists) for
large ones, where exact search would grow linearly with the corpus.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# HNSW graph degree 32 and efSearch 128 keep recall@10 above ~0.98 on 100k e5 vectors while
# staying sub-millisecond; efConstruction 80 trades a slower build for a better graph.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def choose_kind(kind: str, n: int, threshold: int) -> str:
    """Resolve ``auto`` to an index kind for ``n`` vectors."""
    if kind != "auto":
        return kind
    return "hnsw" if n >= threshold else "flat"


def build(vectors: np.ndarray, kind: str = "flat") -> faiss.Index:
    """A FAISS index over ``vectors`` (rows are L2-normalised float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape if vectors.ndim == 2 else (0, vectors.shape[-1])
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        # ~4*sqrt(n) lists is the usual balance between list length and centroid count.
        nlist = max(1, min(int(4 * np.sqrt(max(n, 1))), max(n // 39, 1)))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    elif kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r} (flat, hnsw, ivf)")
    if n:
        index.add(vectors)
    return index


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    """Read an index, memory-mapped where the index type allows it."""
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def search(index: faiss.Index, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, rows) for one query vector; rows are -1-free."""
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    scores, rows = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, index.ntotal))
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]
