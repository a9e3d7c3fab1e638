"""Soak run: a real ``rag serve`` on loopback under steady mixed load for a bounded time.

Client threads send ``POST /ask`` and ``GET /search`` (questions from ``eval/qa/corpus_qa.jsonl``,
Arabic and English) back to back, while an admin thread adds, updates and deletes a document
every ``--update-every`` seconds. Reports requests, errors (anything but a 200, or a transport
error: must be 0), latency percentiles, index versions served, and the server's resident memory
(from ``/proc/<pid>/status``) when ready, after warm-up, and at the end: growth from after
warm-up to the end must stay under 10 %. The warm-up, before the timed run, asks and searches
every question of the pool once: the first queries of each length allocate the model's buffers
and fill the answer cache, which is expected growth, not a leak.

    .venv/bin/python benchmarks/soak.py                     # 10 minutes, 4 clients
    .venv/bin/python benchmarks/soak.py --duration 60 --concurrency 2 --json soak.json

The index served is a private copy of ``--index`` (default ``./index``; built from ``./corpus``
into the copy when absent), so the updates never touch it. Exit status 0 when there were no
errors and memory grew less than 10 %, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rag.serving import Served, rag_command, start

ROOT = Path(__file__).resolve().parents[1]
QA_SET = ROOT / "eval" / "qa" / "corpus_qa.jsonl"
FALLBACK_QUESTIONS = [
    "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟",
    "What is the motto of Expo 2020 Dubai?",
    "ما هي عاصمة اليابان؟",
    "What is the capital of Japan?",
]
# The documents the updater cycles through: add, update (same id, new text), delete.
UPDATE_DOCS = [
    {
        "id": "soak/falcons",
        "title": "Falcon hospital",
        "text": "The Abu Dhabi Falcon Hospital treats more than 11000 falcons every year. Visitors are welcome on weekdays.",
    },
    {
        "id": "soak/falcons",
        "title": "Falcon hospital",
        "text": "The Abu Dhabi Falcon Hospital treats more than 12000 falcons every year. It opened in 1999.",
    },
    {
        "id": "soak/pearls",
        "title": "الغوص على اللؤلؤ",
        "text": "كان الغوص على اللؤلؤ مصدر الرزق الأول لسكان الخليج قبل النفط. واستمر موسم الغوص الكبير أربعة أشهر.",
    },
]
UPDATE_QUESTIONS = ["How many falcons does the Abu Dhabi Falcon Hospital treat every year?", "كم استمر موسم الغوص الكبير؟"]
RSS_LIMIT = 0.10


def questions() -> list[str]:
    if QA_SET.is_file():
        qs = [json.loads(line)["question"] for line in QA_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
        if qs:
            return qs + UPDATE_QUESTIONS
    return FALLBACK_QUESTIONS + UPDATE_QUESTIONS


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Server:
    """A ``rag serve`` child with an admin token of its own (the soak adds and replaces documents)."""

    served: Served
    token: str

    @classmethod
    def start(cls, index: Path, work: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 300) -> Server:
        token = secrets.token_urlsafe(24)
        env = {"RAG_ADMIN_TOKEN": token, **(extra_env or {})}
        return cls(start(index, work, env, timeout=timeout), token)

    @property
    def proc(self) -> subprocess.Popen:
        return self.served.proc

    @property
    def base(self) -> str:
        return self.served.base

    @property
    def log(self) -> Path:
        return self.served.log

    def stop(self) -> int:
        return self.served.stop()


@dataclass
class SoakResult:
    duration_s: float
    concurrency: int
    warmup_requests: int = 0
    requests: Counter = field(default_factory=Counter)  # per route, timed run only
    errors: list[str] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    updates: int = 0
    versions: set[int] = field(default_factory=set)
    rss_kib: dict[str, int] = field(default_factory=dict)  # ready, warm, end, peak

    @property
    def rss_growth(self) -> float:
        return (self.rss_kib["end"] - self.rss_kib["warm"]) / self.rss_kib["warm"]

    @property
    def ok(self) -> bool:
        return not self.errors and self.rss_growth < RSS_LIMIT

    def summary(self) -> dict[str, Any]:
        def pct(xs: list[float], p: float) -> float:
            xs = sorted(xs)
            return round(xs[min(len(xs) - 1, int(p * len(xs)))], 1) if xs else 0.0

        total = sum(self.requests.values())
        return {
            "date": time.strftime("%Y-%m-%d"),
            "duration_s": round(self.duration_s, 1),
            "concurrency": self.concurrency,
            "warmup_requests": self.warmup_requests,
            "requests": total,
            "requests_by_route": dict(self.requests),
            "throughput_rps": round(total / max(self.duration_s, 1e-9), 2),
            "errors": len(self.errors),
            "error_samples": self.errors[:10],
            "document_updates": self.updates,
            "index_versions_served": sorted(self.versions),
            "latency_ms": {r: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "max": pct(v, 1.0)} for r, v in self.latencies_ms.items()},
            "rss_mib": {k: round(v / 1024, 1) for k, v in self.rss_kib.items()},
            "rss_growth_after_warmup": round(self.rss_growth, 4),
            "ok": self.ok,
        }


def soak(
    server: Server,
    *,
    duration: float,
    concurrency: int = 4,
    update_every: float = 60.0,
    search_share: float = 0.3,
    seed: int = 0,
    log=print,
) -> SoakResult:
    """Load ``server`` for ``duration`` seconds; never raises for a failed request (it is counted)."""
    pool = questions()
    result = SoakResult(duration, concurrency)
    lock = threading.Lock()
    stop = threading.Event()
    result.rss_kib["ready"] = rss_kib(server.proc.pid)

    def record(route: str, started: float, response: httpx.Response | None, error: str | None) -> None:
        with lock:
            result.requests[route] += 1
            result.latencies_ms.setdefault(route, []).append((time.perf_counter() - started) * 1e3)
            if error is not None:
                result.errors.append(f"{route}: {error}")
            elif response is not None:
                v = response.headers.get("x-index-version")
                if v is not None:
                    result.versions.add(int(v))

    def request(client: httpx.Client, route: str, method: str, url: str, **kwargs) -> None:
        t0 = time.perf_counter()
        try:
            r = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            record(route, t0, None, f"{type(exc).__name__}: {exc}")
            return
        record(route, t0, r, None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}")

    def client_loop(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        with httpx.Client(base_url=server.base, timeout=120) as client:
            while not stop.is_set():
                q = rng.choice(pool)
                if rng.random() < search_share:
                    request(client, "search", "GET", "/search", params={"q": q, "k": 5})
                else:
                    request(client, "ask", "POST", "/ask", json={"question": q})

    def updater() -> None:
        auth = {"Authorization": f"Bearer {server.token}"}
        step = 0
        with httpx.Client(base_url=server.base, timeout=300, headers=auth) as client:
            while not stop.wait(update_every):
                doc = UPDATE_DOCS[step % len(UPDATE_DOCS)]
                if step % 4 == 3:  # every fourth step deletes what the previous ones added
                    for doc_id in sorted({d["id"] for d in UPDATE_DOCS}):
                        request(client, "delete", "DELETE", f"/documents/{doc_id}")
                else:
                    request(client, "add", "POST", "/documents", json=doc)
                with lock:
                    result.updates += 1
                step += 1

    def warm_up(i: int) -> None:
        with httpx.Client(base_url=server.base, timeout=120) as client:
            for q in pool[i::concurrency]:
                request(client, "search", "GET", "/search", params={"q": q, "k": 5})
                request(client, "ask", "POST", "/ask", json={"question": q})

    t_warm = time.monotonic()
    warmers = [threading.Thread(target=warm_up, args=(i,), daemon=True) for i in range(concurrency)]
    for t in warmers:
        t.start()
    for t in warmers:
        t.join()
    with lock:  # warm-up requests count for errors, not for the timed run's figures
        result.warmup_requests = sum(result.requests.values())
        result.requests.clear()
        result.latencies_ms.clear()
    result.rss_kib["warm"] = rss_kib(server.proc.pid)
    peak = [result.rss_kib["warm"]]
    log(f"  warm-up: {result.warmup_requests} requests in {time.monotonic() - t_warm:.0f} s, RSS {result.rss_kib['warm'] / 1024:.0f} MiB")

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(concurrency)]
    threads.append(threading.Thread(target=updater, daemon=True))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    next_report = t0 + 60
    while (now := time.monotonic()) < t0 + duration:
        time.sleep(min(1.0, t0 + duration - now))
        rss = rss_kib(server.proc.pid)
        peak[0] = max(peak[0], rss)
        if time.monotonic() >= next_report:
            with lock:
                n, e = sum(result.requests.values()), len(result.errors)
            log(f"  {time.monotonic() - t0:5.0f} s: {n} requests, {e} errors, RSS {rss / 1024:.0f} MiB")
            next_report += 60
    stop.set()
    for t in threads:
        t.join(timeout=300)
    # Deletes of documents that were not there answer 404 by design: not an error.
    result.errors = [e for e in result.errors if not e.startswith("delete: HTTP 404")]
    result.duration_s = time.monotonic() - t0
    result.rss_kib["end"] = rss_kib(server.proc.pid)
    result.rss_kib["peak"] = max(peak[0], result.rss_kib["end"])
    return result


def prepare_index(source: Path | None, work: Path) -> Path:
    """A private copy of ``source`` (default ./index), or a fresh build of ./corpus."""
    index = work / "index"
    source = source or ROOT / "index"
    from rag.index import current_version

    if current_version(source) is not None:
        shutil.copytree(source, index, ignore=shutil.ignore_patterns(".lock", ".tmp-*"))
    else:
        subprocess.run([*rag_command(), "ingest", str(ROOT / "corpus"), "--index", str(index)], check=True)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="Seconds of load (default 600).")
    parser.add_argument("--concurrency", type=int, default=4, help="Client threads (default 4).")
    parser.add_argument("--update-every", type=float, default=60, help="Seconds between document updates (default 60).")
    parser.add_argument("--index", type=Path, default=None, help="Index to copy and serve (default ./index).")
    parser.add_argument("--json", type=Path, default=None, help="Write the summary as JSON here.")
    args = parser.parse_args(argv)

    # SIGTERM (e.g. `kill`) unwinds like Ctrl-C, so the server child is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        index = prepare_index(args.index, work)
        server = Server.start(index, work)
        print(
            f"soak: {args.duration:.0f} s, {args.concurrency} clients, an update every {args.update_every:.0f} s, server pid {server.proc.pid}"
        )
        try:
            result = soak(server, duration=args.duration, concurrency=args.concurrency, update_every=args.update_every)
        finally:
            code = server.stop()
        summary = {**result.summary(), "server_exit": code}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
