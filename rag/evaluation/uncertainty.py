"""How sure an evaluation's numbers are: 95% intervals for each system's answer and abstention
rates, and for the difference between two systems that answered the same questions.

Our QA set's test split has 66 answerable and 32 unanswerable questions: one question moves the
abstention rate by 0.031, and 15 of 32 abstained reads 0.47 with a 95% interval of 0.31-0.64. A
change a reader of the report can trust is one whose interval for the difference excludes 0.

- Rates of yes/no outcomes (sentence hit, EM, answered, abstained): Wilson score intervals
  (``scipy.stats.binomtest``), which stay inside [0, 1] and hold up at 0 of 18.
- Mean token F1: a percentile bootstrap over questions.
- A difference between two systems (or two runs) on the same questions: a paired percentile
  bootstrap of the per-question differences, so what both get right or both miss cancels out.

The bootstrap is seeded: the same scores give the same interval on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rag.evaluation.harness import QuestionResult, Scores

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0

Kind = Literal["rate", "mean"]
# (label, which questions, the score, its kind): the answer and abstention blocks' metrics
METRICS: tuple[tuple[str, bool, str, Kind], ...] = (
    ("answer hit@1", True, "hit", "rate"),
    ("answer em", True, "em", "rate"),
    ("answer f1", True, "f1", "mean"),
    ("abstention answered_rate", True, "answered", "rate"),
    ("abstention abstained_rate", False, "abstained", "rate"),
)


@dataclass(frozen=True)
class Interval:
    """An estimate and its interval at ``LEVEL``. It prints its estimate rounded to 4 places first,
    as the summary's are, so both print the same 3 (28 of 33: 0.849 in each, not 0.849 and 0.848)."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{round(self.value, 4):.3f} [{self.low:.3f}, {self.high:.3f}]"

    def signed(self) -> str:
        """As a difference: "+0.052 [+0.011, +0.094]"."""
        return f"{round(self.value, 4):+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    def short(self, signed: bool = False) -> str:
        """For a terminal column: "0.591 (0.39, 0.77)", or "+0.227 (+0.00, +0.46)" ``signed``."""
        sign = "+" if signed else ""
        return f"{round(self.value, 4):{sign}.3f} ({self.low:{sign}.2f}, {self.high:{sign}.2f})"

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def rate(flags: Sequence[bool | float]) -> Interval | None:
    """The share of true outcomes with its Wilson score interval; None for no outcomes."""
    from scipy.stats import binomtest

    n = len(flags)
    if n == 0:
        return None
    k = sum(1 for f in flags if f)
    ci = binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Interval(k / n, float(ci.low), float(ci.high))


def mean_of(values: Sequence[float], *, seed: int = SEED) -> Interval | None:
    """The mean with a percentile-bootstrap interval over the values; None for fewer than two
    (one question says nothing of how the mean would vary: no interval rather than a point)."""
    import numpy as np
    from scipy.stats import bootstrap

    if len(values) < 2:
        return None
    x = np.asarray(values, dtype=float)
    res = bootstrap((x,), np.mean, confidence_level=LEVEL, n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    return Interval(float(x.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high))


def paired_difference(before: Sequence[float], after: Sequence[float], *, seed: int = SEED) -> Interval | None:
    """``mean(after) - mean(before)`` over the same questions (in the same order), with a paired
    percentile-bootstrap interval; None for fewer than two questions."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need the same questions: {len(before)} before, {len(after)} after")
    return mean_of([b - a for a, b in zip(before, after, strict=True)], seed=seed)


def paired_mean_of_means(before: Sequence[Sequence[float]], after: Sequence[Sequence[float]], *, seed: int = SEED) -> Interval | None:
    """The difference of a mean over groups of each group's mean (each group counts the same,
    whatever its size, as the pipeline fit's dev quality counts its sets), with a percentile
    bootstrap interval that resamples each group's paired per-question differences on its own
    (stratified, which ``scipy.stats.bootstrap`` does not do for a group of one); None for no
    groups with questions."""
    import numpy as np

    if len(before) != len(after) or any(len(a) != len(b) for a, b in zip(before, after, strict=False)):
        raise ValueError("paired scores need the same questions in every group")
    diffs = [np.asarray(b, dtype=float) - np.asarray(a, dtype=float) for a, b in zip(before, after, strict=True) if len(a)]
    if not diffs:
        return None
    rng = np.random.default_rng(seed)
    resampled = np.mean([d[rng.integers(0, len(d), size=(RESAMPLES, len(d)))].mean(axis=1) for d in diffs], axis=0)
    alpha = (1 - LEVEL) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return Interval(float(np.mean([d.mean() for d in diffs])), float(low), float(high))


def _value(s: Scores, score: str) -> float:
    if score == "abstained":
        return float(not s.answered)
    if score == "answered":
        return float(s.answered)
    return float(getattr(s, score))


@dataclass(frozen=True)
class IntervalRow:
    """One metric in one scope: each system's interval, and each baseline's difference from the
    system (system minus baseline, paired over the same questions)."""

    scope: str  # "all" or a language
    metric: str  # as the summary tables label it: "answer f1"
    questions: int
    systems: dict[str, Interval]
    differences: dict[str, Interval]


def interval_rows(scores: Mapping[str, Sequence[Scores]]) -> list[IntervalRow]:
    """The intervals of every answer and abstention metric, overall and per language, from each
    system's ``Scores`` (``harness.question_scores``; the same questions in the same order, the
    full system under "system")."""
    main = scores["system"]
    langs = sorted({s.lang for s in main}, key=lambda lang: (lang not in ("ar", "en"), lang))
    rows = []
    for scope in ["all", *langs]:
        keep = [i for i, s in enumerate(main) if scope == "all" or s.lang == scope]
        for metric, answerable, score, kind in METRICS:
            idx = [i for i in keep if main[i].answerable == answerable]
            if not idx:
                continue
            values = {name: [_value(per[i], score) for i in idx] for name, per in scores.items()}
            estimate = rate if kind == "rate" else mean_of
            systems = {name: iv for name, v in values.items() if (iv := estimate(v)) is not None}
            differences = {
                name: iv for name, v in values.items() if name != "system" and (iv := paired_difference(v, values["system"])) is not None
            }
            rows.append(IntervalRow(scope, metric, len(idx), systems, differences))
    return rows


def intervals(results: Sequence[QuestionResult]) -> list[IntervalRow]:
    """``interval_rows`` of an evaluation's per-question results, for every system it ran."""
    # here, not at the top: the harness brings the whole pipeline, which eval/reader_heldout.py's
    # comparison of two finished runs does not need
    from rag.evaluation.harness import question_scores

    if not results:
        return []
    return interval_rows({name: question_scores(results, name) for name in results[0].outcomes})
