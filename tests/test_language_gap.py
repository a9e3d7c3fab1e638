"""eval/language_gap.py: the answer sentences it pairs across languages, and a real
measurement of e5's same-language gap on a small parallel set."""

from __future__ import annotations

import json

import pytest

PAIRS = [
    (
        "أطلقت الإمارات مسبار الأمل عام 2020. ووصل المسبار إلى مدار المريخ في فبراير 2021.",
        "The UAE launched the Hope probe in 2020. The probe reached Mars orbit in February 2021.",
        "متى وصل المسبار إلى مدار المريخ؟",
        "When did the probe reach Mars orbit?",
        "فبراير 2021",
        "February 2021",
    ),
    (
        "تضم الإمارات أكثر من 40 مليون نخلة. ويقام مهرجان ليوا للرطب في الصيف.",
        "The Emirates have more than 40 million palm trees. The Liwa date festival is held in summer.",
        "متى يقام مهرجان ليوا للرطب؟",
        "When is the Liwa date festival held?",
        "الصيف",
        "summer",
    ),
    (
        "تقدم القهوة العربية في فناجين صغيرة. وتضاف إليها حبات الهيل.",
        "Arabic coffee is served in small cups. Cardamom is added to it.",
        "ماذا يضاف إلى القهوة العربية؟",
        "What is added to Arabic coffee?",
        "الهيل",
        "Cardamom",
    ),
]


def _squad(lang: int) -> dict:
    data = []
    for i, pair in enumerate(PAIRS):
        context, question, answer = pair[lang], pair[2 + lang], pair[4 + lang]
        qa = {"id": f"q{i}", "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}
        data.append({"title": f"article {i}", "paragraphs": [{"context": context, "qas": [qa]}]})
    return {"version": "1.0", "data": data}


@pytest.fixture()
def files(tmp_path):
    ar, en = tmp_path / "ar.json", tmp_path / "en.json"
    ar.write_text(json.dumps(_squad(0), ensure_ascii=False), encoding="utf-8")
    en.write_text(json.dumps(_squad(1)), encoding="utf-8")
    return ar, en


@pytest.fixture
def gap(load_script):
    return load_script("eval/language_gap.py")


def test_parallel_items_pair_the_answer_sentences(gap, files):
    items = gap.parallel_items(*files, split="all")
    assert [(i.sentence_ar, i.sentence_en) for i in items] == [
        ("ووصل المسبار إلى مدار المريخ في فبراير 2021.", "The probe reached Mars orbit in February 2021."),
        ("ويقام مهرجان ليوا للرطب في الصيف.", "The Liwa date festival is held in summer."),
        ("وتضاف إليها حبات الهيل.", "Cardamom is added to it."),
    ]
    assert items[0].question_en == "When did the probe reach Mars orbit?"


def test_no_parallel_questions_is_an_error(gap, e5, files):
    with pytest.raises(ValueError):
        gap.measure(e5, [])


def test_e5_prefers_the_question_language(gap, e5, files):
    result = gap.measure(e5, gap.parallel_items(*files, split="all"))
    assert result["en"]["n"] == result["ar"]["n"] == 3
    # the same sentence scores higher in the question's own language, for both languages
    assert result["en"]["gap"] > 0.02 and result["ar"]["gap"] > 0.02
