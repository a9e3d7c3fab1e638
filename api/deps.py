"""What routes share: the app's ``RAG`` and settings, the bounded CPU pool, question checks.

Embedding and retrieval are CPU-bound and release the GIL only in parts, so they run in worker
threads, at most ``settings.workers`` at a time (an anyio ``CapacityLimiter``): the event loop
stays free for health checks, streaming and new connections while queries compute.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request

from api.access_log import fingerprint, log_fields
from api.errors import ApiError
from rag.config import Settings
from rag.index import IndexNotFound
from rag.pipeline import RAG, Snapshot
from rag.text import MIN_QUESTION_WORD_CHARS, word_characters

T = TypeVar("T")


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_rag(request: Request, *, need_index: bool = True) -> RAG:
    """The app's RAG; 503 while starting or (with ``need_index``) while no index exists."""
    rag = getattr(request.app.state, "rag", None)
    if rag is None:
        raise ApiError(503, "unavailable", "the service is starting", headers={"Retry-After": "2"})
    if need_index and not rag.ready:
        raise IndexNotFound("no index loaded")
    return rag


def on_live_version(rag: RAG, call: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, Snapshot]:
    """``call(*args, snapshot=s, **kwargs)`` on the live snapshot ``s`` (taken here, after picking
    up a version another process wrote), and ``s``: what a response reports besides the result
    (its version, its sources' URLs) comes from the version that produced it."""
    snap = rag.live()
    return call(*args, snapshot=snap, **kwargs), snap


async def run_cpu(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in the app's bounded worker pool."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=request.app.state.cpu_limiter)


def checked_question(request: Request, text: str, *, field: str = "question") -> str:
    """Reject empty and over-long questions (422) and note length + hash for the access log."""
    stripped = check_question_text(text, app_settings(request).max_question_chars, field=field)
    log_fields(request, q_chars=len(stripped), q_hash=fingerprint(stripped))
    return stripped


def check_question_text(text: str, limit: int, *, field: str = "question") -> str:
    """``text`` stripped, or ApiError 422 when it is empty, has fewer than two letters or digits,
    is not valid Unicode or is longer than ``limit``: the rules every entry point shares (the
    HTTP routes through ``checked_question``, the MCP tools directly)."""
    stripped = text.strip()
    if not stripped:
        raise ApiError(
            422,
            "validation_error",
            f"{field} must not be empty",
            details=[{"loc": [field], "msg": "must not be empty or whitespace", "type": "value_error"}],
        )
    if word_characters(stripped) < MIN_QUESTION_WORD_CHARS:
        raise ApiError(
            422,
            "validation_error",
            f"{field} must contain at least {MIN_QUESTION_WORD_CHARS} letters or digits",
            details=[
                {
                    "loc": [field],
                    "msg": f"at least {MIN_QUESTION_WORD_CHARS} letters or digits (invisible and control characters do not count)",
                    "type": "value_error",
                }
            ],
        )
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes like "\ud800"
        raise ApiError(
            422,
            "validation_error",
            f"{field} is not valid Unicode",
            details=[{"loc": [field], "msg": "contains a lone surrogate", "type": "unicode_error"}],
        ) from None
    if len(stripped) > limit:
        raise ApiError(
            422,
            "validation_error",
            f"{field} is too long: {len(stripped)} characters, the limit is {limit}",
            details=[{"loc": [field], "msg": f"at most {limit} characters", "type": "string_too_long"}],
        )
    return stripped
