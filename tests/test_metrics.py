"""Tests for rag.evaluation.metrics against small values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.evaluation.metrics import (
    abstained_rate,
    answer_in_passages,
    answer_tokens,
    answered_rate,
    contains_answer,
    exact_match,
    f1_score,
    hit_at_k,
    mean,
    normalize_answer,
    percentile,
    reciprocal_rank,
    span_tokens,
)

# --------------------------------------------------------------------------------------------
# normalize_answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # English: lowercase, punctuation deleted (SQuAD), articles dropped, spaces collapsed.
        ("The  Eiffel Tower!", "eiffel tower"),
        ("an apple, a pear", "apple pear"),
        ("The U.S. Army", "us army"),  # "U.S." -> "us": punctuation is deleted, not spaced
        # Diacritics and tatweel removed; ة -> ه; article stripped.
        ("الْحُكُومَة", "حكومه"),
        ("كتـــاب", "كتاب"),
        ("ٱلْكِتَاب", "كتاب"),  # alef wasla unified, then the article goes
        # Alef forms and alef maqsura.
        ("أحمد", "احمد"),
        ("إسلام", "اسلام"),
        ("آمنة", "امنه"),
        ("مصطفى", "مصطفي"),
        # Digits.
        ("٢٠١٨", "2018"),
        ("۲۰۱۸", "2018"),
        # Arabic punctuation: ، ؛ ؟ « » “ ” all deleted.
        ("«القاهرة»، مصر؛ لماذا؟", "قاهره مصر لماذا"),
        ("“نعم”", "نعم"),
        # Conjunction + article: "وال"/"فال" stripped whole.
        ("والحكومة", "حكومه"),
        ("فالحل", "حل"),
        # Too short to strip: fewer than 2 letters would remain.
        ("الى", "الي"),
        ("ال", "ال"),
        ("فالح", "فالح"),  # "فال" + 1 letter: kept (it is the name Falih)
        # Hamza-alef words are not mistaken for the article (stripped before unifying alef).
        ("ألعاب", "العاب"),
        ("الألعاب", "العاب"),
        ("إلكتروني", "الكتروني"),
        ("الإلكترونية", "الكترونيه"),
        ("وٱلْكِتَاب", "كتاب"),
        # Other proclitics are not handled.
        ("بالحكومة", "بالحكومه"),
        # Invisible format characters (ZWNJ, RLM) dropped; NBSP is whitespace.
        ("a\u200fb\u200cc", "abc"),
        ("one\u00a0two", "one two"),
        ("", ""),
        ("  ...  ", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_answer_tokens() -> None:
    assert answer_tokens("في عام ٢٠١٨.") == ["في", "عام", "2018"]
    assert answer_tokens("The cat") == ["cat"]
    assert answer_tokens("") == []


def test_normalize_numbers_with_arabic_separators() -> None:
    # "٣٫٥٪": digits -> "3", "5"; ٫ (decimal sep.) and ٪ are punctuation, deleted -> "35",
    # exactly as "3.5%" -> "35".
    assert normalize_answer("٣٫٥٪") == normalize_answer("3.5%") == "35"


# --------------------------------------------------------------------------------------------
# exact_match
# --------------------------------------------------------------------------------------------


def test_exact_match_arabic_variants() -> None:
    # Diacritics, hamza on alef, ta marbuta vs heh: all normalise to "احمد" / "مدرسه".
    assert exact_match("أَحْمَد", ["احمد"]) == 1.0
    assert exact_match("المدرسة", ["المدرسه"]) == 1.0
    assert exact_match("إلى", ["الي"]) == 1.0
    # Article: "الحكومة" and "حكومة" both -> "حكومه".
    assert exact_match("الحكومة", ["حكومة"]) == 1.0
    assert exact_match("والحكومة", ["الحكومة"]) == 1.0
    assert exact_match("الألعاب", ["ألعاب"]) == 1.0
    assert exact_match("الإلكتروني", ["إلكتروني"]) == 1.0
    # Digits.
    assert exact_match("٢٠١٨", ["2018"]) == 1.0
    assert exact_match("عام ۲۰۱۸", ["عام 2018"]) == 1.0


def test_exact_match_english_and_max_over_golds() -> None:
    assert exact_match("the Nile", ["Nile"]) == 1.0
    assert exact_match("Nile river", ["Nile"]) == 0.0
    # Max over golds: the second one matches.
    assert exact_match("Paris", ["London", "paris."]) == 1.0
    # A bare string gold is one answer, not a sequence of characters.
    assert exact_match("P", "Paris") == 0.0
    assert exact_match("Paris", "Paris") == 1.0


def test_exact_match_unanswerable() -> None:
    # No (non-empty) golds => unanswerable, the gold is the empty answer.
    assert exact_match("", []) == 1.0
    assert exact_match("", ["", "..."]) == 1.0
    assert exact_match("something", []) == 0.0


# --------------------------------------------------------------------------------------------
# f1_score
# --------------------------------------------------------------------------------------------


def test_f1_arabic_partial() -> None:
    # pred "في عام 2018" -> [في, عام, 2018]; gold "عام 2018" -> [عام, 2018].
    # overlap = 2; precision = 2/3; recall = 2/2 = 1; F1 = 2*(2/3)*1 / (2/3 + 1) = (4/3)/(5/3) = 0.8
    assert f1_score("في عام 2018", ["عام 2018"]) == pytest.approx(0.8)
    # Same with Arabic-Indic digits in the prediction.
    assert f1_score("في عام ٢٠١٨", ["عام 2018"]) == pytest.approx(0.8)


def test_f1_english_partial_and_max() -> None:
    # pred "the big red dog" -> [big, red, dog]; gold "red dog runs" -> [red, dog, runs].
    # overlap = 2; P = 2/3; R = 2/3; F1 = 2/3.
    assert f1_score("the big red dog", ["red dog runs"]) == pytest.approx(2 / 3)
    # Max over golds: vs "dog" -> overlap 1, P = 1/3, R = 1, F1 = 2*(1/3)/(4/3) = 0.5;
    # vs "big red dog" -> 1.0.
    assert f1_score("the big red dog", ["dog", "big red dog"]) == 1.0
    assert f1_score("the big red dog", ["dog"]) == pytest.approx(0.5)


def test_f1_counts_repeated_tokens() -> None:
    # pred "x x y" -> [x, x, y]; gold "x y y" -> [x, y, y].
    # Counter overlap = min(2,1) for x + min(1,2) for y = 2; P = 2/3; R = 2/3; F1 = 2/3.
    assert f1_score("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_f1_empty_cases() -> None:
    assert f1_score("", [""]) == 1.0  # both empty
    assert f1_score("", ["cat"]) == 0.0  # prediction empty
    assert f1_score("cat", [""]) == 0.0  # gold empty
    assert f1_score("the", ["a"]) == 1.0  # both normalise to empty
    assert f1_score("cat", ["dog"]) == 0.0  # no overlap


# --------------------------------------------------------------------------------------------
# contains_answer / span_tokens
# --------------------------------------------------------------------------------------------


def test_contains_answer_token_boundaries() -> None:
    assert contains_answer("تأسست الشركة في عام ٢٠١٨.", ["2018"]) == 1.0
    # "20" is not a token of "في عام 2020".
    assert contains_answer("في عام 2020", ["20"]) == 0.0
    assert contains_answer("in 2020", ["20"]) == 0.0
    # "عام" is not matched inside "عامل".
    assert contains_answer("هو عامل ماهر", ["عام"]) == 0.0
    # Multi-token gold must be contiguous.
    assert contains_answer("The Nile river flows north.", ["nile river"]) == 1.0
    assert contains_answer("The river Nile flows north.", ["nile river"]) == 0.0
    # Whole-span match and Arabic variants.
    assert contains_answer("القاهرة", ["القاهره"]) == 1.0
    assert contains_answer("قال إنّ الحكومةَ وافقت", ["الحكومة"]) == 1.0


def test_contains_answer_finds_a_gold_behind_a_proclitic() -> None:
    # A name in a list: "، وسيفات يرلي، الرئيس التنفيذي" holds the answer "سيفات يرلي".
    assert contains_answer("وتافي رويفاس، وسيفات يرلي، الرئيس التنفيذي", ["سيفات يرلي"]) == 1.0
    assert contains_answer("تجمعاً لمدراء الحكومة الإلكترونية", ["مدراء الحكومة الإلكترونية"]) == 1.0
    assert contains_answer("قدمت الدعم للحكومة الاتحادية", ["الحكومة الاتحادية"]) == 1.0  # ل + ال
    assert contains_answer("أقيم بالمدينة المنورة", ["المدينة المنورة"]) == 1.0  # ب + ال
    # Only the first word may carry it, and only one: the rest still match token for token.
    assert contains_answer("وسيفات ويرلي", ["سيفات يرلي"]) == 0.0
    assert contains_answer("وبسيفات يرلي", ["سيفات يرلي"]) == 0.0
    # Not for a first word under three letters ("ورد" is a word, not و + "رد"), nor inside a word.
    assert contains_answer("قطف الورد", ["رد"]) == 0.0
    assert contains_answer("ورد في التقرير", ["رد"]) == 0.0
    assert contains_answer("مستشفيات يرلي", ["سيفات يرلي"]) == 0.0
    # Latin words take no Arabic proclitic.
    assert contains_answer("ballroom", ["all"]) == 0.0


def test_contains_answer_splits_words_glued_by_punctuation() -> None:
    assert contains_answer("دبي، 1 أبريل 2022/PRNewswire/ — عُقد", ["PRNewswire"]) == 1.0
    assert contains_answer("دبي، 1 أبريل 2022/PRNewswire/ — عُقد", ["1 أبريل 2022"]) == 1.0
    # Both readings still hold for golds with punctuation of their own.
    assert contains_answer("born in the U.S. in 1990", ["U.S."]) == 1.0
    assert contains_answer("born in the US in 1990", ["U.S."]) == 1.0
    # Still whole tokens: "20" is not in "2020/21".
    assert contains_answer("في موسم 2020/21", ["20"]) == 0.0


def test_contains_answer_any_gold_and_empty() -> None:
    assert contains_answer("born in Cairo", ["Alexandria", "Cairo"]) == 1.0
    assert contains_answer("born in Cairo", "Cairo") == 1.0
    assert contains_answer("anything", [""]) == 0.0  # empty golds are ignored
    assert contains_answer("anything", []) == 0.0


def test_span_tokens() -> None:
    assert span_tokens("في عام 2018") == 3
    assert span_tokens("  the  U.S.  Army ") == 3  # raw span: articles and punctuation count
    assert span_tokens("") == 0


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------

RANKED = ["d1", "d2", "d3", "d4", "d5"]


def test_hit_at_k() -> None:
    assert hit_at_k(RANKED, "d3", 3) == 1.0
    assert hit_at_k(RANKED, "d3", 2) == 0.0
    assert hit_at_k(RANKED, "zz", 5) == 0.0
    assert hit_at_k(RANKED, {"zz", "d5"}, 5) == 1.0
    assert hit_at_k(RANKED, "d1", 100) == 1.0  # k past the list end is fine
    assert hit_at_k([], "d1", 5) == 0.0
    assert hit_at_k(RANKED, set(), 5) == 0.0


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(RANKED, "d1") == 1.0
    assert reciprocal_rank(RANKED, "d3") == pytest.approx(1 / 3)  # gold at rank 3
    assert reciprocal_rank(RANKED, "d3", k=2) == 0.0  # gold beyond k
    assert reciprocal_rank(RANKED, "zz") == 0.0
    # Several golds: the first one found counts (d2 at rank 2 -> 1/2).
    assert reciprocal_rank(RANKED, ["d4", "d2"]) == pytest.approx(0.5)
    # MRR over three queries with golds at ranks 1, 3, absent: (1 + 1/3 + 0) / 3 = 4/9.
    rr = [reciprocal_rank(RANKED, g) for g in ("d1", "d3", "zz")]
    assert mean(rr) == pytest.approx(4 / 9)


@pytest.mark.parametrize("k", [0, -1])
def test_bad_k_raises(k: int) -> None:
    with pytest.raises(ValueError):
        hit_at_k(RANKED, "d1", k)
    with pytest.raises(ValueError):
        reciprocal_rank(RANKED, "d1", k)
    with pytest.raises(ValueError):
        answer_in_passages(["x"], ["x"], k)


def test_answer_in_passages() -> None:
    passages = [
        "نهر النيل أطول نهر في أفريقيا.",
        "The Amazon is in South America.",
        "تأسست الجامعة عام ١٩٠٨.",
    ]
    assert answer_in_passages(passages, ["1908"]) == 1.0  # third passage, Arabic-Indic digits
    assert answer_in_passages(passages, ["1908"], k=2) == 0.0  # beyond k
    assert answer_in_passages(passages, ["النيل"], k=1) == 1.0
    assert answer_in_passages(passages, ["amazon", "nope"], k=2) == 1.0
    assert answer_in_passages(passages, ["19"]) == 0.0  # token boundaries
    assert answer_in_passages([], ["1908"]) == 0.0


# --------------------------------------------------------------------------------------------
# Abstention
# --------------------------------------------------------------------------------------------


def test_answered_and_abstained_rates() -> None:
    flags = [True, False, True, True]  # 3 answered, 1 abstained
    assert answered_rate(flags) == pytest.approx(0.75)
    assert abstained_rate(flags) == pytest.approx(0.25)
    assert answered_rate([False, False]) == 0.0
    assert abstained_rate([False, False]) == 1.0


def test_rates_empty_are_none_and_json_safe() -> None:
    assert answered_rate([]) is None
    assert abstained_rate([]) is None
    assert json.dumps({"answered": answered_rate([])}) == '{"answered": null}'


# --------------------------------------------------------------------------------------------
# Latency / aggregates
# --------------------------------------------------------------------------------------------


def test_percentile_one_to_ten() -> None:
    xs = [float(i) for i in range(1, 11)]
    # p50: position (10-1)*0.50 = 4.5 -> between xs[4]=5 and xs[5]=6 -> 5.5
    assert percentile(xs, 50) == pytest.approx(5.5)
    # p95: position 9*0.95 = 8.55 -> 9 + 0.55*(10-9) = 9.55
    assert percentile(xs, 95) == pytest.approx(9.55)
    for q in (0, 50, 95, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 100) == 10.0


def test_percentile_unsorted_single_empty_and_bad_q() -> None:
    # Sorted: [1, 2, 4, 10]; p50 position 3*0.5 = 1.5 -> 2 + 0.5*(4-2) = 3.0
    assert percentile([10, 1, 4, 2], 50) == pytest.approx(3.0)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


def test_mean() -> None:
    assert mean([1, 2, 3, 4]) == 2.5  # 10 / 4
    assert mean([0.1] * 10) == 0.1  # fsum: exact here, unlike sum()
    assert mean([]) is None


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

# Text drawn from a mix of ASCII, Arabic letters/marks/digits and punctuation.
_ALPHABET = st.sampled_from(
    list("abc the an 0123 .,!?-") + list("الحكومةأإآٱىةوفب") + ["\u064e", "\u0651", "\u0640", "٠", "١", "۲", "،", "؟", "«", "»", " "]
)
_TEXT = st.text(alphabet=_ALPHABET, max_size=25)


@given(pred=_TEXT, golds=st.lists(_TEXT, max_size=3))
def test_em_f1_bounds_and_order(pred: str, golds: list[str]) -> None:
    em = exact_match(pred, golds)
    f1 = f1_score(pred, golds)
    assert em in (0.0, 1.0)
    assert 0.0 <= f1 <= 1.0
    assert em <= f1  # em = 1 means identical token lists, so f1 = 1
    if em == 1.0:
        assert f1 == 1.0


@given(s=_TEXT)
def test_normalize_shape_and_self_match(s: str) -> None:
    n = normalize_answer(s)
    assert "  " not in n and n == n.strip()
    assert n == n.lower()
    assert exact_match(s, [s]) == 1.0
    assert f1_score(s, [s]) == 1.0
    if n:
        assert contains_answer(s, [s]) == 1.0


@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30),
    q=st.floats(0, 100),
)
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    got = percentile(values, q)
    assert got is not None
    assert math.isclose(got, float(np.percentile(values, q)), rel_tol=1e-9, abs_tol=1e-6)
    assert min(values) <= got <= max(values)
