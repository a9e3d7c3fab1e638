"""Pure metrics for offline evaluation: retrieval, extractive answers, abstention and latency.

Nothing here touches the index, the model or the disk; every function takes plain values and
returns a number, so the evaluation harness (and its tests) can score runs deterministically.

Answer scoring follows the SQuAD / MLQA conventions (normalise, then exact match and token F1,
each the maximum over the gold answers), with Arabic-specific normalisation added. This
normalisation is deliberately *separate* from the matching normalisation used for retrieval:
scoring must be stable and comparable across runs, not tuned for recall.

Aggregates over an empty input (``answered_rate``, ``abstained_rate``, ``percentile``, ``mean``)
return ``None`` rather than ``nan`` so reports stay valid JSON.
"""

from __future__ import annotations

import math
import string
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence

__all__ = [
    "abstained_rate",
    "answer_in_passages",
    "answer_tokens",
    "answered_rate",
    "contains_answer",
    "exact_match",
    "f1_score",
    "hit_at_k",
    "mean",
    "normalize_answer",
    "percentile",
    "reciprocal_rank",
    "span_tokens",
]

# --------------------------------------------------------------------------------------------
# Answer normalisation
# --------------------------------------------------------------------------------------------

# Harakat/tanwin/shadda/sukun (U+064B-U+0652), the stray combining madda/hamza marks that can
# survive NFKC (U+0653-U+0655), superscript alef (U+0670) and tatweel (U+0640): all deleted.
_ARABIC_MARKS = {cp: None for cp in (*range(0x064B, 0x0656), 0x0670, 0x0640)}

_LETTER_MAP = {
    ord("أ"): "ا",  # U+0623 alef with hamza above
    ord("إ"): "ا",  # U+0625 alef with hamza below
    ord("آ"): "ا",  # U+0622 alef with madda
    ord("ٱ"): "ا",  # U+0671 alef wasla
    ord("ى"): "ي",  # U+0649 alef maqsura -> yeh
    ord("ة"): "ه",  # U+0629 ta marbuta -> heh
}

# Arabic-Indic (U+0660-U+0669) and Extended/Persian (U+06F0-U+06F9) digits -> ASCII.
_DIGIT_MAP = {
    **{0x0660 + i: str(i) for i in range(10)},
    **{0x06F0 + i: str(i) for i in range(10)},
}

# Marks and digits go before tokenising; letters are unified only after the article is
# stripped, so a hamza-alef word ("ألعاب", "إلكتروني") is never mistaken for "ال" + rest.
_PRE_TRANSLATE = {**_ARABIC_MARKS, **_DIGIT_MAP}

_ASCII_PUNCT = frozenset(string.punctuation)  # includes symbols such as $ % + < = > ^ ` | ~

_EN_ARTICLES = frozenset({"a", "an", "the"})
# The article (plain alef or alef wasla), alone or after a glued conjunction و/ف
# ("والحكومة", "فالحل"); the conjunction is stripped together with it.
_AR_ARTICLE_PREFIXES = ("وال", "وٱل", "فال", "فٱل", "ال", "ٱل")
_AR_MIN_REST = 2  # letters that must remain after stripping


def _is_dropped_char(ch: str) -> bool:
    """Punctuation (ASCII or any Unicode ``P*``) and invisible format characters (``Cf``)."""
    if ch in _ASCII_PUNCT:
        return True
    cat = unicodedata.category(ch)
    return cat.startswith("P") or cat == "Cf"


def _strip_arabic_article(token: str) -> str:
    """Drop a leading "ال" (or "وال"/"فال"; also with alef wasla) if >= 2 letters remain.

    So "الحكومة" and "والحكومة" both end up "حكومه", while "الى" (one letter left) and the
    bare word "ال" stay. Runs *before* alef unification: "الألعاب" -> "ألعاب" -> "العاب"
    matches "ألعاب", which would otherwise be read as "ال" + "عاب". Only و/ف are handled:
    ب/ك/ل + "ال" are left alone because those letter runs too often start ordinary words
    ("كالسيوم").
    """
    for prefix in _AR_ARTICLE_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= _AR_MIN_REST:
            return token[len(prefix) :]
    return token


