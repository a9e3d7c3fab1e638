"""Fitting the span reader's pipeline weights (``PipelineFit``) from dev questions run through
the whole pipeline: which span to answer with, and when to abstain.

A row is one question: ``answerable`` and its candidates, one per sentence of the read passages,
each with the signals ``SpanEvidence`` carries (margin, mass, rank, in_sentence, sentence_logit) and how good it is
against the gold (f1, sentence_hit), and its ``id``. ``eval/reader_ensemble.py`` collects the rows; this module
only searches and fits, so it is testable on small synthetic rows.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rag.reader.package import fit_calibration

RANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
SENTENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
CONFIDENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
MASS_WEIGHTS = (0.0, 0.5, 1.0)
COVERAGE_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0)  # coverage is a share (0-1); the margin spans about 20
THRESHOLDS = tuple(round(0.025 * i, 3) for i in range(1, 40))


@dataclass(frozen=True)
class Weights:
    rank: float
    sentence: float
    confidence: float = 0.0
    mass: float = 0.0
    coverage: float = 0.0

    def z(self, c: dict) -> float:
        margin = c["margin"] + self.mass * (c.get("mass", c["margin"]) - c["margin"])
        return (
            margin
            - self.rank * math.log1p(c["rank"])
            + self.sentence * c["in_sentence"]
            + self.confidence * c["sentence_logit"]
            + self.coverage * c.get("coverage", 0.0)
        )


def best(row: dict, w: Weights) -> dict | None:
    return max(row["cands"], key=w.z) if row["cands"] else None


def selection_quality(rows: Sequence[dict], w: Weights) -> float:
    """Mean over answerable rows of the chosen span's F1 plus its sentence hit."""
    pos = [r for r in rows if r["answerable"]]
    total = 0.0
    for r in pos:
        c = best(r, w)
        if c is not None:
            total += c["f1"] + c["sentence_hit"]
    return total / max(1, len(pos))


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties half."""
    if not pos or not neg:
        return 0.5
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _scores(rows: Sequence[dict], w: Weights) -> tuple[list[float], list[float]]:
    pos: list[float] = []
    neg: list[float] = []
    for r in rows:
        c = best(r, w)
        if c is not None:
            (pos if r["answerable"] else neg).append(w.z(c))
    return pos, neg


def choose_selection(sets: Sequence[Sequence[dict]], coverage: Sequence[float] = (0.0,)) -> tuple[Weights, dict[Weights, float]]:
    """The selection weights of the grid with the best mean quality over ``sets`` (each set
    counts the same, whatever its size; ties go to the smaller weights), and every weight's
    quality. ``coverage``: the coverage weights the grid tries (rows collected before coverage
    existed have none, and read as 0)."""
    grid = [Weights(r, s, 0.0, m, v) for r, s, m, v in itertools.product(RANK_WEIGHTS, SENTENCE_WEIGHTS, MASS_WEIGHTS, coverage)]
    quality = {w: sum(selection_quality(rows, w) for rows in sets) / len(sets) for w in grid}
    return max(grid, key=lambda w: (round(quality[w], 6), -w.rank - w.sentence - w.mass - w.coverage)), quality


def _half(row_id: str) -> int:
    return int(hashlib.md5(row_id.encode("utf-8")).hexdigest(), 16) % 2


def _halves(sets: Sequence[Sequence[dict]], h: int) -> tuple[list[list[dict]], list[list[dict]]]:
    """Each set's rows outside and inside half ``h`` (by a hash of the row's id; a row without an
    id, as in synthetic rows, by its position)."""
    fit = [[r for i, r in enumerate(rows) if _half(_row_id(r, i)) != h] for rows in sets]
    held = [[r for i, r in enumerate(rows) if _half(_row_id(r, i)) == h] for rows in sets]
    return fit, held


def _row_id(row: dict, position: int) -> str:
    return str(row.get("id", position))


def cross_fitted_by_question(sets: Sequence[Sequence[dict]], coverage: Sequence[float] = (0.0,)) -> list[dict[str, float]]:
    """Per set, each answerable question's F1 + sentence hit under the weights chosen on the
    other half of the questions (``cross_fitted_by_set``'s choice; 0 for a row without
    candidates): what a paired comparison of two models' dev rows resamples."""
    out: list[dict[str, float]] = [{} for _ in sets]
    for h in (0, 1):
        fit, _ = _halves(sets, h)
        w, _ = choose_selection(fit, coverage)
        for i, rows in enumerate(sets):
            for j, r in enumerate(rows):
                if r["answerable"] and _half(_row_id(r, j)) == h:
                    c = best(r, w)
                    out[i][_row_id(r, j)] = c["f1"] + c["sentence_hit"] if c is not None else 0.0
    return out


def cross_fitted_by_set(sets: Sequence[Sequence[dict]], coverage: Sequence[float] = (0.0,)) -> list[float]:
    """Selection quality out of sample, per set: the questions split in two halves by a hash of
    their id, the weights chosen on one half (all sets together) scored on the other, both ways,
    averaged (the mean of the two halves' means of ``cross_fitted_by_question``)."""
    out = []
    for per_question in cross_fitted_by_question(sets, coverage):
        halves = [[q for k, q in per_question.items() if _half(k) == h] for h in (0, 1)]
        out.append(sum(sum(v) / max(1, len(v)) for v in halves) / 2)
    return out


def cross_fitted_quality(sets: Sequence[Sequence[dict]], coverage: Sequence[float] = (0.0,)) -> float:
    """The mean of ``cross_fitted_by_set``. The fit's own ``quality`` is chosen on the rows it
    scores: on the dev rows of three seeds of the shipped recipe it read 0.06-0.08 higher than
    this (eval/RESULTS.md), more than most levers move it."""
    by_set = cross_fitted_by_set(sets, coverage)
    return sum(by_set) / len(by_set)


