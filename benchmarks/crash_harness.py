"""Crash-safety harness: SIGKILL a real ``rag ingest`` at many points of a full build and of an
incremental update, and check after every kill that nothing was lost.

After each kill:

1. the index on disk opens (``Index.open``) and ``rag verify`` passes;
2. a fixed list of questions gets exactly the answers it got before the interrupted run (or,
   when the kill came after ``CURRENT`` had already switched, exactly the answers of a run that
   completed: never anything in between);
3. a clean rerun of the same command completes, verifies, answers like a completed run and
   leaves no half-written leftovers.

Kill points come from two sources:

* **time grid**: kills at delays spread evenly over the measured length of an uninterrupted
  run from its first touch of the inputs (the "load" marker; Python imports before it take
  most of a short run and touch nothing) to its exit, so they land wherever the process
  happens to be (loading, model start, chunking, embedding, writing, switching);
* **exact points**: the child pauses at a named step (e.g. right after the new version is
  renamed into place but before ``CURRENT`` moves) and is killed there. Writing a version takes
  milliseconds, so only this reaches each of its steps every time.

The child is the real CLI (``rag.cli.app``) run through a small wrapper (``WRAPPER`` below) that
only *observes*: it prints a timestamped marker when a step starts and, for exact points,
blocks at the chosen marker. No test hook lives in library code. Which stage a kill landed in
is the last marker the child printed before it (``time.monotonic`` is system-wide on Linux).

    .venv/bin/python benchmarks/crash_harness.py            # full run, ~60 kills
    .venv/bin/python benchmarks/crash_harness.py --quick    # the CI subset (tests/test_crash_safety.py)
    .venv/bin/python benchmarks/crash_harness.py --json result.json

Exit status 0 when every kill left the index intact, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.index import Index, IndexProblem, current_version  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.testing import MemoEmbedder  # noqa: E402

MARK = "@@crash"
TIME_GRID_FROM = "load"  # time-grid delays count from this marker (after the imports)

# Runs `rag ingest ...` unchanged, printing "@@crash <monotonic> <stage>" as each step starts.
# With CRASH_PAUSE_AT="<stage>#<n>" it blocks on stdin at the n-th occurrence of that marker
# (after printing "paused"), so the harness can kill it exactly there.
WRAPPER = r"""
import os, sys, time
from collections import Counter

_seen = Counter()
_pause = os.environ.get("CRASH_PAUSE_AT", "")

def mark(stage):
    _seen[stage] += 1
    print(f"@@crash {time.monotonic():.6f} {stage}", flush=True)
    if _pause == f"{stage}#{_seen[stage]}":
        print(f"@@crash {time.monotonic():.6f} paused", flush=True)
        sys.stdin.readline()  # never answered: the harness kills us here

mark("start")

import numpy
import rag.dense, rag.ingest, rag.lexical, rag.loading, rag.pipeline


def around(owner, names, before=None, after=None):
    # The first of ``names`` that exists (internals get renamed; a marker that never shows
    # makes its exact kill point fail loudly as "never reached").
    name = next((n for n in names.split("|") if hasattr(owner, n)), None)
    if name is None:
        return
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if before:
            mark(before)
        result = original(*args, **kwargs)
        if after:
            mark(after)
        return result
    setattr(owner, name, wrapped)

around(rag.loading, "load_paths", "load")
around(rag.loading, "load_file|_load_file", "load:file")
around(rag.pipeline, "make_embedder", "model")
around(rag.ingest, "prepare_document", "chunk")
around(rag.ingest.Indexer, "_prepare", "chunk")
around(rag.ingest, "write_store", "write:store")
around(numpy, "save", "write:vectors")
around(rag.dense, "save", "write:faiss")
around(rag.lexical.BM25Index, "save", "write:bm25")
around(rag.ingest, "sha256_file", "write:checksums")
around(os, "fsync", "write:fsync")
around(os, "rename", "publish", "published")
around(os, "replace", "switch", "switched")
around(rag.ingest.Indexer, "_collect_garbage", "gc", "gc:done")

_embed = rag.ingest.embed_in_batches
def embed_in_batches(*args, on_batch=None, **kwargs):
    mark("embed")
    def tick(n):
        if on_batch:
            on_batch(n)
        mark("embed")
    return _embed(*args, on_batch=tick, **kwargs)
rag.ingest.embed_in_batches = embed_in_batches

from rag.cli import app
try:
    app()
