"""Text layer: Arabic-aware normalisation for matching, language detection, sentence
segmentation with offsets, and the tokenizer BM25 and lexical scoring share.

Normalisation is only ever used to *compare* text. What users see, and every offset, refers
to the original text; ``normalize_with_offsets`` gives the map back when a match found in
normalised text has to be reported in the original.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import Stemmer

# --- normalisation -------------------------------------------------------------------------

# Harakat, sukun, shadda, superscript alef and Quranic marks carry no meaning for matching.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"
_CHAR_MAP = {
    **{c: "ا" for c in "أإآٱٲٳ"},
    "ى": "ي",
    "ی": "ي",  # Persian ya
    "ئ": "ي",
    "ؤ": "و",
    "ة": "ه",
    "ک": "ك",  # Persian kaf
    **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian digits
    "٫": ".",  # Arabic decimal separator
    "٬": ",",  # Arabic thousands separator
}
# Unusual spaces (nbsp, thin, zero-width...) become a plain space; zero-width joiners are dropped.
_SPACES = {c: " " for c in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"}
_DROP = set("\u200b\u200c\u200d\u200e\u200f\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d\u202e\ufeff") | {_TATWEEL}

_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3]")
_LATIN_LETTER = re.compile("[A-Za-z]")


# Before stemming, letters the Snowball stemmer reads as suffix markers (ta marbuta, alef
# maqsura, hamza seats) are kept; the stem is fully normalised afterwards.
_STEM_KEEP = frozenset("ةىئؤ")


def _norm_char(c: str, keep: frozenset[str] = frozenset()) -> str:
    """Normalised form of one character ("" when it is dropped)."""
    if c in _DROP or _DIACRITICS.match(c):
        return ""
    if c in keep:
        return c
    c = _CHAR_MAP.get(c) or _SPACES.get(c) or c
    # One character in, at most one out, so offsets map 1:1. Only "İ" lower-cases to two
    # characters ("i" + combining dot above); "i" is its matching form.
    return c.lower()[:1]


class _CharTable(dict):
    """``str.translate`` table filled lazily with ``_norm_char``: the per-character Python call
    runs once per distinct character instead of once per character of every text (normalising
    is the hot path of tokenising, at ingest and per query)."""

    def __init__(self, keep: frozenset[str] = frozenset()):
        super().__init__()
        self.keep = keep

    def __missing__(self, code: int) -> str:
        out = self[code] = _norm_char(chr(code), self.keep)
        return out


_NORM_TABLE = _CharTable()
_STEM_TABLE = _CharTable(_STEM_KEEP)


def normalize(text: str) -> str:
    """Matching form of ``text``: no diacritics/tatweel, unified alef/hamza/ya/ta marbuta,
    ASCII digits, plain spaces, lower-case Latin. Never show this to users."""
    return text.translate(_NORM_TABLE)


# Removed before embedding: marks, not letters (see ``text_for_embedding``).
_EMBED_DROP = {
    code: None for code in [*range(0x0610, 0x061B), *range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06EE)] + [ord(c) for c in _DROP]
}


def text_for_embedding(text: str) -> str:
    """A question as the embedding model reads it: without diacritics, tatweel and invisible
    zero-width/direction marks. They carry no meaning for matching yet move vectors a lot (a
    fully vowelled question has cosine 0.83 with its plain spelling, about the margin between
    a right and a wrong passage). Letters are not unified as in ``normalize``: the model was
    trained on ordinary spelling. Documents are embedded as written: stripping them too was
    measured and did not help (eval/RESULTS.md)."""
    return text.translate(_EMBED_DROP)


# Interrogatives of the spoken dialects (Levantine, Gulf, Iraqi, Egyptian, Maghrebi) and their
# Modern Standard Arabic form, keyed by their ``normalize``d spelling. The span reader learnt from
# MSA questions only (XQuAD, ARCD): asked with these words, 152 dev questions read 9.5 F1 points
# worse with the gold paragraph given (eval/RESULTS.md, "Update 9").
_DIALECT_QUESTION_WORDS = {
    **dict.fromkeys(("وين", "فين"), "أين"),
    **dict.fromkeys(("منين", "منوين"), "من أين"),
    **dict.fromkeys(("مين", "منو", "مينو"), "من"),
    **dict.fromkeys(("ايمتي", "امتي", "ايمتا", "امتا"), "متى"),
    **dict.fromkeys(("شو", "ايش", "ايه", "شنو", "شنهو", "شنهي"), "ما"),
    **dict.fromkeys(("ليش", "ليه", "علاش", "لويش"), "لماذا"),
    **dict.fromkeys(("ازاي", "شلون", "كيفاش"), "كيف"),
    **dict.fromkeys(("قديش", "اديش"), "كم"),
    **dict.fromkeys(("انهي", "انهو"), "أي"),
}
# Words that are ordinary MSA (or names) elsewhere in a sentence, so only read as a question word
# where a question word stands: first in the question. (متين "solid", كام "Cam", وش "face".)
_DIALECT_FIRST_ONLY = {"متين": "متى", "كام": "كم", "وش": "ما"}
_DIALECT_FIRST_WORDS = {**_DIALECT_QUESTION_WORDS, **_DIALECT_FIRST_ONLY}
_DIALECT_RELATIVE = {"اللي": "الذي"}  # "إلى" also normalises to الي, so only this spelling
_QUESTION_WORD_SPAN = 3  # a question word stands among the first words, or last ("القمة وين؟")
_PROCLITIC = "وفبل"  # "ومين", "لمين", "بكام"
_AR_WORD = re.compile("[\u0621-\u065f\u0670-\u06d3]+")


# MSA question words, ``normalize``d (also what makes a chat turn a follow-up: api.conversation)
MSA_QUESTION_WORDS = frozenset(normalize(w) for w in "من ما ماذا متى أين كيف كم لماذا هل أي".split())


def _question_key(word: str) -> str:
    """``normalize``d, but a word ending in ta marbuta keeps it apart: MSA "أية" (which) must not
    read as Egyptian "ايه" (what)."""
    key = normalize(word)
    return key[:-1] + "ة" if _DIACRITICS.sub("", word).rstrip(_TATWEEL).endswith("ة") else key


_AFTER_QUESTION_MARK = re.compile("(?<=[?؟])")


def msa_question(text: str) -> str:
    """An Arabic question with its dialect question words in their MSA form ("وين انعقد المؤتمر؟"
    -> "أين انعقد المؤتمر؟"), for the models that read the question; shown and stored text keep
    the user's words. Each question of the text (up to its question mark: a chat follow-up reads
    "topic? follow-up?") is read alone. A word counts only where a question word stands: last, in
    a question with no other question word among its first three words, where it moves to the
    front as in MSA ("القمة بتنعقد وين؟" -> "أين القمة بتنعقد؟"); or among the first three words
    (one proclitic allowed: و ف ب ل; متين, كام and وش, ordinary words elsewhere, first only). The
    dialect relative اللي becomes الذي anywhere. Everything else is kept character for character."""
    return "".join(_msa_clause(part) for part in _AFTER_QUESTION_MARK.split(text))


def _msa_clause(text: str) -> str:
    words = list(_AR_WORD.finditer(text))
    keys = [_question_key(m.group()) for m in words]
    out, last, fronted = [], 0, ""
    for i, (m, key) in enumerate(zip(words, keys, strict=True)):
        msa = _DIALECT_RELATIVE.get(key)
        if msa is None and 0 < i == len(words) - 1 and key in _DIALECT_QUESTION_WORDS:
            others = keys[: min(i, _QUESTION_WORD_SPAN)]
            if not any(k in MSA_QUESTION_WORDS or k in _DIALECT_FIRST_WORDS for k in others):
                fronted = _DIALECT_QUESTION_WORDS[key]
                out.append(text[last : m.start()].rstrip())
                last = m.end()
                continue
        if msa is None and i < _QUESTION_WORD_SPAN:
            table = _DIALECT_FIRST_WORDS if i == 0 else _DIALECT_QUESTION_WORDS
            msa = table.get(key)
            if msa is None and len(key) > 2 and key[0] in _PROCLITIC and key[1:] in table:
                msa = m.group()[0] + table[key[1:]]
        if msa is not None:
            out.append(text[last : m.start()] + msa)
            last = m.end()
    result = "".join(out) + text[last:]
    if fronted:
        lead = len(result) - len(result.lstrip())
        result = result[:lead] + fronted + " " + result[lead:]
    return result


_QUESTION_MARKS = "?؟"
# Arabic-Indic and Persian digits as the training questions write them (normalize's digit map alone)
_READER_DIGITS = str.maketrans({c: d for c, d in _CHAR_MAP.items() if d.isdigit()})


def question_for_reader(text: str, language: str) -> str:
    """A question as the span reader reads it, which learnt from well-formed MSA and English
    questions: dialect question words in MSA (``msa_question``), without the marks the embedder
    drops (``text_for_embedding``), with ASCII digits, and ending in a question mark (؟ for
    Arabic, also where "?" was typed), as chat users often leave it out. On dev questions with the
    gold paragraph, dropping the mark cost 3.6 F1 in English and 3.3 in Arabic, "?" for "؟" 2.1,
    and Arabic-Indic digits 3.9; read this way, none costs anything (eval/RESULTS.md, "Update 9")."""
    reading = text_for_embedding(msa_question(text)).strip().translate(_READER_DIGITS)
    if reading and reading[-1] not in _QUESTION_MARKS:
        reading += "؟" if language == "ar" else "?"
    elif language == "ar" and reading.endswith("?"):
        reading = reading[:-1] + "؟"  # typed on a Latin keyboard
    return reading


def follow_up_for_reader(turn: str, topic: str, language: str) -> str:
    """A chat follow-up as the span reader reads it: the turn's question first, then what the
    topic (the earlier question it continues) was about, as one question. "وأين انعقد؟" after
    "كم عدد المتحدثين في المنتدى؟" reads "وأين انعقد عدد المتحدثين في المنتدى؟": the reader keeps
    the turn's question word and gets the subject the turn leaves out. The topic loses its leading
    question and stop words ("كم", "How many"), which the reader otherwise answered (given the
    whole "topic turn", it answered the topic's question again: F1 0.135 against 0.301 on the
    follow-ups of eval/qa/chat_followups.jsonl's dev rows; eval/RESULTS.md, "Update 10")."""
    words = question_for_reader(topic, language).rstrip(_QUESTION_MARKS).split()
    while words and not tokenize(words[0]):
        del words[0]
    question = question_for_reader(turn, language).rstrip(_QUESTION_MARKS + " ")
    return question_for_reader(" ".join([question, *words]), language)


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalize`` plus, for each normalised character, its index in the original text.

    A match ``norm[i:j]`` maps back to ``text[offsets[i]:offsets[j-1] + 1]``.
    """
    out: list[str] = []
    offsets: list[int] = []
    for i, c in enumerate(text):
        n = _norm_char(c)
        for ch in n:
            out.append(ch)
            offsets.append(i)
    return "".join(out), offsets


def detect_language(text: str) -> str:
    """``"ar"`` or ``"en"`` by which script has more letters (Arabic wins ties: it is our default)."""
    ar = len(_ARABIC_LETTER.findall(text))
    lat = len(_LATIN_LETTER.findall(text))
    return "en" if lat > ar else "ar"


# --- sentences -----------------------------------------------------------------------------

# A sentence ends at . ! ? ؟ ؛ … (possibly repeated, possibly followed by closing quotes or
# brackets), or at a line break. A full stop does not end a sentence inside a number (7.98),
# after a single letter (initials: "J. Smith"), or after a known abbreviation.
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "inc",
    "ltd",
    "co",
    "corp",
    "no",
    "vol",
    "fig",
    "e.g",
    "i.e",
    "u.s",
    "u.k",
    "u.a.e",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "approx",
    "dept",
    "est",
    "gov",
    "mt",
    "د",
    "م",
    "ه",
    "ص",
    "ج",  # Arabic single-letter abbreviations (doctor, AD, AH, page, part)
}
_TERMINATOR = re.compile(r"[.!?؟؛…]+[\"'”’»)\]]*")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


def _is_sentence_end(text: str, m: re.Match[str]) -> bool:
    punct = m.group()
    if punct[0] != "." or len(punct.rstrip("\"'”’»)]")) > 1:
        return True
    after = text[m.end() : m.end() + 1]
    if after and not after.isspace():
        return False  # 7.98, example.com, U.S.A
    word = _WORD_BEFORE.search(text, 0, m.start())
    if word:
        w = word.group(1).lower()
        if w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
            return False
    return True


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` offsets in ``text[start:end]``, trimmed of surrounding
    whitespace; empty or punctuation-only pieces are skipped."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cuts = []
    for m in _TERMINATOR.finditer(text, start, end):
        if _is_sentence_end(text, m):
            cuts.append(m.end())
    for m in re.finditer(r"\n", text[start:end]):
        cuts.append(start + m.start())
    cuts = sorted(set(cuts)) + [end]
    prev = start
    for cut in cuts:
        s, e = prev, cut
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and any(ch.isalnum() for ch in text[s:e]):
            spans.append((s, e))
        prev = cut
    return [piece for s, e in _join_lists(text, spans) for piece in _bounded_sentence(text, s, e)]


# Longest sentence shown or scored. The longest in the default corpus is 1,036 characters, in
# XQuAD 806 and in ARCD 1,226; a text without sentence ends (a 100 KB run of words) was one
# sentence, returned whole as an answer's sentence.
MAX_SENTENCE_CHARS = 2000


def _bounded_sentence(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` in pieces of at most ``MAX_SENTENCE_CHARS``, cut at the last space in the
    second half of each piece (mid-word only where there is none), each trimmed of whitespace."""
    out = []
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        space = max(text.rfind(" ", start + MAX_SENTENCE_CHARS // 2, limit), text.rfind("\n", start + MAX_SENTENCE_CHARS // 2, limit))
        cut = space if space > start else limit
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        out.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))
    return out


# A line ending in a colon that introduces a list ("تشمل الدول المشاركة:" then one country per
# line) is one sentence with its items: the items alone answer nothing, the intro alone says
# nothing. An item is a short line (a list, not a paragraph, follows); the list ends at a
# blank line, a longer line, or an item that ends a sentence ("أذربيجان.").
_LIST_ITEM_WORDS = 8
_LIST_MAX_ITEMS = 20
_ITEM_END = re.compile(r"[.!?؟…][\"'”’»)\]]*$")


def _join_lists(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        s, e = spans[i]
        j = i + 1
        if text[e - 1] in ":：":
            while (
                j < len(spans)
                and j - i <= _LIST_MAX_ITEMS
                and text.count("\n", spans[j - 1][1], spans[j][0]) == 1
                and len(text[spans[j][0] : spans[j][1]].split()) <= _LIST_ITEM_WORDS
            ):
                j += 1
                if _ITEM_END.search(text, spans[j - 1][0], spans[j - 1][1]):
                    break
        out.append((s, spans[j - 1][1]))
        i = j
    return out


# --- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# Snowball's Arabic stemmer removes "ال", "بال", "لل"... itself but not a conjunction و/ف in
# front of them ("والحكومة" stays "والحكوم"), so that one letter is stripped first.
_AR_ARTICLES = ("ال", "بال", "كال", "لل")
_AR_STOPWORDS = frozenset(
    normalize(w)
    for w in (
        "في من إلى على عن مع هذا هذه ذلك تلك التي الذي الذين و أو ثم كما قد لقد كان كانت يكون "
        "هو هي هم نحن أن إن لا ما ماذا متى كم كيف أين لماذا هل أي عند بين حول خلال بعد قبل منذ "
        "حتى كل أيضا وقد وفي وهي وهو او ال"
    ).split()
)
_EN_STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or is are was were be been being do does did "
    "what which who whom whose when where why how many much that this these those it its as "
    "into about than then there their they he she his her i you we our can could will would "
    "has have had not no".split()
)


@lru_cache(maxsize=2)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    import Stemmer  # here, not at import: training the reader reads this module without PyStemmer

    return Stemmer.Stemmer(lang)


def _strip_arabic_prefix(token: str) -> str:
    if token[:1] in ("و", "ف") and token[1:].startswith(_AR_ARTICLES) and len(token) >= 6:
        return token[1:]
    return token


def tokenize(text: str, *, stopwords: bool = True) -> list[str]:
    """Normalised, stemmed word tokens for BM25 and lexical overlap (Arabic and English)."""
    out: list[str] = []
    for w in _TOKEN.findall(text.translate(_STEM_TABLE)):
        t = _word_token(w, stopwords)
        if t is not None:
            out.append(t)
    return out


@lru_cache(maxsize=1 << 16)
def _word_token(w: str, stopwords: bool) -> str | None:
    """The token of one word (None for a stopword); cached, since vocabularies are small
    next to the number of words tokenised."""
    if stopwords and (normalize(w) in _AR_STOPWORDS or w in _EN_STOPWORDS):
        return None
    if _ARABIC_LETTER.match(w):
        return normalize(_stemmer("arabic").stemWord(_strip_arabic_prefix(w)))
    if w.isascii() and w.isalpha():
        return _stemmer("english").stemWord(w)
    return w


# A question needs this many letters or digits (any script). One is not enough: "a", "؟ب" or "5"
# retrieve arbitrary passages, so an answer to them would be noise; two already allow "AI" or "٢٠".
MIN_QUESTION_WORD_CHARS = 2


def word_characters(text: str) -> int:
    """Letters and digits in ``text``, for the emptiness check only (the text itself is never
    changed): zero-width and other format characters, controls such as NUL, whitespace,
    punctuation and lone combining marks do not count. Shared by every entry point that takes a
    question (the HTTP routes, MCP, `rag ask`)."""
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")