@dataclass(frozen=True)
class Fit:
    """What ``choose`` fits: the weights, the Platt calibration of z, and the threshold."""

    weights: Weights
    calibration: tuple[float, float]
    threshold: float

    def probability(self, z: float) -> float:
        a, b = self.calibration
        return 1.0 / (1.0 + math.exp(-(a * z + b)))

    def abstention(self, rows: Sequence[dict], threshold: float | None = None) -> tuple[float, float]:
        """(share of the answerable rows answered, share of the others abstained on) at
        ``threshold`` (default: the fit's); a row without candidates is never answered."""
        t = self.threshold if threshold is None else threshold
        answered = [self.probability(self.weights.z(c)) >= t if (c := best(r, self.weights)) is not None else False for r in rows]
        n_pos = sum(r["answerable"] for r in rows)
        pos = sum(a for a, r in zip(answered, rows, strict=True) if r["answerable"])
        neg = sum(not a for a, r in zip(answered, rows, strict=True) if not r["answerable"])
        return pos / max(1, n_pos), neg / max(1, len(rows) - n_pos)


def _fit(
    sets: Sequence[Sequence[dict]], extra: Sequence[dict], min_answered: float, coverage: Sequence[float]
) -> tuple[Fit, dict[Weights, float], dict[float, float], list[dict]]:
    """``choose`` without its report: the fit, every grid weight's quality, the AUC per confidence
    weight, and the threshold table (also what ``cross_fitted_abstention`` fits on each half)."""
    chosen, quality = choose_selection(sets, coverage)
    rows = [*(r for rows in sets for r in rows), *extra]
    aucs = {}
    for cw in CONFIDENCE_WEIGHTS:
        aucs[cw] = auc(*_scores(rows, replace(chosen, confidence=cw)))
    cw = max(CONFIDENCE_WEIGHTS, key=lambda c: (round(aucs[c], 4), -c))
    w = replace(chosen, confidence=cw)
    pos, neg = _scores(rows, w)
    calibrated = Fit(w, fit_calibration([*pos, *neg], [True] * len(pos) + [False] * len(neg)), 0.0)
    table = []
    for t in THRESHOLDS:
        answered, abstained = calibrated.abstention(rows, t)
        table.append({"threshold": t, "answered": answered, "abstained": abstained})
    ok = [row["threshold"] for row in table if row["answered"] >= min_answered]
    return replace(calibrated, threshold=max(ok) if ok else THRESHOLDS[0]), quality, aucs, table


def choose(
    sets: Sequence[Sequence[dict]], extra: Sequence[dict] = (), min_answered: float = 0.90, coverage: Sequence[float] = (0.0,)
) -> tuple[Weights, tuple[float, float], float, dict]:
    """Selection weights by the mean quality over the answerable rows of ``sets`` (each set
    counts the same, whatever its size), then the confidence weight by AUC of answerable vs not
    over all rows (``sets`` and ``extra``, e.g. near misses), then a Platt calibration of z and
    the highest threshold that keeps ``min_answered`` of the answerable dev questions answered.
    ``coverage``: the coverage weights the selection grid tries. Returns (weights, calibration,
    threshold, report)."""
    fit, quality, aucs, table = _fit(sets, extra, min_answered, coverage)
    by_set = cross_fitted_by_set(sets, coverage)  # once: its mean is the cross-fitted quality
    report = {
        "baseline_quality": quality[Weights(0.0, 0.0)],
        "quality": quality[replace(fit.weights, confidence=0.0)],
        "cross_fitted_quality": sum(by_set) / len(by_set),
        "cross_fitted_by_set": by_set,
        "cross_fitted_abstention": cross_fitted_abstention(sets, extra, min_answered, coverage),
        "auc_by_confidence_weight": aucs,
        "trade_off": table,
    }
    return fit.weights, fit.calibration, fit.threshold, report


def cross_fitted_abstention(
    sets: Sequence[Sequence[dict]], extra: Sequence[dict] = (), min_answered: float = 0.90, coverage: Sequence[float] = (0.0,)
) -> list[tuple[float, float]]:
    """Abstention out of sample: for each id half, the whole fit (weights, calibration, threshold)
    chosen on the other half's rows of ``sets`` and ``extra``, then (answered, abstained) on this
    half's. A question and its near miss share an id, so they fall in the same half."""
    out = []
    for h in (0, 1):
        fit_sets, held_sets = _halves(sets, h)
        fit_extra, held_extra = _halves([extra], h)
        fit, *_ = _fit(fit_sets, fit_extra[0], min_answered, coverage)
        out.append(fit.abstention([*(r for rows in held_sets for r in rows), *held_extra[0]]))
    return out


def out_of_fold(folds: Sequence[Mapping[str, Sequence[dict]]], names: Sequence[str], fit: Weights) -> list[dict]:
    """Selection quality per fold (rows read by the model that never trained on them) of
    ``fit``, of the selection weights ``choose`` picks on the other folds alone, and of the
    margin alone: whether a fit's choice of span holds beyond its own dev rows."""
    out = []
    for k, rows in enumerate(folds):
        others = [f for j, f in enumerate(folds) if j != k]
        fits = {"fit": fit}
        if others:
            sets = [[r for f in others for r in f[n]] for n in names]
            fits["other folds"] = choose(sets)[0]
        fits["margin alone"] = Weights(0.0, 0.0)
        for label, w in fits.items():
            out.append({"fold": k + 1, "fit": label, "weights": w, **{n: selection_quality(rows[n], w) for n in names}})
    return out
