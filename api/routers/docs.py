"""The API documentation pages: ``/openapi.json``, ``/docs`` (Swagger UI), ``/docs/oauth2-redirect``
and ``/redoc``, served here rather than by FastAPI's defaults so that they

* carry a Content-Security-Policy: the pages are FastAPI's own, which load Swagger UI / ReDoc
  from cdn.jsdelivr.net (and ReDoc's fonts from Google Fonts). The policy allows exactly those
  hosts plus the page's own inline script by its sha256, and ``frame-ancestors 'none'`` (the docs
  are never meant to be framed). Without internet access (or with those hosts blocked) the pages
  stay blank; ``/openapi.json`` still serves the schema.
* follow ``RAG_PUBLIC_DOCS``: with ``RAG_API_KEYS`` set, they need a key unless it is true.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.routers.pages import script_hashes
from api.security import require_docs_access

OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
CDN = "https://cdn.jsdelivr.net"  # FastAPI's default asset host for both pages

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_docs_access)])


def docs_policy(html: str) -> str:
    """The CSP for one docs page: its inline scripts by hash, its CDN assets, nothing else."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {CDN} {script_hashes(html)}".strip(),
            # Swagger UI and ReDoc set inline styles from script; styles cannot run code.
            f"style-src 'self' 'unsafe-inline' {CDN} https://fonts.googleapis.com",
            "font-src 'self' https://fonts.gstatic.com",
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
            "connect-src 'self'",  # the pages fetch /openapi.json
            "worker-src blob:",  # ReDoc's search runs in a worker made from a blob
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _secured(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode("utf-8")
    page.headers["Content-Security-Policy"] = docs_policy(html)
    page.headers["Referrer-Policy"] = "no-referrer"
    page.headers["X-Frame-Options"] = "DENY"  # for browsers that ignore frame-ancestors
    return page


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get(OPENAPI_URL)
async def openapi(request: Request) -> JSONResponse:
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=root + OPENAPI_URL, title=f"{request.app.title} - Swagger UI", oauth2_redirect_url=root + OAUTH2_REDIRECT_URL
    )
    return _secured(page)


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return _secured(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _secured(get_redoc_html(openapi_url=_root(request) + OPENAPI_URL, title=f"{request.app.title} - ReDoc"))
