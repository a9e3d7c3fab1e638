"""Access control end to end, beyond the basics in ``tests/test_api.py``: secrets compared in
constant time, admin routes off without a token, API keys on *every* query route (and before
body parsing), rate limits per key and per address, CORS allow-list, security headers on the
real pages, and logs at info level that hold no token, no key and no question text."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api.security
from api.access_log import JsonLineFormatter
from api.app import create_app
from rag.config import Settings
from rag.pipeline import RAG

ADMIN = "adm-7Qx2-only-the-operator-knows"
KEYS = ("key-alpha-3f9c", "key-beta-81d0")
DOC = "ar_palms"
QUESTION = "كم عدد النخيل في الإمارات؟"


@pytest.fixture(scope="module")
def rag(small_index, tmp_path_factory, e5) -> RAG:
    root = tmp_path_factory.mktemp("security") / "index"
    shutil.copytree(small_index, root)
    return RAG(Settings(index=root), embedder=e5)


def make_app(rag: RAG, **overrides):
    base = {
        "index": rag.index_dir,
        "admin_token": ADMIN,
        "api_keys": ",".join(KEYS),
        "cors_origins": "*",
        "rate_limit_per_minute": 0,
        "frame_ancestors": "*",
        "workers": 2,
        "max_question_chars": 1000,
    }
    return create_app(Settings(**{**base, **overrides}), rag=rag)


@pytest.fixture()
def client(rag) -> Iterator[TestClient]:
    with TestClient(make_app(rag)) as c:
        yield c


def assert_error(r, status: int, type_: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == type_, body
    return body["error"]


# Every query route, with a request that succeeds when the key is right.
QUERY_ROUTES = [
    ("POST", "/ask", {"json": {"question": QUESTION}}),
    ("GET", "/search", {"params": {"q": QUESTION}}),
    ("GET", "/documents", {}),
    ("GET", f"/documents/{DOC}", {}),
    ("POST", "/v1/chat/completions", {"json": {"model": "m", "messages": [{"role": "user", "content": QUESTION}]}}),
    ("GET", "/v1/models", {}),
    ("GET", "/v1/models/rag-extractive", {}),
]
# The API docs (/docs, /redoc, /openapi.json) need a key too unless RAG_PUBLIC_DOCS: see test_hardening.py.
OPEN_ROUTES = ["/health", "/ready", "/", "/widget.js"]


# --- secrets ------------------------------------------------------------------------------------


def test_secret_comparisons_use_compare_digest_and_never_eq() -> None:
    # No ==/!=/in on anything named like a secret in the module that checks them.
    tree = ast.parse(Path(api.security.__file__).read_text())
    secretish = re.compile(r"token|key|given|secret", re.IGNORECASE)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            }
            assert not any(secretish.search(n) for n in names), f"line {node.lineno}: {ast.unparse(node)}"


def test_every_secret_check_goes_through_compare_digest(rag, monkeypatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with TestClient(make_app(rag)) as c:
        assert_error(c.post("/documents", json={"text": "x"}, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert calls == [(b"wrong", ADMIN.encode())]
        calls.clear()
        assert_error(c.get("/v1/models", headers={"X-API-Key": "guess"}), 401, "unauthorized")
        # every key and the admin token are compared: no early exit that would time which one is close
        assert sorted(b for _, b in calls) == sorted([k.encode() for k in KEYS] + [ADMIN.encode()])
        assert all(a == b"guess" for a, _ in calls)


@pytest.mark.parametrize("token", [None, ""])
def test_admin_routes_are_off_without_a_token(rag, token) -> None:
    with TestClient(make_app(rag, admin_token=token, api_keys="")) as c:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}, {"Authorization": "Bearer"}):
            assert_error(c.post("/documents", json={"id": "x", "text": "نص."}, headers=headers), 403, "admin_disabled")
            assert_error(c.delete(f"/documents/{DOC}", headers=headers), 403, "admin_disabled")
        assert c.get(f"/documents/{DOC}").status_code == 200


# --- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "kwargs"), QUERY_ROUTES, ids=[f"{m} {p}" for m, p, _ in QUERY_ROUTES])
def test_api_key_is_required_on_every_query_route(client, method, path, kwargs) -> None:
    r = client.request(method, path, **kwargs)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(client.request(method, path, headers={"X-API-Key": KEYS[0] + "x"}, **kwargs), 401, "unauthorized")
    assert client.request(method, path, headers={"X-API-Key": KEYS[1]}, **kwargs).status_code == 200
    assert client.request(method, path, headers={"Authorization": f"Bearer {KEYS[0]}"}, **kwargs).status_code == 200


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_health_pages_and_schema_need_no_key(client, path) -> None:
    assert client.get(path).status_code == 200


def test_a_bad_body_without_a_key_is_refused_before_it_is_parsed(client) -> None:
    # FastAPI parses JSON before dependencies run: the access check must still come first.
    for path in ("/ask", "/v1/chat/completions"):
        assert_error(client.post(path, content=b'{"question": ', headers={"Content-Type": "application/json"}), 401, "unauthorized")
        assert_error(client.post(path, content=b"\xff\xfe", headers={"Content-Type": "application/json"}), 401, "unauthorized")
    assert_error(client.post("/documents", content=b"{", headers={"Content-Type": "application/json"}), 401, "unauthorized")
    # With the key, the same body is a 400 that says what is wrong.
    r = client.post("/ask", content=b'{"question": ', headers={"Content-Type": "application/json", "X-API-Key": KEYS[0]})
    assert_error(r, 400, "invalid_json")


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_is_per_key_across_addresses_and_per_address_without_one(rag) -> None:
    app = make_app(rag, rate_limit_per_minute=2)
    a = TestClient(app, client=("10.0.0.1", 50000))
    b = TestClient(app, client=("10.0.0.2", 50000))
    key = {"X-API-Key": KEYS[0]}
    # One key is one client, wherever it comes from.
    assert a.get("/v1/models", headers=key).status_code == 200
    assert b.get("/v1/models", headers=key).status_code == 200
    r = a.get("/v1/models", headers=key)
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and r.headers["retry-after"] in err["message"]
    assert a.get("/v1/models", headers={"X-API-Key": KEYS[1]}).status_code == 200  # another key: its own bucket
    # Without a valid key, each address has its own bucket (guesses included, and bad bodies).
    for _ in range(2):
        assert_error(a.post("/ask", content=b"{", headers={"Content-Type": "application/json"}), 401, "unauthorized")
    assert_error(a.post("/ask", content=b"{", headers={"Content-Type": "application/json"}), 429, "rate_limited")
    assert_error(b.get("/v1/models", headers={"X-API-Key": "guess"}), 401, "unauthorized")
    # Admin routes are limited per address too (the same bucket): token guessing is throttled.
    c = TestClient(app, client=("10.0.0.3", 50000))
    for _ in range(2):
        assert_error(c.delete(f"/documents/{DOC}", headers={"Authorization": "Bearer guess"}), 401, "unauthorized")
    r = c.delete(f"/documents/{DOC}", headers={"Authorization": "Bearer guess"})
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert a.get("/health").status_code == 200 and a.get("/ready").status_code == 200  # never limited


# --- CORS and headers ---------------------------------------------------------------------------


def test_cors_allow_list_echoes_only_listed_origins(rag) -> None:
    with TestClient(make_app(rag, api_keys="", cors_origins="https://helpdesk.example")) as c:
        ok = c.get("/search", params={"q": QUESTION}, headers={"Origin": "https://helpdesk.example"})
        assert ok.headers["access-control-allow-origin"] == "https://helpdesk.example"
        assert "origin" in ok.headers["vary"].lower()  # caches must not reuse it for other origins
        assert "access-control-allow-credentials" not in ok.headers
        bad = c.get("/search", params={"q": QUESTION}, headers={"Origin": "https://helpdesk.example.evil"})
        assert bad.status_code == 200 and "access-control-allow-origin" not in bad.headers
        pre = c.options("/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers


def _inline_script_hashes(html: str) -> set[str]:
    scripts = re.findall(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", html, re.IGNORECASE | re.DOTALL)
    return {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in scripts}


@pytest.mark.parametrize(
    ("frame_ancestors", "expected"),
    [("*", "*"), ("", "'none'"), ("https://a.example https://b.example", "https://a.example https://b.example")],
)
def test_real_pages_carry_security_headers(rag, frame_ancestors, expected) -> None:
    with TestClient(make_app(rag, frame_ancestors=frame_ancestors)) as c:
        page = c.get("/")
        assert page.status_code == 200
        csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
        assert csp["frame-ancestors"] == expected
        script_src = csp["script-src"].split()
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert _inline_script_hashes(page.text) <= set(script_src)
        assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["default-src"] == "'self'"
        assert page.headers["x-content-type-options"] == "nosniff"
        js = c.get("/widget.js")
        assert js.status_code == 200 and js.headers["x-content-type-options"] == "nosniff"
        assert js.headers["content-type"].startswith("application/javascript")
        # API answers, errors included, are never sniffed into something else either.
        assert c.get("/health").headers["x-content-type-options"] == "nosniff"
        assert c.get("/nope").headers["x-content-type-options"] == "nosniff"


# --- logs ---------------------------------------------------------------------------------------


@contextmanager
def all_logs_at_info() -> Iterator[list[str]]:
    """Every record any logger emits at INFO and above, rendered as the service renders it."""
    lines: list[str] = []
    formatter = JsonLineFormatter()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.split(".")[0] in ("httpx", "httpx2", "httpcore"):  # the test's own HTTP client
                return
            lines.append(formatter.format(record))
            lines.append(record.getMessage())

    handler = Capture(logging.INFO)
    root, api_logger = logging.getLogger(), logging.getLogger("api")
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    api_logger.addHandler(handler)  # "api" does not propagate to the root
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        api_logger.removeHandler(handler)
        root.setLevel(old_level)


def test_logs_hold_no_secrets_and_no_question_text(rag) -> None:
    question = "How many falcons were ringed at the zanzibar-quokka-7731 sanctuary during the winter survey?"
    key = {"X-API-Key": KEYS[1]}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with all_logs_at_info() as lines, TestClient(make_app(rag, max_question_chars=200)) as c:
        assert c.post("/ask", json={"question": question}, headers=key).status_code == 200
        assert c.get("/search", params={"q": question}, headers=key).status_code == 200
        chat = {"model": "m", "messages": [{"role": "user", "content": question}]}
        assert c.post("/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 200
        assert c.post("/ask", json={"question": question * 3}, headers=key).status_code == 422  # too long
        assert c.post("/ask", json={"question": question}, headers={"X-API-Key": KEYS[0][:-1]}).status_code == 401
        assert c.post("/ask", json={"question": question}, headers={"X-API-Key": ADMIN}).status_code == 200
        doc = {"id": "log-test", "text": "Falcons are ringed in winter. " + question}
        assert c.post("/documents", json=doc, headers=admin).status_code == 200
        assert c.delete("/documents/log-test", headers=admin).status_code == 200
        assert c.delete("/documents/log-test", headers={"Authorization": f"Bearer {ADMIN}x"}).status_code == 401
    text = "\n".join(lines)
    assert len(lines) >= 18  # one access line per request at least: the capture saw them
    assert '"path": "/ask"' in text and '"status": 401' in text
    for secret in (ADMIN, *KEYS, KEYS[0][:-1]):
        assert secret not in text
    # Not the question, nor any telling piece of it (its rare words, any 20-character window).
    assert "zanzibar" not in text and "quokka" not in text
    windows = {question[i : i + 20] for i in range(len(question) - 19)}
    assert not any(w in text for w in windows)
    # What is logged instead: its length and a short hash, to correlate lines.
    access = [json.loads(line) for line in lines if line.startswith("{") and '"api.access"' in line]
    asks = [a for a in access if a.get("path") == "/ask" and a.get("status") == 200]
    assert asks and all(a["q_chars"] == len(question) and len(a["q_hash"]) == 12 for a in asks)
