"""The MCP endpoint: ``ask``, ``search`` and ``get_document`` as tools for AI assistants.

Built with the official ``mcp`` SDK (2.x, ``MCPServer``) and served over streamable HTTP at
``/mcp`` inside the FastAPI app, so assistants (Claude, IDE agents, ...) reach the same pipeline,
index version and answers as ``POST /ask``. The tools call what the HTTP routes call: the app's
live ``RAG`` (``app.state.rag``), in the app's bounded worker pool, with the same question rules
(``api.deps.check_question_text``) and ``top_k`` bounds; a bad input or a missing index is a tool
error (``isError``) with a clear message, never a crash.

Transport: stateless, with JSON responses (no SSE, no sessions): every POST is a self-contained
exchange, so one key and one rate-limit token per HTTP request, any number of uvicorn workers,
nothing kept between requests. The session manager runs in the app's lifespan (``mcp_lifespan``),
built afresh for each run of it.

Access (``McpEndpoint``): a mounted ASGI app gets no FastAPI dependencies, so the endpoint itself
runs the query routes' check, ``Guard.client`` (API key in ``X-API-Key`` or ``Authorization:
Bearer``, rate limit, body refusals), and answers 401/413/415/429 in the common error shape
(``api.errors``). The app's middleware (Host allow-list, CORS, request id and access log, body
limit) wraps ``/mcp`` like any route.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api.access_log import fingerprint, log_fields
from api.deps import check_question_text
from api.errors import ApiError, clip, error_body
from api.schemas import MAX_TOP_K
from rag.index import Index, IndexProblem
from rag.pipeline import RAG, Snapshot
from rag.schema import Passage as PipelinePassage

log = logging.getLogger("api.mcp")

MCP_PATH = "/mcp"
# get_document returns at most this many characters of a document's text: a window around the
# marked span (or the beginning) when the document is longer. Offsets always index the full text.
DOCUMENT_WINDOW_CHARS = 8000

T = TypeVar("T")

INSTRUCTIONS = """\
Extractive question answering over a collection of Arabic and English documents. Every answer is
a verbatim span of a stored document, with character offsets, or an explicit abstention when the
documents do not hold it. Use `ask` for questions, `search` to find passages, and `get_document`
to read a cited document with the span marked. Quote answers with their source; do not add facts
the documents do not state."""

ASK_DESCRIPTION = """\
Answer a question (Arabic or English) from the indexed documents with a cited, verbatim span.

Returns the answer span (text, doc_id, title, start, end, score), the sentence that holds it, and
the citations (passages with offsets), or abstained=true when the documents do not answer the
question. Offsets index the document text that get_document returns: text[start:end] is the span.
Ask in the documents' language when you can; the answer is always quoted, never translated.

Examples:
  ask(question='من هو الرئيس التنفيذي لشركة TMRW؟')
  ask(question='كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟', top_k=3)
  ask(question='Who is the CEO of TMRW?')"""

SEARCH_DESCRIPTION = """\
Ranked passages for a query (Arabic or English; hybrid dense + BM25 retrieval, reranked).

Each passage has doc_id, title, url, start, end, text and score; text is the document's
text[start:end]. Use it to explore what the documents say when ask abstains or you need more
context.

Examples:
  search(query='منتدى تبادل الخبرات الحكومية')
  search(query='القمة العالمية للحكومات', top_k=10)
  search(query='World Government Summit')"""

DOCUMENT_DESCRIPTION = f"""\
A document by its doc_id (as ask and search return it): id, title, url and text.

With start and end (character offsets, 0 <= start < end <= length), the span is marked:
marked.text == text[start:end] of the full document. Documents longer than
{DOCUMENT_WINDOW_CHARS} characters come back as a window of the text around the span (or
from the beginning): truncated=true, and window_start/window_end say where it lies.

