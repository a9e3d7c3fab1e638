"""``rag bench``'s reader section: the span reader stage against the bare onnxruntime forward
pass on the same windows (its floor, in a process of its own: ``reader_floor.py``), end-to-end
``ask`` with the span reader and with the sentence answering, and, given a work folder,
``POST /ask`` to a real ``rag serve`` with the span reader (issue 14's latency and RSS goals)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.pipeline import RAG
from rag.reader.runtime import SpanReader

FLOOR = Path(__file__).resolve().with_name("reader_floor.py")


def _ms(samples: Sequence[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e3
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2), "mean": round(float(a.mean()), 2)}


def bench_reader(settings: Settings, questions: Sequence[str], repeats: int = 3, work: Path | None = None) -> dict[str, Any]:
    """Reader stage vs its floor, and ask() with and without the span reader (in process)."""
    base = settings.model_copy(update={"cache_size": 0})
    span = RAG(base.model_copy(update={"reader": "span"}))
    sentence = RAG(base.model_copy(update={"reader": "sentence"}), embedder=span.embedder)
    reader = span.reader
    if not isinstance(reader, SpanReader):
        raise TypeError("the reader section needs the span reader")
    index = span.live().index
    stage_s: list[float] = []
    arrays: dict[str, np.ndarray] = {}
    windows = 0
    for i, q in enumerate(questions):
        query = span.analyse(q).embedded(span.embedder)
        passages = span.rank(query, reader.context_passages, index)[: reader.context_passages]
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            reader.read(query, passages, index)
            runs.append(time.perf_counter() - t0)
        stage_s.append(sorted(runs)[len(runs) // 2])
        # the windows the stage itself reads (the sentence answering may be handed more passages)
        wins = reader.scorer.windows(query.reading, [p.text for p in passages[: reader.span_passages]])
        windows += len(wins)
        ids = [w[1] for w in wins]
        t = max(len(x) for x in ids)
        batch = np.full((len(ids), t), reader.scorer.tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(ids), t), dtype=np.int64)
        for j, x in enumerate(ids):
            batch[j, : len(x)] = x
            mask[j, : len(x)] = 1
        arrays[f"embeds_{i}"] = reader.scorer.weights.word_embeddings(batch)
        arrays[f"mask_{i}"] = mask
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg as allow_pickle
        model = reader.scorer.model_dir / reader.scorer.manifest.model
        out = subprocess.run([sys.executable, str(FLOOR), str(model), str(path), str(repeats)], capture_output=True, text=True, check=True)
        floor_s = json.loads(out.stdout.strip().splitlines()[-1])["s"]
    ask_span: list[float] = []
    ask_sentence: list[float] = []
    for q in questions:
        for rag, into in ((span, ask_span), (sentence, ask_sentence)):
            t0 = time.perf_counter()
            rag.ask(q)
            into.append(time.perf_counter() - t0)
    stage, floor = _ms(stage_s), _ms(floor_s)
    served = _bench_http(settings.index, work, questions, reader.scorer.model_dir) if work is not None else {}
    return {
        "questions": len(questions),
        "windows_per_question": round(windows / max(1, len(questions)), 2),
        "reader_stage_ms": stage,
        "reader_floor_ms": floor,
        "reader_over_floor": round(stage["p50"] / max(floor["p50"], 1e-9), 3),
        "ask_span_ms": _ms(ask_span),
        "ask_sentence_ms": _ms(ask_sentence),
        **served,
    }


def _bench_http(index: Path, work: Path, questions: Sequence[str], model_dir: Path) -> dict[str, Any]:
    """Sequential ``POST /ask`` to ``rag serve`` with the span reader model the in-process
    figures measured (the child gets no ``RAG_`` variable of ours by itself), answer cache off;
    the server's RSS after the run."""
    from rag import serving
    from rag.evaluation.bench import memory_of, post_ask

    env = {"RAG_CACHE_SIZE": "0", "RAG_READER": "span", "RAG_READER_MODEL": str(model_dir.resolve())}
    with serving.serving(index, work, env) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=120)
        for q in questions[:3]:  # warm-up
            post_ask(conn, q)
        wall = [post_ask(conn, q) for q in questions]
        conn.close()
        mem = memory_of(served.proc.pid)
    return {"http_ask_span_ms": _ms(wall), "serve_memory_span": {**mem, "after_requests": len(questions) + 3}}
