"""Text layer: normalisation rules, offset maps, language detection, sentence spans, tokens."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.text import (
    detect_language,
    follow_up_for_reader,
    msa_question,
    normalize,
    normalize_with_offsets,
    question_for_reader,
    sentence_spans,
    text_for_embedding,
    tokenize,
)

# --- normalisation: one rule at a time -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("كَتَبَ", "كتب"),  # fatha
        ("مُدَرِّسٌ", "مدرس"),  # damma, kasra, shadda, tanween
        ("عِلْمًا", "علما"),  # sukun, fathatan
        ("هٰذا", "هذا"),  # superscript alef
    ],
)
def test_normalize_drops_diacritics(raw, expected):
    assert normalize(raw) == expected


def test_normalize_drops_tatweel():
    assert normalize("الحكـــومة") == normalize("الحكومة")
    assert "\u0640" not in normalize("مـرحـبـا")


@pytest.mark.parametrize("alef", ["أ", "إ", "آ", "ٱ"])
def test_normalize_unifies_alef_forms(alef):
    assert normalize(alef + "حمد") == "احمد"


def test_normalize_unifies_hamza_seats():
    assert normalize("مسؤول") == "مسوول"
    assert normalize("رئيس") == "رييس"


def test_normalize_alef_maqsura_to_ya():
    assert normalize("مستشفى") == normalize("مستشفي") == "مستشفي"
    assert normalize("على") == "علي"


def test_normalize_ta_marbuta_to_ha():
    assert normalize("حكومة") == normalize("حكومه") == "حكومه"


def test_normalize_arabic_indic_and_persian_digits():
    assert normalize("٠١٢٣٤٥٦٧٨٩") == "0123456789"
    assert normalize("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
    assert normalize("٧٫٩٨") == "7.98"


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\u202f", "\u3000", "\u2003"])
def test_normalize_unusual_spaces_become_plain(space):
    assert normalize(f"دبي{space}2024") == "دبي 2024"


@pytest.mark.parametrize("mark", ["\u200b", "\u200c", "\u200d", "\u200f", "\ufeff", "\u202b"])
def test_normalize_drops_zero_width_and_direction_marks(mark):
    assert normalize(f"دب{mark}ي") == "دبي"


def test_normalize_lowercases_latin_and_keeps_other_text():
    assert normalize("TMRW Forum 2024") == "tmrw forum 2024"
    assert normalize("İstanbul") == "istanbul"


def test_normalize_with_offsets_maps_a_match_back_to_the_original():
    text = "وقّعت الإمارات اتفاقيةً في ٢٠١٨."
    norm, offsets = normalize_with_offsets(text)
    i = norm.index("اتفاقيه")
    j = i + len("اتفاقيه")
    original = text[offsets[i] : offsets[j - 1] + 1]
    assert original == "اتفاقية"
    k = norm.index("2018")
    assert text[offsets[k] : offsets[k + 3] + 1] == "٢٠١٨"


# Text drawn from everything normalisation treats specially, plus arbitrary characters.
_SPECIAL = (
    "أإآٱىیئؤةکـ٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫٬"
    "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670"
    "\u00a0\u2009\u202f\u200b\u200c\u200d\u200e\u200f\ufeff\u202b"
    "İIßΣ"
)
_arabicish = st.text(
    alphabet=st.one_of(
        st.sampled_from(_SPECIAL),
        st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
        st.sampled_from(" \n\t.,؟!؛،?-:0123456789abcXYZ"),
        st.characters(),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(_arabicish)
def test_property_normalize_with_offsets_maps_every_char_back(text):
    norm, offsets = normalize_with_offsets(text)
    assert norm == normalize(text)
    assert len(offsets) == len(norm)
    assert all(0 <= o < len(text) for o in offsets)
    assert all(a < b for a, b in itertools.pairwise(offsets))
    for i, o in enumerate(offsets):
        assert norm[i] == normalize(text[o])


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("متى تعقد القمة العالمية للحكومات؟", "ar"),
        ("When is the World Government Summit held?", "en"),
        ("من هو الرئيس التنفيذي لشركة TMRW؟", "ar"),
        ("Who is the CEO of TMRW in دبي?", "en"),
        ("", "ar"),  # nothing to go on: the default language
        ("2024", "ar"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


# --- sentences -------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_sentence_spans_split_on_arabic_and_latin_terminators():
    text = "هل حضرت القمة؟ نعم حضرتها! كانت مفيدة؛ وسأعود. Did you go? Yes."
    assert _sentences(text) == ["هل حضرت القمة؟", "نعم حضرتها!", "كانت مفيدة؛", "وسأعود.", "Did you go?", "Yes."]


def test_sentence_spans_are_bounded_in_text_without_sentence_ends():
    from rag.text import MAX_SENTENCE_CHARS

    words = " ".join(f"كلمة{i}" for i in range(3000))  # 23k characters, no terminator, no line break
    text = f"جملة قصيرة. {words} وأخيرة."
    spans = sentence_spans(text)
    assert spans[0] == (0, len("جملة قصيرة."))
    assert all(0 < e - s <= MAX_SENTENCE_CHARS for s, e in spans)
    # cut between words, nothing lost: the pieces put back together are the text
    assert " ".join(text[s:e] for s, e in spans) == text
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans)
    assert sentence_spans("x" * 5000) == [(0, 2000), (2000, 4000), (4000, 5000)]  # no space: cut anyway


def test_sentence_spans_split_on_line_breaks():
    assert _sentences("العنوان الرئيسي\nنص الفقرة الأولى\n\n  فقرة ثانية  ") == [
        "العنوان الرئيسي",
        "نص الفقرة الأولى",
        "فقرة ثانية",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "بلغ حجم الملف 7.98 ميغابايت في النسخة الأخيرة.",
        "The report was written by Dr. Smith for the ministry.",
        "قدّم د. أحمد الكعبي عرضاً عن الحكومة الرقمية.",
        "The U.S. delegation arrived on Monday.",
        "Prices rose by 3.5 percent, e.g. in housing.",
        "Contact us at example.com for details.",
    ],
)
def test_sentence_spans_do_not_split_decimals_or_abbreviations(text):
    assert _sentences(text) == [text]


def test_sentence_spans_offsets_slice_the_text_and_respect_bounds():
    text = "  أولاً: مقدمة.  ثانياً: النتائج؟\nThird line  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["أولاً: مقدمة.", "ثانياً: النتائج؟", "Third line"]
    sub = sentence_spans(text, 17, 33)
    assert [text[s:e] for s, e in sub] == ["ثانياً: النتائج؟"]
    assert all(17 <= s < e <= 33 for s, e in sub)


def test_sentence_spans_skip_punctuation_only_pieces():
    assert _sentences("... ؟؟ !!\n---\nنص.") == ["نص."]


@settings(max_examples=300, deadline=None)
@given(_arabicish)
def test_property_sentence_spans_are_ordered_trimmed_slices(text):
    spans = sentence_spans(text)
    prev_end = 0
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert s >= prev_end
        piece = text[s:e]
        assert piece == piece.strip()
        prev_end = e


# --- tokens ----------------------------------------------------------------------------------


def test_tokenize_arabic_prefixes_and_article_share_a_token():
    forms = ["والحكومة", "الحكومة", "حكومة", "بالحكومة", "للحكومة", "فالحكومة"]
    token_sets = [set(tokenize(f)) for f in forms]
    shared = set.intersection(*token_sets)
    assert shared, token_sets


def test_tokenize_matches_across_spelling_variants():
    assert tokenize("المسؤولين") == tokenize("المسؤولِين") == tokenize("المسؤولـين")
    assert tokenize("الإمارات") == tokenize("الامارات")


def test_tokenize_drops_stopwords():
    assert tokenize("في من إلى على هذه the of is and") == []
    assert tokenize("في القمة") == tokenize("القمة")
    assert tokenize("في القمة", stopwords=False) != tokenize("القمة")


def test_tokenize_stems_english():
    assert tokenize("governments") == tokenize("government")
    assert tokenize("running runs") == ["run", "run"]


def test_tokenize_keeps_numbers_and_normalises_digits():
    assert "2018" in tokenize("عام ٢٠١٨")
    assert tokenize("عام ٢٠١٨") == tokenize("عام 2018")


# --- what the embedder reads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("كَمْ مُتَحَدِّثاً فِي المُنْتَدَى؟", "كم متحدثا في المنتدى؟"),  # harakat, shadda, tanween
        ("القمـــة العالميـــة", "القمة العالمية"),  # tatweel
        ("هٰذا\u200f النص\u200b", "هذا النص"),  # superscript alef, direction and zero-width marks
    ],
)
def test_text_for_embedding_drops_marks(raw, expected):
    assert text_for_embedding(raw) == expected


def test_text_for_embedding_keeps_spelling_digits_and_latin():
    # unlike normalize: hamza forms, ta marbuta, alef maqsura, digits and case stay as written
    text = "أكّد إبراهيم في مدرسة مستشفى ٢٠٢٤ TMRW"
    assert text_for_embedding(text) == "أكد إبراهيم في مدرسة مستشفى ٢٠٢٤ TMRW"


# --- what the span reader reads: dialect question words in their MSA form -----------------------


@pytest.mark.parametrize(
    ("asked", "read"),
    [
        ("وين انعقد مؤتمر مصر للتميز الحكومي 2018؟", "أين انعقد مؤتمر مصر للتميز الحكومي 2018؟"),  # Levantine, Gulf
        ("فين اتعقد المؤتمر؟", "أين اتعقد المؤتمر؟"),  # Egyptian
        ("مين رئيس مجلس ادارة AuVe Tech؟", "من رئيس مجلس ادارة AuVe Tech؟"),
        ("ايمتى تنعقد القمة؟", "متى تنعقد القمة؟"),
        ("إمتى تنعقد القمة؟", "متى تنعقد القمة؟"),  # any alef spelling
        ("شو المواضيع اللي يركز عليها المنتدى؟", "ما المواضيع الذي يركز عليها المنتدى؟"),  # and the relative, anywhere
        ("ليش أطلقت الإمارات البرنامج؟", "لماذا أطلقت الإمارات البرنامج؟"),
        ("قديش عدد المتحدثين؟", "كم عدد المتحدثين؟"),
        ("بالتعاون مع مين استضافت الإمارات الورشة؟", "بالتعاون مع من استضافت الإمارات الورشة؟"),  # third word
        ("ومين أدار الجلسة؟", "ومن أدار الجلسة؟"),  # a proclitic stays on
        ("بكام التذكرة؟", "بكم التذكرة؟"),  # كام first only, with its proclitic
        ("القمة بتنعقد وين؟", "أين القمة بتنعقد؟"),  # last: to the front, as in MSA
        ("اسمه ايه؟", "ما اسمه؟"),
        ("كم عدد المتحدثين في المنتدى؟ ووين انعقد؟", "كم عدد المتحدثين في المنتدى؟ وأين انعقد؟"),  # each question alone
    ],
)
def test_msa_question_reads_dialect_question_words_in_msa(asked, read):
    assert msa_question(asked) == read


@pytest.mark.parametrize(
    "question",
    [
        "أية شركة أهدت المجموعة؟",  # MSA "which" (ta marbuta), not Egyptian ايه "what"
        "بأي سورة وآية من القرآن يستدل المسلمون؟",
        "من هو جون وين؟",  # a name, last, after a question word
        "كيف يصبح الجسر متين؟",  # متين "solid" is a question word (Iraqi "when") only first
        "ما هو دور كام في الفيلم؟",
        "متى تنعقد القمة؟",
        "When does the summit take place?",
        "",
    ],
)
def test_msa_question_leaves_msa_and_names_alone(question):
    assert msa_question(question) == question


def test_question_for_reader_is_a_well_formed_msa_question():
    assert question_for_reader("وين انعقد المؤتمــر", "ar") == "أين انعقد المؤتمر؟"
    assert question_for_reader("  مَن أدار الجلسة؟ ", "ar") == "من أدار الجلسة؟"
    assert question_for_reader("who chaired the session", "en") == "who chaired the session?"
    assert question_for_reader("Who chaired the session?", "en") == "Who chaired the session?"
    assert question_for_reader("كم عدد الزوار عام ٢٠١٤?", "ar") == "كم عدد الزوار عام 2014؟"  # digits, mark
    assert question_for_reader("How many visitors came in ۲۰۱۴?", "en") == "How many visitors came in 2014?"
    assert question_for_reader("", "en") == ""


def test_a_follow_up_reads_its_own_question_then_what_the_topic_was_about():
    # the topic's question word and stop words go: the reader answered them instead of the turn's
    assert follow_up_for_reader("وأين انعقد؟", "كم عدد المتحدثين في المنتدى؟", "ar") == "وأين انعقد عدد المتحدثين في المنتدى؟"
    assert (
        follow_up_for_reader("and when was it held", "How many speakers at the forum?", "en")
        == "and when was it held speakers at the forum?"
    )
    # both parts read as question_for_reader reads a question: dialect, marks, digits
    assert follow_up_for_reader("ووين انعقد?", "إيمتى عقدت قمة ٢٠١٨؟", "ar") == "وأين انعقد عقدت قمة 2018؟"
    assert follow_up_for_reader("وأين؟", "ما هو؟", "ar") == "وأين؟"  # a topic of stop words adds nothing


# --- a colon-introduced list is one sentence ------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_list_after_a_colon_joins_its_intro_line():
    text = "منذ إطلاق البرنامج أبرمت الحكومة اتفاقيات. تشمل الدول المشاركة:\nرومانيا\nزيمبابوي\nأذربيجان.\nاقرأ المزيد"
    assert _sentences(text) == [
        "منذ إطلاق البرنامج أبرمت الحكومة اتفاقيات.",
        "تشمل الدول المشاركة:\nرومانيا\nزيمبابوي\nأذربيجان.",  # ends at the item that ends a sentence
        "اقرأ المزيد",
    ]


def test_list_ends_at_a_blank_line_or_a_long_line():
    bullets = "Documents required:\n- a passport\n- two photos\n\nThe office opens at nine."
    assert _sentences(bullets) == ["Documents required:\n- a passport\n- two photos", "The office opens at nine."]
    prose = "وسلطت أجندتها الضوء على المحاور الستة التالية:\nجمعت القمة تحت مظلتها نخبة من قادة الحكومات والوزراء وكبار المسؤولين"
    assert len(_sentences(prose)) == 2  # a paragraph, not a list, follows the colon


def test_colon_inside_a_line_is_not_a_list():
    assert _sentences("وأضاف: إن القمة مهمة.\nسطر") == ["وأضاف: إن القمة مهمة.", "سطر"]