Examples:
  get_document(doc_id='001_0119a74ef5d5a5df')
  get_document(doc_id='001_0119a74ef5d5a5df', start=0, end=120)"""

QuestionArg = Annotated[str, Field(description="The question, Arabic or English, e.g. 'من هو الرئيس التنفيذي لشركة TMRW؟'.")]
QueryArg = Annotated[str, Field(description="The search query, Arabic or English, e.g. 'منتدى تبادل الخبرات الحكومية'.")]
TopKArg = Annotated[int, Field(ge=1, le=MAX_TOP_K, description=f"Passages to cite or return (1 to {MAX_TOP_K}).")]


# --- structured output ----------------------------------------------------------------------


class TextSpan(BaseModel):
    text: str = Field(description="document text[start:end]")
    start: int
    end: int


class AnswerSpan(BaseModel):
    text: str = Field(description="The answer: a verbatim span, document text[start:end].")
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    score: float = Field(description="The reader's probability that the documents answer the question.")


class Passage(BaseModel):
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    text: str = Field(description="document text[start:end]")
    score: float = Field(description="The last ranking stage's score (one scale per list).")


class AskOutput(BaseModel):
    question: str
    language: str
    abstained: bool = Field(description="True when the documents do not answer the question (answer and sentence are null).")
    answer: AnswerSpan | None
    sentence: TextSpan | None = Field(description="The sentence of the answer's document that holds the answer.")
    citations: list[Passage] = Field(description="The passages behind the answer, best first.")
    index_version: int | None


class SearchOutput(BaseModel):
    query: str
    passages: list[Passage]
    index_version: int


class DocumentOutput(BaseModel):
    doc_id: str
    title: str
    url: str | None
    length: int = Field(description="len(text) of the full document; offsets index into it.")
    text: str = Field(description="The document text, or the window [window_start, window_end) of it when truncated.")
    window_start: int
    window_end: int
    truncated: bool = Field(
        description=f"True when the document is longer than {DOCUMENT_WINDOW_CHARS} characters and text is a window of it."
    )
    marked: TextSpan | None = Field(description="The span [start, end) when start and end were given: full document text[start:end].")
    index_version: int


# --- the pipeline, as the HTTP routes call it -------------------------------------------------


def _live_rag(app: FastAPI) -> RAG:
    """The app's RAG, or a tool error while it is starting or has no index (as ``get_rag``)."""
    rag: RAG | None = getattr(app.state, "rag", None)
    if rag is None:
        raise ToolError("the service is starting; try again in a few seconds")
    if not rag.ready:
        raise ToolError("no index is loaded yet: the service has no documents to answer from")
    return rag


