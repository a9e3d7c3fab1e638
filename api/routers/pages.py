"""The pages the service serves: ``GET /`` (demo page) and ``GET /widget.js`` from ``api/static``.

They carry the security headers: a Content-Security-Policy (scripts only from this origin, plus
the exact inline scripts of the demo page by their sha256; ``frame-ancestors`` from
``RAG_FRAME_ANCESTORS`` so sites may or may not embed the page), ``X-Content-Type-Options`` and
a referrer policy. widget.js is meant to be loaded by other sites, so it is cross-origin
readable (a CSP on a script file would have no effect); it is sent gzip-compressed to clients that
accept it, with a strong ETag per encoding so that a revalidation is a bodyless 304. Files are
read per request, so edits show without a restart. ``GET /favicon.ico`` answers 204 (no icon, and
no 404 in a browser's console; the demo page declares an inline icon).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.errors import ApiError
from api.schemas import error_responses

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["pages"], include_in_schema=True, responses=error_responses(404))

NONE = "'none'"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)


def _read(name: str) -> bytes:
    path = STATIC / name
    if not path.is_file():
        raise ApiError(404, "not_found", f"{name} is not installed (api/static/{name})")
    return path.read_bytes()


def script_hashes(html: str) -> str:
    """CSP sources for the page's inline scripts: ``'sha256-...'`` of each, space-separated."""
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'" for s in _INLINE_SCRIPT.findall(html)
    )


def content_security_policy(html: str, frame_ancestors: str) -> str:
    hashes = script_hashes(html)
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            "style-src 'self' 'unsafe-inline'",  # inline styles are harmless enough for a demo page
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors.strip() or NONE}",
        ]
    )


@router.get("/", response_class=Response, summary="Demo page with the chat widget")
@router.head("/", response_class=Response, include_in_schema=False)
async def index_page(request: Request) -> Response:
    html = _read("index.html").decode("utf-8")
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": content_security_policy(html, request.app.state.settings.frame_ancestors),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "Cache-Control": "no-cache",
        },
    )


@lru_cache(maxsize=4)
def _gzipped(data: bytes) -> bytes:
    """``data`` gzip-compressed (cached by content: the file is re-read, not re-compressed)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def accepts_gzip(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` without ``q=0``)."""
    allowed: dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name.strip():
            allowed[name.strip()] = q > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


def etag_matches(if_none_match: str, etag: str) -> bool:
    """``If-None-Match`` against ``etag`` with the weak comparison RFC 9110 asks for here."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


@router.get("/widget.js", response_class=Response, summary="The embeddable chat widget")
@router.head("/widget.js", response_class=Response, include_in_schema=False)
async def widget(request: Request) -> Response:
    data = _read("widget.js")
    digest = hashlib.sha256(data).hexdigest()[:32]
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": "public, max-age=300",
        "Vary": "Accept-Encoding",
    }
    # Each encoding is its own representation, so each has its own strong ETag.
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        data, etag = _gzipped(data), f'"{digest}-gz"'
        headers["Content-Encoding"] = "gzip"
    else:
        etag = f'"{digest}"'
    headers["ETag"] = etag
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/javascript; charset=utf-8", headers=headers)


@router.get("/favicon.ico", response_class=Response, status_code=204, summary="No icon (204), so browsers log no 404")
@router.head("/favicon.ico", response_class=Response, status_code=204, include_in_schema=False)
async def favicon() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})
