"""Chat turns -> one retrieval question, and an ``AskResult`` -> a cited chat reply.

Follow-up rule (documented for users of ``/v1/chat/completions``): only user turns count. The last
user turn is the question. It is a *follow-up* when an earlier user turn exists and it has at most
``FOLLOW_UP_MAX_WORDS`` BM25 tokens (stop words removed), e.g. "When was it held?", "ووين انعقد؟",
"وماذا عن زيمبابوي؟". A turn that carries its own question is asked alone, even when it starts with
"and" or و ("وكم عدد الدول المشاركة في معرض اكسبو 2020؟"): joining such a turn to the topic made
the answers worse (eval/RESULTS.md, "Update 12": on held-out follow-ups written by people, F1
0.502 -> 0.581 and sentence hit 0.697 -> 0.816 when it was dropped; the same with 131 Wikipedia
articles as distractors). A continuation word no longer decides.

A follow-up is sent to retrieval prefixed with the most recent earlier user turn that was not
itself a follow-up (the topic), e.g. "How many speakers at the forum? and when was it held?".
The span reader reads the turn's question first and then what the topic was about, "and when
was it held speakers at the forum?" (``rag.text.follow_up_for_reader``): given the joined text it
answered the topic's question again ("28" for "when was it held?").
Only the topic's beginning is kept, ``RAG_CHAT_TOPIC_TOKENS`` model tokens (default 48): earlier
turns are not checked like the question itself, and without a bound a long one made every
follow-up as slow as embedding it (a 6 KB turn held a worker for 39 s).
Everything else (system prompts, assistant turns) is ignored: the answer is extractive.
``POST /ask`` applies the same rule to its ``question`` after its ``previous`` questions
(``resolve_turns``); the widget sends those.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from api.schemas import ChatMessage
from rag.answering import NO_ANSWER
from rag.embedding import truncate_to_tokens
from rag.loading import is_web_url
from rag.schema import AskResult
from rag.stages import Query, analyse
from rag.text import detect_language, tokenize

FOLLOW_UP_MAX_WORDS = 2
# Whether a turn is a follow-up is decided on its beginning: a turn with more than two content
# words there is none, however long it is (bounds the work on a long earlier turn).
_FOLLOW_UP_SCAN_CHARS = 400

SOURCES = {"ar": "المصادر:", "en": "Sources:"}


@dataclass(frozen=True)
class Resolved:
    question: str  # what retrieval gets
    turn: str  # the last user turn as written
    topic: str | None  # the earlier turn prepended to a follow-up, None for a standalone question

    def query(self, language: str | None = None) -> Query:
        """The analysed question (not embedded: ``RAG.ask`` does that, off the event loop)."""
        return analyse(self.turn, language=language, topic=self.topic)


def message_text(message: ChatMessage) -> str:
    """The text of a message: a string, or its ``text`` parts joined."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if p.type == "text" and p.text)


def is_follow_up(text: str) -> bool:
    """Very few content words: the turn cannot be asked alone (see the module docstring)."""
    return len(tokenize(text[:_FOLLOW_UP_SCAN_CHARS])) <= FOLLOW_UP_MAX_WORDS


def resolve_question(
    messages: list[ChatMessage], count_tokens: Callable[[str], int] | None = None, topic_tokens: int = 48
) -> Resolved | None:
    """The question to retrieve for, or None when there is no user turn with text. With
    ``count_tokens`` (the embedder's), a follow-up's topic is cut to ``topic_tokens`` tokens."""
    return resolve_turns([message_text(m) for m in messages if m.role == "user"], count_tokens, topic_tokens)


def resolve_turns(turns: list[str], count_tokens: Callable[[str], int] | None = None, topic_tokens: int = 48) -> Resolved | None:
    """``resolve_question`` for the user's questions alone, oldest first (``POST /ask``'s
    ``previous`` then its ``question``); empty ones are skipped."""
    turns = [t.strip() for t in turns if t.strip()]
    if not turns:
        return None
    last, earlier = turns[-1], turns[:-1]
    if not earlier or not is_follow_up(last):
        return Resolved(last, last, None)
    topic = next((t for t in reversed(earlier) if not is_follow_up(t)), earlier[-1])
    if count_tokens is not None:
        topic = truncate_to_tokens(topic, count_tokens, topic_tokens)
    if not topic:
        return Resolved(last, last, None)
    return Resolved(f"{topic} {last}", last, topic)


def reply_language(text: str) -> str:
    return "ar" if detect_language(text) == "ar" else "en"


def document_link(doc_id: str, start: int, end: int) -> str:
    return f"/documents/{quote(doc_id, safe='/')}?start={start}&end={end}"


def render_reply(result: AskResult, language: str, url_of: dict[str, str | None]) -> tuple[str, list[dict[str, Any]]]:
    """The assistant content (answer + ``[1]`` marker, its sentence when the answer is shorter, sources
    list) and its structured citations.

    The answer is one verbatim span of one document, so there is one source, numbered [1]; the
    other retrieved passages stay available in the ``rag`` field. Abstaining cites nothing.
    """
    a = result.answer
    if a is None:
        return NO_ANSWER[language], []
    url = url_of.get(a.doc_id)
    # Only http(s) links are ever printed or returned: an index built before URLs were checked
    # (or edited by hand) may hold e.g. a javascript: URL, and chat front-ends may linkify it.
    url = url if is_web_url(url) else None
    citation = {
        "index": 1,
        "doc_id": a.doc_id,
        "title": a.title,
        "url": url,
        "start": a.start,
        "end": a.end,
        "text": a.text,
        "score": round(float(a.score), 6),
        "link": document_link(a.doc_id, a.start, a.end),
    }
    where = f" — {url}" if url else f" ({a.doc_id})"
    # A short answer comes first, then the sentence it stands in (its context), then the source.
    context = f"\n\n{a.sentence.text}" if a.sentence is not None and a.sentence.text != a.text else ""
    content = f"{a.text} [1]{context}\n\n{SOURCES[language]}\n[1] {a.title}{where}"
    return content, [citation]


def stream_pieces(content: str, words_per_piece: int = 4) -> list[str]:
    """Split content into a few words per piece; the pieces concatenate back to exactly ``content``."""
    words = re.findall(r"\s+|\S+\s*", content)
    return ["".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)]
