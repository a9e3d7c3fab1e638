"""``POST /ask`` (cited extractive answer) and ``GET /search`` (ranked passages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.deps import checked_question, get_rag, run_cpu
from api.schemas import (
    ASK_EXAMPLES,
    MAX_TOP_K,
    AskRequest,
    AskResponse,
    SearchResponse,
    error_responses,
)
from api.security import require_client
from rag.pipeline import RAG
from rag.schema import Passage

router = APIRouter(
    tags=["query"],
    dependencies=[Depends(require_client)],
    responses=error_responses(400, 401, 413, 415, 422, 429, 500, 503),
)


@router.post("/ask", response_model=AskResponse, summary="Answer a question with a cited span, or abstain")
async def ask(request: Request, body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)]) -> JSONResponse:
    """The same object ``rag ask --json`` prints. ``answerable: false`` (and ``answer: null``)
    when the documents do not hold the answer. Header ``X-Index-Version``: the index it came from."""
    question = checked_question(request, body.question)
    rag = get_rag(request)
    result = await run_cpu(request, rag.ask, question, body.top_k, language=body.language)
    return JSONResponse(result.to_dict(), headers={"X-Index-Version": str(result.index_version)})


def _search_one_version(rag: RAG, q: str, k: int) -> tuple[list[Passage], int]:
    """Search on one snapshot, taken here, so the version reported is the one searched even
    when an update swaps the index meanwhile."""
    rag.refresh()
    snap = rag.snapshot
    return rag.search(q, k, snapshot=snap), snap.index.version


@router.get("/search", response_model=SearchResponse, summary="Ranked passages for a query (hybrid dense + BM25)")
async def search(
    request: Request,
    q: Annotated[str, Query(description="The query, Arabic or English.", examples=["منتدى تبادل الخبرات الحكومية", "World Government Summit"])],
    k: Annotated[int | None, Query(ge=1, le=MAX_TOP_K, description="Passages to return (default RAG_TOP_K).")] = None,
) -> JSONResponse:
    query = checked_question(request, q, field="q")
    rag = get_rag(request)
    k = k or rag.settings.top_k
    passages, version = await run_cpu(request, _search_one_version, rag, query, k)
    return JSONResponse(
        {"query": query, "k": k, "passages": [p.to_dict() for p in passages], "index_version": version},
        headers={"X-Index-Version": str(version)},
    )
