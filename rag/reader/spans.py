"""Span decoding shared by training evaluation and the run-time reader (numpy only)."""

from __future__ import annotations

import numpy as np

MAX_ANSWER_TOKENS = 30


def best_span(
    start: np.ndarray, end: np.ndarray, first: int, last: int, max_tokens: int = MAX_ANSWER_TOKENS
) -> tuple[float, int, int] | None:
    """(score, a, b) of the best span start[a] + end[b] with first <= a <= b < last and
    b - a < max_tokens; a and b are relative to ``first``. None when the range is empty."""
    s = start[first:last]
    e = end[first:last]
    n = len(s)
    if n == 0:
        return None
    # score[a, b] = s[a] + e[b] on the band a <= b < a + max_tokens
    scores = s[:, None] + e[None, :]
    idx = np.arange(n)
    band = (idx[None, :] >= idx[:, None]) & (idx[None, :] < idx[:, None] + max_tokens)
    scores = np.where(band, scores, -np.inf)
    flat = int(np.argmax(scores))
    a, b = divmod(flat, n)
    return float(scores[a, b]), a, b
