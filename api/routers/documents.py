"""Documents: read (query routes) and add/update/delete (admin routes).

Writes run in the worker pool; ``RAG.ingest_documents``/``RAG.remove`` write a new complete index
version aside, switch ``CURRENT`` atomically and reload, so the next query sees the change and no
query ever sees a half-written index. Document ids may contain '/' (paths below the corpus).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from api.access_log import log_fields
from api.deps import get_rag, run_cpu
from api.errors import MAX_DETAILS, ApiError, clip
from api.schemas import (
    INGEST_EXAMPLES,
    DeleteResponse,
    DocumentIn,
    DocumentList,
    DocumentOut,
    IngestResponse,
    error_responses,
)
from api.security import require_admin, require_client
from rag.index import Index
from rag.loading import documents_from_records

read = APIRouter(
    tags=["documents"],
    dependencies=[Depends(require_client)],
    responses=error_responses(401, 404, 422, 429, 500, 503),
)
admin = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 500, 503),
)


def _set_version(response: Response, version: int | None) -> None:
    if version is not None:
        response.headers["X-Index-Version"] = str(version)


async def _live_index(request: Request) -> Index:
    """The live index, after picking up a version another process wrote (as queries do)."""
    rag = get_rag(request)
    return (await run_cpu(request, rag.live)).index


@read.get("/documents", response_model=DocumentList, summary="List indexed documents")
async def list_documents(request: Request, response: Response) -> dict[str, Any]:
    index = await _live_index(request)
    docs = [
        {"doc_id": d, "title": t, "url": u, "length": len(x)}
        for d, t, u, x in zip(index.doc_ids, index.titles, index.urls, index.texts, strict=True)
    ]
    _set_version(response, index.version)
    return {"documents": docs, "index_version": index.version}


@read.get(
    "/documents/{doc_id:path}",
    response_model=DocumentOut,
    response_model_exclude_unset=True,
    summary="A document's text, optionally with a span marked",
)
async def get_document(
    request: Request,
    response: Response,
    doc_id: str,
    start: Annotated[int | None, Query(description="Span start (character offset, with end).")] = None,
    end: Annotated[int | None, Query(description="Span end, exclusive; 0 <= start < end <= length.")] = None,
) -> dict[str, Any]:
    """The stored (cleaned) text: every ``start``/``end`` the service returns indexes into it.
    With ``?start=&end=`` also ``marked`` = the text split into before / span / after."""
    index = await _live_index(request)  # one snapshot for the whole answer
    row = index.doc_row.get(doc_id)
    if row is None:
        raise ApiError(404, "not_found", f"no document {clip(doc_id)!r} in index version {index.version}")
    text = index.texts[row]
    out: dict[str, Any] = {
        "doc_id": doc_id,
        "title": index.titles[row],
        "url": index.urls[row],
        "text": text,
        "length": len(text),
        "index_version": index.version,
    }
    if start is not None or end is not None:
        if start is None or end is None or not (0 <= start < end <= len(text)):
            raise ApiError(
                422,
                "validation_error",
                f"span needs both start and end with 0 <= start < end <= {len(text)} (got start={start}, end={end})",
                details=[{"loc": ["query", "start"], "msg": f"0 <= start < end <= {len(text)}", "type": "value_error"}],
            )
        out["marked"] = {"start": start, "end": end, "before": text[:start], "span": text[start:end], "after": text[end:]}
    _set_version(response, index.version)
    return out


@admin.post("/documents", response_model=IngestResponse, summary="Add or update documents (admin)")
async def add_documents(
    request: Request,
    response: Response,
    body: Annotated[DocumentIn | list[DocumentIn], Body(openapi_examples=INGEST_EXAMPLES)],
) -> dict[str, Any]:
    """One object or a list. All or nothing: if any record cannot be used (e.g. its text is empty
    after cleaning, duplicate ids), nothing is written and the reasons come back as a 422."""
    records = body if isinstance(body, list) else [body]
    if not records:
        raise ApiError(422, "validation_error", "no documents given")
    loaded = documents_from_records([r.model_dump(exclude_none=True) for r in records])
    if loaded.skipped:
        raise ApiError(
            422,
            "validation_error",
            f"{len(loaded.skipped)} of {len(records)} documents cannot be indexed; nothing was written",
            details=[{"loc": ["body", s.path], "msg": clip(s.reason, 300), "type": "value_error"} for s in loaded.skipped[:MAX_DETAILS]],
        )
    rag = get_rag(request, need_index=False)  # the first documents may create the index
    try:
        report = await run_cpu(request, rag.ingest_documents, loaded.documents)
    except OSError as exc:
        raise _write_failed(exc) from exc
    log_fields(request, documents=len(loaded.documents), index_version=report.version)
    _set_version(response, report.version)
    return {"index_version": report.version, "added": report.added, "updated": report.updated, "unchanged": report.unchanged}


@admin.delete("/documents/{doc_id:path}", response_model=DeleteResponse, summary="Delete a document (admin)")
async def delete_document(request: Request, response: Response, doc_id: str) -> dict[str, Any]:
    rag = get_rag(request)
    # No check against this process's snapshot first: it may predate a version another process
    # wrote (a CLI ingest), and a document added there answered 404 until a query refreshed it.
    # The remover checks the live version under the writer lock.
    try:
        report = await run_cpu(request, rag.remove, [doc_id])
    except KeyError:
        raise ApiError(404, "not_found", f"no document {clip(doc_id)!r} in the index") from None
    except OSError as exc:
        raise _write_failed(exc) from exc
    log_fields(request, index_version=report.version)
    _set_version(response, report.version)
    return {"index_version": report.version, "removed": report.removed}


def _write_failed(exc: OSError) -> ApiError:
    """A write the disk refused (full, read-only): the previous version stays live and answers."""
    return ApiError(503, "unavailable", f"the index could not be written ({exc.strerror or exc}); nothing changed")
