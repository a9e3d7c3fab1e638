"""What the sharded facade costs a query: retrieval and answer latency over one index, and
over the same index re-sharded into 1, 2 and 4 shards (vectors reused, so every
configuration holds exactly the same chunks).

    .venv/bin/python benchmarks/ingest_throughput.py --modes local --repeat 1 --keep /tmp/xquad-index
    .venv/bin/python benchmarks/shard_latency.py --index /tmp/xquad-index --out eval/shard_latency.json

Questions are XQuAD's Arabic questions, embedded once up front, so the timings are the
index's share of a query (the embedding, ~50-150 ms, is the same either way). Configurations
are interleaved question by question so background load hits them alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.embedding import E5Embedder
from rag.pipeline import RAG
from rag.sharding import ShardedIndexer, open_index
from rag.testing import MemoEmbedder

DEFAULT_XQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "xquad" / "xquad.ar.json"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="A plain index (e.g. of the XQuAD contexts).")
    ap.add_argument("--xquad", type=Path, default=DEFAULT_XQUAD)
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    data = json.loads(args.xquad.read_text(encoding="utf-8"))["data"]
    questions = [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]][: args.questions]
    e5 = E5Embedder()
    emb = MemoEmbedder(e5, questions)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"plain": args.index}
        for n in (int(x) for x in args.shards.split(",")):
            root = Path(tmp) / f"shards-{n}"
            shutil.copytree(args.index, root)
            ShardedIndexer(root, e5, Settings(index=root), shards=n).ingest([])
            roots[f"{n} shards"] = root
        open_s = {}
        for name, root in roots.items():
            t = time.perf_counter()
            open_index(root).close()
            open_s[name] = time.perf_counter() - t
        rags = {name: RAG(Settings(index=root, cache_size=0, reload_interval_s=0), embedder=emb) for name, root in roots.items()}
        for r in rags.values():  # warm up: page in vectors, build the IDF tables
            for q in questions[:10]:
                r.ask(q)
        timings: dict[str, dict[str, list[float]]] = {n: {"retrieve": [], "answer": []} for n in rags}
        top1: dict[str, list[tuple]] = {n: [] for n in rags}
        for q in questions:
            for name, r in rags.items():
                res = r.ask(q)
                timings[name]["retrieve"].append(res.timings_ms["retrieve"])
                timings[name]["answer"].append(res.timings_ms["answer"])
                top1[name].append((res.citations[0].doc_id, res.citations[0].start) if res.citations else None)
        first = rags["plain"].snapshot.index
        result = {
            "index": {"documents": first.n_documents, "chunks": first.n_chunks, "sentences": first.n_sentences},
            "questions": len(questions),
            "configs": {},
        }
        for name in rags:
            t = timings[name]
            total = [a + b for a, b in zip(t["retrieve"], t["answer"], strict=False)]
            result["configs"][name] = {
                "open_s": round(open_s[name], 3),
                "retrieve_ms_p50": round(statistics.median(t["retrieve"]), 2),
                "retrieve_ms_p95": round(pct(t["retrieve"], 95), 2),
                "answer_ms_p50": round(statistics.median(t["answer"]), 2),
                "index_ms_p50": round(statistics.median(total), 2),
                "index_ms_p95": round(pct(total, 95), 2),
                "same_top1_as_plain": sum(a == b for a, b in zip(top1[name], top1["plain"], strict=False)) / len(questions),
            }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
