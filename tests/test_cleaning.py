"""Cleaning rules: boilerplate lines go, content lines stay byte-for-byte; titles are sensible."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.cleaning import clean_text, extract_title, is_boilerplate, strip_controls

ARABIC = "وأكد معالي محمد عبدالله القرقاوي أن استضافة القمة الحكوميةِ تُشكّل خطوة مهمة في ١٠ – ١٢ فبراير."


@pytest.mark.parametrize(
    "line",
    [
        "Search",
        "Close this search box.",
        "  Menu  ",
        "Skip to content",
        "Facebook",
        "twitter",
        "X",
        "LinkedIn",
        "WhatsApp",
        "Email",
        "Print",
        "Facebook | Twitter | LinkedIn",
        "شارك المقالة",
        "شارك",
        "مشاركة",
        "Recent Post",
        "Recent Posts",
        "Read more",
        "Read more »",
        "اقرأ المزيد",
        "https://example.com/a/b?c=1",
        "www.example.org",
        "الصورة – https://mma.example.com/media/1/World_Government_Summit.jpg",
        "Source: https://example.com/report",
        "English",
        "العربية",
        "Arabic",
        "EN",
        "عربي",
        "|",
        "| | |",
        "—",
        "...",
    ],
)
def test_boilerplate_lines_are_dropped(line: str) -> None:
    assert is_boilerplate(line)
    assert clean_text(f"{ARABIC}\n{line}\nسطر آخر من المحتوى") == f"{ARABIC}\nسطر آخر من المحتوى"


@pytest.mark.parametrize(
    "line",
    [
        "Follow the summit on Twitter and Facebook for live updates.",
        "تابعوا القمة عبر تويتر وفيسبوك للحصول على آخر المستجدات.",
        "Read more about the programme in the annual report.",
        "اقرأ المزيد عن برنامج التبادل المعرفي الحكومي",
        "See https://example.com for details",
        "قال الوزير إن الموقع https://example.com متاح للجميع",
        "English is one of the working languages of the summit.",
        "Search engines index the site daily.",
        "2019 |",
        "07 فبراير 2014",
        "١٢",
        "# Heading",
    ],
)
def test_content_lines_are_kept(line: str) -> None:
    assert not is_boilerplate(line)
    assert clean_text(f"{line}\n{ARABIC}") == f"{line}\n{ARABIC}"


def test_newlines_trailing_space_and_blank_runs() -> None:
    raw = "\n\nTitle line  \r\n\r\n\r\n\r\nBody  one\t\r\n   \n\n\nBody two\rEnd\n\n"
    assert clean_text(raw) == "Title line\n\nBody  one\n\nBody two\nEnd"


def test_dropped_lines_do_not_leave_blank_runs() -> None:
    raw = "First paragraph.\n\nشارك المقالة\nFacebook\nTwitter\nLinkedIn\n\nSecond paragraph."
    assert clean_text(raw) == "First paragraph.\n\nSecond paragraph."


def test_content_is_byte_for_byte() -> None:
    line = "  الصورة – ١٢٣ مُنتدى الخدمات الحكومية يَكشف، 2030 “quoted” (EGSEP)"
    assert clean_text(line + "   ") == line  # leading spaces and diacritics kept, trailing gone


def test_empty_and_all_boilerplate() -> None:
    assert clean_text("") == ""
    assert clean_text("Search\nMenu\n\n|\nEnglish\n") == ""


# --- titles -------------------------------------------------------------------------------------


def test_title_skips_dates_punctuation_and_short_lines() -> None:
    text = "07 فبراير 2014\n---\nب ج\n2014-02-07\nJan 5, 2020\nالقمة العالمية للحكومات 2024\nنص."
    assert extract_title(text) == "القمة العالمية للحكومات 2024"


def test_title_strips_brackets_quotes_colons_and_recloses_rtl_parenthesis() -> None:
    assert extract_title("« Summit opens »\nbody") == "Summit opens"
    assert extract_title(': "Quoted title":\nbody') == "Quoted title"
    broken = "(القمة الحكومية تستضيف اجتماعين لمنظمة (الاسكوا"
    assert extract_title(broken) == "القمة الحكومية تستضيف اجتماعين لمنظمة (الاسكوا)"


def test_markdown_heading_wins() -> None:
    assert extract_title("# Q&A\n\nA much longer first paragraph line.") == "Q&A"
    assert extract_title("## دليل المستخدم ##\nنص") == "دليل المستخدم"


def test_long_title_is_capped() -> None:
    words = " ".join(["كلمة"] * 100)
    title = extract_title(words)
    assert len(title) <= 201 and title.endswith("…")
    assert title[:-1].split() == ["كلمة"] * len(title[:-1].split())  # cut between words
    sentence = "The first sentence of a long paragraph is a good title. " + "More text " * 40
    assert extract_title(sentence) == "The first sentence of a long paragraph is a good title."


def test_title_fallbacks() -> None:
    assert extract_title("") == ""
    assert extract_title("\n \n") == ""
    assert extract_title("12\n") == "12"  # nothing title-like: first non-blank line


# --- properties ---------------------------------------------------------------------------------

_alphabet = st.sampled_from(
    list("abcXYZ |:-.,()«»#\t\r\n\u00a0\u200f0123٠١٢")
    + [
        "Search",
        "Facebook",
        "English",
        "العربية",
        "شارك",
        "https://x.y",
        "اقرأ المزيد",
        "مُنتدى",
        "\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_alphabet, max_size=60).map("".join) | st.text(max_size=300))
def test_clean_text_only_keeps_input_lines(text: str) -> None:
    out = clean_text(text)
    normalised = strip_controls(text.replace("\r\n", "\n").replace("\r", "\n"))
    assert not any(ch in out for ch in "\x00\x1b\x07\x7f\x85")  # control characters never come out
    input_lines = {line.rstrip() for line in normalised.split("\n")}
    assert all(line in input_lines for line in (out.split("\n") if out else []))
    assert "\n\n\n" not in out
    assert clean_text(out) == out  # idempotent
    extract_title(out)  # never raises
