"""Starting and stopping a ``rag serve`` child (``rag.serving``), with small stand-in servers
in place of ``rag`` so each path (ready, exited, never ready, deaf to SIGTERM) is quick to reach.
The real ``rag serve`` goes through the same code in the API, MCP, widget and soak tests."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from rag import serving

pytestmark = pytest.mark.slow  # starts processes

# Answers GET /ready with 200 (or 503 with --never-ready), logs its environment's RAG_INDEX and
# whether a RAG_SECRET of the parent reached it; on SIGTERM prints uvicorn's last line and exits,
# or, with --deaf, ignores it.
STAND_IN = textwrap.dedent(
    """
    import os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    argv = sys.argv[1:]
    port = int(argv[argv.index("--port") + 1])
    mode = os.environ.get("STAND_IN_MODE", "")
    if mode == "exit":
        print("cannot open the index", flush=True)
        sys.exit(3)

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503 if mode == "never-ready" else 200 if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    def on_term(*_):
        if mode == "deaf":
            return
        print("Application shutdown complete.", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print("index", os.environ.get("RAG_INDEX"), "secret", os.environ.get("RAG_SECRET"),
          "limit", os.environ.get("RAG_RATE_LIMIT_PER_MINUTE"), flush=True)
    HTTPServer(("127.0.0.1", port), Ready).serve_forever()
    """
)


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    monkeypatch.setattr(serving, "rag_command", lambda: [sys.executable, str(script)])
    monkeypatch.setenv("RAG_SECRET", "from the parent shell")
    return tmp_path


def test_ready_child_gets_its_index_not_our_rag_variables_and_stops_on_sigterm(stand_in: Path) -> None:
    with serving.serving(stand_in / "index", stand_in, {"STAND_IN_MODE": "ok"}, timeout=30) as served:
        assert served.ready() and served.base == f"http://127.0.0.1:{served.port}"
        assert served.log.parent == stand_in
    assert served.proc.returncode == 0 and not served.killed
    log = served.log_tail()
    assert f"index {stand_in / 'index'} secret None limit 0" in log  # RAG_INDEX set, our RAG_SECRET dropped, no rate limit
    assert log.rstrip().endswith("Application shutdown complete.")


def test_a_child_that_exits_is_reported_with_its_log(stand_in: Path) -> None:
    with pytest.raises(serving.ServeError, match=r"exited with 3:\ncannot open the index"):
        serving.start(stand_in / "index", stand_in, {"STAND_IN_MODE": "exit"}, timeout=30)


def test_a_child_never_ready_is_stopped_and_reported(stand_in: Path) -> None:
    with pytest.raises(serving.ServeError, match="not ready after 2 s"):
        serving.start(stand_in / "index", stand_in, {"STAND_IN_MODE": "never-ready"}, timeout=2)
    log = next(stand_in.glob("serve-*.log")).read_text()
    assert log.rstrip().endswith("Application shutdown complete.")  # stopped, not left running


def test_a_child_deaf_to_sigterm_is_killed_and_says_so(stand_in: Path) -> None:
    served = serving.start(stand_in / "index", stand_in, {"STAND_IN_MODE": "deaf"}, timeout=30)
    code = served.stop(timeout=1)
    assert served.killed and code == -9 and served.proc.poll() is not None
