"""Chunking: exact offsets, full coverage, token limits, overlap and attached sentences."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunking import Chunker, document_sentences
from rag.schema import Chunk, Document


def words(text: str) -> int:
    """A cheap token counter: whitespace-separated words."""
    return len(text.split())


def check_chunks(doc: Document, chunks: list[Chunk], count, limit: int) -> None:
    """The invariants every chunking must satisfy, whatever the counter."""
    assert chunks or not doc.text.strip()
    overhead = count("")
    covered = 0
    for i, c in enumerate(chunks):
        assert c.doc_id == doc.doc_id and c.ordinal == i
        assert 0 <= c.start < c.end <= len(doc.text)
        assert doc.text[c.start : c.end] == c.text
        if i:
            assert c.start > chunks[i - 1].start and c.end > chunks[i - 1].end
        # nothing but whitespace is left out between chunks
        assert not doc.text[covered : c.start].strip()
        covered = max(covered, c.end)
        assert count(c.text) - overhead <= limit
        # the attached sentences are exactly those overlapping the chunk
        expected = [s for s in document_sentences(doc) if s.start < c.end and s.end > c.start]
        assert list(c.sentences) == expected
    assert not doc.text[covered:].strip()


def paragraph(sentences: list[str]) -> str:
    return " ".join(sentences)


AR_SHORT = [f"الجملة رقم {i} عن القمة." for i in range(120)]
AR_LONG = [
    f"وفي الجلسة رقم {i} ناقش الوزراء والخبراء المشاركون في القمة العالمية للحكومات مستقبل "
    "الخدمات الحكومية الرقمية وأثر الذكاء الاصطناعي على سوق العمل والتعليم والصحة في المنطقة."
    for i in range(30)
]
EN = [f"Session {i} of the summit discussed digital government services and their future." for i in range(60)]


@pytest.mark.parametrize("text", [paragraph(AR_SHORT), paragraph(EN), "\n\n".join(AR_LONG), "قصير."])
def test_chunks_with_a_word_counter(text):
    doc = Document("d", "t", text)
    chunker = Chunker(words, chunk_tokens=40, overlap=8)
    check_chunks(doc, chunker.split(doc), words, 40)


def test_long_paragraph_of_short_sentences_overlaps():
    doc = Document("d", "t", paragraph(AR_SHORT))
    chunks = Chunker(words, chunk_tokens=40, overlap=8).split(doc)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end, "consecutive chunks must overlap"


def test_repeated_passages_get_their_own_offsets():
    # A document that repeats a passage: each chunk must point at its own copy, in order.
    block = paragraph(AR_SHORT[:20])
    doc = Document("d", "t", f"{block}\n\n{block}\n\n{block}")
    chunks = Chunker(words, chunk_tokens=40, overlap=8).split(doc)
    check_chunks(doc, chunks, words, 40)
    assert chunks[-1].end == len(doc.text)


def test_overlap_must_be_smaller_than_chunk():
    with pytest.raises(ValueError):
        Chunker(words, chunk_tokens=10, overlap=10)


def test_empty_document_has_no_chunks():
    assert Chunker(words, 40, 8).split(Document("d", "t", "   \n ")) == []


def test_splits_prefer_arabic_sentence_and_clause_ends():
    text = "، ".join(f"البند {i} من الاتفاقية" for i in range(40)) + "."
    doc = Document("d", "t", text)
    chunks = Chunker(words, chunk_tokens=30, overlap=0).split(doc)
    assert len(chunks) > 1
    for c in chunks[:-1]:
        assert c.text.endswith("،"), c.text[-10:]


# --- with the real e5 tokenizer ----------------------------------------------------------------


def test_chunks_with_e5_tokens_on_the_corpus(e5, corpus_documents):
    chunker = Chunker(e5.token_count, chunk_tokens=200, overlap=32)
    for doc in corpus_documents:
        chunks = chunker.split(doc)
        check_chunks(doc, chunks, e5.token_count, 200)
        assert all(e5.token_count(c.text) <= e5.max_tokens for c in chunks)


def test_chunks_with_e5_tokens_on_repeated_text(e5):
    block = paragraph(AR_LONG[:6])
    doc = Document("d", "t", f"{block}\n\n{block}\n\n{block}")
    chunks = Chunker(e5.token_count, chunk_tokens=120, overlap=24).split(doc)
    check_chunks(doc, chunks, e5.token_count, 120)


def test_e5_chunks_overlap_inside_a_long_paragraph(e5):
    # One long paragraph of ordinary news-length sentences (~40 tokens each): every cut
    # falls inside the paragraph, so consecutive chunks must share text.
    doc = Document("d", "t", paragraph(AR_LONG))
    chunks = Chunker(e5.token_count, chunk_tokens=200, overlap=32).split(doc)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end, f"chunks {a.ordinal} and {b.ordinal} do not overlap"


@pytest.mark.parametrize(
    "text",
    [
        "Needle: the Aswan Low Dam was built in 1902. " + "QmFzZTY0" * 2500,  # a base64 blob on one line
        "東京は日本の首都です。" * 600,  # Japanese: no spaces, and "。" is no separator
        "x" * 30_000,
    ],
    ids=["base64", "japanese", "one-character"],
)
def test_e5_chunks_stay_bounded_in_text_without_spaces(e5, text):
    # single characters count 0 tokens after the prompt overhead, so the splitter alone made
    # each of these one chunk of the whole text
    doc = Document("d", "t", text)
    chunks = Chunker(e5.token_count, chunk_tokens=200, overlap=32).split(doc)
    assert len(chunks) > 5
    check_chunks(doc, chunks, e5.token_count, 200)


# --- property: any text, cheap length counter ----------------------------------------------------

_text = st.lists(
    st.one_of(
        st.sampled_from(["القمة", "العالمية", "للحكومات", "دبي", "summit", "Dubai", "7.98", "د.", "2024"]),
        st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "؟ ", "، ", "؛ ", "! ", "\t"]),
        st.text(alphabet=st.characters(min_codepoint=0x0621, max_codepoint=0x064A), min_size=1, max_size=12),
        st.text(min_size=1, max_size=6),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(_text, st.integers(min_value=5, max_value=60), st.integers(min_value=0, max_value=4))
def test_property_chunks_slice_back_and_cover_any_text(text, size, overlap):
    doc = Document("d", "t", text)
    chunks = Chunker(len, chunk_tokens=size, overlap=overlap).split(doc)
    check_chunks(doc, chunks, len, size)
