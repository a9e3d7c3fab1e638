"""General rules for cleaning web-scraped text, shared by every loader.

Cleaning only *drops whole lines* (site chrome: search boxes, share buttons, language switches...),
strips trailing whitespace and collapses blank runs. Every line that survives is kept byte-for-byte
(Arabic letters, diacritics, digits untouched), because the cleaned text is the stored document text
that all answer/citation offsets point into.
"""

from __future__ import annotations

import re

__all__ = ["BOILERPLATE_RULES", "clean_text", "extract_title", "is_boilerplate"]

_I = re.IGNORECASE

# Share targets, used alone or as a run such as "Facebook | Twitter | LinkedIn".
_SHARE = (
    r"facebook|twitter|x|linkedin|whatsapp|telegram|pinterest|reddit|tumblr|e-?mail|print|copy link"
    r"|share(?: (?:this|on|via))?(?: (?:article|post|page|story))?"
    r"|فيسبوك|فيس بوك|تويتر|لينكد ?إن|واتس ?اب|تيليجرام|تلغرام|البريد الإلكتروني|طباعة|نسخ الرابط"
    r"|شارك(?: (?:المقالة|المقال|الخبر|هذا|هذه الصفحة|عبر))?|مشاركة(?: (?:المقال|الخبر))?"
)
# Language switches: "English", "العربية", "EN | AR"...
_LANG = r"english|arabic|français|francais|en|ar|fr|العربية|عربي|الإنجليزية|الانجليزية|english version|النسخة العربية"
_SEP = r"[\s|,·•/:\-–—]*"

# (pattern, why) - each pattern must match the WHOLE stripped line; case-insensitive for Latin.
BOILERPLATE_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, _I), why)
    for pattern, why in (
        (
            (
                r"(?:search|search\W*…|search for:?|close this search box\.?|type to search|menu|main menu"
                r"|open menu|close menu|toggle (?:navigation|menu)|skip to (?:main )?content|back to top"
                r"|بحث|ابحث|إغلاق|القائمة|القائمة الرئيسية|انتقل إلى المحتوى|تخطى إلى المحتوى|العودة للأعلى)"
            ),
            "navigation / search UI",
        ),
        (rf"(?:(?:{_SHARE}){_SEP})+", "share buttons (alone or in a row)"),
        (
            (
                r"(?:recent posts?|related (?:posts?|articles?|links|news)|latest (?:posts?|news)"
                r"|أحدث المقالات|أحدث الأخبار|آخر الأخبار|مقالات ذات صلة|أخبار ذات صلة|روابط ذات صلة)\s*:?"
            ),
            "recent/related-posts widget heading",
        ),
        (
            r"(?:read more|continue reading|learn more|اقرأ المزيد|اقرا المزيد|المزيد)\W*",
            "'read more' link alone on its line",
        ),
        (r"(?:https?://|www\.)\S+", "bare URL alone on its line"),
        (
            # "الصورة – https://…/photo.jpg", "Source: https://…": media credits and links whose
            # only content is the URL; a short label (up to three words) before it.
            r"(?:[^\W\d_]+[ \t]?){1,3}\s*[–—:|-]?\s*(?:https?://|www\.)\S+",
            "labelled URL (photo/source credit) alone on its line",
        ),
        (rf"(?:(?:{_LANG}){_SEP})+", "language switch"),
        (r"[\W_]+", "only punctuation / pipes / symbols"),
    )
)

