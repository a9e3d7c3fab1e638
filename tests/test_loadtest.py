"""benchmarks/loadtest.py: the question mix it sends, and a short real run (wrk against
``rag serve``) that must finish with every request answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.text import detect_language

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "loadtest.py"


def test_question_mix_repeats_popular_questions_at_the_asked_share(load_script) -> None:
    lt = load_script("benchmarks/loadtest.py")
    popular, distinct = lt.question_pool()
    # without ../shared (no XQuAD) the pool holds ~800 distinct questions: stay below it
    n = min(2000, int(len(distinct) * 0.9))
    mix = lt.question_mix(n, 0.3, seed=1)
    repeats = sum(q in set(popular) for q in mix)
    assert 0.25 < repeats / len(mix) < 0.35
    rest = [q for q in mix if q not in set(popular)]
    assert len(set(rest)) == len(rest)  # the other 70% are all different questions
    langs = {detect_language(q) for q in mix}
    assert langs == {"ar", "en"}
    assert lt.question_mix(50, 0.3, seed=1) == lt.question_mix(50, 0.3, seed=1)  # reproducible


@pytest.mark.slow
def test_quick_load_test_answers_every_request(tmp_path, corpus_index) -> None:
    out = tmp_path / "loadtest.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--index", str(corpus_index), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    s = r["server"]
    assert s["requests"] > 0 and s["errors"] == 0
    assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert r["bare_loop"]["requests"] > 0 and r["bare_loop"]["concurrency"] == r["settings"]["connections"]
    assert r["throughput_over_bare"] == pytest.approx(s["rps"] / r["bare_loop"]["rps"], rel=0.01)
    assert "throughput / bare" in proc.stdout
