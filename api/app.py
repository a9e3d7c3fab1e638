"""The HTTP service: ``create_app(settings, rag)`` builds the FastAPI app.

The model and index load once, in the lifespan (not at import), in a worker thread; pass a
prebuilt ``rag`` to share one across apps (tests). ``rag serve`` runs this under uvicorn.

Routes: ``POST /ask``, ``GET /search``, ``GET /documents[/{id}]``, admin ``POST /documents`` and
``DELETE /documents/{id}``, ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``,
``GET /ready``, ``POST /feedback`` (unless ``RAG_FEEDBACK=false``), the pages ``GET /`` and ``GET /widget.js``, and the API docs ``/docs``, ``/redoc``,
``/openapi.json`` (``api.routers.docs``). Errors: see ``api.errors``; access rules: see
``api.security``; middleware order: see ``api.middleware``.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from functools import partial

import anyio
import anyio.to_thread
from fastapi import FastAPI
from starlette.routing import Route

from api.access_log import configure_logging
from api.errors import install_error_handlers
from api.mcp import MCP_PATH, McpEndpoint, mcp_lifespan
from api.middleware import BodyLimitMiddleware, HostAllowListMiddleware, JsonCORSMiddleware, RequestContextMiddleware
from api.routers import ask, chat, docs, documents, feedback, health, pages
from api.security import Guard
from rag.config import Settings, comma_list, get_settings
from rag.feedback import FeedbackStore
from rag.index import IndexProblem
from rag.pipeline import RAG

log = logging.getLogger("api.app")

DESCRIPTION = """\
Extractive question answering over Arabic and English documents: every answer is a verbatim,
cited span of a stored document (or an explicit "not in the documents").

* **Errors** always look like `{"error": {"type", "message", "details"?, "request_id"}}`.
* **API keys** (when `RAG_API_KEYS` is set): `X-API-Key: <key>` or `Authorization: Bearer <key>`.
* **Admin routes** need `Authorization: Bearer <RAG_ADMIN_TOKEN>`; they are disabled (403) when no
  token is configured.
* Query responses carry `X-Index-Version`; every response carries `X-Request-ID`.
"""


def _is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or 0.0.0.0 / :: (every interface)


def exposure_warnings(settings: Settings) -> list[str]:
    """What is risky about how this service is exposed (logged as warnings at start)."""
    if _is_loopback(settings.host):
        return []
    out = []
    if not settings.api_keys.strip() and "*" in comma_list(settings.cors_origins):
        out.append(
            f"listening on {settings.host} (beyond loopback) with open query routes (no RAG_API_KEYS) and "
            "CORS '*': any web page a visitor opens can query this service; set RAG_API_KEYS or RAG_CORS_ORIGINS"
        )
    if "*" in comma_list(settings.allowed_hosts):
        out.append("RAG_ALLOWED_HOSTS is '*': pages on any domain can reach this service through DNS rebinding")
    return out


def create_app(settings: Settings | None = None, rag: RAG | None = None) -> FastAPI:
    """Build the app. With ``rag`` given it is used as is (and not closed at shutdown)."""
    settings = settings or get_settings()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.cpu_limiter = anyio.CapacityLimiter(max(1, settings.workers))
        owned = app.state.rag is None
        if owned:
            t0 = time.perf_counter()
            # Loading the model and opening the index take seconds: keep the loop free meanwhile.
            # Opening an index only checks what loading touches, so a flipped byte inside a vector
            # file would be served as wrong answers: the version served first is verified in full
            # (versions this process writes later are trusted as written, others verified too).
            try:
                app.state.rag = await anyio.to_thread.run_sync(partial(RAG, settings, verify=True))
            except IndexProblem as exc:
                # A corrupt index or another embedder's index: refuse to start rather than serve wrong answers.
                log.error("cannot start: %s", exc)
                raise
            log.info("loaded model and index in %.1f s", time.perf_counter() - t0)
        for warning in exposure_warnings(settings):
            log.warning(warning)
        loaded: RAG = app.state.rag
        if loaded.ready:
            idx = loaded.snapshot.index
            log.info(
                "serving index version %d: %d documents, %d chunks, model %s", idx.version, idx.n_documents, idx.n_chunks, idx.model_id
            )
        else:
            log.warning("no index in %s: /ready answers 503 until documents are added", loaded.index_dir)
        try:
            async with mcp_lifespan(app) if settings.mcp else nullcontext():
                yield
        finally:
            if owned and loaded.ready:
                loaded.snapshot.index.close()

    app = FastAPI(
        title="rag-arabic",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        strict_content_type=False,  # a JSON body without Content-Type is read as JSON (curl -d ... works)
        # Served by api.routers.docs instead: with a CSP and RAG_PUBLIC_DOCS.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.rag = rag
    app.state.guard = Guard(settings)
    app.state.started_at = time.time()
    # Created here for apps used without their lifespan; the lifespan makes a fresh one per run.
    app.state.cpu_limiter = anyio.CapacityLimiter(max(1, settings.workers))

    install_error_handlers(app)
    routers = [ask.router, documents.read, documents.admin, chat.router, health.router, pages.router, docs.router]
    if settings.feedback:  # off: no route at all (404), and nothing in the OpenAPI schema
        routers.insert(1, feedback.router)
    for router in routers:
        app.include_router(router)
    app.state.feedback_store = FeedbackStore(settings.feedback_path, settings.feedback_max_bytes)  # no I/O until a POST
    if settings.mcp:
        # An ASGI endpoint (all methods): it answers POST, and a JSON 405 to the rest.
        app.router.routes.append(Route(MCP_PATH, McpEndpoint(app)))

    # add_middleware puts each new one outside the previous: the last added runs first.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(
        JsonCORSMiddleware,
        allow_origins=comma_list(settings.cors_origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        # Mcp-*: what MCP clients send and read (browser-based ones, e.g. the MCP Inspector).
        allow_headers=[
            "Content-Type",
            "Authorization",
            "X-API-Key",
            "X-Request-ID",
            "Mcp-Protocol-Version",
            "Mcp-Session-Id",
            "Mcp-Method",
            "Mcp-Name",
        ],
        expose_headers=["X-Request-ID", "X-Index-Version", "Retry-After", "Mcp-Session-Id"],
        allow_credentials=False,  # keys travel in headers, never cookies
        max_age=600,
    )
    app.add_middleware(HostAllowListMiddleware, allowed_hosts=comma_list(settings.allowed_hosts))
    return app
