"""``POST /ask`` (cited extractive answer) and ``GET /search`` (ranked passages)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from api.access_log import log_fields
from api.conversation import resolve_turns
from api.deps import app_settings, checked_question, get_rag, on_live_version, run_cpu
from api.schemas import (
    ASK_EXAMPLES,
    MAX_TOP_K,
    AskRequest,
    AskResponse,
    SearchResponse,
    error_responses,
)
from api.security import require_client
from rag.stages import Query as AnalysedQuestion

router = APIRouter(
    tags=["query"],
    dependencies=[Depends(require_client)],
    responses=error_responses(400, 401, 413, 415, 422, 429, 500, 503),
)


@router.post(
    "/ask",
    response_model=AskResponse,
    response_model_exclude_unset=True,
    summary="Answer a question with a cited span, or abstain",
)
async def ask(request: Request, response: Response, body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)]) -> dict[str, Any]:
    """The same object ``rag ask --json`` prints. ``answerable: false`` (and ``answer: null``)
    when the documents do not hold the answer. Header ``X-Index-Version``: the index it came from."""
    question = checked_question(request, body.question)
    rag = get_rag(request)
    asked: str | AnalysedQuestion = question
    if body.previous:  # a follow-up is read as the chat endpoint reads one (api.conversation)
        resolved = resolve_turns([*body.previous, question], rag.embedder.token_count, app_settings(request).chat_topic_tokens)
        if resolved is not None and resolved.topic is not None:
            log_fields(request, follow_up=True, topic_chars=len(resolved.topic))
            asked = resolved.query(body.language)
    result = await run_cpu(request, rag.ask, asked, body.top_k, language=body.language)
    response.headers["X-Index-Version"] = str(result.index_version)
    return result.to_dict()


@router.get(
    "/search",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    summary="Ranked passages for a query (hybrid dense + BM25, reranked)",
)
async def search(
    request: Request,
    response: Response,
    q: Annotated[
        str, Query(description="The query, Arabic or English.", examples=["منتدى تبادل الخبرات الحكومية", "World Government Summit"])
    ],
    k: Annotated[int | None, Query(ge=1, le=MAX_TOP_K, description="Passages to return (default RAG_TOP_K).")] = None,
) -> dict[str, Any]:
    query = checked_question(request, q, field="q")
    rag = get_rag(request)
    k = k or rag.settings.top_k
    passages, snap = await run_cpu(request, on_live_version, rag, rag.search, query, k)
    response.headers["X-Index-Version"] = str(snap.index.version)
    return {"query": query, "k": k, "passages": [p.to_dict() for p in passages], "index_version": snap.index.version}
