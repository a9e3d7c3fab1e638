"""How the span reader reads questions typed the way people type them, as typed and as the
service hands them to it (``rag.text.question_for_reader``): the measurement behind Update 9 in
eval/RESULTS.md.

Dev questions only, each read with its gold paragraph: ARCD's dev articles and the tenth of
XQuAD's training articles that ``rag train-reader --xquad-dev`` holds out (Arabic questions, and
XQuAD's English questions over the same Arabic paragraphs). Each way of typing rewrites every
question it applies to (a dialect question word for the MSA one, diacritics, tatweel, no question
mark, ...); the table gives F1 over those questions as written in the data and as typed, each
read as is and read through ``question_for_reader`` (what the service does). Where the last two
columns agree, the service reads the typed question as well as the written one:

    python eval/reader_robustness.py --model build/xdev/soup13    # a model trained without these questions
    python eval/reader_robustness.py --limit 40                    # the shipped model (it trained on them), a quick look

The shipped model trained on these questions (``--all-data``), so its own rows read higher than
held-out questions would; a model trained with ``--xquad-dev`` (the first command of the
README's "Training it again") has never seen them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.evaluation.metrics import f1_score  # noqa: E402
from rag.reader.data import QAExample, reader_corpus, xquad_dev_article  # noqa: E402
from rag.text import question_for_reader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# MSA question words as a Levantine or Gulf speaker types them (the inverse of what
# rag.text.msa_question maps, but not exactly: شو becomes ما where the question had ماذا)
_DIALECT = [
    (r"^(\W*)لماذا\b", r"\1ليش"),
    (r"^(\W*)ماذا\b", r"\1شو"),
    (r"^(\W*)ما\b", r"\1شو"),
    (r"^(\W*)من\b", r"\1مين"),
    (r"\bأين\b", "وين"),
    (r"\bاين\b", "وين"),
    (r"\bمتى\b", "ايمتى"),
    (r"\bكم\b", "قديش"),
    (r"\b(الذي|التي)\b", "اللي"),
]
_AR_LETTER = re.compile("[\u0621-\u064a]")
_VOWELS = "\u064e\u0650\u064f"  # fatha, kasra, damma


def dialect(question: str) -> str:
    for pattern, repl in _DIALECT:
        question = re.sub(pattern, repl, question)
    return question


def diacritics(question: str) -> str:
    """A vowel after every second Arabic letter, a shadda on the first letter of every third word,
    tanween after a final alef: far more than people type, the worst case."""
    words, n = [], 0
    for wi, word in enumerate(question.split(" ")):
        chars = []
        for ci, c in enumerate(word):
            chars.append(c)
            if _AR_LETTER.match(c):
                if ci == 0 and wi % 3 == 0:
                    chars.append("\u0651")
                n += 1
                if n % 2 == 0:
                    chars.append(_VOWELS[n % 3])
        words.append("".join(chars) + ("\u064b" if word.endswith("ا") else ""))
    return " ".join(words)


def tatweel(question: str) -> str:
    """Three kashidas inside every word of five Arabic letters or more ("الـــمذهب")."""
    return " ".join(w[:2] + "ـــ" + w[2:] if len(_AR_LETTER.findall(w)) >= 5 else w for w in question.split(" "))


def no_question_mark(question: str) -> str:
    return question.rstrip().rstrip("?؟").rstrip()


def latin_question_mark(question: str) -> str:
    return question.replace("؟", "?")


def indic_digits(question: str) -> str:
    return question.translate({ord(str(i)): chr(0x0660 + i) for i in range(10)})


def sloppy_spelling(question: str) -> str:
    """Hamza-less alef, ه for ة, ي for ى, as on many keyboards (not undone by ``question_for_reader``)."""
    return question.translate(str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ة": "ه", "ى": "ي"}))


def lower_case(question: str) -> str:
    return question.lower()


# (name, language of the questions it rewrites, rewrite)
TYPINGS: list[tuple[str, str, Callable[[str], str]]] = [
    ("dialect question words", "ar", dialect),
    ("diacritics", "ar", diacritics),
    ("tatweel", "ar", tatweel),
    ("no question mark", "ar", no_question_mark),
    ("no question mark", "en", no_question_mark),
    ('"?" for "؟"', "ar", latin_question_mark),
    ("Arabic-Indic digits", "ar", indic_digits),
    ("hamza-less alef, ه for ة, ي for ى", "ar", sloppy_spelling),
    ("lower case", "en", lower_case),
]


def dev_questions(data: Path) -> dict[str, list[QAExample]]:
    """The dev questions by language: ARCD dev and XQuAD's dev tenth (Arabic), XQuAD's dev tenth in English over Arabic."""
    corpus = reader_corpus(data)
    xquad_dev = [e for e in corpus["train"] if xquad_dev_article(e.article)]
    return {
        "ar": [e for e in corpus["dev"] if e.source == "arcd"] + [e for e in xquad_dev if e.source == "xquad-ar"],
        "en": [e for e in xquad_dev if e.source == "xquad-en-ar"],
    }


COLUMNS = ("as written", "as typed", "as written, read for the reader", "as typed, read for the reader")


def measure(read: Callable[[str, str], str], questions: dict[str, list[QAExample]], limit: int | None = None) -> list[dict]:
    """One row per way of typing: F1 over the questions it rewrites, as in the data and as typed,
    each as is and read through ``question_for_reader`` (``COLUMNS``). ``read(question, context)``
    is the span the reader gives."""
    rows = []
    for name, language, rewrite in TYPINGS:
        touched = [e for e in questions[language] if rewrite(e.question) != e.question][:limit]
        if not touched:
            continue
        scores = dict.fromkeys(COLUMNS, 0.0)
        for e in touched:
            typed = rewrite(e.question)
            asked = (e.question, typed, question_for_reader(e.question, language), question_for_reader(typed, language))
            for column, question in zip(COLUMNS, asked, strict=True):
                scores[column] += f1_score(read(question, e.context), e.answer_texts())
        rows.append({"typing": name, "language": language, "questions": len(touched), **{k: v / len(touched) for k, v in scores.items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a reader folder (default: the shipped models/reader)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="at most this many questions per way of typing")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from rag.reader.runtime import SpanScorer, default_model_dir

    scorer = SpanScorer(args.model or default_model_dir(), threads=args.threads)

    def read(question: str, context: str) -> str:
        found = scorer.score(question, [context])
        return context[found[0].start : found[0].end] if found else ""

    print("| typed | language | questions | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---:|" + "---:|" * len(COLUMNS))
    for r in measure(read, dev_questions(args.data), args.limit):
        cells = " | ".join(f"{r[c]:.3f}" for c in COLUMNS)
        print(f"| {r['typing']} | {r['language']} | {r['questions']} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
