"""Pure ASGI middleware: Host allow-list, CORS with JSON refusals, request context (id, access
log, last-resort 500) and the body limit.

Order in the app, outermost first: HostAllowList -> CORS -> RequestContext -> BodyLimit -> routes.
The Host check comes first so a request under a name this service does not answer to (DNS
rebinding) reaches nothing; CORS sits outside the rest so even 413/429/500 answers carry CORS
headers and a browser widget can read them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
import uuid
from email.message import Message as _MimeMessage
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import log_access
from api.errors import error_body

log = logging.getLogger("api.errors")

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _state(scope: Scope) -> dict:
    # Request.state reads and writes scope["state"]; sharing it lets routes see the request id
    # and add access-log fields.
    return scope.setdefault("state", {})


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``, taken from the client when it is sane), write
    one access-log line, add ``X-Content-Type-Options: nosniff``, and turn any unexpected
    exception into a logged 500 in the common error shape (never a stack trace to the client)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        rid = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = _state(scope)
        state["request_id"] = rid
        t0 = time.perf_counter()
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), rid)
            if not started:
                response = JSONResponse(
                    error_body("internal_error", "internal server error; quote the request id when reporting it", rid),
                    status_code=500,
                )
                await response(scope, receive, send_with_headers)
            status = 500
        finally:
            client = scope.get("client")
            fields = {
                "request_id": rid,
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "latency_ms": round((time.perf_counter() - t0) * 1e3, 2),
                "client": state.get("client") or (f"addr:{client[0]}" if client else None),
                **state.get("log_fields", {}),
            }
            log_access(fields)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 (by ``Content-Length`` up front, and by counting
    the bytes actually received, since a client may lie or stream chunked), and bodies that are not
    JSON with 415. The accepted body is buffered (it is at most ``max_bytes``) and replayed.

    A refusal is not answered here but handed to the route (``request.state.body_refusal``, with
    an empty body): the route's access check (``api.security.Guard``) answers it once the key or
    token and the rate limit have passed. So a client without a key gets 401 like everywhere
    else, and oversized or non-JSON bodies count against the rate limit like any request. The
    body is still never read beyond ``max_bytes``; such answers close the connection.

    A body not complete within ``timeout_s`` of the request's start is refused with 408 the same
    way: the server's header timer stops once the headers are in, and without this a client that
    announces 100 bytes and sends 7 holds a connection (and its slot under the connection cap)
    for as long as it likes."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        refusal: tuple[int, str, str] | None = None
        body = b""
        if declared is not None and not declared.isdigit():
            refusal = (400, "bad_request", "invalid Content-Length header")
        elif declared is not None and int(declared) > self.max_bytes:
            refusal = self._too_large()
        else:
            chunks: list[bytes] = []
            total = 0
            try:
                async with asyncio.timeout(self.timeout_s):  # one deadline for the whole body (None: none)
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            return  # the client went away; nothing to answer
                        chunk = message.get("body", b"")
                        total += len(chunk)
                        if total > self.max_bytes:
                            refusal = self._too_large()
                            break
                        chunks.append(chunk)
                        if not message.get("more_body", False):
                            break
            except TimeoutError:
                refusal = (408, "request_timeout", f"the request body was not complete within {self.timeout_s:g} s")
            body = b"".join(chunks) if refusal is None else b""
            ctype = headers.get("content-type")
            if refusal is None and body and scope.get("method") in _BODY_METHODS and ctype and not _is_json(ctype):
                body = b""
                refusal = (
                    415,
                    "unsupported_media_type",
                    f"request bodies must be JSON (Content-Type: application/json), not {ctype.split(';')[0].strip()!r}",
                )

        if refusal is not None:
            _state(scope)["body_refusal"] = refusal

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for http.disconnect (streaming responses)

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The rest of a refused body is not read: the connection cannot be reused.
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, replay, send if refusal is None else send_closing)

    def _too_large(self) -> tuple[int, str, str]:
        return 413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes"


def _is_json(content_type: str) -> bool:
    m = _MimeMessage()
    m["content-type"] = content_type
    sub = m.get_content_subtype()
    return m.get_content_maintype() == "application" and (sub == "json" or sub.endswith("+json"))


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight (origin, method or header not allowed)
    answered in the common error shape instead of a plain-text 400."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")  # "Disallowed CORS origin, method"
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return JSONResponse(
            error_body("cors_rejected", f"CORS preflight refused: {reason.removeprefix('Disallowed CORS ')} not allowed"), 400, headers
        )


class HostAllowListMiddleware:
    """Serve only requests whose ``Host`` is allowed (``RAG_ALLOWED_HOSTS``); others get 400
    ``invalid_host`` in the common error shape.

    Patterns: exact names, ``*.example.com`` (subdomains), ``ip`` (any IP address literal) and
    ``*`` (anything). Starlette's ``TrustedHostMiddleware`` does the same matching but answers in
    plain text and has no rule for IP literals, hence this one. IP literals are safe to accept:
    DNS rebinding always arrives under the attacker's *name*, and a page that addresses the IP
    directly is cross-origin, which CORS already governs.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]):
        self.app = app
        patterns = [p.strip().lower() for p in allowed_hosts if p.strip()]
        self.allow_any = "*" in patterns
        self.allow_ip = "ip" in patterns
        self.names = frozenset(p for p in patterns if not p.startswith("*") and p != "ip")
        self.suffixes = tuple(p[1:] for p in patterns if p.startswith("*."))
        self._warned: set[str] = set()

    def allowed(self, host_header: str | None) -> bool:
        host = _host_name(host_header)
        if host is None:
            return False
        if self.allow_any or host in self.names or host.endswith(self.suffixes):
            return True
        if self.allow_ip:
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                pass
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_any:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if self.allowed(host):
            await self.app(scope, receive, send)
            return
        shown = (host or "")[:100]
        if len(self._warned) < 100 and shown not in self._warned:  # once per name: a misconfiguration, or a probe
            self._warned.add(shown)
            log.warning("refused Host %r: not in RAG_ALLOWED_HOSTS", shown)
        message = "this service does not answer to that Host name (see RAG_ALLOWED_HOSTS)"
        response = JSONResponse(error_body("invalid_host", message), status_code=400)
        await response(scope, receive, send)


def _host_name(host_header: str | None) -> str | None:
    """The lower-cased name or address of a Host header (brackets and port removed), or None."""
    if not host_header or any(ch in host_header for ch in "/?#@ \t\\"):
        return None
    try:
        parts = urlsplit("//" + host_header)
        _ = parts.port  # raises on a bad port
    except ValueError:
        return None
    return parts.hostname or None
