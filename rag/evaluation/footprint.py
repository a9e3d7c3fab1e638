"""Memory footprint of serving an index: what each service process holds in its own memory,
what it reads through memory-mapped files (shared by every process on the host through the
page cache), and what the dense index would take with another FAISS type.

Estimates, from the index's counts and file sizes; ``rag info`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag import dense
from rag.index import Index

KINDS = ("flat", "hnsw", "ivfpq")


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _versions(index: Index) -> list[Index]:
    """The single-version indexes behind ``index`` (the shards of a sharded one)."""
    return list(getattr(index, "shards", [index]))


@dataclass(frozen=True)
class Footprint:
    """Bytes per part. ``private`` parts are copied into each process; ``mapped`` parts are
    file pages shared by all processes serving the same directory."""

    dense_kind: str
    dense: int  # the FAISS index as built (ivf/ivfpq lists are mapped, flat/hnsw private)
    bm25: int  # BM25 matrix and vocabulary, loaded into memory
    texts: int  # document texts, BM25 token strings, offsets (from store.sqlite)
    vectors: int  # chunks.npy + sentences.npy, memory-mapped
    store: int  # store.sqlite on disk (read once at open)

    @property
    def private(self) -> int:
        mapped_dense = self.dense if self.dense_kind in ("ivf", "ivfpq") else 0
        return self.dense - mapped_dense + self.bm25 + self.texts

    @property
    def mapped(self) -> int:
        return self.vectors + (self.dense if self.dense_kind in ("ivf", "ivfpq") else 0)


def footprint(index: Index) -> Footprint:
    """Measure the parts of an opened index (sharded or not)."""
    parts = _versions(index)
    kinds = {p.manifest["faiss_index"] for p in parts}
    dense_bytes = sum(dense.index_bytes(p.manifest["faiss_index"], p.n_chunks, p.dim) for p in parts)
    texts = sum(len(t.encode("utf-8")) for t in index.texts) + sum(len(t.encode("utf-8")) for t in index.chunk_tokens)
    texts += 8 * (6 * index.n_chunks + 3 * index.n_sentences)  # int64 offset arrays
    return Footprint(
        dense_kind=",".join(sorted(kinds)),
        dense=dense_bytes,
        bm25=sum(_dir_bytes(p.path / "bm25") for p in parts),
        texts=texts,
        vectors=sum((p.path / "chunks.npy").stat().st_size + (p.path / "sentences.npy").stat().st_size for p in parts),
        store=sum((p.path / "store.sqlite").stat().st_size for p in parts),
    )


def dense_by_kind(n_chunks: int, dim: int) -> dict[str, int]:
    """Bytes of the dense index for ``n_chunks`` vectors with each FAISS type."""
    return {k: dense.index_bytes(k, n_chunks, dim) for k in KINDS}


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
