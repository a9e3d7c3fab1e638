"""Settings (rag.config): a bad RAG_* value is refused when the settings are read, naming the
variable, instead of a service that starts and then refuses every request or silently trusts
nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag.config import Settings, settings_problem


@pytest.mark.parametrize(
    ("values", "named", "says"),
    [
        ({"port": 99999}, "RAG_PORT", "less than or equal to 65535"),  # bound 99999 mod 65536 before
        ({"chunk_tokens": -5, "chunk_overlap": 0}, "RAG_CHUNK_TOKENS", "greater than or equal to 8"),
        ({"chunk_tokens": 100_000}, "RAG_CHUNK_TOKENS", "less than or equal to 512"),  # over the model's window
        ({"chunk_overlap": -50}, "RAG_CHUNK_OVERLAP", "greater than or equal to 0"),
        ({"chunk_tokens": 40, "chunk_overlap": 40}, "RAG_CHUNK_OVERLAP (40) must be smaller than RAG_CHUNK_TOKENS (40)", ""),
        ({"max_body_bytes": -1}, "RAG_MAX_BODY_BYTES", "greater than or equal to 1"),
        ({"top_k": 0}, "RAG_TOP_K", "greater than or equal to 1"),
        ({"workers": 0}, "RAG_WORKERS", "greater than or equal to 1"),
        ({"trusted_proxies": "10.0.0.2, not-an-ip"}, "RAG_TRUSTED_PROXIES", "'not-an-ip' is not an IP address"),
        ({"trusted_proxies": "10.0.0.0/33"}, "RAG_TRUSTED_PROXIES", "is not an IP address or CIDR"),
        ({"allowed_hosts": " , "}, "RAG_ALLOWED_HOSTS", "must name at least one host"),
        ({"cors_origins": "https://a.example https://b.example"}, "RAG_CORS_ORIGINS", "is not an origin"),
        ({"cors_origins": "https://b.example/"}, "RAG_CORS_ORIGINS", "no path or trailing slash"),
    ],
)
def test_bad_values_are_refused_by_name(values, named, says):
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    message = settings_problem(caught.value)
    assert named in message and says in message


def test_good_values_pass():
    s = Settings(
        port=8080,
        chunk_tokens=120,
        chunk_overlap=24,
        trusted_proxies="10.0.0.2, 192.168.0.0/16, ::1",
        allowed_hosts="localhost,ip,*.example.com",
        cors_origins="https://helpdesk.example, http://localhost:8080, *",
    )
    assert s.port == 8080 and s.chunk_overlap < s.chunk_tokens