def normalize_answer(s: str) -> str:
    """Normalise an answer string for scoring (SQuAD-style, Arabic-aware).

    Steps, in order: NFKC (folds Arabic presentation forms and composes decomposed hamza),
    lowercase; delete Arabic diacritics and tatweel; map Arabic-Indic and Persian digits to
    ASCII; *delete* punctuation (ASCII ``string.punctuation`` plus every Unicode ``P*``
    character, so ، ؛ ؟ « » “ ” ٫ ٬ go too) and invisible format characters (ZWNJ, RLM, ...);
    split on whitespace; drop the English articles a/an/the; strip the Arabic article from
    each token (see ``_strip_arabic_article``); then unify alef forms (أ إ آ ٱ -> ا), ى -> ي
    and ة -> ه; rejoin with single spaces.

    Deleting (not spacing) punctuation matches the official SQuAD/MLQA scripts, so "U.S." ->
    "us"; the price is that "2018-2019" becomes one token "20182019". The function is meant to
    be applied once to raw text; it is not idempotent ("ألعاب" -> "العاب" -> "عاب").
    """
    return " ".join(_normalized_tokens(s))


def _normalized_tokens(s: str, punctuation: str = "") -> list[str]:
    """``normalize_answer``'s tokens; ``punctuation`` is what a punctuation mark becomes (deleted
    by default, as SQuAD's script does; " " splits the words it glues: "2022/PRNewswire/")."""
    s = unicodedata.normalize("NFKC", s).lower().translate(_PRE_TRANSLATE)
    s = "".join(punctuation if _is_dropped_char(ch) else ch for ch in s)
    return [_strip_arabic_article(t).translate(_LETTER_MAP) for t in s.split() if t not in _EN_ARTICLES]


def answer_tokens(s: str) -> list[str]:
    """Tokens of the normalised answer (whitespace split of ``normalize_answer(s)``)."""
    return normalize_answer(s).split()


def _as_list(golds: str | Sequence[str]) -> list[str]:
    """A bare string is one gold answer, not a sequence of one-character answers."""
    return [golds] if isinstance(golds, str) else list(golds)


def _gold_token_lists(golds: str | Sequence[str]) -> list[list[str]]:
    """Normalised gold token lists for EM/F1, following the SQuAD v2 script.

    Golds that normalise to nothing are dropped; if none remain the question counts as
    unanswerable and the only gold is the empty answer (so an empty prediction scores 1.0).
    """
    lists = [t for t in (answer_tokens(g) for g in _as_list(golds)) if t]
    return lists or [[]]


def _f1_tokens(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)  # both empty -> 1.0, exactly one empty -> 0.0
    overlap = sum((Counter(pred) & Counter(gold)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred)
    recall = overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals some normalised gold answer, else 0.0."""
    pred = answer_tokens(prediction)
    return max(float(pred == g) for g in _gold_token_lists(golds))


def f1_score(prediction: str, golds: str | Sequence[str]) -> float:
    """SQuAD token-overlap F1 between prediction and gold, maximised over the golds.

    Gives partial credit for extractive spans that are slightly too long or too short.
    """
    pred = answer_tokens(prediction)
    return max(_f1_tokens(pred, g) for g in _gold_token_lists(golds))


def contains_answer(span: str, golds: str | Sequence[str]) -> float:
    """1.0 if some normalised gold occurs in the normalised span on token boundaries.

    Lenient check for systems that return a sentence rather than a minimal span. Matching is
    by whole tokens, so "20" is *not* found in "2020" and "عام" is not found in "عامل". Two
    Arabic cases count as found where a plain token match misses the answer the sentence holds:
    the gold's first word with a proclitic attached (و ف ب ل ك, or ب ك ل with the article:
    "وسيفات يرلي" holds "سيفات يرلي", "للحكومة" holds "الحكومة"; only for a first word of at
    least three letters, so "ورد" does not hold "رد"), and words glued by punctuation, matched
    with the punctuation read as a space ("2022/PRNewswire/" holds "PRNewswire").
    Golds that normalise to nothing are ignored; with none left the result is 0.0.
    """
    for punctuation in ("", " "):
        haystack = _normalized_tokens(span, punctuation)
        for gold in _as_list(golds):
            needle = _normalized_tokens(gold, punctuation)
            if needle and _holds(haystack, needle):
                return 1.0
    return 0.0


# A proclitic on the answer's first word (after normalisation: the article after و/ف is already
# gone; after ب/ك/ل it stays, and ل + ال is written لل).
_AR_PROCLITICS = ("بال", "كال", "لل", "و", "ف", "ب", "ل", "ك")
_AR_CLITIC_MIN_WORD = 3


def _holds(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` stands in ``haystack`` token for token, its first token perhaps with a proclitic."""
    first, rest, n = needle[0], needle[1:], len(needle)
    clitic = len(first) >= _AR_CLITIC_MIN_WORD and "\u0621" <= first[0] <= "\u064a"
    for i in range(len(haystack) - n + 1):
        if haystack[i + 1 : i + n] != rest:
            continue
        token = haystack[i]
        if token == first or (clitic and any(token == p + first for p in _AR_PROCLITICS)):
            return True
    return False


