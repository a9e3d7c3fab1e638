"""A real ``rag serve`` in a child process on a free loopback port, started and stopped the one
way the bench, the load test, the soak run and the end-to-end tests need: as users run it.

The child gets the caller's environment without its ``RAG_`` variables (a developer's shell
settings must not leak into a measurement or a test), plus ``RAG_INDEX``, no rate limit (a
bench or a load test would otherwise measure the limiter; it is tested in process) and what the
caller passes. It counts as started when ``GET /ready`` answers 200.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ServeError(RuntimeError):
    """``rag serve`` exited, or was not ready in time; the message ends with its log."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rag_command() -> list[str]:
    """How to run this installation's ``rag`` command from a child process."""
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


@dataclass
class Served:
    """A running ``rag serve`` child."""

    proc: subprocess.Popen
    port: int
    log: Path
    killed: bool = False  # stop() had to kill it: it did not shut down on SIGTERM in time

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/ready")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a process manager stops it; killed when it has not stopped after
        ``timeout`` seconds. Its exit code (uvicorn re-raises the signal after a graceful
        shutdown, so ``-SIGTERM`` is a clean exit too)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(index: Path, work: Path, env: Mapping[str, str] | None = None, *, timeout: float = 180) -> Served:
    """Start ``rag serve`` over ``index`` with ``work`` as its folder (its log lands there) and
    wait until it is ready; a child that exits or is not ready in ``timeout`` seconds is
    stopped and reported with its log."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    child_env.update({"RAG_INDEX": str(index), "RAG_RATE_LIMIT_PER_MINUTE": "0", **(env or {})})
    log = work / f"serve-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*rag_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=work,
        )
    served = Served(proc, port, log)
    deadline = time.monotonic() + timeout
    while not served.ready():
        if proc.poll() is not None:
            raise ServeError(f"rag serve exited with {proc.returncode}:\n{served.log_tail()}")
        if time.monotonic() > deadline:
            served.stop()
            raise ServeError(f"rag serve not ready after {timeout:.0f} s:\n{served.log_tail()}")
        time.sleep(0.2)
    return served


@contextmanager
def serving(index: Path, work: Path, env: Mapping[str, str] | None = None, *, timeout: float = 180) -> Iterator[Served]:
    """``start``, then ``stop`` on the way out."""
    served = start(index, work, env, timeout=timeout)
    try:
        yield served
    finally:
        served.stop()
