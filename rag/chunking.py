"""Chunking stage: split each document into overlapping, token-bounded chunks that keep
their offsets into the document and the sentences they overlap."""

from __future__ import annotations

import re
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
        self._length = lambda t: max(token_count(t) - overhead, 0)
        self.overlap = overlap
        self.size = chunk_tokens - overlap  # of a piece before its overlap is added
        # langchain only overlaps when its pieces are smaller than the overlap, so a text of
        # long sentences got chunks that merely touch. Split into (size - overlap) token
        # pieces without overlap instead, then extend each chunk back into the previous one
        # by up to ``overlap`` tokens at a word boundary: every chunk stays within the size.
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_tokens - overlap,
            chunk_overlap=0,
            length_function=self._length,
            strip_whitespace=True,
        )

    def split(self, doc: Document, sentences: list[Sentence] | None = None) -> list[Chunk]:
        """Chunks of ``doc`` in order; ``doc.text[c.start:c.end] == c.text`` for each."""
        sentences = document_sentences(doc) if sentences is None else sentences
        spans: list[tuple[int, int]] = []
        prev_start, prev_end = -1, 0
        for text in self._splitter.split_text(doc.text):
            start = _locate(doc.text, text, prev_start, prev_end)
            end = start + len(text)
            # Whitespace stripping can make langchain emit a piece that lies inside the
            # previous one, or one that contains it: keep the larger.
            if spans and end <= prev_end:
                continue
            if spans and start <= prev_start:
                spans.pop()
            spans.append((start, end))
            prev_start, prev_end = start, end
        spans = [piece for s, e in spans for piece in self._bounded(doc.text, s, e)]
        chunks: list[Chunk] = []
        for i, (start, end) in enumerate(spans):
            if i:
                start = self._extend_back(doc.text, start, floor=spans[i - 1][0] + 1)
            inside = tuple(s for s in sentences if s.start < end and s.end > start)
            chunks.append(Chunk(doc.doc_id, i, start, end, doc.text[start:end], inside))
        return chunks

    def _bounded(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """``[start, end)`` as is, or cut into the longest prefixes of at most ``size`` tokens when
        it is longer. The splitter's last resort, single characters, cannot close a piece: one
        character counts 0 tokens once the prompt overhead is subtracted. So a text without spaces
        (base64, minified code, Chinese or Japanese) came out as one chunk of any length: 2 MB of
        base64 was one chunk, and a question over it needed 5 GiB in the span reader."""
        if self._length(text[start:end]) <= self.size:
            return [(start, end)]
        out = []
        guess = self.size  # characters; at least one per token
        while start < end:
            lo, hi = 1, min(end - start, 2 * guess)
            while self._length(text[start : start + hi]) <= self.size and hi < end - start:
                lo, hi = hi, min(end - start, 2 * hi)  # grow until over (or the end)
            while lo < hi:  # the longest prefix within size: lo fits, everything above hi does not
                mid = (lo + hi + 1) // 2
                if self._length(text[start : start + mid]) <= self.size:
                    lo = mid
                else:
                    hi = mid - 1
            out.append((start, start + lo))
            start, guess = start + lo, lo
        return out

    def _extend_back(self, text: str, start: int, floor: int) -> int:
        """The earliest word start in ``text[floor:start]`` that adds at most ``overlap``
        tokens in front of ``start``."""
        best = start
        for m in reversed(list(_WORD_START.finditer(text, floor, start))):
            if self._length(text[m.start() : start]) > self.overlap:
                break
            best = m.start()
        return best


_WORD_START = re.compile(r"(?<!\S)\S")


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
