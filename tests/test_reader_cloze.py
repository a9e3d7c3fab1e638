"""Cloze questions from training paragraphs: what is blanked out, how it is asked, and which
paragraphs are read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.reader.cloze import HOW_MANY, SOURCE, WHAT, WHEN, cloze_examples
from rag.reader.data import QAExample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

DATES = (
    "تأسست أول بورصة في مدينة وارسو في عام 1817 واستمرت في التداول حتى الحرب العالمية الثانية. "
    "وولد الملك الحسن الثاني في 21 أغسطس 1963 في مدينة الرباط عاصمة المغرب الأقصى. "
    "ويبلغ عدد سكان المدينة 350 ألف نسمة وفق آخر إحصاء رسمي أجرته الدولة."
)
NAMES_1 = "حكم الرئيس جاكوبو أربينز البلاد بين الحربين وأجرى إصلاحات واسعة في الريف."
NAMES_2 = "عارضت الشركات الكبرى سياسات جاكوبو أربينز بشدة وسعت إلى إسقاط حكومته المنتخبة."


def example(context: str, *, article: str = "a", paragraph: int = 0, source: str = "arcd") -> QAExample:
    return QAExample(f"{article}-{paragraph}", source, article, paragraph, "سؤال؟", context, ((0, 3),))


def answer(e: QAExample) -> str:
    ((a, b),) = e.answers
    return e.context[a:b]


def test_numbers_and_dates_are_blanked_out_and_asked_with_their_wh_word():
    made = cloze_examples([example(DATES)], 5, pieces=set())
    assert len(made) == 3  # one per sentence
    asked = {answer(e): e.question.split()[0] for e in made}
    assert asked == {"1817": WHEN, "21 أغسطس 1963": WHEN, "350": HOW_MANY}
    for e in made:
        assert e.source == SOURCE and e.context == DATES and e.article == "a"
        assert answer(e) not in e.question  # the blank is what the question leaves out
        assert e.question.endswith("؟") and len(e.question.split()) <= 1 + 2 * 8
        words = e.question.rstrip("؟").split()[1:]
        assert sum(w in e.context for w in words) == len(words)  # the rest comes from the sentence


def test_a_name_recurs_in_its_article_and_is_not_one_vocabulary_piece():
    paragraphs = [example(NAMES_1, paragraph=0), example(NAMES_2, paragraph=1)]
    made = [e for e in cloze_examples(paragraphs, 3, pieces=set()) if e.paragraph == 0]
    assert [(answer(e), e.question.split()[0]) for e in made] == [("جاكوبو أربينز", WHAT)]
    # a word the vocabulary holds whole is a common word, not a name
    made = [e for e in cloze_examples(paragraphs, 3, pieces={"\u2581جاكوبو"}) if e.paragraph == 0]
    assert [answer(e) for e in made] == ["أربينز"]
    # said once in its article, a rare word is not taken for a name
    assert cloze_examples([example(NAMES_1)], 3, pieces=set()) == []


def test_punctuation_ends_a_name():
    text = "وصل الرئيس جاكوبو، أربينز إلى العاصمة بعد رحلة طويلة عبر الجبال."
    paragraphs = [example(text), example(NAMES_2, paragraph=1)]
    made = cloze_examples(paragraphs, 3, pieces=set(), seed=1)
    assert {answer(e) for e in made if e.paragraph == 0} <= {"جاكوبو", "أربينز"}


def test_only_arabic_paragraphs_are_read_and_each_gives_at_most_its_share():
    english = example("The first stock exchange in Warsaw was founded in 1817 and traded until the war.", source="xquad-en")
    assert cloze_examples([english], 5, pieces=set()) == []
    same_paragraph = [example(DATES, source="xquad-ar"), example(DATES, source="xquad-en-ar")]
    assert len(cloze_examples(same_paragraph, 5, pieces=set())) == 3  # one paragraph, read once
    assert len(cloze_examples([example(DATES)], 1, pieces=set())) == 1
    assert cloze_examples([example(DATES)], 0, pieces=set()) == []


def test_the_same_seed_makes_the_same_questions():
    paragraphs = [example(DATES), example(NAMES_1, paragraph=1), example(NAMES_2, paragraph=2)]
    first = cloze_examples(paragraphs, 2, pieces=set(), seed=5)
    assert first == cloze_examples(paragraphs, 2, pieces=set(), seed=5)
    runs = {tuple(e.question for e in cloze_examples(paragraphs, 2, pieces=set(), seed=s, drop=0.5)) for s in range(6)}
    assert len(runs) > 1  # the dropped words and the sentence order follow the seed


@pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="../shared/data is not beside the checkout")
def test_on_the_training_articles_every_answer_is_a_span_of_its_paragraph():
    from rag.reader.data import reader_corpus
    from rag.reader.weights import E5File

    train = [e for e in reader_corpus(DATA)["train"] if e.source != "xquad-en"]
    made = cloze_examples(train, 4, pieces=set(E5File().vocab.pieces))
    paragraphs = {e.context for e in train}
    assert 400 < len(made) <= 4 * len(paragraphs)
    assert {e.article for e in made} <= {e.article for e in train}
    for e in made:
        text = answer(e)
        assert e.context in paragraphs and text == text.strip() and text
        assert not re.search(r"[.,،:;()]$", text)
    kinds = {e.question.split()[0] for e in made}
    assert kinds == {WHEN, HOW_MANY, WHAT}
