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
from dataclasses import dataclass

from rag.reader.package import fit_calibration

RANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
SENTENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
CONFIDENCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
MASS_WEIGHTS = (0.0, 0.5, 1.0)
THRESHOLDS = tuple(round(0.025 * i, 3) for i in range(1, 40))


@dataclass(frozen=True)
class Weights:
    rank: float
    sentence: float
    confidence: float = 0.0
    mass: float = 0.0

    def z(self, c: dict) -> float:
        margin = c["margin"] + self.mass * (c.get("mass", c["margin"]) - c["margin"])
        return margin - self.rank * math.log1p(c["rank"]) + self.sentence * c["in_sentence"] + self.confidence * c["sentence_logit"]


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


def choose_selection(sets: Sequence[Sequence[dict]]) -> tuple[Weights, dict[Weights, float]]:
    """The selection weights of the grid with the best mean quality over ``sets`` (each set
    counts the same, whatever its size; ties go to the smaller weights), and every weight's quality."""
    grid = [Weights(r, s, 0.0, m) for r, s, m in itertools.product(RANK_WEIGHTS, SENTENCE_WEIGHTS, MASS_WEIGHTS)]
    quality = {w: sum(selection_quality(rows, w) for rows in sets) / len(sets) for w in grid}
    return max(grid, key=lambda w: (round(quality[w], 6), -w.rank - w.sentence - w.mass)), quality


def _half(row_id: str) -> int:
    return int(hashlib.md5(row_id.encode("utf-8")).hexdigest(), 16) % 2


def cross_fitted_quality(sets: Sequence[Sequence[dict]]) -> float:
    """Selection quality out of sample: the questions split in two halves by a hash of their id,
    the weights chosen on one half scored on the other, both ways, averaged. The fit's own
    ``quality`` is chosen on the rows it scores: on the dev rows of three seeds of the shipped
    recipe it read 0.06-0.08 higher than this (eval/RESULTS.md), more than most levers move it."""
    out = []
    for h in (0, 1):
        # a row without an id (synthetic rows) is split by its position
        fit = [[r for i, r in enumerate(rows) if _half(str(r.get("id", i))) != h] for rows in sets]
        held = [[r for i, r in enumerate(rows) if _half(str(r.get("id", i))) == h] for rows in sets]
        w, _ = choose_selection(fit)
        out.append(sum(selection_quality(rows, w) for rows in held) / len(held))
    return sum(out) / len(out)


def choose(
    sets: Sequence[Sequence[dict]], extra: Sequence[dict] = (), min_answered: float = 0.90
) -> tuple[Weights, tuple[float, float], float, dict]:
    """Selection weights by the mean quality over the answerable rows of ``sets`` (each set
    counts the same, whatever its size), then the confidence weight by AUC of answerable vs not
    over all rows (``sets`` and ``extra``, e.g. near misses), then a Platt calibration of z and the highest threshold that keeps ``min_answered`` of
    the answerable dev questions answered. Returns (weights, calibration, threshold, report)."""
    chosen, quality = choose_selection(sets)
    rows = [*(r for rows in sets for r in rows), *extra]
    aucs = {}
    for cw in CONFIDENCE_WEIGHTS:
        w = Weights(chosen.rank, chosen.sentence, cw, chosen.mass)
        aucs[cw] = auc(*_scores(rows, w))
    cw = max(CONFIDENCE_WEIGHTS, key=lambda c: (round(aucs[c], 4), -c))
    w = Weights(chosen.rank, chosen.sentence, cw, chosen.mass)
    pos, neg = _scores(rows, w)
    a, b = fit_calibration([*pos, *neg], [True] * len(pos) + [False] * len(neg))
    n_pos = sum(r["answerable"] for r in rows)

    def p(z: float) -> float:
        return 1.0 / (1.0 + math.exp(-(a * z + b)))

    table = [
        {
            "threshold": t,
            "answered": sum(p(z) >= t for z in pos) / max(1, n_pos),
            "abstained": (sum(p(z) < t for z in neg) + sum(not r["cands"] for r in rows if not r["answerable"]))
            / max(1, len(rows) - n_pos),
        }
        for t in THRESHOLDS
    ]
    ok = [row["threshold"] for row in table if row["answered"] >= min_answered]
    threshold = max(ok) if ok else THRESHOLDS[0]
    report = {
        "baseline_quality": quality[Weights(0.0, 0.0)],
        "quality": quality[chosen],
        "cross_fitted_quality": cross_fitted_quality(sets),
        "auc_by_confidence_weight": aucs,
        "trade_off": table,
    }
    return w, (a, b), threshold, report


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
