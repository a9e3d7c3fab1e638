"""How ``rag serve`` runs uvicorn: its connection limits, trusted proxies, and the errors uvicorn
answers itself, in the common error shape.

* A request uvicorn's HTTP parser cannot read (e.g. ``Content-Length: abc`` or ``-1``, a bad
  header byte) never reaches the app: uvicorn answers it with a plain-text ``400 Invalid HTTP
  request received.``. The protocols here answer the same 400 (and close the connection, as
  uvicorn does) with ``{"error": {"type": "bad_request", ...}}``.
* **Header deadline.** uvicorn times out only idle keep-alive connections *after* a response: a
  connection that never sends a byte, or sends its headers one byte at a time (slowloris), is
  held forever. Here every request must deliver its complete headers within
  ``RAG_HEADER_TIMEOUT_S`` of the connection opening (or of its previous response); otherwise the
  connection is closed.
* **Connection cap.** Beyond ``RAG_MAX_CONNECTIONS`` open connections, a request gets a JSON 503
  with ``Retry-After`` and its connection is closed (uvicorn's own ``limit_concurrency`` answers
  in plain text).
* **Forwarded headers** (``X-Forwarded-For``/``-Proto``) are honoured only from the addresses in
  ``RAG_TRUSTED_PROXIES`` (default: none). uvicorn's default trusts 127.0.0.1, which let any
  same-host client pick its own address and so its own rate-limit bucket.

``uvicorn_options(settings)`` is what ``rag serve`` passes to ``uvicorn.run``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import error_body
from rag.config import Settings, comma_list

MESSAGE = "the request is not valid HTTP (malformed request line or headers, e.g. Content-Length)"
BUSY = "the service has too many open connections; retry shortly"


def _send_json(transport: asyncio.Transport, state: ServerState, status: bytes, body_obj: dict, extra: bytes = b"") -> None:
    body = json.dumps(body_obj).encode("ascii")
    head = [b"HTTP/1.1 " + status + b"\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in state.default_headers]
    head += [extra, b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode("ascii")]
    head += [b"\r\nconnection: close\r\n\r\n"]
    # Written raw, as uvicorn's own 400 is: the parser's state is unusable after the failure.
    transport.write(b"".join(head) + body)
    transport.close()


def _send_json_400(transport: asyncio.Transport, state: ServerState) -> None:
    _send_json(transport, state, b"400 Bad Request", error_body("bad_request", MESSAGE))


class JsonHttpToolsProtocol(HttpToolsProtocol):
    """httptools (uvicorn's default) with a JSON 400 for unparsable requests, a header deadline
    and a connection cap (class attributes; ``None`` = off, as in plain uvicorn)."""

    header_timeout: float | None = None
    max_connections: int | None = None

    _header_timer: asyncio.TimerHandle | None = None
    _over_limit = False

    def send_400_response(self, msg: str) -> None:
        _send_json_400(self.transport, self.server_state)

    # --- header deadline: armed when a connection opens and after each response; disarmed when a
    # request's headers are complete. Bytes that trickle in do not re-arm it (unlike keep-alive).
    def _arm_header_timer(self) -> None:
        if self.header_timeout is not None and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete request headers within %.1f s", self.header_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over_limit = self.max_connections is not None and len(self.connections) > self.max_connections
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        if self._over_limit:
            self.logger.warning("refused a request: more than %d open connections", self.max_connections)
            _send_json(
                self.transport,
                self.server_state,
                b"503 Service Unavailable",
                error_body("overloaded", BUSY),
                b"retry-after: 1\r\n",
            )
            return
        super().on_headers_complete()

    # A refused request's body is not read: the parser still calls these until it is closed.
    def on_body(self, body: bytes) -> None:
        if not self._over_limit:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._over_limit:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


class JsonH11Protocol(H11Protocol):
    """h11 with a JSON 400 for unparsable requests (no header deadline: ``rag serve`` runs httptools)."""

    def send_400_response(self, msg: str) -> None:
        _send_json_400(self.transport, self.server_state)


def http_protocol(settings: Settings) -> type[JsonHttpToolsProtocol]:
    """``JsonHttpToolsProtocol`` with the deadline and cap from ``settings``."""
    return type(
        "ServiceHttpProtocol",
        (JsonHttpToolsProtocol,),
        {
            "header_timeout": settings.header_timeout_s or None,
            "max_connections": settings.max_connections or None,
        },
    )


def trusted_proxies(settings: Settings) -> list[str]:
    return comma_list(settings.trusted_proxies)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run(app, **options)``: bind address, protocol, timeouts and
    which peers may set the client address through forwarded headers."""
    proxies = trusted_proxies(settings)
    return {
        "host": settings.host,
        "port": settings.port,
        "http": http_protocol(settings),
        "proxy_headers": bool(proxies),
        # uvicorn reads "" as "trust nobody"; its own default (None) would mean $FORWARDED_ALLOW_IPS or 127.0.0.1.
        "forwarded_allow_ips": ",".join(proxies),
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.graceful_shutdown_s or None,
        "log_level": "info",
        "access_log": False,
    }
