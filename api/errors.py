"""One JSON error shape for every 4xx/5xx the service sends.

    {"error": {"type": "validation_error", "message": "...", "details": [...], "request_id": "..."}}

``details`` is present only when there is something itemised to say (validation errors,
skipped records). Handlers here replace FastAPI's defaults (``{"detail": ...}``) so clients,
the widget and the OpenAI client (which reads ``error.message``) see the same thing everywhere.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.index import IndexNotFound, IndexProblem

log = logging.getLogger("api.errors")

# Error type per status for errors raised as plain HTTPException (e.g. by the router: 404, 405).
_TYPE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise anywhere in a request to answer with the common error shape."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details
        self.headers = headers


def error_body(type: str, message: str, request_id: str | None = None, details: list | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type, "message": message}
    if details:
        err["details"] = details
    if request_id:
        err["request_id"] = request_id
    return {"error": err}


def error_response(
    request: Request | None,
    status: int,
    type: str,
    message: str,
    *,
    details: list | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    rid = getattr(request.state, "request_id", None) if request is not None else None
    return JSONResponse(error_body(type, message, rid, details), status_code=status, headers=headers)


MAX_DETAILS = 20  # validation errors listed in a 422; the message counts them all
MAX_ECHO_CHARS = 100  # of a client's text (a key, an id, a path) quoted back in an error


def clip(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters for quoting in an error: an answer never grows with
    the size of what was sent (a 1 MB id, 50,000 bad list items)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The first ``MAX_DETAILS`` pydantic errors, without the echoed input (could be large or
    secret) or internal URLs; locations that hold a client's dict keys are clipped."""
    out = []
    for e in exc.errors()[:MAX_DETAILS]:
        loc = [clip(str(x)) for x in e.get("loc", ())]
        out.append({"loc": loc, "msg": clip(str(e.get("msg", "invalid value")), 300), "type": e.get("type", "value_error")})
    return out


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status, exc.type, exc.message, details=exc.details, headers=exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 400:  # a body FastAPI could not parse: also before the route's dependencies ran
        denied = await _access_denied(request)
        if denied is not None:
            return denied
    message = exc.detail if isinstance(exc.detail, str) else _TYPE_BY_STATUS.get(status, "error").replace("_", " ")
    if status == 404 and message == "Not Found":
        message = f"no route for {request.method} {clip(request.url.path)}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {clip(request.url.path)}"
    return error_response(
        request,
        status,
        _TYPE_BY_STATUS.get(status, "error" if status < 500 else "internal_error"),
        message,
        headers=getattr(exc, "headers", None),
    )


async def _access_denied(request: Request) -> JSONResponse | None:
    """Run the route's access checks (admin token / API key / rate limit), if it has any.

    FastAPI decodes a JSON body *before* it runs a route's dependencies, so without this a
    client with no token would get "invalid JSON" (and skip the rate limit) where every other
    request of theirs gets 401 or 429: access is checked first, always."""
    from api.security import require_admin, require_client  # api.security imports this module

    route = request.scope.get("route")
    for dep in getattr(route, "dependencies", ()):
        if dep.dependency in (require_admin, require_client):
            try:
                await dep.dependency(request)
            except ApiError as err:
                return await _api_error(request, err)
    return None


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    refusal = getattr(request.state, "body_refusal", None)
    if refusal is not None:  # a body refused before routing (api.middleware), on a route with no access check
        return error_response(request, refusal[0], refusal[1], refusal[2], headers={"Connection": "close"})
    details = validation_details(exc)
    errors = len(exc.errors())
    bad_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
    if bad_json:
        denied = await _access_denied(request)
        if denied is not None:
            return denied
        reason = (bad_json[0].get("ctx") or {}).get("error", "JSON decode error")
        pos = bad_json[0].get("loc", ("body", "?"))[-1]
        return error_response(request, 400, "invalid_json", f"request body is not valid JSON: {reason} at position {pos}")
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(x for x in first["loc"] if x != "body") or "body"
    message = f"{where}: {first['msg']}" + (f" (and {errors - 1} more)" if errors > 1 else "")
    return error_response(request, 422, "validation_error", message, details=details)


async def _index_problem(request: Request, exc: IndexProblem) -> JSONResponse:
    # No index yet (or it became unreadable): the service is up but cannot answer.
    # The detail (paths on disk) goes to the log, not to the client.
    log.warning("index unavailable: %s", exc)
    message = "no index is loaded yet" if isinstance(exc, IndexNotFound) else "the index cannot be read"
    return error_response(request, 503, "index_unavailable", message, headers={"Retry-After": "5"})


def install_error_handlers(app: FastAPI) -> None:
    """Route every expected error through the common shape (unexpected ones: see middleware)."""
    # Starlette types a handler as taking any Exception; each of these gets only its own class.
    handlers: list[tuple[type[Exception], Any]] = [
        (ApiError, _api_error),
        (StarletteHTTPException, _http_error),
        (RequestValidationError, _validation_error),
        (IndexProblem, _index_problem),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
