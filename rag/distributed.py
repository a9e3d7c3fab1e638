"""Distributed ingestion on Ray Data: files are read and cleaned by Ray tasks, documents are
chunked and embedded by a pool of Ray actors (one embedder loaded per actor), and the
resulting ``Prepared`` items go to the same writer as the single-process path
(``Indexer``, or ``ShardedIndexer`` for a sharded index). Chunking runs the same code
(``rag.ingest.prepare_document``), so the index on disk is the same either way; only the
vectors may differ by float noise.

    files --(read tasks)--> documents --(driver: diff against the index)--> fresh documents
          --(actor pool, token-sized batches)--> Prepared --(driver)--> new index version

Works the same on a local Ray (``ray.init(num_cpus=2)``) and on a cluster address. On a
cluster every node needs this package installed and the input paths readable under the
same names (a shared file system); the index is written by the driver.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.ingest import Prepared, PreparedChunk, Progress, prepare_document
from rag.loading import LoadReport, Skipped, combine_reports, files_to_load, load_file
from rag.schema import Document

log = logging.getLogger(__name__)

# Average characters per model token of our Arabic and English text (XLM-R tokenizer: 3.1 on
# XQuAD Arabic, 3.8 on the corpus, 4.1 on XQuAD English). Only used to size batches on the
# driver, which must not tokenize the whole corpus itself.
CHARS_PER_TOKEN = 3.5
# Document tokens per actor call: ~40 chunks of 200 tokens plus their sentences, a few
# seconds of work for one CPU; large enough to amortise the per-call overhead, small
# enough to spread a small corpus over every worker.
BATCH_TOKENS = 8192


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto", "ray://head:10001", "head:6379") or start
    a local one (``num_cpus`` caps it); a no-op when this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )


def _quiet_data_context() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _document_json(doc: Document) -> dict[str, Any]:
    return dataclasses.asdict(doc)


def _read_files(batch: dict[str, np.ndarray], max_file_bytes: int) -> dict[str, np.ndarray]:
    """Ray task: load each (file, doc_id) of the batch; one JSON load report per file."""
    reports = []
    for path, doc_id in zip(batch["path"].tolist(), batch["doc_id"].tolist(), strict=False):
        r = load_file(Path(path), doc_id, max_file_bytes=max_file_bytes)
        reports.append(
            json.dumps(
                {
                    "documents": [_document_json(d) for d in r.documents],
                    "skipped": [dataclasses.asdict(s) for s in r.skipped],
                },
                ensure_ascii=False,
            )
        )
    return {"i": batch["i"], "report": np.array(reports, dtype=object)}


class _PrepareActor:
    """Ray actor: chunks, sentence-splits and embeds groups of documents with one embedder,
    loaded once when the actor starts."""

    def __init__(self, settings: dict[str, Any]):
        from rag.chunking import Chunker
        from rag.embedding import make_embedder

        self.settings = Settings(**settings)
        self.embedder = make_embedder(self.settings)
        self.chunker = Chunker(self.embedder.token_count, self.settings.chunk_tokens, self.settings.chunk_overlap)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        items: list[tuple[int, str, str]] = [tuple(x) for g in batch["group"].tolist() for x in json.loads(g)]
        prepared = [prepare_document(Document(doc_id, "", text), "", self.chunker) for _, doc_id, text in items]
        texts = [t for p in prepared for t in p.texts()]
        vectors = self._embed(texts)
        out_i, out_meta, out_vec = [], [], []
        at = 0
        for (i, _, _), p in zip(items, prepared, strict=False):
            n = len(p.chunks) + len(p.sentences)
            out_i.append(i)
            out_meta.append(json.dumps({"lang": p.lang, "chunks": p.chunks, "sentences": p.sentences}, ensure_ascii=False))
            out_vec.append(np.ascontiguousarray(vectors[at : at + n], np.float32).tobytes())
            at += n
        # CPU and wall seconds of this call, on the group's first row: throughput per core
        # without the contention of other processes, and how busy the actors were.
        cpu, busy = np.zeros(len(out_i)), np.zeros(len(out_i))
        cpu[:1], busy[:1] = time.process_time() - cpu0, time.perf_counter() - wall0
        return {
            "i": np.array(out_i, np.int64),
            "meta": np.array(out_meta, dtype=object),
            "vectors": np.array(out_vec, dtype=object),
            "model": np.array([f"{self.embedder.model_id}\t{self.embedder.dim}"] * len(out_i), dtype=object),
            "cpu_s": cpu,
            "busy_s": busy,
        }

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed in sub-batches of similar length, each at most ``batch_size`` texts and
        ``batch_size * chunk_tokens`` padded tokens: padding backends (sentence-transformers)
        then waste little, and one long text does not stall a batch of short ones."""
        out = np.zeros((len(texts), self.embedder.dim), np.float32)
        lengths = [self.embedder.token_count(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda j: -lengths[j])
        budget = self.settings.batch_size * self.settings.chunk_tokens
        start = 0
        while start < len(order):
            longest = lengths[order[start]]
            size = max(1, min(self.settings.batch_size, budget // max(longest, 1)))
            rows = order[start : start + size]
            out[rows] = self.embedder.embed_passages([texts[j] for j in rows])
            start += size
        return out


def token_groups(items: Sequence[tuple[Document, str]], budget: int) -> list[list[int]]:
    """Consecutive runs of item indices whose estimated tokens add up to about ``budget``
    (a document larger than the budget is a group of its own)."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0.0
    for i, (doc, _) in enumerate(items):
        tokens = len(doc.text) / CHARS_PER_TOKEN
        if current and used + tokens > budget:
            groups.append(current)
            current, used = [], 0.0
        current.append(i)
        used += tokens
    if current:
        groups.append(current)
    return groups


class RayEngine:
    """Reads, chunks and embeds on Ray; ``prepare`` is an ``rag.ingest.Preparer``.

    ``workers`` actors (default: one per CPU of the cluster) each hold an embedder and use
    ``cpus_per_worker`` CPU threads (``gpus_per_worker`` GPUs for the sentence-transformers
    backend on a GPU cluster). ``expect`` is the (model id, dims) the index is written with:
    vectors from actors that loaded another model are refused.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1,
        gpus_per_worker: float = 0,
        batch_tokens: int = BATCH_TOKENS,
        expect: tuple[str, int] | None = None,
        progress: Progress | None = None,
    ):
        self.settings = settings
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.batch_tokens = batch_tokens
        self.expect = expect
        self.progress = progress or (lambda stage, done, total: None)

    def _connect(self) -> int:
        """Connect and return the number of actors to run."""
        import ray

        connect(self.address, num_cpus=self.workers and math.ceil(self.workers * self.cpus_per_worker))
        if self.workers:
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1) // max(self.cpus_per_worker, 1)))

    # --- read + clean ----------------------------------------------------------------------
    def load(self, paths: Sequence[Path | str]) -> LoadReport:
        """``rag.loading.load_paths`` with the files read and cleaned by Ray tasks (same
        documents, ids and order; the directory walk stays on the driver)."""
        import ray.data

        targets, walk_skips = files_to_load(paths)
        if not targets:
            return combine_reports([LoadReport(skipped=walk_skips)])
        workers = self._connect()
        _quiet_data_context()
        rows = [{"i": i, "path": str(f), "doc_id": d} for i, (f, d) in enumerate(targets)]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * workers)).map_batches(
            _read_files,  # type: ignore[arg-type]  # max_file_bytes comes from fn_kwargs
            batch_size=16,
            batch_format="numpy",
            fn_kwargs={"max_file_bytes": self.settings.max_file_bytes},
        )
        reports: dict[int, LoadReport] = {}
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            for i, raw in zip(batch["i"].tolist(), batch["report"].tolist(), strict=False):
                r = json.loads(raw)
                reports[i] = LoadReport([Document(**d) for d in r["documents"]], [Skipped(**s) for s in r["skipped"]])
        return combine_reports([LoadReport(skipped=walk_skips)] + [reports[i] for i in range(len(targets))])

    # --- chunk + embed ---------------------------------------------------------------------
    def prepare(self, items: list[tuple[Document, str]], timings: dict[str, float]) -> list[Prepared]:
        """Chunk and embed ``(document, content hash)`` pairs on the actor pool."""
        if not items:
            return []
        import ray.data

        t0 = time.perf_counter()
        workers = self._connect()
        _quiet_data_context()
        total_tokens = sum(len(d.text) for d, _ in items) / CHARS_PER_TOKEN
        # At least ~4 groups per worker so a small corpus still keeps every worker busy.
        budget = max(1, min(self.batch_tokens, math.ceil(total_tokens / (4 * workers))))
        groups = token_groups(items, budget)
        rows = [{"group": json.dumps([(i, items[i][0].doc_id, items[i][0].text) for i in g], ensure_ascii=False)} for g in groups]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _PrepareActor,
            batch_size=1,  # one token-sized group per call
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))),
            fn_constructor_kwargs={"settings": self.settings.model_dump(mode="json")},
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker or None,
        )
        t1 = time.perf_counter()
        out: dict[int, Prepared] = {}
        cpu_s = busy_s = 0.0
        self.progress("embed", 0, len(items))
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            cpu_s += float(batch["cpu_s"].sum())
            busy_s += float(batch["busy_s"].sum())
            for i, meta, raw, model in zip(
                batch["i"].tolist(), batch["meta"].tolist(), batch["vectors"].tolist(), batch["model"].tolist(), strict=False
            ):
                doc, h = items[i]
                m = json.loads(meta)
                model_id, dim = model.rsplit("\t", 1)
                if self.expect is not None and (model_id, int(dim)) != self.expect:
                    raise RuntimeError(
                        f"a Ray worker embedded with {model_id} ({dim} dims) but the index is written "
                        f"with {self.expect[0]} ({self.expect[1]} dims); install the same version everywhere"
                    )
                p = Prepared(doc, m["lang"], h, [PreparedChunk(*c) for c in m["chunks"]], [(s[0], s[1]) for s in m["sentences"]])
                p.set_vectors(np.frombuffer(raw, np.float32).reshape(-1, int(dim)))
                out[i] = p
            self.progress("embed", len(out), len(items))
        missing = [items[i][0].doc_id for i in range(len(items)) if i not in out]
        if missing:
            raise RuntimeError(f"Ray returned no result for {len(missing)} documents: {', '.join(missing[:5])}")
        timings["ray_start"], timings["prepare"] = t1 - t0, time.perf_counter() - t1
        timings["worker_cpu"], timings["worker_busy"] = cpu_s, busy_s
        return [out[i] for i in range(len(items))]

    __call__ = prepare
