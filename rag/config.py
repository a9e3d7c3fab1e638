"""All settings in one place. Every field can be set with a ``RAG_<NAME>`` environment variable."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=None, extra="ignore")

    # --- where things live -------------------------------------------------------------
    index: Path = Field(Path("index"), description="Index directory (RAG_INDEX).")
    corpus: Path = Field(Path("corpus"), description="Default corpus directory.")

    # --- embedding -----------------------------------------------------------------------
    embedder: Literal["e5", "sentence-transformers"] = "e5"
    model: str = Field(
        "intfloat/multilingual-e5-small",
        description="Model id; for sentence-transformers a hub name or a local path.",
    )
    query_prompt: str = Field("", description="Prefix for queries (sentence-transformers backend).")
    passage_prompt: str = Field("", description="Prefix for passages (sentence-transformers backend).")
    device: str | None = Field(None, description="torch device for sentence-transformers; auto if unset.")
    batch_size: int = Field(32, ge=1)

    # --- chunking ------------------------------------------------------------------------
    chunk_tokens: int = Field(200, ge=8, le=512, description="Max chunk length in model tokens (window is 512).")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between chunks in model tokens (less than chunk_tokens).")

    # --- index ---------------------------------------------------------------------------
    faiss_index: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = Field(
        "auto", description="auto = exact (flat) below `ann_threshold` chunks, HNSW above; ivfpq = compressed (56 B/vector)."
    )
    ann_threshold: int = Field(50_000, ge=1)
    lexicon_words: int = Field(
        50_000,
        ge=0,
        description="Arabic words of the index embedded for English questions' BM25 terms (rag.lexicon), those in "
        "most documents first; 0 = none. Per word: 0.8 KB on disk, 1.5 KB of memory, 3 ms of ingest (once).",
    )
    keep_versions: int = Field(2, ge=1, description="Index versions kept on disk after a successful build.")
    max_file_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Loader refuses larger files.")

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages returned / cited by default.")
    candidates: int = Field(50, ge=1, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1)

    # --- reading -------------------------------------------------------------------------
    reader: str = Field(
        "span",
        description="Reader by name: span = the trained span reader (models/reader), sentence (or none) = the "
        "built-in sentence answering, the fast mode; other readers register by name (rag.stages.READERS).",
    )
    reader_model: Path | None = Field(None, description="Span reader model folder (default: models/reader of the source tree).")
    reader_passages: int = Field(4, ge=1, le=20, description="Top passages the span reader reads (one 256-token window each).")
    reader_threads: int = Field(0, ge=0, description="onnxruntime threads per reader call (0 = its default, one per core).")
    reader_concurrency: int = Field(
        1,
        ge=1,
        description="Reader model runs at once per process; more wait their turn. Each run already uses every core, "
        "and each concurrent one holds its own activations (16 clients on 2 cores: see eval/PERFORMANCE.md).",
    )
    reader_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Abstain below this answer probability (default: the model's own, from reader.json)."
    )

    # --- service -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 = any free port (the OS picks; the log names it).")
    admin_token: str | None = Field(None, description="Bearer token for admin routes; unset = routes off.")
    api_keys: str = Field("", description="Comma-separated API keys for query routes; empty = open.")
    cors_origins: str = Field("*", description="Comma-separated CORS allow-list.")
    max_question_chars: int = Field(1000, ge=2)
    chat_topic_tokens: int = Field(
        48,
        ge=0,
        description="Chat follow-ups: model tokens kept of the earlier turn joined in front (its beginning); the "
        "span reader reads 64 question tokens in all.",
    )
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1)
    rate_limit_per_minute: int = Field(600, description="Per key or client address; 0 = off.")
    frame_ancestors: str = Field("*", description="CSP frame-ancestors for served pages.")
    allowed_hosts: str = Field(
        "localhost,ip",
        description="Comma-separated Host header allow-list: names, '*.example.com', 'ip' = any IP address, '*' = any. "
        "A name must be listed to be served: a DNS-rebinding page always arrives under its own name.",
    )
    public_docs: bool = Field(False, description="With RAG_API_KEYS set: serve /docs, /redoc, /openapi.json without a key.")
    public_ready: bool = Field(True, description="With RAG_API_KEYS set: serve /ready without a key (load balancer probes).")
    trusted_proxies: str = Field(
        "",
        description="Comma-separated proxy addresses (or CIDRs) whose X-Forwarded-For/-Proto are believed; empty = none, "
        "the TCP peer is the client (rate limits are per client address).",
    )
    header_timeout_s: float = Field(10.0, ge=0, description="Close a connection whose request headers are not complete in time (0 = off).")
    body_timeout_s: float = Field(
        30.0, ge=0, description="Answer 408 and close the connection when a request body is not complete in time (0 = off)."
    )
    keep_alive_s: int = Field(5, ge=1, description="Close an idle keep-alive connection after this many seconds.")
    max_connections: int = Field(512, ge=0, description="Open connections served; beyond it a JSON 503 (0 = no cap).")
    graceful_shutdown_s: float = Field(10.0, ge=0, description="On SIGTERM, wait this long for requests in flight (0 = no limit).")
    mcp: bool = Field(
        True,
        description="Serve the MCP endpoint at /mcp (tools ask, search, get_document for AI assistants), behind the same keys and limits.",
    )
    cache_size: int = Field(1024, ge=0, description="Answer cache entries (0 = off).")
    workers: int = Field(4, ge=1, description="Threads for CPU-bound request work.")
    reload_interval_s: float = Field(
        2.0, ge=0, description="How often queries check for an index version written by another process (0 = never)."
    )

    # --- feedback ------------------------------------------------------------------------
    feedback: bool = Field(True, description="Serve POST /feedback (was this answer helpful?); false = the route is off (404).")
    feedback_path: Path = Field(
        Path("feedback/feedback.jsonl"), description="Append-only JSONL file the feedback is stored in (relative to the working directory)."
    )
    feedback_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Stop storing feedback (507) once the file would grow beyond this size."
    )

    # A wrong value here is a service that starts and then refuses every request, or silently
    # trusts no proxy or no origin: refuse it when the settings are read, naming the variable.
    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        for entry in comma_list(v):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: str) -> str:
        if not comma_list(v):
            raise ValueError("must name at least one host (every request would get 400 invalid_host); '*' allows any")
        return v

    @field_validator("cors_origins")
    @classmethod
    def _cors(cls, v: str) -> str:
        for entry in comma_list(v):
            if entry != "*" and not _ORIGIN.fullmatch(entry):
                raise ValueError(f"{entry!r} is not an origin: scheme://host[:port], no path or trailing slash, comma-separated (or '*')")
        return v

    @model_validator(mode="after")
    def _overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than RAG_CHUNK_TOKENS ({self.chunk_tokens})")
        return self


_ORIGIN = re.compile(r"https?://[^\s/:,]+(:\d{1,5})?", re.IGNORECASE)


def comma_list(raw: str) -> list[str]:
    """The entries of a comma-separated setting (RAG_API_KEYS, RAG_CORS_ORIGINS, ...), trimmed, empty ones dropped."""
    return [e.strip() for e in raw.split(",") if e.strip()]


def settings_problem(exc: ValidationError) -> str:
    """A ``ValidationError`` of ``Settings`` as one line per bad value, named by its variable."""
    lines = []
    for e in exc.errors():
        name = f"RAG_{str(e['loc'][0]).upper()}: " if e.get("loc") else ""
        lines.append(f"{name}{e['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
