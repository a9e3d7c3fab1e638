"""Memory estimate of serving an index: parts measured from the small index's files."""

from __future__ import annotations

from rag import dense
from rag.evaluation.footprint import dense_by_kind, footprint, human
from rag.index import Index


def test_parts_of_the_small_index(small_index):
    idx = Index.open(small_index)
    try:
        f = footprint(idx)
        assert f.dense_kind == "flat" and f.dense == idx.n_chunks * idx.dim * 4
        v = idx.path
        assert f.vectors == (v / "chunks.npy").stat().st_size + (v / "sentences.npy").stat().st_size
        assert f.bm25 == sum(p.stat().st_size for p in (v / "bm25").rglob("*") if p.is_file())
        assert f.texts >= sum(len(t.encode()) for t in idx.texts)
        assert f.store == (v / "store.sqlite").stat().st_size
        # flat is read into each process; the vectors are mapped and shared
        assert f.private == f.dense + f.bm25 + f.texts and f.mapped == f.vectors
    finally:
        idx.close()


def test_dense_by_kind_orders_the_types():
    sizes = dense_by_kind(1_000_000, 384)
    assert sizes["ivfpq"] < sizes["flat"] < sizes["hnsw"]
    assert sizes["flat"] == dense.index_bytes("flat", 1_000_000, 384)


def test_human():
    assert human(999) == "999 B" and human(1536) == "1.5 kB" and human(2.5e9) == "2.5 GB"
