"""``GET /health`` (the process answers) and ``GET /ready`` (an index is loaded and queryable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from api.errors import error_response
from api.schemas import Health, Ready, error_responses
from api.security import require_ready_access

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Ready,
    responses=error_responses(401, 429, 503),
    dependencies=[Depends(require_ready_access)],
    summary="Readiness: index loaded (needs a key when RAG_API_KEYS is set and RAG_PUBLIC_READY is false)",
)
async def ready(request: Request, response: Response) -> Any:
    """200 with counts, model id and index version once an index is loaded; 503 before."""
    rag = getattr(request.app.state, "rag", None)
    if rag is None or not rag.ready:
        reason = "the service is starting" if rag is None else "no index is loaded yet"
        return error_response(request, 503, "index_unavailable", reason, headers={"Retry-After": "5"})
    index = rag.snapshot.index
    response.headers["X-Index-Version"] = str(index.version)
    return {
        "status": "ready",
        "documents": index.n_documents,
        "chunks": index.n_chunks,
        "model": index.model_id,
        "index_version": index.version,
    }
