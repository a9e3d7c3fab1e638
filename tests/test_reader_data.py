"""Training examples: the unanswerable twins of questions (``QuestionSwapper``) and the
no-answer windows ``build_windows`` makes of them."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from rag.reader.data import QAExample, QuestionSwapper, build_windows
from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File

CAIRO = "تأسست جامعة القاهرة عام 1908 في الجيزة، وهي من أقدم الجامعات في مصر والعالم العربي."
AMAZON = "تغطي غابة الأمازون معظم حوض الأمازون في أمريكا الجنوبية، ويقع أكثرها في البرازيل."
NILE = "يجري نهر النيل من بحيرة فيكتوريا شمالا حتى البحر المتوسط مارا بالسودان ومصر."
FILLER = [f"فقرة عامة رقم {i} عن التاريخ والجغرافيا والناس في كل مكان من العالم." for i in range(60)]


def _example(qid: str, article: str, question: str, context: str, answer: str) -> QAExample:
    start = context.index(answer)
    return QAExample(qid, "arcd", article, 0, question, context, ((start, start + len(answer)),))


@pytest.fixture()
def examples() -> list[QAExample]:
    rows = [
        _example("c", "Cairo University", "متى تأسست جامعة القاهرة؟", CAIRO, "1908"),
        _example("a", "Amazon", "أين يقع أكثر غابة الأمازون؟", AMAZON, "البرازيل"),
        _example("n", "Nile", "من أين يجري نهر النيل؟", NILE, "بحيرة فيكتوريا"),
        _example("e", "Nile", "Which lake does the Nile flow from?", NILE, "بحيرة فيكتوريا"),
        _example("f", "Amazon", "Which country holds most of the Amazon forest?", AMAZON, "البرازيل"),
    ]
    # common paragraphs, so that only names and terms count as rare
    return rows + [_example(f"x{i}", f"Filler {i}", "ما هذا؟", text, "التاريخ") for i, text in enumerate(FILLER)]


def test_a_twin_swaps_a_name_its_paragraph_holds_for_one_it_does_not(examples: list[QAExample]):
    swapper = QuestionSwapper(examples)
    rng = random.Random(0)
    for ex in examples[:3]:
        twins = {swapper.swap(ex, rng) for _ in range(20)} - {None}
        assert twins, ex.question
        for twin in twins:
            assert twin is not None
            gone = set(re.findall(r"\w+", ex.question)) - set(re.findall(r"\w+", twin))
            new = set(re.findall(r"\w+", twin)) - set(re.findall(r"\w+", ex.question))
            assert len(gone) == 1 and len(new) == 1, (ex.question, twin)
            assert gone.pop() in ex.context  # it named something the paragraph holds
            assert new.pop() not in ex.context  # and now names something it does not
            # question words and common words stay, so the twin still asks the same kind of thing
            assert twin.split()[0] == ex.question.split()[0]


def test_english_questions_over_arabic_swap_their_names(examples: list[QAExample]):
    swapper = QuestionSwapper(examples)
    rng = random.Random(0)
    twins = {swapper.swap(examples[3], rng) for _ in range(20)} - {None}
    assert twins
    for twin in twins:
        assert twin is not None and "Nile" not in twin and twin.startswith("Which lake does the ")
        assert twin.split()[4][0].isupper()  # another article's name ("Amazon"), not a common word


def test_common_words_are_never_swapped():
    # every word of the question is in every paragraph: nothing names one paragraph
    rows = [_example(f"q{i}", f"A{i}", "ما هذا؟", text, "التاريخ") for i, text in enumerate(FILLER)]
    swapper = QuestionSwapper(rows)
    assert all(swapper.swap(ex, random.Random(1)) is None for ex in rows)


@pytest.fixture(scope="module")
def tok() -> ReaderTokenizer:
    return ReaderTokenizer(E5File().vocab)


def test_twins_add_no_answer_windows_over_the_answer(examples: list[QAExample], tok: ReaderTokenizer):
    plain = build_windows(tok, examples, negatives=0.5, seed=3)
    swapped = build_windows(tok, examples, negatives=0.5, swaps=1.0, seed=3)

    def key(w):
        return (tuple(w.ids.tolist()), w.start, w.end, w.example)

    # the other windows are the same: swaps draw from a random stream of their own
    assert not Counter(map(key, plain)) - Counter(map(key, swapped))
    left = Counter(map(key, plain))
    extra = []
    for w in swapped:
        if left[key(w)]:
            left[key(w)] -= 1
        else:
            extra.append(w)
    assert len(extra) >= 4  # the three Arabic questions and at least one English one
    for w in extra:
        ex = examples[w.example]
        assert w.start == w.end == 0  # labelled "no answer"
        a, b = ex.answers[0]
        assert w.offsets[0, 0] <= a and b <= w.offsets[-1, 1]  # although the original answer is in sight
        question = tok.encode(ex.question).ids.tolist()
        assert w.ids[1 : 1 + len(question)].tolist() != question  # read with the twin, not the question
