"""Pure ASGI middleware: request context (id, access log, last-resort 500) and the body limit.

Order in the app, outermost first: CORS -> RequestContext -> BodyLimit -> routes. CORS sits
outside so even 413/429/500 answers carry CORS headers and a browser widget can read them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from email.message import Message as _MimeMessage

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
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
    JSON with 415. The accepted body is buffered (it is at most ``max_bytes``) and replayed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._reject(scope, receive, send, 400, "bad_request", "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return

        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nothing to answer
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        ctype = headers.get("content-type")
        if body and scope.get("method") in _BODY_METHODS and ctype and not _is_json(ctype):
            await self._reject(
                scope,
                receive,
                send,
                415,
                "unsupported_media_type",
                f"request bodies must be JSON (Content-Type: application/json), not {ctype.split(';')[0].strip()!r}",
            )
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for http.disconnect (streaming responses)

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._reject(scope, receive, send, 413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes")

    async def _reject(self, scope: Scope, receive: Receive, send: Send, status: int, type: str, message: str) -> None:
        rid = _state(scope).get("request_id")
        # Connection: close, since the rest of an oversized body is not read.
        response = JSONResponse(error_body(type, message, rid), status_code=status, headers={"Connection": "close"})
        await response(scope, receive, send)


def _is_json(content_type: str) -> bool:
    m = _MimeMessage()
    m["content-type"] = content_type
    sub = m.get_content_subtype()
    return m.get_content_maintype() == "application" and (sub == "json" or sub.endswith("+json"))
