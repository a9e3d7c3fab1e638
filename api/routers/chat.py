"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

Existing chat clients work unchanged (``OpenAI(base_url=".../v1", api_key=...)``). The reply is
the extractive answer with a ``[1]`` marker and a sources list; structured ``citations`` and the
full ``rag`` result ride along as extra fields (in the last chunk when streaming). How a short
follow-up is resolved against earlier turns: see ``api.conversation``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import StreamingResponse

from api.access_log import log_fields
from api.conversation import (
    render_reply,
    reply_language,
    resolve_question,
    stream_pieces,
)
from api.deps import app_settings, checked_question, get_rag, on_live_version, run_cpu
from api.errors import ApiError, clip
from api.schemas import (
    CHAT_EXAMPLES,
    ChatCompletion,
    ChatRequest,
    ModelCard,
    ModelList,
    error_responses,
)
from api.security import require_client

MODEL_ID = "rag-extractive"
OWNER = "rag-arabic"

router = APIRouter(
    prefix="/v1",
    tags=["openai-compatible"],
    dependencies=[Depends(require_client)],
    responses=error_responses(400, 401, 413, 415, 422, 429, 500, 503),
)


def _model_card(created: int) -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": OWNER}


def _created(request: Request) -> int:
    return int(getattr(request.app.state, "started_at", 0))


@router.get("/models", response_model=ModelList, summary="The one model this service offers")
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": [_model_card(_created(request))]}


@router.get("/models/{model_id}", response_model=ModelCard, responses=error_responses(404), summary="Describe a model")
async def get_model(request: Request, model_id: str) -> dict:
    if model_id != MODEL_ID:
        raise ApiError(404, "not_found", f"unknown model {clip(model_id)!r}; this service offers {MODEL_ID!r}")
    return _model_card(_created(request))


def _words(text: str) -> int:
    return len(text.split())


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    response_model_exclude_unset=True,
    summary="Chat completion (OpenAI protocol), answered extractively with citations",
    responses={
        200: {"content": {"text/event-stream": {"description": "With stream: true, chat.completion.chunk events ending with [DONE]."}}}
    },
)
async def chat_completions(request: Request, response: Response, body: Annotated[ChatRequest, Body(openapi_examples=CHAT_EXAMPLES)]) -> Any:
    embedder = get_rag(request, need_index=False).embedder  # its tokens bound the follow-up's topic
    resolved = resolve_question(body.messages, embedder.token_count, app_settings(request).chat_topic_tokens)
    if resolved is None:
        raise ApiError(
            422,
            "validation_error",
            "messages must contain a user message with text",
            details=[{"loc": ["body", "messages"], "msg": "no user message with text content", "type": "value_error"}],
        )
    checked_question(request, resolved.turn, field="messages[-1].content")
    log_fields(request, follow_up=resolved.topic is not None, stream=body.stream)
    if resolved.topic is not None:
        log_fields(request, topic_chars=len(resolved.topic))
    rag = get_rag(request)
    # the sources' URLs must come from the version that produced the answer
    result, snap = await run_cpu(request, on_live_version, rag, rag.ask, resolved.query(), body.top_k)
    index = snap.index
    language = reply_language(resolved.turn)
    urls = {}
    if result.answer is not None and result.answer.doc_id in index.doc_row:
        urls[result.answer.doc_id] = index.urls[index.doc_row[result.answer.doc_id]]
    content, citations = render_reply(result, language, urls)

    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    fingerprint = f"index-v{result.index_version}"
    headers = {"X-Index-Version": str(result.index_version)}
    prompt_words = sum(_words(m.content) if isinstance(m.content, str) else 0 for m in body.messages)

    if not body.stream:
        response.headers.update(headers)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": _words(content), "total_tokens": prompt_words + _words(content)},
            "citations": citations,
            "rag": result.to_dict(),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    async def events() -> AsyncIterator[str]:
        # The answer is already computed: streaming only paces its delivery in the protocol's shape.
        yield chunk({"role": "assistant", "content": ""})
        for piece in stream_pieces(content):
            yield chunk({"content": piece})
        yield chunk({}, "stop", citations=citations, rag=result.to_dict())
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
