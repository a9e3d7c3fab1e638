"""Request and response models: the service's contract as it appears in the OpenAPI schema.

Routes return the library records' one serialisation, ``to_dict()`` (so ``POST /ask`` is exactly
what ``rag ask --json`` prints), and FastAPI validates it against the response models here
(keys the record leaves out, such as an absent ``focus``, stay out): they are the contract, in
the OpenAPI schema with Arabic and English examples. Requests ignore unknown fields (OpenAI
clients send many), but types are strict: ``"5"`` is not a ``top_k``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from rag.feedback import MAX_COMMENT_CHARS
from rag.loading import doc_id_problem, url_problem

MAX_TOP_K = 50
MAX_PREVIOUS = 20  # earlier questions of a conversation /ask looks at (the widget sends its last 8)

AR_QUESTION = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
EN_QUESTION = "How many speakers take part in the Government Experience Exchange Forum?"

# --- errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    loc: list[str] = Field(default_factory=list, description="Where the problem is, e.g. ['body', 'top_k'].")
    msg: str
    type: str


class ErrorBody(BaseModel):
    type: str = Field(description="Machine-readable kind, e.g. validation_error, invalid_json, not_found, rate_limited.")
    message: str = Field(description="What went wrong, for people.")
    details: list[ErrorDetail] | None = None
    request_id: str | None = Field(None, description="Also sent as the X-Request-ID header.")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer has this shape."""

    error: ErrorBody

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "validation_error",
                        "message": "question must not be empty",
                        "details": [{"loc": ["question"], "msg": "must not be empty or whitespace", "type": "value_error"}],
                        "request_id": "5f0c1e7a9b2d4c3e8f6a7b1c2d3e4f50",
                    }
                }
            ]
        }
    )


# --- ask ----------------------------------------------------------------------------------------


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"question": AR_QUESTION, "top_k": 3, "language": "ar"},
                {"question": EN_QUESTION},
            ]
        },
    )

    question: str = Field(strict=True, description="The question, Arabic or English (not empty; length limited by RAG_MAX_QUESTION_CHARS).")
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, strict=True, description="Passages to cite (default RAG_TOP_K).")
    language: Literal["ar", "en"] | None = Field(None, description="Question language; detected when omitted.")
    previous: list[Annotated[str, Field(strict=True)]] = Field(
        default_factory=list,
        max_length=MAX_PREVIOUS,
        description=(
            "The user's earlier questions in this conversation, oldest first. When `question` is a follow-up"
            ' ("and when was it held?", "ومتى عقد؟"), it is answered as the chat endpoint answers one: retrieved'
            " together with the last earlier question that is not itself a follow-up; the answer's `question` is then"
            " that question and this one, joined."
        ),
    )


ASK_EXAMPLES = {
    "arabic": {"summary": "Arabic question", "value": {"question": AR_QUESTION, "top_k": 3}},
    "english": {"summary": "English question", "value": {"question": EN_QUESTION, "language": "en"}},
    "follow-up": {"summary": "A follow-up question", "value": {"question": "ومتى عقد؟", "previous": [AR_QUESTION]}},
}


class FocusOut(BaseModel):
    text: str
    start: int
    end: int
    kind: str = Field(description="number, date, name, ...")


class SentenceOut(BaseModel):
    text: str
    start: int
    end: int


class AnswerOut(BaseModel):
    text: str = Field(description="A verbatim span of the document: document.text[start:end].")
    doc_id: str
    title: str
    start: int
    end: int
    score: float = Field(description="The reader's probability that the documents answer the question.")
    focus: FocusOut | None = Field(None, description="The short factoid inside the answer, when there is one.")
    sentence: SentenceOut | None = Field(None, description="The sentence holding the answer, when the answer is shorter than its sentence.")


class CitationOut(BaseModel):
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float = Field(description="The last ranking stage's score (the reranker's by default), the same for every citation.")


