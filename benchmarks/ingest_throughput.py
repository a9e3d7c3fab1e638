"""Ingestion throughput: the single-process path against Ray with 1 and 2 workers, on the
XQuAD contexts (240 Arabic paragraphs), each run building a fresh index.

    .venv/bin/python benchmarks/ingest_throughput.py --out eval/ingest_throughput.json

Reports per run: wall time end to end (Ray start, actor start, embedding, write), the prepare
step alone, chunks ("passages") and embedded texts (chunks + sentences) per second, the CPU
seconds the chunking and embedding took (texts per CPU second is the per-core rate, which
other processes on a shared machine do not change), and the load average. Runs are
interleaved (local, ray1, ray2, local, ...) so background load hits every mode alike.

``--writer-chunks N`` instead times the driver's write step alone (store, vectors, FAISS,
BM25, checksums) on N synthetic prepared chunks, the part that does not spread over workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embedding import E5Embedder
from rag.ingest import Indexer, Prepared
from rag.schema import Document

DEFAULT_XQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "xquad" / "xquad.ar.json"


def xquad_documents(path: Path) -> list[Document]:
    """One document per context paragraph, titled by its article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        Document(f"xquad-{a:02d}-{p:02d}", article.get("title", ""), para["context"])
        for a, article in enumerate(data)
        for p, para in enumerate(article["paragraphs"])
    ]


def run(mode: str, docs: list[Document], e5: E5Embedder, work: Path) -> dict:
    root = work / f"index-{mode}"
    shutil.rmtree(root, ignore_errors=True)
    settings = Settings(index=root)
    prepare = None
    t0 = time.perf_counter()
    if mode.startswith("ray"):
        import ray

        from rag.distributed import RayEngine

        workers = int(mode[3:])
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        prepare = RayEngine(settings, workers=workers, expect=(e5.model_id, e5.dim))
    t_ready = time.perf_counter()
    cpu0 = time.process_time()
    try:
        report = Indexer(root, e5, settings).ingest(docs, prepare=prepare)
        driver_cpu = time.process_time() - cpu0
    finally:
        if mode.startswith("ray"):
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t0
    manifest = json.loads((root / f"v{report.version:06d}" / "manifest.json").read_text())
    chunks = manifest["counts"]["chunks"]
    prepare_s = report.timings_s.get("prepare", report.timings_s.get("chunk", 0) + report.timings_s.get("embed", 0))
    # CPU seconds spent chunking and embedding: the driver's own (all its threads) in the
    # local mode, the actors' in the Ray modes.
    cpu_s = report.timings_s.get("worker_cpu", driver_cpu)
    return {
        "mode": mode,
        "documents": len(docs),
        "chunks": chunks,
        "texts": report.embedded_texts,
        "ray_start_s": round(t_ready - t0, 2),
        "prepare_s": round(prepare_s, 2),
        "write_s": round(report.timings_s.get("write", 0), 2),
        "wall_s": round(wall, 2),
        "chunks_per_s": round(chunks / wall, 2),
        "texts_per_s": round(report.embedded_texts / wall, 2),
        "texts_per_s_prepare": round(report.embedded_texts / prepare_s, 2),
        "cpu_s": round(cpu_s, 2),
        "texts_per_cpu_s": round(report.embedded_texts / cpu_s, 2),
        "worker_busy_s": round(report.timings_s.get("worker_busy", prepare_s), 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def writer_throughput(n_chunks: int, e5: E5Embedder, work: Path) -> dict:
    """Time ``Indexer``'s write of ``n_chunks`` synthetic chunks (10 per document, 3 sentences
    each, Zipf-distributed tokens, random unit vectors): no embedding involved."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(50_000)]
    per_doc, sent_per_chunk, chars = 10, 3, 800
    docs = []
    for d in range(n_chunks // per_doc):
        text = "x" * (per_doc * chars)
        chunks, sentences = [], []
        for c in range(per_doc):
            start = c * chars
            bounds = [start + i * chars // sent_per_chunk for i in range(sent_per_chunk + 1)]
            first = len(sentences)
            sentences += list(pairwise(bounds))
            tokens = " ".join(vocab[i] for i in np.minimum(rng.zipf(1.3, 120), len(vocab)) - 1)
            chunks.append((c, start, start + chars, first, len(sentences), tokens))
        p = Prepared(Document(f"syn-{d}", "", text), "ar", f"h{d}", chunks, sentences)
        v = rng.standard_normal((len(chunks) + len(sentences), e5.dim)).astype(np.float32)
        p.set_vectors(v / np.linalg.norm(v, axis=1, keepdims=True))
        docs.append(p)
    by_id = {p.doc.doc_id: p for p in docs}
    root = work / "index-writer"
    report = Indexer(root, e5, Settings(index=root)).ingest(
        [p.doc for p in docs], prepare=lambda items, timings: [by_id[d.doc_id] for d, _ in items]
    )
    write_s = report.timings_s["write"]
    return {
        "chunks": n_chunks,
        "sentences": n_chunks * sent_per_chunk,
        "write_s": round(write_s, 2),
        "chunks_per_s": round(n_chunks / write_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--xquad", type=Path, default=DEFAULT_XQUAD)
    ap.add_argument("--modes", default="local,ray1,ray2")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="Only the first N paragraphs.")
    ap.add_argument("--keep", type=Path, default=None, help="Copy the local run's index here (for shard_latency.py).")
    ap.add_argument("--writer-chunks", type=int, default=None, help="Only time the write step on N synthetic chunks.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    e5 = E5Embedder()
    if args.writer_chunks:
        with tempfile.TemporaryDirectory() as tmp:
            result = writer_throughput(args.writer_chunks, e5, Path(tmp))
        print(json.dumps(result))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
        return
    docs = xquad_documents(args.xquad)[: args.limit]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for mode in args.modes.split(","):
                r = run(mode, docs, e5, Path(tmp))
                print(json.dumps(r), flush=True)
                runs.append(r)
        if args.keep is not None:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(Path(tmp) / "index-local", args.keep)
    summary = {}
    for mode in args.modes.split(","):
        mine = [r for r in runs if r["mode"] == mode]
        summary[mode] = {
            k: statistics.median(r[k] for r in mine)
            for k in ("wall_s", "prepare_s", "chunks_per_s", "texts_per_s", "texts_per_s_prepare", "ray_start_s", "texts_per_cpu_s")
        }
    result = {"cpus": os.cpu_count(), "runs": runs, "median": summary}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
