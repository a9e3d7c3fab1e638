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
            add_start_index=True,
            strip_whitespace=True,
        )

    def split(self, doc: Document, sentences: list[Sentence] | None = None) -> list[Chunk]:
        """Chunks of ``doc`` in order; ``doc.text[c.start:c.end] == c.text`` for each."""
        sentences = document_sentences(doc) if sentences is None else sentences
        chunks: list[Chunk] = []
        for piece in self._splitter.create_documents([doc.text]):
            start = piece.metadata["start_index"]
            text = piece.page_content
            if start < 0 or doc.text[start : start + len(text)] != text:
                start = doc.text.find(text)  # the splitter lost the offset; recover it exactly
            end = start + len(text)
            inside = tuple(s for s in sentences if s.start < end and s.end > start)
            chunks.append(Chunk(doc.doc_id, len(chunks), start, end, text, inside))
        return chunks
