"""Dense vector index over chunk embeddings (FAISS, inner product on unit vectors = cosine).

Exact search (``flat``) for small corpora; ``hnsw`` (graph) or ``ivf`` (inverted lists) for
large ones, where exact search would grow linearly with the corpus; ``ivfpq`` (inverted lists
of product-quantised codes, 56 bytes a vector instead of 1536) for corpora whose vectors do
not fit in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

# HNSW graph degree 32 and efSearch 128 keep recall@10 above ~0.98 on 100k e5 vectors while
# staying sub-millisecond; efConstruction 80 trades a slower build for a better graph.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# IVF-PQ: 8 dimensions per sub-quantiser (m = 48 one-byte codes for 384 dims) keeps recall
# usable for e5-small; 8 bits = 256 centroids per sub-space, the size FAISS's fast
# lookup tables assume. Training the sub-quantisers wants ~39 vectors per centroid, so
# smaller indexes stay exact (they are small enough not to need compression anyway).
PQ_DIMS_PER_CODE = 8
PQ_BITS = 8
IVFPQ_MIN_VECTORS = 39 * 2**PQ_BITS
# Compressed search takes this many times more candidates and re-scores them with the exact
# vectors (memory-mapped chunks.npy): PQ distances alone put only about half of the true
# top 10 in their top 10, and the fused ranking needs the dense ranks to be right.
REFINE_FACTOR = 4

# FAISS splits even a single query's scan over its OpenMP threads. Queries arrive one per
# request thread, so that split only adds wake-ups and steals the cores concurrent requests
# need: a flat search over 100k vectors took 185-258 ms at p50 with 2 threads on 2 busy cores
# and 37 ms with 1 (eval/PERFORMANCE.md). libgomp keeps the thread count per calling thread,
# so ``search`` sets it on every call; ``build`` puts back the count FAISS started with.
_BUILD_THREADS = faiss.omp_get_max_threads()


class DenseIndex(Protocol):
    """What queries need of a dense index: a FAISS index, ``Refined`` or a sharded index's
    ``ShardedDense``."""

    @property
    def ntotal(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def choose_kind(kind: str, n: int, threshold: int) -> str:
    """Resolve ``auto`` to an index kind for ``n`` vectors."""
    if kind == "ivfpq" and n < IVFPQ_MIN_VECTORS:
        return "flat"
    if kind != "auto":
        return kind
    return "hnsw" if n >= threshold else "flat"


def _nlist(n: int) -> int:
    # ~4*sqrt(n) lists is the usual balance between list length and centroid count.
    return max(1, min(int(4 * np.sqrt(max(n, 1))), max(n // 39, 1)))


def pq_m(dim: int) -> int:
    """Sub-quantisers for ``dim`` dimensions (must divide it)."""
    m = max(1, dim // PQ_DIMS_PER_CODE)
    while dim % m:
        m -= 1
    return m


def index_bytes(kind: str, n: int, dim: int) -> int:
    """Memory a FAISS index of ``n`` vectors takes (estimate: vectors or codes, graph links,
    list ids, centroids)."""
    if kind == "flat":
        return n * dim * 4
    if kind == "hnsw":
        # level 0 holds 2*M int32 links per vector, upper levels ~M/(M-1) more; plus level
        # and offset bookkeeping
        return n * (dim * 4 + 2 * HNSW_M * 4 + 4 * HNSW_M // (HNSW_M - 1) + 12)
    if kind == "ivf":
        return n * (dim * 4 + 8) + _nlist(n) * dim * 4
    if kind == "ivfpq":
        m = pq_m(dim)
        return n * (m * PQ_BITS // 8 + 8) + _nlist(n) * dim * 4 + 2**PQ_BITS * dim * 4
    raise ValueError(f"unknown FAISS index kind {kind!r}")


def build(vectors: np.ndarray, kind: str = "flat") -> faiss.Index:
    """A FAISS index over ``vectors`` (rows are L2-normalised float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape if vectors.ndim == 2 else (0, vectors.shape[-1])
    faiss.omp_set_num_threads(_BUILD_THREADS)  # this thread may have searched before
    index: faiss.Index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        nlist = _nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    elif kind == "ivfpq":
        if n < 2**PQ_BITS:
            raise ValueError(f"an ivfpq index needs at least {2**PQ_BITS} vectors to train, got {n}")
        nlist = _nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m(dim), PQ_BITS, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    elif kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r} (flat, hnsw, ivf, ivfpq)")
    if n:
        index.add(vectors)
    return index


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


class Refined:
    """A compressed index whose candidates are re-scored with the exact vectors; answers the
    two calls ``search`` makes (``ntotal``, FAISS-shaped ``search``)."""

    def __init__(self, index: faiss.Index, vectors: np.ndarray):
        self.index, self.vectors = index, vectors

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, cand = self.index.search(queries, min(k * REFINE_FACTOR, self.ntotal))
        out_d = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for qi, (q, rows) in enumerate(zip(queries, cand, strict=False)):
            rows = rows[rows >= 0]
            order = np.sort(rows)  # ascending rows: sequential reads of the memory map
            exact = np.asarray(self.vectors[order], np.float32) @ q
            top = np.lexsort((order, -exact))[:k]
            out_d[qi, : len(top)], out_i[qi, : len(top)] = exact[top], order[top]
        return out_d, out_i


def load(path: Path, vectors: np.ndarray | None = None) -> faiss.Index | Refined:
    """Read an index, memory-mapped where the index type allows it (the inverted lists of
    ``ivf``/``ivfpq``, shared between processes through the page cache; FAISS reads ``flat``
    and ``hnsw`` into each process's memory). With the exact ``vectors``, a compressed
    index comes back wrapped in ``Refined``."""
    faiss.omp_set_num_threads(1)  # queries search on one thread (see above); ``search`` repeats it per thread
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if vectors is not None and isinstance(index, faiss.IndexIVFPQ):
        return Refined(index, vectors)
    return index


def search(index: DenseIndex, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, rows) for one query vector; rows are -1-free."""
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    faiss.omp_set_num_threads(1)
    scores, rows = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(k, index.ntotal))
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]