finally:
    mark("exit")
"""

# Which part of a run each marker starts; a kill belongs to the group of the last marker seen.
STAGE_GROUP = {
    "start": "startup",
    "model": "model load",
    "load": "loading",
    "load:file": "loading",
    "chunk": "chunking",
    "embed": "embedding",
    "write:store": "writing",
    "write:vectors": "writing",
    "write:faiss": "writing",
    "write:bm25": "writing",
    "write:checksums": "writing",
    "write:fsync": "writing",
    "publish": "writing",
    "published": "switching",
    "switch": "switching",
    "switched": "after switch",
    "gc": "after switch",
    "gc:done": "after switch",
    "exit": "after switch",
}

# Exact kill points: (marker, occurrence). Mid-loading, mid-chunking, mid-embedding, before every
# file of the new version, between rename and CURRENT, and after the switch.
EXACT_POINTS: list[tuple[str, int]] = [
    ("load:file", 2),
    ("chunk", 2),
    ("embed", 2),
    ("embed", 4),
    ("write:store", 1),
    ("write:vectors", 1),
    ("write:vectors", 2),
    ("write:faiss", 1),
    ("write:bm25", 1),
    ("write:checksums", 1),
    ("write:fsync", 1),
    ("publish", 1),
    ("published", 1),
    ("switch", 1),
    ("switched", 1),
    ("gc", 1),
]
QUICK_EXACT = [
    ("load:file", 2),
    ("embed", 2),
    ("write:store", 1),
    ("write:faiss", 1),
    ("write:checksums", 1),
    ("publish", 1),
    ("published", 1),
    ("switched", 1),
]

# A few short documents, so each run is seconds: Arabic and English, one fact per sentence.
BASE_CORPUS = {
    "falcons.txt": "الصقارة في الإمارات\n\nتعد الصقارة من أقدم الرياضات التراثية في دولة الإمارات. "
    "ويعالج مستشفى أبوظبي للصقور أكثر من 11000 صقر كل عام.",
    "pearls.txt": "الغوص على اللؤلؤ\n\nكان الغوص على اللؤلؤ مصدر الرزق الأول لسكان الخليج قبل النفط. "
    "واستمر موسم الغوص الكبير أربعة أشهر في الصيف.",
    "metro.txt": "Dubai Metro\n\nThe Dubai Metro opened on 9 September 2009. Its Red Line is about 52 kilometres long.",
    "library.txt": "Mohammed bin Rashid Library\n\nThe Mohammed bin Rashid Library opened in Dubai in June 2022. "
    "It holds more than one million printed and digital books.",
}
# The update: one document changed, one added, one dropped (with --prune), two unchanged.
UPDATE_CORPUS = {
    **{k: v for k, v in BASE_CORPUS.items() if k != "pearls.txt"},
    "metro.txt": "Dubai Metro\n\nThe Dubai Metro opened on 9 September 2009. "
    "Its Red Line is about 67 kilometres long after the Route 2020 extension.",
    "dates.txt": "النخيل والتمور\n\nتضم دولة الإمارات أكثر من 40 مليون نخلة. ويقام مهرجان ليوا للرطب في شهر يوليو من كل عام.",
}
QUESTIONS = [
    "كم صقراً يعالج مستشفى أبوظبي للصقور كل عام؟",
    "كم استمر موسم الغوص الكبير؟",
    "How long is the Red Line of the Dubai Metro?",
    "When did the Mohammed bin Rashid Library open?",
    "كم عدد النخيل في الإمارات؟",
    "What is the capital of Japan?",
]
SCENARIOS = {
    # A full build: every document re-embedded into a new version over the live one.
    "build": {"corpus": BASE_CORPUS, "args": ["--rebuild"], "prune": False, "rebuild": True},
    # An incremental update: only the changed and the new document are embedded.
    "update": {"corpus": UPDATE_CORPUS, "args": ["--prune"], "prune": True, "rebuild": False},
}
BATCH_SIZE = 2  # small batches: the embedding stage has many steps to be killed between


@dataclass
class Kill:
    scenario: str
    kind: str  # "time" or "exact"
    target: str  # delay in seconds, or "marker#n"
    stage: str  # last marker before the kill
    group: str  # loading / embedding / writing / ...
    live_after: str  # "old" (CURRENT unchanged) or "new" (the run had already switched)
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class Result:
    kills: list[Kill] = field(default_factory=list)
    missed: int = 0  # time-grid runs that finished before their kill delay (retried, not counted as kills)
    duration_s: dict[str, float] = field(default_factory=dict)  # uninterrupted run per scenario
    seconds: float = 0.0

    @property
    def survived(self) -> int:
        return sum(k.ok for k in self.kills)

    def by_group(self) -> dict[str, int]:
        return dict(Counter(k.group for k in self.kills))

    def summary(self) -> dict[str, Any]:
        return {
            "kills": len(self.kills),
            "survived": self.survived,
            "missed": self.missed,
            "by_group": self.by_group(),
            "by_scenario": dict(Counter(k.scenario for k in self.kills)),
            "live_after": dict(Counter(k.live_after for k in self.kills)),
            "uninterrupted_run_s": {k: round(v, 2) for k, v in self.duration_s.items()},
            "seconds": round(self.seconds, 1),
            "failures": [asdict(k) for k in self.kills if not k.ok],
        }


def _write_corpus(folder: Path, files: dict[str, str]) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _settings(index: Path) -> Settings:
    return Settings(index=index, batch_size=BATCH_SIZE)


def answers(index: Path, embedder) -> list[dict]:
    """What a fresh pipeline over ``index`` answers to ``QUESTIONS`` (timings aside)."""
    rag = RAG(_settings(index), embedder=embedder)
    out = []
    for q in QUESTIONS:
        d = rag.ask(q).to_dict()
        d.pop("timings_ms")
        out.append(d)
    rag.snapshot.index.close()
    return out


def _without_version(answer_list: list[dict]) -> list[dict]:
    return [{k: v for k, v in a.items() if k != "index_version"} for a in answer_list]


def rag_verify(index: Path) -> tuple[int, str]:
    """``rag verify --index`` run in-process through the CLI; (exit code, output)."""
    from typer.testing import CliRunner

    from rag.cli import app

    r = CliRunner().invoke(app, ["verify", "--index", str(index)])
    return r.exit_code, r.output


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "CRASH_"))}
    env["RAG_BATCH_SIZE"] = str(BATCH_SIZE)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(index: Path, corpus: Path, args: list[str], log: Path, pause: str | None = None) -> subprocess.Popen:
    env = _child_env()
    if pause:
        env["CRASH_PAUSE_AT"] = pause
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", WRAPPER, "ingest", str(corpus), "--index", str(index), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=str(index.parent),
        )


def _markers(stdout: bytes) -> list[tuple[float, str]]:
    out = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith(MARK + " "):
            _, t, stage = line.split(" ", 2)
            out.append((float(t), stage))
    return out


def _stage_at(markers: list[tuple[float, str]], t_kill: float) -> str:
    stage = "interpreter"  # killed before the wrapper printed anything
    for t, s in markers:
        if s == "paused":
            continue
        if t <= t_kill:
            stage = s
    return stage


def calibrate(work: Path, base_index: Path, corpus: Path, args: list[str]) -> tuple[float, list[tuple[float, str]]]:
    """Duration and markers (seconds after the start) of one uninterrupted run, on a copy of the base index."""
    index = work / "calibrate" / "index"
    shutil.rmtree(index.parent, ignore_errors=True)
    shutil.copytree(base_index, index)
    t0 = time.monotonic()
    proc = _spawn(index, corpus, args, work / "calibrate.log")
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"uninterrupted ingest failed ({proc.returncode}): {(work / 'calibrate.log').read_text()[-2000:]}")
    return time.monotonic() - t0, [(t - t0, s) for t, s in _markers(out)]


def _kill_after(proc: subprocess.Popen, delay: float, marker: str = TIME_GRID_FROM) -> tuple[float | None, bytes, float]:
    """SIGKILL ``proc`` ``delay`` s after it prints ``marker`` (unless it exits first);
    (kill time or None, stdout, when the marker was seen)."""
    seen = b""
    while True:  # markers arrive as they happen: wait for the one the delay counts from
        line = proc.stdout.readline()
        if not line:
            proc.wait(60)
            return None, seen, time.monotonic()
        seen += line
        if line.split()[-1:] == [marker.encode()]:
            break
    t_start = time.monotonic()
    deadline = t_start + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, seen + proc.stdout.read(), t_start
        time.sleep(min(0.002, max(deadline - time.monotonic(), 0)))
    t_kill = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    return (t_kill if proc.returncode == -signal.SIGKILL else None), seen + out, t_start


def _kill_at_marker(proc: subprocess.Popen) -> tuple[float | None, bytes]:
    """Wait for the child to pause at its marker, then SIGKILL it there."""
    seen = b""
    while True:
        line = proc.stdout.readline()
        if not line:  # exited without reaching the point
            proc.wait(60)
            return None, seen
        seen += line
        if line.split()[-1:] == [b"paused"]:
            t_kill = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
            return t_kill, seen + out


class Harness:
    """Owns the workspace, the shared embedder and the reference answers of each scenario."""

    def __init__(self, work: Path, embedder=None, log=print):
        from rag.embedding import E5Embedder

        self.work = work
        self.embedder = MemoEmbedder(embedder or E5Embedder())
        self.log = log
        self.base_corpus = _write_corpus(work / "corpus-base", BASE_CORPUS)
        self.base_index = work / "base" / "index"
        self._build_base()
        self.base_version = current_version(self.base_index)
        self.before = answers(self.base_index, self.embedder)
        self.corpora: dict[str, Path] = {}
        self.after: dict[str, list[dict]] = {}
        for name, sc in SCENARIOS.items():
            self.corpora[name] = _write_corpus(work / f"corpus-{name}", sc["corpus"])
            ref = self._fresh_copy(f"reference-{name}")
            self._clean_run(name, ref)
            self.after[name] = answers(ref, self.embedder)
            if _without_version(self.after[name]) == _without_version(self.before) and name == "update":
                raise RuntimeError("the update does not change any answer: the harness could not tell old from new")

    def _build_base(self) -> None:
        """Two versions (the live one and the previous), so the runs' garbage collection has work."""
        shutil.rmtree(self.base_index.parent, ignore_errors=True)
        rag = RAG(_settings(self.base_index), embedder=self.embedder)
        rag.ingest_paths([self.base_corpus])
        rag.ingest_paths([self.base_corpus], rebuild=True)
        rag.snapshot.index.close()

    def _fresh_copy(self, name: str) -> Path:
        index = self.work / name / "index"
        shutil.rmtree(index.parent, ignore_errors=True)
        shutil.copytree(self.base_index, index)
        return index

    def _clean_run(self, scenario: str, index: Path) -> None:
        """The scenario's ingest, run to completion in-process (what `rag ingest` does)."""
        sc = SCENARIOS[scenario]
        rag = RAG(_settings(index), embedder=self.embedder)
        rag.ingest_paths([self.corpora[scenario]], prune=sc["prune"], rebuild=sc["rebuild"])
        rag.snapshot.index.close()

    # --- one kill ---------------------------------------------------------------------------
    def check(self, scenario: str, index: Path) -> tuple[str, list[str]]:
        """Everything that must hold after a kill; (which version is live, problems)."""
        problems: list[str] = []
        try:
            idx = Index.open(index)
        except IndexProblem as exc:
            return "none", [f"index does not open: {exc}"]
        version = idx.version
        problems += [f"verify: {p}" for p in idx.verify()]
        idx.close()
        code, output = rag_verify(index)
        if code != 0:
            problems.append(f"rag verify exited {code}: {output.strip()[:300]}")
        if version == self.base_version:
            live, expected = "old", self.before
        elif version == self.base_version + 1:
            live, expected = "new", self.after[scenario]
        else:
            return f"v{version}", [*problems, f"unexpected live version {version}"]
        got = answers(index, self.embedder)
        for q, g, e in zip(QUESTIONS, got, expected, strict=False):
            if g != e:
                problems.append(f"answer changed for {q!r}: {g.get('answer')} != {e.get('answer')}")

        # A clean rerun goes through (the dead writer's lock died with it), ends up where an
        # uninterrupted run would, and cleans up what the killed one left behind.
        try:
            self._clean_run(scenario, index)
        except Exception as exc:  # noqa: BLE001 - reported as a failed kill, not a crash of the harness
            return live, [*problems, f"rerun failed: {type(exc).__name__}: {exc}"]
        idx = Index.open(index)
        problems += [f"after rerun, verify: {p}" for p in idx.verify()]
        idx.close()
        if _without_version(answers(index, self.embedder)) != _without_version(self.after[scenario]):
            problems.append("after rerun, answers differ from an uninterrupted run")
        leftovers = sorted(p.name for p in index.iterdir() if p.name.startswith(".tmp-"))
        if leftovers:
            problems.append(f"after rerun, leftovers remain: {leftovers}")
        return live, problems

    def kill_once(self, scenario: str, *, delay: float | None = None, point: tuple[str, int] | None = None) -> tuple[Kill | None, float]:
        """One killed run, and how long it ran after the time grid's start marker; no Kill when
        a time-grid run finished before its delay."""
        index = self._fresh_copy("trial")
        log = self.work / "trial" / "ingest.log"
        pause = f"{point[0]}#{point[1]}" if point else None
        proc = _spawn(index, self.corpora[scenario], SCENARIOS[scenario]["args"], log, pause)
        t0 = time.monotonic()
        try:
            if point:
                t_kill, out = _kill_at_marker(proc)
            else:
                t_kill, out, t0 = _kill_after(proc, delay or 0.0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        target = pause if point else f"{TIME_GRID_FROM}+{delay:.3f}s"
        ran = time.monotonic() - t0
        if t_kill is None:
            if point:  # an exact point the run never reached is a harness bug, not a miss
                return Kill(
                    scenario,
                    "exact",
                    target,
                    "never reached",
                    "-",
                    "-",
                    False,
                    [f"the run exited ({proc.returncode}) without reaching {pause}: {log.read_text()[-500:]}"],
                ), ran
            return None, ran
        stage = _stage_at(_markers(out), t_kill)
        live, problems = self.check(scenario, index)
        kill = Kill(scenario, "exact" if point else "time", target, stage, STAGE_GROUP.get(stage, stage), live, not problems, problems)
        self.log(
            f"  {scenario:6s} {kill.kind:5s} {target:>18s}  stage {stage:16s} live {live:4s} "
            + ("ok" if kill.ok else "FAILED: " + "; ".join(problems))
        )
        return kill, ran

    def run(self, *, time_points: int, exact_points: list[tuple[str, int]], scenarios: list[str] | None = None) -> Result:
        result = Result()
        t0 = time.monotonic()
        for scenario in scenarios or list(SCENARIOS):
            duration, markers = calibrate(self.work, self.base_index, self.corpora[scenario], SCENARIOS[scenario]["args"])
            result.duration_s[scenario] = duration
            first = {s: round(t, 2) for t, s in reversed(markers)}
            self.log(f"{scenario}: uninterrupted run {duration:.1f} s; stages start at {dict(sorted(first.items(), key=lambda x: x[1]))}")
            seen = Counter(s for _, s in markers)
            unreachable = [f"{m}#{n}" for m, n in exact_points if seen[m] < n]
            if unreachable:  # the wrapper lost track of a renamed internal: fail loudly, and early
                raise RuntimeError(f"an uninterrupted {scenario} run never reaches {unreachable} (markers seen: {dict(seen)})")
            starts = [t for t, s in markers if s == TIME_GRID_FROM]
            ends = [t for t, s in markers if s == "exit"]
            estimate = (ends[-1] if ends else duration) - (starts[0] if starts else 0.0)
            for i in range(time_points):
                for _ in range(3):  # a run that finished before its kill: retry at the same fraction of its real length
                    kill, finished_after = self.kill_once(scenario, delay=estimate * (i + 0.5) / time_points)
                    if kill is not None:
                        result.kills.append(kill)
                        break
                    result.missed += 1
                    estimate = finished_after
            for point in exact_points:
                kill, _ = self.kill_once(scenario, point=point)
                result.kills.append(kill)
        result.seconds = time.monotonic() - t0
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="The CI subset: fewer time-grid kills and exact points.")
    parser.add_argument("--time-points", type=int, default=None, help="Time-grid kills per scenario (default 14, quick 4).")
    parser.add_argument("--scenario", choices=list(SCENARIOS), action="append", help="Only this scenario (repeatable).")
    parser.add_argument("--work", type=Path, default=None, help="Workspace (default: a temporary directory, removed after).")
    parser.add_argument("--json", type=Path, default=None, help="Write the summary as JSON here.")
    args = parser.parse_args(argv)

    time_points = args.time_points if args.time_points is not None else (4 if args.quick else 14)
    exact = QUICK_EXACT if args.quick else EXACT_POINTS
    with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        harness = Harness(work)
        result = harness.run(time_points=time_points, exact_points=exact, scenarios=args.scenario)
    summary = {"date": time.strftime("%Y-%m-%d"), **result.summary()}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0 if result.survived == len(result.kills) and result.kills else 1


if __name__ == "__main__":
    sys.exit(main())
