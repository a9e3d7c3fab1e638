"""``POST /feedback``: was this answer helpful? (behind the API keys and rate limit of ``/ask``).

The span is checked against the live index: a document that exists must hold the offsets, and
its text there (``document.text[start:end]``) is stored with the record, so the collected file
stays meaningful after documents change. A document the live index does not hold is accepted
only when the client says its answer came from another index version (deleted or changed since:
stored with ``doc_found: false``, no text); otherwise it is a 422, as are offsets outside the
document. Storage: ``rag.feedback``. Off (404) with ``RAG_FEEDBACK=false``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Request

from api.access_log import log_fields
from api.deps import checked_question, get_rag, run_cpu
from api.errors import ApiError
from api.schemas import FEEDBACK_EXAMPLES, FeedbackAnswer, FeedbackRequest, FeedbackStored, error_responses
from api.security import require_client
from rag.feedback import AnswerRef, FeedbackFull, FeedbackStore, make_record
from rag.index import Index

log = logging.getLogger("api.feedback")

router = APIRouter(
    tags=["feedback"],
    dependencies=[Depends(require_client)],
    responses=error_responses(400, 401, 413, 415, 422, 429, 500, 503, 507),
)


def _span_error(message: str) -> ApiError:
    return ApiError(422, "validation_error", message, details=[{"loc": ["body", "answer"], "msg": message, "type": "value_error"}])


def resolve_answer(index: Index, answer: FeedbackAnswer, index_version: int | None) -> AnswerRef:
    """The span as stored: its text from ``index`` when the document holds it, else (only when
    the client's answer came from another index version) ``doc_found``/``text`` say what is missing."""
    other_version = index_version is not None and index_version != index.version
    row = index.doc_row.get(answer.doc_id)
    if row is None:
        if other_version:
            return AnswerRef(answer.doc_id, answer.start, answer.end, None, doc_found=False)
        raise _span_error(f"answer.doc_id: no document {answer.doc_id!r} in index version {index.version}")
    text = index.texts[row]
    if answer.end > len(text):
        if other_version:  # the document changed since: its old text is not at hand
            return AnswerRef(answer.doc_id, answer.start, answer.end, None, doc_found=True)
        raise _span_error(
            f"answer span {answer.start}..{answer.end} is outside document {answer.doc_id!r} "
            f"({len(text)} characters in index version {index.version})"
        )
    return AnswerRef(answer.doc_id, answer.start, answer.end, text[answer.start : answer.end], doc_found=True)


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackStored,
    summary="Record whether an answer was helpful",
)
async def post_feedback(request: Request, body: Annotated[FeedbackRequest, Body(openapi_examples=FEEDBACK_EXAMPLES)]) -> dict[str, Any]:
    """Send the question, ``helpful``, the answer's span (``doc_id``, ``start``, ``end`` from
    ``POST /ask`` or the chat reply's ``rag`` field; ``null`` when the service abstained) and its
    ``index_version``. Stored: those, the span's text, an optional comment (at most 1000
    characters), a UTC time and the request id; never the caller's address or API key."""
    question = checked_question(request, body.question)
    rag = get_rag(request, need_index=body.answer is not None)
    answer: AnswerRef | None = None
    live_version: int | None = None
    if rag.ready:
        index = (await run_cpu(request, rag.live)).index
        live_version = index.version
        if body.answer is not None:
            answer = resolve_answer(index, body.answer, body.index_version)
    record = make_record(
        question=question,
        helpful=body.helpful,
        answer=answer,
        language=body.language,
        index_version=body.index_version,
        live_index_version=live_version,
        comment=body.comment,
        request_id=getattr(request.state, "request_id", None),
    )
    store: FeedbackStore = request.app.state.feedback_store
    try:
        # File I/O with an fsync: a plain worker thread, not a slot of the CPU pool.
        await anyio.to_thread.run_sync(store.append, record)
    except FeedbackFull as exc:
        log.error("feedback not stored: %s", exc)
        raise ApiError(507, "feedback_full", "feedback storage is full: this feedback was not stored") from None
    except OSError:
        log.exception("feedback not stored: cannot write %s", store.path)
        raise ApiError(503, "feedback_unavailable", "feedback cannot be stored right now", headers={"Retry-After": "30"}) from None
    log_fields(request, feedback_id=record["id"], helpful=body.helpful)
    return {"id": record["id"], "stored": True}