async def _run_cpu(app: FastAPI, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` in the app's bounded worker pool (``api.deps.run_cpu``), index problems as tool errors."""
    try:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=app.state.cpu_limiter)
    except IndexProblem as exc:
        log.warning("index unavailable: %s", exc)
        raise ToolError("the index cannot be read; try again later") from None


def _on_live_version(rag: RAG, call: Callable[..., T], *args: Any) -> tuple[T, Snapshot]:
    snap = rag.live()
    return call(*args, snapshot=snap), snap


def _note(ctx: Context, **fields: Any) -> None:
    """Add fields to the access-log line of the HTTP request that carried this tool call."""
    request = ctx.request_context.request
    if isinstance(request, Request):
        log_fields(request, **fields)


def _question(app: FastAPI, ctx: Context, tool: str, text: str, field: str) -> str:
    """The question checked by the HTTP API's rules; a refusal becomes a tool error. The access
    log gets the tool and the question's length and hash, never its text."""
    _note(ctx, mcp_tool=tool)
    try:
        stripped = check_question_text(text, app.state.settings.max_question_chars, field=field)
    except ApiError as err:
        raise ToolError(err.message) from None
    _note(ctx, q_chars=len(stripped), q_hash=fingerprint(stripped))
    return stripped


def _url(index: Index, doc_id: str) -> str | None:
    row = index.doc_row.get(doc_id)
    return None if row is None else index.urls[row]


def _passage(p: PipelinePassage, index: Index) -> Passage:
    """A pipeline passage as the tools return it, with its document's URL."""
    return Passage(
        doc_id=p.doc_id,
        title=p.title,
        url=_url(index, p.doc_id),
        start=p.start,
        end=p.end,
        text=p.text,
        score=round(float(p.score), 6),
    )


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _result(output: BaseModel, text: str) -> CallToolResult:
    """Structured content (the tool's output schema) plus a text block for the model to read."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=output.model_dump(mode="json"))


def _passages_text(passages: list[Passage]) -> str:
    return "\n".join(f"[{i}] {p.title} ({p.doc_id}, characters {p.start}-{p.end}): {_one_line(p.text)}" for i, p in enumerate(passages, 1))


def _document_window(length: int, start: int | None, end: int | None) -> tuple[int, int]:
    """``[lo, hi)`` of at most ``DOCUMENT_WINDOW_CHARS`` characters: the whole text when it fits,
    else centred on the span (which fits: longer spans are refused), else the beginning."""
    if length <= DOCUMENT_WINDOW_CHARS:
        return 0, length
    if start is None or end is None:
        return 0, DOCUMENT_WINDOW_CHARS
    lo = max(0, start - (DOCUMENT_WINDOW_CHARS - (end - start)) // 2)
    lo = min(lo, length - DOCUMENT_WINDOW_CHARS)
    return lo, lo + DOCUMENT_WINDOW_CHARS


# --- the server -------------------------------------------------------------------------------


class _ClippedErrors(logging.Filter):
    """The SDK logs a failing handler with its traceback, and the exception's text can hold what
    the client sent: `prompts/get` with a 1 MB unknown name logged it twice, and under a rich
    handler took seconds per request on the event loop (the time grows with the square of the
    name). Such a record keeps its message and the exception's type and clipped text only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and len(str(exc)) > 300:
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {clip(str(exc), 300)}", ()
            record.exc_info, record.exc_text = None, None
        return True


_SDK_ERROR_LOGGERS = ("mcp.shared.jsonrpc_dispatcher", "mcp.server.mcpserver.server", "mcp.server.lowlevel.server")


def build_server(app: FastAPI) -> MCPServer:
    """The MCP server with its three read-only tools, over ``app``'s live state."""
    # The SDK's constructor calls logging.basicConfig with a rich handler. A no-op under `rag
    # serve`, which configures logging first; anywhere else (tests, `uvicorn --factory`) it would
    # take over the process's root logger, so the root holds a handler while it runs.
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server: MCPServer = MCPServer(
            "rag-arabic",
            title="Arabic/English document QA",
            instructions=INSTRUCTIONS,
            version=app.version,
            log_level="WARNING",  # the service's own logs go through `api.*`
        )
    finally:
        root.removeHandler(placeholder)
    for name in _SDK_ERROR_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if not any(isinstance(f, _ClippedErrors) for f in sdk_logger.filters):
            sdk_logger.addFilter(_ClippedErrors())
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

    @server.tool(title="Answer a question with a cited span", description=ASK_DESCRIPTION, annotations=read_only)
    async def ask(question: QuestionArg, ctx: Context, top_k: TopKArg = 5) -> Annotated[CallToolResult, AskOutput]:
        checked = _question(app, ctx, "ask", question, "question")
        rag = _live_rag(app)
        result, snap = await _run_cpu(app, _on_live_version, rag, rag.ask, checked, top_k)
        index = snap.index
        citations = [_passage(p, index) for p in result.citations]
        answer = sentence = None
        if result.answer is not None:
            a = result.answer
            answer = AnswerSpan(
                text=a.text,
                doc_id=a.doc_id,
                title=a.title,
                url=_url(index, a.doc_id),
                start=a.start,
                end=a.end,
                score=round(float(a.score), 6),
            )
            s = a.sentence
            # A sentence-level reader answers with the sentence itself.
            sentence = TextSpan(text=s.text, start=s.start, end=s.end) if s is not None else TextSpan(text=a.text, start=a.start, end=a.end)
        output = AskOutput(
            question=result.question,
            language=result.language,
            abstained=answer is None,
            answer=answer,
            sentence=sentence,
            citations=citations,
            index_version=result.index_version,
        )
        if answer is not None and sentence is not None:
            text = f"Answer: {answer.text}\nSource: {answer.title} (doc_id {answer.doc_id}, characters {answer.start}-{answer.end})"
            if (sentence.start, sentence.end) != (answer.start, answer.end):
                text += f"\nIn context: {_one_line(sentence.text, 600)}"
        else:
            text = "The documents do not answer this question (abstained)."
            if citations:
                text += " The closest passages:"
        if citations:
            text += "\n\nCitations:\n" + _passages_text(citations)
        return _result(output, text)

    @server.tool(title="Search passages", description=SEARCH_DESCRIPTION, annotations=read_only)
    async def search(query: QueryArg, ctx: Context, top_k: TopKArg = 5) -> Annotated[CallToolResult, SearchOutput]:
        checked = _question(app, ctx, "search", query, "query")
        rag = _live_rag(app)
        passages, snap = await _run_cpu(app, _on_live_version, rag, rag.search, checked, top_k)
        index = snap.index
        found = [_passage(p, index) for p in passages]
        output = SearchOutput(query=checked, passages=found, index_version=index.version)
        return _result(output, _passages_text(found) if found else "No passages found.")

    @server.tool(title="Read a document, optionally with a span marked", description=DOCUMENT_DESCRIPTION, annotations=read_only)
    async def get_document(
        doc_id: Annotated[str, Field(description="The document id, as ask and search return it.")],
        ctx: Context,
        start: Annotated[int | None, Field(description="Span start (character offset), with end.")] = None,
        end: Annotated[int | None, Field(description="Span end, exclusive: 0 <= start < end <= length.")] = None,
    ) -> Annotated[CallToolResult, DocumentOutput]:
        _note(ctx, mcp_tool="get_document")
        rag = _live_rag(app)
        index = (await _run_cpu(app, rag.live)).index  # one snapshot for the whole answer
        row = index.doc_row.get(doc_id)
        if row is None:
            raise ToolError(f"no document {clip(doc_id)!r} in index version {index.version}; use the doc_id that ask or search returned")
        full = index.texts[row]
        marked = None
        if start is not None or end is not None:
            if start is None or end is None or not (0 <= start < end <= len(full)):
                raise ToolError(f"a span needs both start and end with 0 <= start < end <= {len(full)} (got start={start}, end={end})")
            if end - start > DOCUMENT_WINDOW_CHARS:
                raise ToolError(f"the span is {end - start} characters long; at most {DOCUMENT_WINDOW_CHARS} can be marked")
            marked = TextSpan(text=full[start:end], start=start, end=end)
        lo, hi = _document_window(len(full), start, end)
        output = DocumentOutput(
            doc_id=doc_id,
            title=index.titles[row],
            url=index.urls[row],
            length=len(full),
            text=full[lo:hi],
            window_start=lo,
            window_end=hi,
            truncated=(lo, hi) != (0, len(full)),
            marked=marked,
            index_version=index.version,
        )
        head = f"{output.title} (doc_id {doc_id}, {len(full)} characters"
        head += f"; showing characters {lo}-{hi})" if output.truncated else ")"
        if output.url:
            head += f"\nURL: {output.url}"
        if marked is not None:
            head += f"\nMarked span (characters {start}-{end}): {marked.text}"
        return _result(output, f"{head}\n\n{output.text}")

    return server


def build_session_manager(app: FastAPI) -> StreamableHTTPSessionManager:
    """A fresh session manager for one run of the app (a manager runs only once)."""
    server = build_server(app)
    # The SDK's own checks are turned off on purpose. Its DNS-rebinding protection (a Host and
    # Origin allow-list, switched on by default for a loopback `host`) would refuse every name
    # RAG_ALLOWED_HOSTS allows beyond localhost, with a plain-text 421. Ours applies instead:
    # HostAllowListMiddleware, outermost in the app, refuses any other Host for /mcp as for
    # every route (400 invalid_host, our patterns: names, *.domain, ip), and browsers' cross-
    # origin requests are governed by CORS (RAG_CORS_ORIGINS) and API keys, as on the query
    # routes. The body limit is ours too (BodyLimitMiddleware, RAG_MAX_BODY_BYTES; the SDK's is
    # set to the same value and never reached first).
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=app.state.settings.max_body_bytes,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server.session_manager


@asynccontextmanager
async def mcp_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the MCP session manager for as long as the app runs (part of the app's lifespan)."""
    manager = build_session_manager(app)
    async with manager.run():
        app.state.mcp = manager
        try:
            yield
        finally:
            app.state.mcp = None


class McpEndpoint:
    """The ASGI app at ``/mcp``: the query routes' access check, then the MCP session manager."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            self.app.state.guard.client(request)  # key, rate limit, then body refusals (413/415/400)
            if request.method != "POST":
                # Stateless: no server-to-client stream (GET) and no session to end (DELETE). The
                # SDK would hold a GET open as an event stream that never sends anything.
                raise ApiError(
                    405, "method_not_allowed", "the MCP endpoint takes POST (stateless streamable HTTP)", headers={"Allow": "POST"}
                )
            manager: StreamableHTTPSessionManager | None = getattr(self.app.state, "mcp", None)
            if manager is None:
                raise ApiError(503, "unavailable", "the service is starting", headers={"Retry-After": "2"})
            if "content-type" not in request.headers:
                # Other content types are refused by the guard's body check (415, above); without
                # this a missing one would get the SDK's plain-text 400.
                raise ApiError(415, "unsupported_media_type", "MCP messages must be JSON: send Content-Type: application/json")
        except ApiError as err:
            rid = scope.get("state", {}).get("request_id")
            response = JSONResponse(error_body(err.type, err.message, rid, err.details), status_code=err.status, headers=err.headers)
            await response(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)
