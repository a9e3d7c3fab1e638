"""Span decoding and edge trimming."""

from __future__ import annotations

import numpy as np

from rag.reader.runtime import snap_to_words, trim_span
from rag.reader.spans import best_span, best_spans_by_group, token_sentences


def test_best_span_respects_order_range_and_length():
    start = np.array([9.0, 0.0, 1.0, 5.0, 0.0, 0.0])
    end = np.array([9.0, 4.0, 0.0, 0.0, 0.0, 3.0])
    # position 0 (<s>) and the last position are outside [first, last)
    score, a, b = best_span(start, end, 1, 6)
    assert (a, b) == (2, 4)  # start 3 + end 5 relative to first=1: the end must not precede the start
    assert score == 8.0
    score, a, b = best_span(start, end, 1, 6, max_tokens=2)
    assert b - a < 2


def test_best_span_of_empty_range_is_none():
    assert best_span(np.zeros(3), np.zeros(3), 2, 2) is None


def test_spans_by_group_stay_inside_their_group_and_weigh_its_mass():
    #            <s>  ---- group 0 ----  gap  ------ group 1 ------  </s>
    start = np.array([0.0, 6.0, 0.0, 0.0, 9.0, 5.0, 5.0, 5.0, 0.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 5.0, 5.0, 5.0, 0.0])
    groups = np.array([0, 0, 0, -1, 1, 1, 1, 1])  # of tokens 1..8
    found = {g.group: g for g in best_spans_by_group(start, end, 1, 9, groups)}
    assert set(found) == {0, 1}  # the token of no group (the 9 + 9 span) is never read
    assert (found[0].a, found[0].b) == (0, 0) and found[0].score == 6.0  # token 1 alone: no span crosses the gap
    assert 4 <= found[1].a <= found[1].b <= 7 and found[1].score == 10.0
    # mass: log-sum-exp over the group's spans, at least its best; group 1 has many good spans
    for g in found.values():
        assert g.mass >= g.score
    assert found[1].mass - found[1].score > found[0].mass - found[0].score
    # one group over the whole range is the best span
    whole = best_spans_by_group(start, end, 1, 9, np.zeros(8, dtype=int))
    assert [(g.score, g.a, g.b) for g in whole] == [best_span(start, end, 1, 9)]
    assert best_spans_by_group(start, end, 2, 2, groups) == []


def test_trim_span_drops_punctuation_and_keeps_balanced_brackets():
    text = "عدد السكان (118) نسمة، عام 2018."
    a = text.index("(")
    assert text[slice(*trim_span(text, a, a + 5))] == "(118)"
    assert text[slice(*trim_span(text, a + 1, a + 5))] == "118"
    y = text.index("2018")
    assert text[slice(*trim_span(text, y - 1, len(text)))] == "2018"
    assert trim_span(text, 3, 3) == (3, 3)


def test_snap_to_words_widens_a_span_cut_inside_a_word():
    text = "الرئيس التنفيذي لشركة TMRW هو سيفات يرلي، وقد تحدث عن 2030."
    start = text.index("فات")
    assert text[slice(*snap_to_words(text, start, text.index("يرلي") + 4))] == "سيفات يرلي"
    assert text[slice(*snap_to_words(text, text.index("203"), text.index("203") + 3))] == "2030"
    # whole words, diacritics included, and edges at a space or punctuation stay where they are
    voweled = "وصلَ المسبارُ إلى المريخ"
    a = voweled.index("المسبار")
    assert snap_to_words(voweled, a, a + len("المسبار")) == (a, a + len("المسبارُ"))
    assert snap_to_words(text, 0, 6) == (0, 6)
    assert text[slice(*snap_to_words(text, text.index("يرلي"), text.index("يرلي") + 4))] == "يرلي"


def test_a_token_belongs_to_the_sentence_its_first_character_lies_in():
    # "Ab cd. Ef." : sentences [0, 6) and [7, 10); tokens "Ab", "cd", ".", " Ef" (starts on the space), "."
    offsets = np.array([[0, 2], [3, 5], [5, 6], [6, 9], [9, 10]])
    assert token_sentences(offsets, [(0, 6), (7, 10)]).tolist() == [0, 0, 0, -1, 1]
    assert token_sentences(offsets, []).tolist() == [-1] * 5
