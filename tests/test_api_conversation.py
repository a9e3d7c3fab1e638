"""Chat turns -> retrieval question (the follow-up rule) and AskResult -> cited chat reply."""

from __future__ import annotations

import pytest

from api.conversation import (
    document_link,
    is_follow_up,
    message_text,
    render_reply,
    resolve_question,
    stream_pieces,
)
from api.schemas import ChatMessage
from rag.answering import NO_ANSWER
from rag.schema import Answer, AskResult, Focus, Passage

AR_Q = "كم عدد المتحدثين في منتدى تبادل الخبرات الحكومية؟"
EN_Q = "How many speakers take part in the Government Experience Exchange Forum?"


def user(text) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


@pytest.mark.parametrize(
    "text",
    [
        "and when was it held?",
        "And where?",
        "what about the sessions?",
        "When was it held?",
        "How many sessions?",
        "ومتى عقدت؟",
        "فأين تقام؟",
        "و ماذا عن الجلسات؟",
        "وماذا عن زيمبابوي؟",
        "متى؟",
        "ووين انعقد؟",
    ],
)
def test_follow_ups(text: str) -> None:
    assert is_follow_up(text)


@pytest.mark.parametrize(
    "text",
    [
        AR_Q,
        EN_Q,
        "Which countries attended the World Government Summit in Dubai?",
        "وزير الخارجية الإماراتي شارك في أي قمة حكومية؟",
        # a continuation word does not decide: a turn that carries its question is asked alone
        "and how many officials are expected at the special edition of the summit?",
        "وكم عدد الدول المشاركة في معرض اكسبو 2020؟",
        "ومين أدار الجلسة الافتتاحية في المنتدى؟",
        "وإمتى انعقد المنتدى الحكومي العالمي؟",
    ],
)
def test_standalone_questions(text: str) -> None:
    assert not is_follow_up(text)


def test_first_question_is_never_a_follow_up() -> None:
    r = resolve_question([ChatMessage(role="system", content="Be brief."), user("When was it held?")])
    assert r.question == r.turn == "When was it held?" and r.topic is None


def test_follow_up_gets_the_last_standalone_user_question_as_topic() -> None:
    messages = [user(AR_Q), assistant("... 28 متحدثاً [1]"), user("ومتى عقدت؟"), assistant("..."), user("وأين؟")]
    r = resolve_question(messages)
    assert r.turn == "وأين؟"
    assert r.topic == AR_Q  # skips the earlier follow-up, which is not a topic by itself
    assert r.question == f"{AR_Q} وأين؟"


def test_standalone_last_turn_ignores_history() -> None:
    r = resolve_question([user(AR_Q), assistant("..."), user(EN_Q)])
    assert r.question == EN_Q and r.topic is None


def test_assistant_and_system_turns_are_not_topics() -> None:
    r = resolve_question([ChatMessage(role="system", content=EN_Q), assistant(EN_Q), user("and when?")])
    assert r.question == "and when?" and r.topic is None


def test_content_parts_and_no_user_text() -> None:
    parts = user([{"type": "text", "text": "first"}, {"type": "image_url"}, {"type": "text", "text": "second"}])
    assert message_text(parts) == "first\nsecond"
    assert resolve_question([assistant("hi"), user("   "), user([{"type": "image_url"}])]) is None


def _result(answer: Answer | None, language: str) -> AskResult:
    p = Passage("d/1#0", "d/1", "Title", "Some passage text.", 0, 18, 0.5)
    return AskResult("q", language, answer is not None, answer, [p], {"total": 1.0}, 3)


def test_reply_cites_the_answer_span_with_marker_and_sources() -> None:
    a = Answer("It has 28 speakers.", "d/1", "The forum", 10, 29, 0.9, Focus("28 speakers", 17, 28, "number"))
    content, citations = render_reply(_result(a, "en"), "en", {"d/1": "https://example.org/forum"})
    assert content.startswith("It has 28 speakers. [1]")
    assert "Sources:\n[1] The forum — https://example.org/forum" in content
    assert citations == [
        {
            "index": 1,
            "doc_id": "d/1",
            "title": "The forum",
            "url": "https://example.org/forum",
            "start": 10,
            "end": 29,
            "text": "It has 28 speakers.",
            "score": 0.9,
            "link": "/documents/d/1?start=10&end=29",
        }
    ]
    content_ar, _ = render_reply(_result(a, "ar"), "ar", {})
    assert "المصادر:\n[1] The forum (d/1)" in content_ar


def test_abstention_in_the_question_language_cites_nothing() -> None:
    assert render_reply(_result(None, "ar"), "ar", {}) == (NO_ANSWER["ar"], [])
    assert render_reply(_result(None, "en"), "en", {}) == (NO_ANSWER["en"], [])


def test_document_link_escapes_but_keeps_slashes() -> None:
    assert document_link("faq/a b?", 1, 2) == "/documents/faq/a%20b%3F?start=1&end=2"


@pytest.mark.parametrize("content", ["", "one", "word " * 13, f"{AR_Q} [1]\n\nالمصادر:\n[1] t  (x)"])
def test_stream_pieces_concatenate_to_the_content(content: str) -> None:
    pieces = stream_pieces(content, 4)
    assert "".join(pieces) == content
    assert all(len(p.split()) <= 4 for p in pieces)


def test_a_follow_ups_topic_is_cut_to_its_token_budget(e5) -> None:
    """An earlier turn is not checked like the question, so the topic joined in front of a
    follow-up is cut to a model-token budget: its beginning, at a word boundary (issue 15)."""
    topic = "Who is the CEO of TMRW " + "and the other speakers at the forum " * 5000  # about 200 KB
    r = resolve_question([user(topic), user("and when?")], e5.token_count, 48)
    assert r is not None and r.turn == "and when?" and r.topic is not None
    assert r.topic.startswith("Who is the CEO of TMRW") and topic.startswith(r.topic)
    assert e5.token_count(r.topic) - e5.token_count("") <= 48
    assert r.question == f"{r.topic} and when?"
    # a topic within the budget is kept whole
    assert resolve_question([user(EN_Q), user("and when?")], e5.token_count, 48).topic == EN_Q  # type: ignore[union-attr]


def test_a_long_turn_is_never_a_follow_up_however_it_ends() -> None:
    assert not is_follow_up("Who is the CEO of TMRW " + "x " * 100_000)
    assert is_follow_up("and when " + "? " * 100_000)  # no content word in its beginning


def test_a_follow_ups_query_reads_its_own_question_first() -> None:
    r = resolve_question([user(AR_Q), assistant("28 [1]"), user("ومتى عقد؟")])
    assert r is not None and r.topic == AR_Q
    q = r.query()
    assert q.text == r.question == f"{AR_Q} ومتى عقد؟" and q.vector is None  # RAG.ask embeds it
    assert q.reading.startswith("ومتى عقد ") and q.kind == "date"
    alone = resolve_question([user("ومتى عقد؟")])
    assert alone is not None and alone.query().reading == "ومتى عقد؟"


def test_the_reader_answers_the_follow_up_not_its_topic_again(corpus_rag, e5) -> None:
    """The shipped span reader over the default corpus: reading the joined text it gave the
    topic's answer (28 speakers) to "and when was it held?"."""
    r = resolve_question([user(AR_Q), assistant("28 [1]"), user("ومتى عقد؟")], e5.token_count, 48)
    assert r is not None
    answer = corpus_rag.ask(r.query()).answer
    assert answer is not None and "فبراير" in answer.text
    joined = corpus_rag.ask(r.question).answer
    assert joined is None or "فبراير" not in joined.text
