"""API fuzzing with schemathesis against the service's own OpenAPI schema.

Every operation (admin routes included, with the admin token configured and sent) gets
``FUZZ_MAX_EXAMPLES`` generated requests (default 30) that follow the schema and as many that
break it. Whatever comes in: no 5xx, every 4xx in the documented error shape
(``{"error": {"type", "message", "details"?, "request_id"}}``), and responses that conform to the
schema (documented status codes, content types and bodies).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.schemas import ErrorResponse
from rag.config import Settings
from rag.pipeline import RAG

schemathesis = pytest.importorskip("schemathesis")  # an optional test tool (dev extra)
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import load_all_checks, not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
ADMIN = "fuzz-admin-token"
ADMIN_OPERATIONS = {"POST /documents", "DELETE /documents/{doc_id}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

load_all_checks()


@pytest.fixture(scope="module")
def app(small_index, tmp_path_factory, e5):
    """The app over a private copy of the small index (admin fuzzing writes to it)."""
    root = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(small_index, root)
    rag = RAG(Settings(index=root), embedder=e5)
    settings = Settings(
        index=root,
        admin_token=ADMIN,
        api_keys="",
        rate_limit_per_minute=0,
        max_question_chars=1000,
        max_body_bytes=64 * 1024,
        workers=2,
        feedback_path=tmp_path_factory.mktemp("fuzz-feedback") / "feedback.jsonl",  # accepted feedback is written
    )
    app = create_app(settings, rag=rag)
    with TestClient(app):  # run the lifespan once: the app is then ready for schemathesis' client
        yield app


@pytest.fixture(scope="module")
def schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def tried() -> Counter:
    """Requests sent per (operation, mode, status class), printed at the end of the module."""
    counts: Counter = Counter()
    yield counts
    total = sum(counts.values())
    print(f"\nfuzz: {total} requests; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


def _cases() -> list[tuple[str, GenerationMode]]:
    """(operation, mode) pairs, from a throwaway app's schema (parametrisation happens at import).
    Operations whose only input is a free-form string (or nothing) have no invalid input:
    positive mode only."""
    paths = create_app(Settings(admin_token=ADMIN)).openapi()["paths"]
    out = []
    for path, ops in sorted(paths.items()):
        for method, op in sorted(ops.items()):
            label = f"{method.upper()} {path}"
            out.append((label, GenerationMode.POSITIVE))
            constrained = [p for p in op.get("parameters", []) if p.get("schema", {}).get("type") != "string" or p["in"] == "query"]
            if constrained or op.get("requestBody"):
                out.append((label, GenerationMode.NEGATIVE))
    return out


def check_error_shape(response) -> None:
    """A 4xx/5xx body is exactly our error shape, with the request id of the header.
    (schemathesis' ``Response`` has lower-case header names with lists of values.)"""
    assert response.headers["content-type"][0].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    err = ErrorResponse.model_validate(body).error
    assert err.type and err.message
    assert err.request_id == response.headers["x-request-id"][0]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=[f"{label}-{mode.value}" for label, mode in _cases()])
def test_fuzz_operation(schema, tried, label: str, mode: GenerationMode) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    examples = MAX_EXAMPLES
    if label == "POST /documents" and mode is GenerationMode.POSITIVE:
        examples = max(MAX_EXAMPLES // 3, 5)  # each accepted request writes a whole index version

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        response = case.call(headers=headers)
        tried[f"{label} {mode.value} {response.status_code // 100}xx"] += 1
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            check_error_shape(response)
        checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
        case.validate_response(response, checks=checks, headers=headers)
        if label in ADMIN_OPERATIONS:  # the same request with a wrong token is refused, whatever it holds
            denied = case.call(headers={"Authorization": "Bearer not-the-token"})
            tried[f"{label} {mode.value} wrong-token {denied.status_code}"] += 1
            check_error_shape(denied)
            if denied.status_code == 404:  # a path no route matches (e.g. a line break in the id): nothing to guard
                assert response.status_code == 404 and "no route" in denied.json()["error"]["message"], denied.text
            else:
                assert denied.status_code in (401, 413, 415), denied.text

    run()


# --- what fuzzing found, kept as plain regression tests --------------------------------------------


@pytest.mark.parametrize("bad_id", [False, True, 1.5, [], {}, "faq/a\nb", "tab\there", "nul\u0000"])
def test_document_id_of_another_type_or_with_control_characters_is_rejected(app, bad_id) -> None:
    # Found with FUZZ_MAX_EXAMPLES=100/300: `"id": false` was read as the integer 0 and indexed as
    # "0"; an id with a line break was indexed but no /documents/{id} route could reach it.
    with TestClient(app) as client:
        r = client.post(
            "/documents", json={"id": bad_id, "text": "Falcons are trained for hunting."}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert r.status_code == 422, r.text
        check_error_shape(schemathesis.Response.from_any(r))
        assert client.get("/documents/0").status_code == 404
