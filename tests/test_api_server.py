"""End to end: ``rag serve`` as a real process on a free loopback port, spoken to over HTTP by
httpx and by the official ``openai`` client (streamed and not), then stopped with SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.serving import start

openai = pytest.importorskip("openai")  # an optional test tool (dev extra)

pytestmark = pytest.mark.slow  # a real rag serve process

AR_Q = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
FORUM = "001_0119a74ef5d5a5df"


@pytest.fixture(scope="module")
def server(corpus_index: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, log file) of a running ``rag serve`` over a private copy of the corpus index;
    stopped with SIGTERM at the end, which must shut it down gracefully."""
    work = tmp_path_factory.mktemp("serve")
    index = work / "index"
    shutil.copytree(corpus_index, index)
    served = start(index, work, {"RAG_CORS_ORIGINS": "*", "RAG_READER": "sentence"}, timeout=120)
    try:
        yield served.base, served.log
    finally:
        code = served.stop(timeout=20)
        assert not served.killed, "rag serve did not stop within 20 s of SIGTERM"
        # uvicorn shuts down gracefully, then re-raises the signal, so -SIGTERM is a clean exit too.
        assert code in (0, -signal.SIGTERM), f"rag serve exited with {code} on SIGTERM:\n{served.log_tail(2000)}"
        assert "Application shutdown complete" in served.log_tail()


def _openai(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0, timeout=60)


def test_ask_returns_a_cited_answer(server) -> None:
    base, _ = server
    # What the curl sends: a JSON body with its content type.
    r = httpx.post(
        f"{base}/ask",
        content=json.dumps({"question": AR_Q}, ensure_ascii=False).encode(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answerable"] and body["answer"]["doc_id"] == FORUM
    assert "28" in body["answer"]["focus"]["text"]
    assert body["citations"] and body["citations"][0]["doc_id"] == FORUM
    assert r.headers["x-index-version"] == str(body["index_version"]) and r.headers["x-request-id"]


def test_malformed_request_gets_a_4xx_in_the_error_shape(server) -> None:
    base, _ = server
    r = httpx.post(f"{base}/ask", content=b'{"question": ', headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_json"


def test_openai_client_non_streamed(server) -> None:
    base, _ = server
    client = _openai(base)
    assert [m.id for m in client.models.list()] == ["rag-extractive"]
    completion = client.chat.completions.create(model="rag-extractive", messages=[{"role": "user", "content": AR_Q}], temperature=0)
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert "[1]" in content and "المصادر:" in content and "28" in content
    citations = completion.model_extra["citations"]
    assert citations[0]["doc_id"] == FORUM and citations[0]["text"] in content


def test_openai_client_streamed(server) -> None:
    base, _ = server
    client = _openai(base)
    stream = client.chat.completions.create(model="rag-extractive", messages=[{"role": "user", "content": AR_Q}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "[1]" in text and "المصادر:" in text and "28" in text
    assert chunks[-1].model_extra["citations"][0]["doc_id"] == FORUM
    # Same answer as the non-streamed call.
    whole = client.chat.completions.create(model="rag-extractive", messages=[{"role": "user", "content": AR_Q}])
    assert text == whole.choices[0].message.content


def test_openai_client_sees_our_error_message(server) -> None:
    base, _ = server
    with pytest.raises(openai.UnprocessableEntityError) as exc:
        _openai(base).chat.completions.create(model="rag-extractive", messages=[{"role": "user", "content": "  "}])
    assert "user message with text" in exc.value.message
    assert exc.value.body["type"] == "validation_error"  # the client unwraps our {"error": ...}


def test_server_log_is_json_lines_without_question_text(server) -> None:
    base, log_path = server
    httpx.post(f"{base}/ask", json={"question": AR_Q}, timeout=60)
    access = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "api.access":
                access.append(record)
    assert {"/ask", "/ready", "/v1/chat/completions"} <= {r["path"] for r in access}
    assert all({"request_id", "method", "path", "status", "latency_ms"} <= set(r) for r in access)
    assert AR_Q not in log_path.read_text()
