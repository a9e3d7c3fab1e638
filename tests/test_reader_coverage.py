"""rag.reader.coverage: how much of the question a candidate span's sentence says."""

from __future__ import annotations

import numpy as np

from rag.lexicon import build
from rag.reader.coverage import coverage, question_units
from rag.stages import analyse
from rag.text import tokenize

FORUM = "كم عدد المتحدثين في منتدى مستقبل الصحة؟"
SAME_FORUM = "يستضيف منتدى مستقبل الصحة ضمن أعمال القمة 12 متحدثا في عدد من الجلسات."
OTHER_FORUM = "يستضيف منتدى تبادل الخبرات الحكومية ضمن أعمال القمة 28 متحدثا في عدد من الجلسات."


def test_an_arabic_question_counts_each_content_word_once() -> None:
    query = analyse("منتدى الصحة: كم عدد المتحدثين في منتدى الصحة؟")
    units = question_units(query, None)
    assert len(units) == len(set(query.terms)) < len(query.terms)  # a repeated word is one unit
    assert all(len(u) == 1 for u in units)


def test_a_sentence_about_something_else_says_less_of_the_question() -> None:
    units = question_units(analyse(FORUM), None)
    same, other = coverage(units, SAME_FORUM), coverage(units, OTHER_FORUM)
    assert same > other
    missing = {t for u in units if not u & set(tokenize(OTHER_FORUM)) for t in u}
    assert missing == {tokenize("مستقبل")[0], tokenize("الصحة")[0]}  # the forum's own name
    assert coverage(units, "") == 0.0 and coverage([], OTHER_FORUM) == 1.0


def test_coverage_matches_through_diacritics_tatweel_and_attached_prefixes() -> None:
    units = question_units(analyse(FORUM), None)
    marked = "يستضيف مُنتدى مستقبــل الصحّة ضمن أعمال القمة 12 متحدثا في عدد من الجلسات."
    assert coverage(units, marked) == coverage(units, SAME_FORUM)
    assert coverage(units, "وبمنتدى") > 0.0  # the conjunction and preposition do not hide the word


def test_english_words_are_said_by_their_arabic_neighbours(e5) -> None:
    texts = ["بلغ عدد السكان في المدينة مليون نسمة.", "أعلنت الحكومة نتائج الانتخابات في الجامعة."]
    lexicon = build(texts, e5, None, 1000)
    query = analyse("What is the population of the city?", e5)
    assert query.language == "en" and query.word_vectors is not None
    units = question_units(query, lexicon)
    assert len(units) == len(query.words)
    # every word is said by the sentence about the city's population; the other says less (a
    # neighbour may be a loose translation: in a two-sentence lexicon "city" also finds أعلن)
    assert coverage(units, texts[0]) == 1.0 > coverage(units, texts[1])
    # without the lexicon only what the Arabic text writes in Latin script or digits can match
    plain = question_units(query, None)
    assert coverage(plain, texts[0]) == 0.0
    named = analyse("How many people live in TMRW in 2040?", e5)
    units = question_units(named, None)
    assert frozenset({"2040"}) in units  # a number of an English question counts by itself
    assert coverage(units, "يعيش في TMRW عام 2040 مليون شخص") > coverage(units, "يعيش في المدينة مليون شخص")


def test_english_words_without_vectors_still_count_by_themselves(e5) -> None:
    query = analyse("Who founded TMRW?")  # not embedded: no word vectors
    lexicon = build(["أسس TMRW رجل أعمال."], e5, None, 1000)
    units = question_units(query, lexicon)
    assert [sorted(u) for u in units] == [[t] for t in dict.fromkeys(tokenize(" ".join(query.words)))]
    assert np.isclose(coverage(units, "أسس TMRW رجل أعمال."), 1 / len(units))