class AskResponse(BaseModel):
    """Exactly ``AskResult.to_dict()``: the same object ``rag ask --json`` prints."""

    question: str
    language: str
    answerable: bool = Field(description="False when the documents do not answer the question (answer is null).")
    answer: AnswerOut | None
    citations: list[CitationOut]
    timings_ms: dict[str, float]
    index_version: int | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": AR_QUESTION,
                    "language": "ar",
                    "answerable": True,
                    "answer": {
                        "text": "... عبر 10 جلسات يستضيف خلالها 28 متحدثاً ...",
                        "doc_id": "001_0119a74ef5d5a5df",
                        "title": "يبحث منتدى تبادل الخبرات الحكومية ...",
                        "start": 0,
                        "end": 361,
                        "score": 0.99,
                        "focus": {"text": "28 متحدثاً", "start": 144, "end": 154, "kind": "number"},
                    },
                    "citations": [
                        {
                            "doc_id": "001_0119a74ef5d5a5df",
                            "title": "يبحث منتدى تبادل الخبرات الحكومية ...",
                            "text": "...",
                            "start": 0,
                            "end": 812,
                            "score": 1.118,
                        }
                    ],
                    "timings_ms": {"embed": 61.2, "retrieve": 4.1, "answer": 9.8, "total": 75.1},
                    "index_version": 1,
                },
                {
                    "question": "What is the capital of Japan?",
                    "language": "en",
                    "answerable": False,
                    "answer": None,
                    "citations": [],
                    "timings_ms": {"total": 70.3},
                    "index_version": 1,
                },
            ]
        }
    )


# --- search -------------------------------------------------------------------------------------


