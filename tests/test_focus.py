"""Question types and focus spans: the short factoid inside an answer sentence, with offsets
into the document."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.focus import extract_focus as _extract_focus
from rag.focus import question_type, sentence_has_type
from rag.stages import analyse


def extract_focus(question: str, sentence: str, start: int):
    """The focus for a question as text (analysed here, as the pipeline does once per question)."""
    return _extract_focus(analyse(question), sentence, start)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("متى تُعقد القمة العالمية للحكومات؟", "date"),
        ("في أي عام بدأت القمة؟", "date"),
        ("ما تاريخ توقيع الاتفاقية؟", "date"),
        ("When was the agreement signed?", "date"),
        ("What year did the summit start?", "date"),
        ("كم عدد المتحدثين في المنتدى؟", "number"),
        ("ما عدد الدول المشاركة؟", "number"),
        ("How many speakers took part?", "number"),
        ("How much did it cost?", "number"),
        ("من هو الرئيس التنفيذي لشركة TMRW؟", "person"),
        ("Who chaired the session?", "person"),
        ("أين تقام القمة؟", "place"),
        ("Where is the summit held?", "place"),
        ("ما هي أهداف القمة؟", None),
        ("What is the motto of Expo 2020?", None),
        # a follow-up's و/ف glued to the question word: "and when", "and who", "so where"
        ("ومتى عقدت؟", "date"),
        ("وفي أي عام تأسست؟", "date"),
        ("ومن أدار الجلسة؟", "person"),
        ("فأين تقام؟", "place"),
        ("وزير الخارجية؟", None),  # a word that merely starts with و
    ],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


def _focus_in_document(question: str, sentence: str, prefix: str = "نص سابق في الوثيقة. "):
    """Place ``sentence`` after ``prefix`` in a document and check the offsets slice it."""
    document = prefix + sentence + " نص لاحق."
    start = len(prefix)
    f = extract_focus(question, sentence, start)
    if f is not None:
        assert document[f.start : f.end] == f.text
        assert sentence[f.start - start : f.end - start] == f.text
        assert start <= f.start < f.end <= start + len(sentence)
    return f


@pytest.mark.parametrize(
    ("question", "sentence", "text", "kind"),
    [
        ("متى تعقد القمة؟", "تُعقد القمة في دبي من 12 إلى 14 فبراير من كل عام.", "12 إلى 14 فبراير", "date"),
        ("متى وقعت الاتفاقية؟", "وفي يونيو من عام 2018 وقّعت الدولتان الاتفاقية.", "يونيو من عام 2018", "date"),
        ("When was it founded?", "It was founded on 12 March 2013 in Dubai.", "12 March 2013", "date"),
        ("كم عدد المتحدثين؟", "شارك في المنتدى 28 متحدثاً من 10 دول.", "28 متحدثاً", "number"),
        ("كم عدد المسؤولين المشاركين؟", "يشارك أكثر من 4000 مسؤول في القمة.", "4000 مسؤول", "number"),
        ("كم بلغ حجم الملف؟", "بلغ حجم الملف ٧٫٩٨ ميغابايت فقط.", "٧٫٩٨ ميغابايت", "number"),
        ("How many participants attended?", "The forum had 4,000 participants from 140 countries.", "4,000 participants", "number"),
    ],
)
def test_extract_focus_finds_the_factoid_with_exact_offsets(question, sentence, text, kind):
    f = _focus_in_document(question, sentence)
    assert f is not None and f.text == text and f.kind == kind


def test_focus_keeps_trailing_tanween():
    f = _focus_in_document("كم عدد المتحدثين؟", "استضاف المنتدى 28 متحدثاً.")
    assert f is not None and f.text.endswith("ً")


def test_focus_prefers_the_number_next_to_the_asked_word():
    f = _focus_in_document("كم عدد الدول المشاركة؟", "شارك 300 متحدث من 140 دولة في القمة.")
    assert f is not None and f.text.startswith("140")


SESSIONS = (
    "يبحث منتدى تبادل الخبرات الحكومية توسيع الشراكات عبر 10 جلسات يستضيف خلالها 28 متحدثاً "
    "ضمن أعمال القمة العالمية للحكومات 2024 التي تعقد في دبي."
)


def test_focus_matches_question_words_across_stemmer_forms():
    # "الجلسات" in the question and "جلسات" in the text stem differently ("جلس" / "جلسا"),
    # and "منتدى" must be stemmed as written, not in its normalised spelling
    focus = extract_focus("كم عدد الجلسات في منتدى تبادل الخبرات الحكومية؟", SESSIONS, 0)
    assert focus is not None and focus.text == "10 جلسات"


def test_a_count_beats_a_bare_year_and_function_words_are_not_units():
    focus = extract_focus("كم عدد الدورات؟", SESSIONS, 0)  # no anchor: a count, not "2024 التي"
    assert focus is not None and focus.text in ("10 جلسات", "28 متحدثاً")
    year_only = "Government Services Forum explores citizen-centric Government Services of 2030 and beyond"
    focus = extract_focus("How many services?", year_only, 100)
    assert focus is not None and (focus.text, focus.start) == ("2030", 100 + year_only.index("2030"))


def test_no_focus_without_a_matching_factoid_or_for_other_questions():
    assert _focus_in_document("كم عدد المتحدثين؟", "شارك عدد كبير من المتحدثين.") is None
    assert _focus_in_document("من هو رئيس الجلسة؟", "أدار الجلسة 3 خبراء.") is None
    assert _focus_in_document("What is the motto?", "The motto was chosen in 2013.") is None


def test_sentence_has_type():
    assert sentence_has_type("بلغ العدد ٢٨ متحدثاً", "number")
    assert not sentence_has_type("لا أرقام هنا", "number")
    assert sentence_has_type("عُقدت في 12 فبراير", "date")
    assert not sentence_has_type("عُقدت في دبي", "date")
    assert not sentence_has_type("عُقدت في 2018", None)


_sentence = st.lists(
    st.one_of(
        st.sampled_from(["12", "٢٠١٨", "فبراير", "يونيو", "من", "عام", "إلى", "متحدثاً", "7.98", "ألف", "دولة", "March"]),
        st.sampled_from([" ", " ", "، ", ". ", "-", "\u064b", "\u0651", "\u00a0"]),
        st.text(max_size=4),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["متى عقدت؟", "كم عدد المتحدثين؟", "How many?", "When?"]), _sentence)
def test_property_focus_offsets_slice_back(question, sentence):
    _focus_in_document(question, sentence)