def span_tokens(span: str) -> int:
    """Whitespace token count of the raw (un-normalised) span, to track answer length."""
    return len(span.split())


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------


def _gold_set(gold: str | Collection[str]) -> frozenset[str]:
    return frozenset([gold]) if isinstance(gold, str) else frozenset(gold)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def hit_at_k(ranked: Sequence[str], gold: str | Collection[str], k: int) -> float:
    """1.0 if any gold id is among the first ``k`` ranked ids, else 0.0 (recall@k per query)."""
    _check_k(k)
    golds = _gold_set(gold)
    return float(any(r in golds for r in ranked[:k]))


def reciprocal_rank(ranked: Sequence[str], gold: str | Collection[str], k: int = 10) -> float:
    """1/rank (1-based) of the first gold id within the top ``k``, else 0.0; averages to MRR@k."""
    _check_k(k)
    golds = _gold_set(gold)
    for i, r in enumerate(ranked[:k]):
        if r in golds:
            return 1.0 / (i + 1)
    return 0.0


def answer_in_passages(passages: Sequence[str], answers: str | Sequence[str], k: int = 5) -> float:
    """1.0 if any of the top-``k`` passage texts contains any gold answer, else 0.0.

    Uses ``contains_answer`` (normalised, token-boundary match). This is the upper bound on what
    an extractive reader can get from the retrieved passages.
    """
    _check_k(k)
    return float(any(contains_answer(p, answers) for p in passages[:k]))


# --------------------------------------------------------------------------------------------
# Abstention
# --------------------------------------------------------------------------------------------


def answered_rate(flags: Sequence[bool]) -> float | None:
    """Share of questions answered (flags are "answered" booleans); ``None`` if empty."""
    values = list(flags)
    if not values:
        return None
    return sum(1 for f in values if f) / len(values)


def abstained_rate(flags: Sequence[bool]) -> float | None:
    """Share of questions abstained on (flags are "answered" booleans); ``None`` if empty."""
    values = list(flags)
    if not values:
        return None
    return sum(1 for f in values if not f) / len(values)


# --------------------------------------------------------------------------------------------
# Latency / aggregates
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linearly interpolated like ``numpy.percentile``'s default.

    Position ``(n - 1) * q / 100`` in the sorted values, interpolated between its neighbours.
    ``None`` for empty input; ``ValueError`` if ``q`` is outside [0, 100].
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    xs = sorted(float(v) for v in values)
    if not xs:
        return None
    pos = (len(xs) - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    if frac == 0.0:
        return xs[lo]
    return xs[lo] + (xs[hi] - xs[lo]) * frac


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean (``math.fsum`` for accuracy); ``None`` for empty input."""
    xs = [float(v) for v in values]
    if not xs:
        return None
    return math.fsum(xs) / len(xs)
