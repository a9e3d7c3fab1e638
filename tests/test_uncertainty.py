"""rag.evaluation.uncertainty: Wilson intervals for rates, seeded bootstrap intervals for means
and paired differences, and the interval rows of an evaluation's per-question scores."""

from __future__ import annotations

import math
import random

import pytest

from rag.evaluation.harness import Scores
from rag.evaluation.uncertainty import Interval, interval_rows, mean_of, paired_difference, rate


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval from its textbook formula, to check scipy's against."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(9, 18), (0, 18), (18, 18), (57, 66), (1, 3)])
def test_a_rate_has_the_wilson_interval(k, n):
    iv = rate([True] * k + [False] * (n - k))
    assert iv is not None and iv.value == pytest.approx(k / n)
    low, high = _wilson(k, n)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert 0.0 <= iv.low <= iv.value <= iv.high <= 1.0


def test_no_outcomes_have_no_interval():
    assert rate([]) is None and mean_of([]) is None and paired_difference([], []) is None


def test_a_bootstrap_interval_is_seeded_holds_the_mean_and_narrows_with_more_questions():
    rng = random.Random(1)
    few = [rng.random() for _ in range(20)]
    many = [rng.random() for _ in range(2000)]
    a, b = mean_of(few), mean_of(few)
    assert a == b  # the same scores, the same interval
    assert a is not None and a.low < a.value < a.high
    wide = mean_of(many)
    assert wide is not None and (wide.high - wide.low) < (a.high - a.low) / 5
    assert mean_of(few, seed=2) != a  # the seed is what makes it repeat


def test_constant_scores_give_a_point_interval_and_one_question_none():
    assert mean_of([0.5] * 30) == Interval(0.5, 0.5, 0.5)
    assert mean_of([0.7]) is None and paired_difference([0.2], [0.9]) is None  # one question: no interval, not a point


def test_a_paired_difference_sees_a_small_change_that_unpaired_intervals_cannot():
    rng = random.Random(3)
    before = [rng.random() for _ in range(200)]  # questions of very different difficulty
    after = [min(1.0, x + 0.03 + rng.uniform(-0.01, 0.01)) for x in before]  # each a little better
    a, b = mean_of(before), mean_of(after)
    assert a is not None and b is not None and b.low < a.high  # apart, the two intervals overlap
    d = paired_difference(before, after)
    assert d is not None and d.excludes_zero and d.low > 0
    assert d.value == pytest.approx(sum(after) / 200 - sum(before) / 200)


def test_no_change_is_not_a_difference_and_unpaired_scores_are_refused():
    scores = [1.0, 0.0, 0.5, 1.0]
    d = paired_difference(scores, scores)
    assert d == Interval(0.0, 0.0, 0.0) and not d.excludes_zero
    swapped = paired_difference([1.0, 0.0] * 10, [0.0, 1.0] * 10)  # as many fixed as broken
    assert swapped is not None and swapped.value == 0.0 and swapped.low < 0 < swapped.high
    with pytest.raises(ValueError, match="same questions"):
        paired_difference([1.0], [1.0, 0.0])


def test_intervals_print_as_estimates_and_as_signed_differences():
    iv = Interval(0.5912, 0.3871, 0.7672)
    assert str(iv) == "0.591 [0.387, 0.767]"
    assert iv.short() == "0.591 (0.39, 0.77)"
    assert Interval(0.0523, -0.0114, 0.094).signed() == "+0.052 [-0.011, +0.094]"
    assert str(Interval(28 / 33, 0.69, 0.93)).startswith("0.849 ")  # as the summary prints 28 of 33 (0.8485 rounded)
    assert not Interval(0.05, -0.01, 0.09).excludes_zero and Interval(-0.05, -0.09, -0.01).excludes_zero


def _scores(questions: list[tuple[str, str, bool]], outcomes: list[tuple[bool, float]]) -> list[Scores]:
    """Questions (id, lang, answerable) with one system's (answered, hit): EM = hit, F1 = hit / 2."""
    return [
        Scores(q, lang, ans, done, hit if ans else 0.0, hit if ans else 0.0, hit / 2 if ans else 0.0)
        for (q, lang, ans), (done, hit) in zip(questions, outcomes, strict=True)
    ]


def test_interval_rows_cover_every_scope_and_metric_on_the_right_questions():
    questions = [("a1", "ar", True), ("a2", "ar", True), ("a3", "ar", True), ("e1", "en", True), ("u1", "ar", False), ("u2", "en", False)]
    system = _scores(questions, [(True, 1.0), (True, 1.0), (False, 0.0), (True, 0.0), (False, 0.0), (True, 0.0)])
    sentence = _scores(questions, [(True, 1.0), (True, 0.0), (True, 0.0), (True, 0.0), (True, 0.0), (True, 0.0)])
    rows = {(r.scope, r.metric): r for r in interval_rows({"system": system, "sentence": sentence})}
    assert [s for s, m in rows if m == "answer hit@1"] == ["all", "ar", "en"]
    hit = rows[("all", "answer hit@1")]
    assert hit.questions == 4 and hit.systems["system"].value == 0.5 and hit.systems["sentence"].value == 0.25
    assert hit.differences["sentence"].value == pytest.approx(0.25)  # system minus the baseline
    assert "system" not in hit.differences
    assert rows[("all", "answer f1")].systems["system"].value == pytest.approx(0.25)
    assert rows[("ar", "abstention answered_rate")].systems["system"].value == pytest.approx(2 / 3)
    abstained = rows[("all", "abstention abstained_rate")]
    assert abstained.questions == 2 and abstained.systems["system"].value == 0.5 and abstained.systems["sentence"].value == 0.0
    en = rows[("en", "abstention abstained_rate")]
    assert en.questions == 1 and en.systems["system"].value == 0.0


def test_a_mean_over_groups_counts_each_group_the_same_and_resamples_within_each():
    from rag.evaluation.uncertainty import paired_mean_of_means

    # a large group with no change, a small one that improved by one question in four
    before = [[0.0, 1.0] * 100, [0.0, 0.0, 1.0, 1.0]]
    after = [[0.0, 1.0] * 100, [1.0, 0.0, 1.0, 1.0]]
    iv = paired_mean_of_means(before, after)
    assert iv is not None and iv.value == pytest.approx((0.0 + 0.25) / 2)  # not 1 / 204, as pooling would read
    assert iv.low >= 0.0 and iv.high <= 0.5  # the small group's mean difference lies in [0, 1]
    assert paired_mean_of_means(before, after) == iv  # seeded
    one = paired_mean_of_means([[1.0], [0.0, 1.0, 0.5]], [[0.0], [1.0, 1.0, 0.5]])  # a group of one question is allowed
    assert one is not None and one.value == pytest.approx((-1.0 + 1 / 3) / 2) and one.low == pytest.approx(-0.5)
    assert paired_mean_of_means([[], []], [[], []]) is None
    with pytest.raises(ValueError, match="same questions"):
        paired_mean_of_means([[1.0]], [[1.0, 0.0]])
