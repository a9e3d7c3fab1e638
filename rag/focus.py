"""Question types and the ``focus`` span: the short factoid (number, date, name) inside an
answer sentence that a "how many"/"when"/"who" question is after. The full sentence stays
the answer; focus only points inside it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rag.schema import Focus
from rag.text import normalize, normalize_with_offsets, tokenize

if TYPE_CHECKING:
    from rag.stages import Query

_TYPE_RULES: list[tuple[str, re.Pattern[str]]] = [
    # matched against the normalised question (no diacritics, unified alef/ya/ta marbuta)
    (
        "date",
        re.compile(
            r"^\W*(متي|في اي (عام|سنه|شهر|يوم|تاريخ)|ما (هو )?تاريخ|في اي وقت)|\b(when|what (year|date|month|day)|which (year|date|month))\b"
        ),
    ),
    ("number", re.compile(r"^\W*(كم)|\bكم\b|\b(how (many|much|long|old)|what (number|percentage)|the number of)\b|ما عدد|عدد")),
    ("person", re.compile(r"^\W*(من (هو|هي|هم|الذي|التي|كان|يكون)|من\s)|\b(who|whom|whose)\b")),
    ("place", re.compile(r"^\W*(اين|في اي (مدينه|دوله|بلد|مكان))|\b(where|which (city|country|place))\b")),
]

_MONTHS = (
    "يناير فبراير مارس ابريل مايو يونيو يوليو اغسطس سبتمبر اكتوبر نوفمبر ديسمبر "
    "كانون شباط اذار نيسان ايار حزيران تموز اب ايلول تشرين "
    "january february march april may june july august september october november december"
).split()
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
# Dates as they appear in news text: "12 الي 14 فبراير", "30 يوليو 2018", "يونيو من عام 2018",
# "فبراير 2018", "عام 2013", "2016-2020". Matched on normalised text, mapped back to the original.
_DATE = re.compile(
    rf"(?:\d{{1,2}}\s*(?:-|–|الي|و|to)\s*)?\d{{1,2}}\s+{_MONTH}(?:\s+(?:من\s+)?(?:عام\s+)?\d{{4}})?"
    rf"|{_MONTH}\s+(?:من\s+)?(?:عام\s+|سنه\s+)?\d{{4}}"
    rf"|(?:(?:عام|العام|سنه)\s+)?\d{{4}}(?:\s*-\s*\d{{4}})?"
)
# A number with the word after it when that word is a counted noun/unit ("28 متحدثا", "10 الاف
# مسوول", "190 دوله"); the unit is what makes "how many X" answers read right.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:\s+(?:الف|الاف|مليون|ملايين|مليار|thousand|million|billion))?(?:\s+[^\s\d،,.؛:()]+)?")


# A follow-up's و/ف glued to its question word ("ومتى عقد؟", "وفي أي عام؟") hides it from the rules
# anchored at the start; normalised forms (متي, اين, اي)
_LEADING_CONJUNCTION_Q = re.compile(r"^(\W*)[وف](?=(?:متي|كم|من|اين|ما|ماذا|في اي)\b)")


def question_type(question: str) -> str | None:
    """``"date" | "number" | "person" | "place"`` or None for other questions."""
    q = _LEADING_CONJUNCTION_Q.sub(r"\1", normalize(question), count=1)
    for kind, pattern in _TYPE_RULES:
        if pattern.search(q):
            return kind
    return None


def sentence_has_type(text: str, kind: str | None) -> bool:
    """Whether a sentence can hold an answer of this type at all (a cue for ranking)."""
    if kind == "number":
        return bool(re.search(r"\d", normalize(text)))
    if kind == "date":
        return bool(_DATE.search(normalize(text)))
    return False


_CLAUSE = re.compile(r"[^،,؛;:()]+")
_LEADING_CONJUNCTION = re.compile(r"^(?:و|ف)(?=\S{3,})")
_NAME_WORDS = 5  # an appositive name is short: "سيفات يرلي" / "محمد بن راشد آل مكتوم"


def _person_focus(q_terms: set[str], sentence: str, sentence_start: int) -> Focus | None:
    """News text introduces people as "NAME، ROLE": for a "who is the ROLE" question, find
    the clause that matches the question best and return the short clause before it."""
    clauses = [(m.start(), m.end()) for m in _CLAUSE.finditer(sentence) if m.group().strip()]
    best, best_overlap = None, 0
    for i, (s, e) in enumerate(clauses[1:], 1):
        overlap = len(q_terms & set(tokenize(sentence[s:e])))
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    if best is None:
        return None
    s, e = clauses[best - 1]
    name = sentence[s:e].strip()
    if not name or len(name.split()) > _NAME_WORDS or re.search(r"\d", name):
        return None
    start = s + (len(sentence[s:e]) - len(sentence[s:e].lstrip()))
    lead = _LEADING_CONJUNCTION.match(name)  # "وسيفات يرلي" -> "سيفات يرلي"
    if lead:
        start += lead.end()
        name = name[lead.end() :]
    return Focus(text=name, start=sentence_start + start, end=sentence_start + start + len(name), kind="name")


_BARE_YEAR = re.compile(r"(?:19|20)\d\d")


def _shares_stem(tokens: list[str], q_tokens: set[str]) -> bool:
    """A word of the sentence matches a question word: the same stem, or one stem extending
    the other by a letter or two (the Arabic stemmer leaves "جلسات" as "جلسا" but
    "الجلسات" as "جلس")."""
    for t in tokens:
        for q in q_tokens:
            short, long_ = sorted((t, q), key=len)
            if long_.startswith(short) and len(short) >= 3 and len(long_) - len(short) <= 2:
                return True
    return False


def extract_focus(query: Query, sentence: str, sentence_start: int) -> Focus | None:
    """The factoid inside ``sentence`` answering ``query``, offsets in the document.

    Among several candidates, the one nearest to the words the question shares with the
    sentence wins ("how many speakers" -> the number next to "speakers").
    """
    kind = query.kind
    q_tokens = set(query.terms)
    if kind == "person":
        return _person_focus(q_tokens, sentence, sentence_start)
    if kind not in ("number", "date"):
        return None
    norm, offsets = normalize_with_offsets(sentence)
    pattern = _DATE if kind == "date" else _NUMBER
    # candidates as (start, end) in the original sentence; a counted noun that is a function
    # word ("2024 التي", "2030 and") is not a unit and is left out
    found = []
    for m in pattern.finditer(norm):
        if not re.search(r"\d", m.group()):
            continue
        text = m.group()
        last = text.rsplit(None, 1)
        if kind == "number" and len(last) == 2 and not re.search(r"\d", last[1]) and not tokenize(last[1]):
            text = last[0]
        found.append((offsets[m.start()], offsets[m.start() + len(text) - 1] + 1, text))
    if not found:
        return None
    # the words the question shares with the sentence, found in the original text (the
    # stemmer reads the original spelling: "منتدى" and its normalised "منتدي" stem apart)
    anchors = [w.start() for w in re.finditer(r"[^\W_]+", sentence) if _shares_stem(tokenize(w.group()), q_tokens)]

    def distance(c: tuple[int, int, str]) -> int:
        if not anchors:
            return 0
        return min(min(abs(a - c[0]), abs(a - c[1])) for a in anchors)

    def specific(c: tuple[int, int, str]) -> int:
        # a day or month beats a bare year for "when": "12 - 14 فبراير" over "2024"; a count
        # beats a bare year for "how many": "10 جلسات" over "2024"
        if kind == "date":
            return 0 if re.search(_MONTH, c[2]) else 1
        return 1 if _BARE_YEAR.fullmatch(c[2]) else 0

    start, end, _ = min(found, key=lambda c: (specific(c), distance(c), -(c[1] - c[0])))
    while end < len(sentence) and normalize(sentence[end]) == "" and not sentence[end].isspace():
        end += 1  # keep trailing diacritics (tanween) that normalisation dropped
    text = sentence[start:end].strip()
    if not text:
        return None
    lead = len(sentence[start:end]) - len(sentence[start:end].lstrip())
    start += lead
    return Focus(text=text, start=sentence_start + start, end=sentence_start + start + len(text), kind=kind)
