"""A short soak (``benchmarks/soak.py``) in CI: a real ``rag serve`` under mixed ask/search load
with document updates for 30 s: no failed request, bounded memory, and a server log that holds
neither the admin token nor any question. The 10-minute run is the documented command; its last
result is in ``eval/RELIABILITY.md``."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow  # a server process under load for ~45 s


def test_short_soak_has_no_errors_and_bounded_memory(corpus_index, tmp_path, load_script) -> None:
    soak = load_script("benchmarks/soak.py")
    index = tmp_path / "index"
    shutil.copytree(corpus_index, index)
    server = soak.Server.start(index, tmp_path)
    lines: list[str] = []
    try:
        result = soak.soak(server, duration=30, concurrency=2, update_every=8, log=lines.append)
    finally:
        code = server.stop()
    summary = result.summary()
    print("\n".join(lines), summary)

    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["warmup_requests"] == 2 * len(soak.questions())
    assert summary["requests"] >= 30 and summary["requests_by_route"].keys() >= {"ask", "search", "add"}
    assert summary["document_updates"] >= 3 and len(summary["index_versions_served"]) >= 3
    assert result.rss_growth < soak.RSS_LIMIT, summary["rss_mib"]
    assert code in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown

    log = server.log.read_text(encoding="utf-8")
    assert '"api.access"' in log  # the log is there and has the request lines
    assert server.token not in log
    assert not [q for q in soak.questions() if q in log]
