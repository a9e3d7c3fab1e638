"""Chunking stage: split each document into overlapping, token-bounded chunks that keep
their offsets into the document and the sentences they overlap."""

from __future__ import annotations

from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.schema import Chunk, Document, Sentence
from rag.text import sentence_spans

# Paragraphs first, then lines, then sentence ends (Latin and Arabic), then clauses (the
# Arabic comma "،" and semicolon "؛" included), then words. Separators are kept at the end
# of the piece they close, so a chunk ends on its punctuation.
SEPARATORS = ["\n\n", "\n", ". ", "؟ ", "? ", "! ", "؛ ", "; ", "، ", ", ", " ", ""]


def document_sentences(doc: Document) -> list[Sentence]:
    """All sentences of a document with offsets into its text."""
    return [Sentence(doc.doc_id, s, e, doc.text[s:e]) for s, e in sentence_spans(doc.text)]


class Chunker:
    """Token-sized recursive splitter (sizes are counted with the embedder's own tokenizer)."""

    def __init__(self, token_count: Callable[[str], int], chunk_tokens: int = 200, overlap: int = 32):
        if overlap >= chunk_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        # The tokenizer adds its special tokens and the "passage: " prefix to every call;
        # subtract them so the splitter's sum over pieces approximates the joined length.
        overhead = token_count("")
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_tokens,
            chunk_overlap=overlap,
            length_function=lambda t: max(token_count(t) - overhead, 0),
            strip_whitespace=True,
        )

    def split(self, doc: Document, sentences: list[Sentence] | None = None) -> list[Chunk]:
        """Chunks of ``doc`` in order; ``doc.text[c.start:c.end] == c.text`` for each."""
        sentences = document_sentences(doc) if sentences is None else sentences
        chunks: list[Chunk] = []
        prev_start, prev_end = -1, 0
        for text in self._splitter.split_text(doc.text):
            start = _locate(doc.text, text, prev_start, prev_end)
            end = start + len(text)
            # Whitespace stripping and character-level overlap can make langchain emit a piece
            # that lies inside the previous one, or one that contains it: keep the larger.
            if chunks and end <= prev_end:
                continue
            if chunks and start <= prev_start:
                chunks.pop()
            inside = tuple(s for s in sentences if s.start < end and s.end > start)
            chunks.append(Chunk(doc.doc_id, len(chunks), start, end, text, inside))
            prev_start, prev_end = start, end
        return chunks


def _locate(text: str, piece: str, prev_start: int, prev_end: int) -> int:
    """Offset of chunk ``piece`` in ``text``, given the previous chunk's span.

    The splitter returns chunks in order, each starting at or after the previous one's start
    and no later than the first non-space character after its end (overlap or adjacency).
    The last occurrence in that window is the chunk; searching the whole text instead (or
    langchain's ``start_index``, which subtracts the overlap in tokens from a character
    offset) lands on the wrong copy when a document repeats a passage.
    """
    limit = prev_end
    while limit < len(text) and text[limit].isspace():
        limit += 1
    start = text.rfind(piece, max(prev_start, 0), limit + len(piece))
    if start < 0:  # not expected from the splitter; still return an exact occurrence
        start = text.find(piece, max(prev_start, 0))
        if start < 0:
            start = text.find(piece)
    return start