class PassageOut(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float = Field(
        description="The last ranking stage's score, one scale for the whole list: the reranker's by default "
        "(reciprocal-rank fusion when reranking is off)."
    )
    dense_rank: int | None
    bm25_rank: int | None


class SearchResponse(BaseModel):
    query: str
    k: int
    passages: list[PassageOut]
    index_version: int


# --- documents ----------------------------------------------------------------------------------


def _addressable(doc_id: str) -> str:
    if (problem := doc_id_problem(doc_id)) is not None:
        raise ValueError(problem)
    return doc_id


DocumentId = Annotated[StrictStr, AfterValidator(_addressable)]  # no control characters, no ./.. segments


class DocumentIn(BaseModel):
    """One document to index; ``text`` is cleaned like files are. Same ``id`` again = update."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "id": "faq/opening-hours",
                    "title": "Opening hours",
                    "text": "The service centre opens at 8 am.",
                    "url": "https://example.org/faq",
                },
                {"title": "ساعات العمل", "text": "يفتح مركز الخدمة أبوابه في الساعة الثامنة صباحاً."},
            ]
        },
    )

    # Strict: lax mode would read `"id": false` as the integer 0. No control characters: an id
    # with a line break could never be read or deleted again (`/documents/{id}` cannot match
    # it). Both found by the API fuzz run.
    id: DocumentId | StrictInt | None = Field(None, description="Document id (may contain '/'); derived from the text's hash when omitted.")
    title: str | None = Field(None, description="Derived from the text when omitted.")
    text: str = Field(min_length=1)
    url: str | None = Field(None, description="An absolute http(s) URL (other schemes, e.g. javascript:, are refused).")

    @field_validator("url")
    @classmethod
    def _web_url(cls, url: str | None) -> str | None:
        if url is not None and (problem := url_problem(url)) is not None:
            raise ValueError(problem)
        return url


INGEST_EXAMPLES = {
    "one_english": {
        "summary": "One English document",
        "value": {"id": "faq/opening-hours", "title": "Opening hours", "text": "The service centre opens at 8 am from Sunday to Thursday."},
    },
    "many_arabic": {
        "summary": "Several Arabic documents",
        "value": [
            {"id": "faq/hours-ar", "title": "ساعات العمل", "text": "يفتح مركز الخدمة أبوابه في الساعة الثامنة صباحاً من الأحد إلى الخميس."},
            {"text": "يمكن تجديد البطاقة عبر التطبيق خلال خمس دقائق."},
        ],
    },
}


class MarkedSpan(BaseModel):
    """The document text split around ``[start, end)``, so a citation can be shown in context."""

    start: int
    end: int
    before: str
    span: str = Field(description="text[start:end], the cited span itself.")
    after: str


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    url: str | None
    text: str
    length: int = Field(description="len(text) in characters; offsets index into text.")
    index_version: int
    marked: MarkedSpan | None = Field(None, description="Only with ?start=&end=.")


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    url: str | None
    length: int


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    index_version: int


class IngestResponse(BaseModel):
    index_version: int | None = Field(description="The live index version after the change (queries see it immediately).")
    added: list[str]
    updated: list[str]
    unchanged: list[str]


class DeleteResponse(BaseModel):
    index_version: int | None
    removed: list[str]


# --- health -------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    documents: int
    chunks: int
    model: str
    index_version: int


# --- feedback -----------------------------------------------------------------------------------

MAX_DOC_ID_CHARS = 1000


def _no_lone_surrogates(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" in JSON decodes to a lone surrogate
        raise ValueError("contains a lone surrogate (not valid Unicode)") from None
    return text


class FeedbackAnswer(BaseModel):
    """The span the feedback is about: ``answer.doc_id``, ``answer.start``, ``answer.end`` of the
    ``POST /ask`` result (or of the chat reply's ``rag.answer``)."""

    model_config = ConfigDict(extra="ignore")

    doc_id: Annotated[DocumentId, StringConstraints(min_length=1, max_length=MAX_DOC_ID_CHARS)]
    start: StrictInt = Field(ge=0)
    end: StrictInt = Field(ge=1, description="Exclusive; greater than start.")

    @field_validator("doc_id")
    @classmethod
    def _unicode(cls, v: str) -> str:
        return _no_lone_surrogates(v)

    @model_validator(mode="after")
    def _ordered(self) -> FeedbackAnswer:
        if self.end <= self.start:
            raise ValueError(f"end must be greater than start (got start={self.start}, end={self.end})")
        return self


class FeedbackRequest(BaseModel):
    """Was this answer helpful? Stored with the question, the answer's span and text, and the index
    version; never with the caller's address or key."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "question": AR_QUESTION,
                    "helpful": True,
                    "answer": {"doc_id": "001_0119a74ef5d5a5df", "start": 144, "end": 154},
                    "index_version": 1,
                    "language": "ar",
                },
                {"question": "What is the capital of Japan?", "helpful": False, "answer": None, "index_version": 1, "language": "en"},
            ]
        },
    )

    question: str = Field(strict=True, description="The question as asked (the same checks as POST /ask).")
    helpful: StrictBool = Field(description="true = helpful, false = wrong or unhelpful.")
    answer: FeedbackAnswer | None = Field(description="The answer's span, or null when the service abstained (required, may be null).")
    index_version: StrictInt | None = Field(None, ge=0, description="index_version of the answer (POST /ask, X-Index-Version).")
    language: Literal["ar", "en"] | None = Field(None, description="The question's language, when known.")
    comment: str | None = Field(None, strict=True, max_length=MAX_COMMENT_CHARS, description="Optional free text from the user.")

    @field_validator("comment")
    @classmethod
    def _comment(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = _no_lone_surrogates(v).strip()
        return v or None


FEEDBACK_EXAMPLES = {
    "helpful_arabic": {
        "summary": "A helpful Arabic answer",
        "value": {
            "question": AR_QUESTION,
            "helpful": True,
            "answer": {"doc_id": "001_0119a74ef5d5a5df", "start": 144, "end": 154},
            "index_version": 1,
            "language": "ar",
        },
    },
    "unhelpful_abstention": {
        "summary": "The service abstained and that did not help",
        "value": {
            "question": EN_QUESTION,
            "helpful": False,
            "answer": None,
            "index_version": 1,
            "language": "en",
            "comment": "The forum page lists the speakers.",
        },
    },
}


class FeedbackStored(BaseModel):
    id: str = Field(description="The stored record's id (uuid4, hex).")
    stored: Literal[True] = True


# --- OpenAI-compatible chat ---------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="Only 'text' parts are read; others are ignored.")
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _unicode(cls, v: Any) -> Any:
        # every turn and part, not only the question: an earlier user turn becomes a follow-up's
        # topic, and reaches the embedder too (before: a 500 there)
        for text in [v] if isinstance(v, str) else [p.get("text") for p in v if isinstance(p, dict)] if isinstance(v, list) else []:
            if isinstance(text, str):
                _no_lone_surrogates(text)
        return v


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request; unknown fields (temperature, max_tokens, ...) are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"model": "rag-extractive", "messages": [{"role": "user", "content": AR_QUESTION}]},
                {
                    "model": "rag-extractive",
                    "stream": True,
                    "messages": [
                        {"role": "user", "content": "How many speakers are at the Government Experience Exchange Forum?"},
                        {"role": "assistant", "content": "... 28 speakers ... [1]"},
                        {"role": "user", "content": "and when was it held?"},
                    ],
                },
            ]
        },
    )

    model: str = Field("rag-extractive", description="Accepted and ignored: there is one model.")
    messages: list[ChatMessage] = Field(min_length=1)
    # Strict like top_k: "yes" or 1 is a client bug, not a request to stream.
    stream: bool = Field(False, strict=True)
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, strict=True, description="Extension: passages to retrieve.")


CHAT_EXAMPLES = {
    "arabic": {"summary": "Arabic question", "value": {"model": "rag-extractive", "messages": [{"role": "user", "content": AR_QUESTION}]}},
    "english_follow_up": {
        "summary": "English follow-up, streamed",
        "value": {
            "model": "rag-extractive",
            "stream": True,
            "messages": [
                {"role": "user", "content": "How many speakers are at the Government Experience Exchange Forum?"},
                {"role": "assistant", "content": "... 28 speakers ... [1]"},
                {"role": "user", "content": "and when was it held?"},
            ],
        },
    },
    "arabic_follow_up": {
        "summary": "Arabic follow-up",
        "value": {
            "model": "rag-extractive",
            "messages": [
                {"role": "user", "content": AR_QUESTION},
                {"role": "assistant", "content": "... 28 متحدثاً ... [1]"},
                {"role": "user", "content": "ومتى عقدت؟"},
            ],
        },
    },
}


class ChatCitation(BaseModel):
    index: int = Field(description="The number used in the content's [n] marker.")
    doc_id: str
    title: str
    url: str | None
    start: int
    end: int
    text: str = Field(description="The cited span: document text[start:end].")
    score: float
    link: str = Field(description="Relative link to the document with the span marked.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class Usage(BaseModel):
    """Whitespace word counts (the extractive model has no tokenizer-based billing)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = Field(None, description="index-v<version> the answer came from.")
    choices: list[ChatChoice]
    usage: Usage
    citations: list[ChatCitation] = Field(description="Extension: the sources behind the [n] markers.")
    rag: AskResponse = Field(description="Extension: the full POST /ask result for the resolved question.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


_ERROR_MEANING = {
    400: "Invalid JSON or malformed request",
    401: "Missing or invalid API key / admin token",
    403: "Admin routes are disabled (no RAG_ADMIN_TOKEN configured)",
    404: "Unknown document or route",
    413: "Request body larger than RAG_MAX_BODY_BYTES",
    415: "Request body is not JSON",
    422: "Validation error (empty or too long question, top_k out of range, wrong types, bad span)",
    429: "Rate limit exceeded; see Retry-After",
    500: "Unexpected error (logged with the request id)",
    503: "No index loaded yet",
    507: "The feedback store is full (RAG_FEEDBACK_MAX_BYTES) or its disk is",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the common error shape for ``codes``."""
    return {c: {"model": ErrorResponse, "description": _ERROR_MEANING[c]} for c in codes}