# Two or more newlines, i.e. one or more blank lines.
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n)+")
# Control characters are not text: a NUL or an ESC sequence from a JSONL record was stored and
# printed as is, and `rag ask` wrote it to the terminal. Form and vertical feeds (PDF page
# breaks) become line breaks; tab and newline stay.
_PAGE_BREAK = re.compile("[\x0b\x0c]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without control characters other than tab and newline (form and vertical feeds
    become newlines)."""
    return _CONTROL.sub("", _PAGE_BREAK.sub("\n", text))


# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069). In a title, shown on
# its own line, "Invoice \u202egnp.exe" reads "Invoice exe.png". Text keeps them: its marks stay
# inside the passage they are in, and offsets point into the text as stored.
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_title(title: str) -> str:
    """A title on one line: no control characters, no bidi overrides, whitespace collapsed."""
    return " ".join(_BIDI_CONTROL.sub("", strip_controls(title)).split())


def is_boilerplate(line: str) -> bool:
    """True if a single line is site chrome by one of the general ``BOILERPLATE_RULES``."""
    stripped = line.strip()
    return bool(stripped) and any(p.fullmatch(stripped) for p, _ in BOILERPLATE_RULES)


def clean_text(text: str) -> str:
    """Normalise newlines, drop control characters and boilerplate lines, strip trailing spaces,
    collapse blank runs.

    Content lines are returned unchanged except for trailing whitespace; the result has no leading
    or trailing blank lines and never more than one blank line in a row.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = strip_controls(text)
    kept = [line.rstrip() for line in text.split("\n") if not is_boilerplate(line)]
    return _BLANK_RUN.sub("\n\n", "\n".join(kept)).strip("\n")


# --- titles ------------------------------------------------------------------------------------

_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun"
    r"|يناير|فبراير|مارس|أبريل|ابريل|إبريل|مايو|يونيو|يونيه|يوليو|يوليه|أغسطس|اغسطس|سبتمبر|أكتوبر|اكتوبر"
    r"|نوفمبر|ديسمبر|كانون الثاني|شباط|آذار|نيسان|أيار|حزيران|تموز|آب|أيلول|تشرين الأول|تشرين الثاني"
    r"|كانون الأول|الاثنين|الإثنين|الثلاثاء|الأربعاء|الخميس|الجمعة|السبت|الأحد|ص|م|am|pm"
)
# A line made only of digits (Latin or Arabic-Indic), month/day names and separators.
_DATE_LINE = re.compile(rf"(?:[\d\s.,/:|\-–—،]|\b(?:{_MONTHS})\b)+", _I)
_MD_HEADING = re.compile(r"#{1,6}\s+(.*?)(?:\s+#+)?\s*")
_TRIM = " \t\u00a0\u200e\u200f()[]{}<>«»\"'“”‘’„:：;،-–—*#•·|"
_MAX_TITLE = 200


def _is_title_like(line: str) -> bool:
    """A line that can serve as a title: not a date, not punctuation, >= 3 word characters."""
    return len(re.findall(r"[^\W_]", line)) >= 3 and not _DATE_LINE.fullmatch(line) and not is_boilerplate(line)


def _tidy_title(line: str) -> str:
    """Strip surrounding brackets/quotes/colons, re-close one dangling '(' and cap the length."""
    title = line.strip(_TRIM)
    # Right-to-left scrapes often turn "عنوان (الاسكوا)" into "(عنوان (الاسكوا": re-close it.
    if title.count("(") == title.count(")") + 1 and title.rfind("(") > title.rfind(")"):
        title += ")"
    if len(title) > _MAX_TITLE:
        # Long first paragraph: end at a sentence, else a clause, else a word boundary (+ "…").
        head = title[: _MAX_TITLE + 1]
        sentence = max(head.rfind(m + " ") for m in ".!?؟")
        clause = max(head.rfind(m + " ") for m in "،,؛;")
        if sentence >= 40:
            title = head[: sentence + 1]
        elif clause >= 40:
            title = head[:clause]
        else:
            cut = head.rfind(" ")
            title = head[: cut if cut >= 40 else _MAX_TITLE].rstrip() + "…"
    return title


def extract_title(text: str) -> str:
    """Pick a display title: a leading Markdown ``# heading``, else the first heading-like line.

    Skips date-only, punctuation-only and very short lines; falls back to the first non-blank
    line, and returns "" only when the text has no non-blank line at all.
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    heading = _MD_HEADING.fullmatch(lines[0])
    if heading and heading.group(1).strip(_TRIM):
        return _tidy_title(heading.group(1))
    for line in lines:
        if _is_title_like(line):
            return _tidy_title(line)
    return _tidy_title(lines[0]) or lines[0][:_MAX_TITLE]
