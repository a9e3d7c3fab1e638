"""Who may call what: the admin token, optional API keys, and per-client rate limiting.

Rules (all configured through ``Settings``):

* **Admin routes** (``POST /documents``, ``DELETE /documents/...``) need
  ``Authorization: Bearer <RAG_ADMIN_TOKEN>``. With no token configured they are switched off
  and answer 403 ``admin_disabled`` (off, never open). A missing or wrong token is 401.
* **Query routes** (ask, search, documents read, chat, models) are open unless ``RAG_API_KEYS``
  lists keys; then each request needs one of them in ``X-API-Key`` or
  ``Authorization: Bearer <key>`` (so the OpenAI client's ``api_key`` works as is). The admin
  token is accepted as a key too. A missing or unknown key is 401.
* **Docs and readiness** (``/docs``, ``/redoc``, ``/openapi.json``; ``/ready``): with keys set,
  the docs need a key unless ``RAG_PUBLIC_DOCS`` (default false: a closed service does not publish
  its surface), ``/ready`` does not unless ``RAG_PUBLIC_READY`` is false (default true: load
  balancer probes rarely send headers; it tells counts and the model id). ``/health`` is open.
* **Rate limit**: ``RAG_RATE_LIMIT_PER_MINUTE`` requests per minute per API key, or per client
  address when no valid key is sent (so failed guesses are throttled per address too); over it,
  429 with ``Retry-After``. ``/health``, ``/ready`` and the static pages are not limited.
  The address is the TCP peer; ``X-Forwarded-For`` is believed only from the proxies listed in
  ``RAG_TRUSTED_PROXIES`` (default none; uvicorn then rewrites the peer, see ``api.server``).

Secrets are compared with ``hmac.compare_digest`` so timing does not leak how much matched.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from api.errors import ApiError
from rag.config import Settings, comma_list


def secret_equals(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes, so non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def parse_keys(raw: str) -> tuple[str, ...]:
    return tuple(comma_list(raw))


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class RateLimiter:
    """Token bucket per client: ``per_minute`` requests, refilled continuously.

    Buckets live in an LRU bounded to ``max_clients`` entries; an evicted bucket is simply full
    again next time, so the bound costs at most one extra minute's allowance to evicted clients.
    """

    def __init__(self, per_minute: int, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def hit(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


class Guard:
    """The access rules above for one app, built from its settings."""

    def __init__(self, settings: Settings):
        self.admin_token = settings.admin_token or None
        self.api_keys = parse_keys(settings.api_keys)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)

    def _valid_key(self, given: str | None) -> bool:
        if not given:
            return False
        # Compare against every key (no early exit) so timing does not reveal which one is close.
        ok = False
        for key in self.api_keys:
            ok |= secret_equals(given, key)
        if self.admin_token:
            ok |= secret_equals(given, self.admin_token)
        return ok

    def _throttle(self, key: str) -> None:
        wait = self.limiter.hit(key)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests: try again in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    def client(self, request: Request) -> str:
        """Check the API key (when keys are configured) and the rate limit; return the client id."""
        given = request.headers.get("x-api-key") or bearer_token(request)
        valid = bool(self.api_keys) and self._valid_key(given)
        address = request.client.host if request.client else "unknown"
        # A valid key is the identity (by fingerprint, so the key itself is never stored or logged).
        client = f"key:{_fingerprint(given)}" if valid and given else f"addr:{address}"
        self._throttle(client)
        if self.api_keys and not valid:
            raise ApiError(
                401,
                "unauthorized",
                "an API key is required: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
                if not given
                else "the API key is not valid",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.client = client
        raise_body_refusal(request)
        return client

    def admin(self, request: Request) -> None:
        """Allow only the admin token; admin routes are off when none is configured."""
        address = request.client.host if request.client else "unknown"
        self._throttle(f"addr:{address}")
        if not self.admin_token:
            raise ApiError(403, "admin_disabled", "admin routes are disabled: set RAG_ADMIN_TOKEN to enable them")
        token = bearer_token(request)
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "admin token required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secret_equals(token, self.admin_token):
            raise ApiError(401, "unauthorized", "the admin token is not valid", headers={"WWW-Authenticate": "Bearer"})
        request.state.client = "admin"
        raise_body_refusal(request)


def raise_body_refusal(request: Request) -> None:
    """Answer the body refusal ``BodyLimitMiddleware`` left for this request (413/415/400), now
    that access is checked: refusals come after the key/token and the rate limit."""
    refusal = getattr(request.state, "body_refusal", None)
    if refusal is not None:
        status, type_, message = refusal
        raise ApiError(status, type_, message, headers={"Connection": "close"})


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


async def require_client(request: Request) -> str:
    """Dependency for query routes (async: runs on the event loop, no thread hop)."""
    return request.app.state.guard.client(request)


async def require_docs_access(request: Request) -> None:
    """Dependency for /docs, /redoc and /openapi.json: public unless keys are set and
    ``RAG_PUBLIC_DOCS`` is false (then like a query route: key and rate limit)."""
    guard: Guard = request.app.state.guard
    if guard.api_keys and not request.app.state.settings.public_docs:
        guard.client(request)


async def require_ready_access(request: Request) -> None:
    """Dependency for /ready: public unless keys are set and ``RAG_PUBLIC_READY`` is false."""
    guard: Guard = request.app.state.guard
    if guard.api_keys and not request.app.state.settings.public_ready:
        guard.client(request)


async def require_admin(request: Request) -> None:
    """Dependency for admin routes."""
    request.app.state.guard.admin(request)
