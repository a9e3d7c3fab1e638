"""Training examples: the unanswerable twins of questions (``QuestionSwapper``), retrieval-hard
paragraphs (``hard_paragraphs``), and the no-answer windows ``build_windows`` makes of them."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from rag.reader.data import QAExample, QuestionSwapper, build_windows, hard_paragraphs
from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File

CAIRO = "تأسست جامعة القاهرة عام 1908 في الجيزة، وهي من أقدم الجامعات في مصر والعالم العربي."
AMAZON = "تغطي غابة الأمازون معظم حوض الأمازون في أمريكا الجنوبية، ويقع أكثرها في البرازيل."
NILE = "يجري نهر النيل من بحيرة فيكتوريا شمالا حتى البحر المتوسط مارا بالسودان ومصر."
FILLER = [f"فقرة عامة رقم {i} عن التاريخ والجغرافيا والناس في كل مكان من العالم." for i in range(60)]


def _example(qid: str, article: str, question: str, context: str, answer: str) -> QAExample:
    start = context.index(answer)
    return QAExample(qid, "arcd", article, 0, question, context, ((start, start + len(answer)),))


@pytest.fixture()
def examples() -> list[QAExample]:
    rows = [
        _example("c", "Cairo University", "متى تأسست جامعة القاهرة؟", CAIRO, "1908"),
        _example("a", "Amazon", "أين يقع أكثر غابة الأمازون؟", AMAZON, "البرازيل"),
        _example("n", "Nile", "من أين يجري نهر النيل؟", NILE, "بحيرة فيكتوريا"),
        _example("e", "Nile", "Which lake does the Nile flow from?", NILE, "بحيرة فيكتوريا"),
        _example("f", "Amazon", "Which country holds most of the Amazon forest?", AMAZON, "البرازيل"),
    ]
    # common paragraphs, so that only names and terms count as rare
    return rows + [_example(f"x{i}", f"Filler {i}", "ما هذا؟", text, "التاريخ") for i, text in enumerate(FILLER)]


def test_a_twin_swaps_a_name_its_paragraph_holds_for_one_it_does_not(examples: list[QAExample]):
    swapper = QuestionSwapper(examples)
    rng = random.Random(0)
    for ex in examples[:3]:
        twins = {swapper.swap(ex, rng) for _ in range(20)} - {None}
        assert twins, ex.question
        for twin in twins:
            assert twin is not None
            gone = set(re.findall(r"\w+", ex.question)) - set(re.findall(r"\w+", twin))
            new = set(re.findall(r"\w+", twin)) - set(re.findall(r"\w+", ex.question))
            assert len(gone) == 1 and len(new) == 1, (ex.question, twin)
            assert gone.pop() in ex.context  # it named something the paragraph holds
            assert new.pop() not in ex.context  # and now names something it does not
            # question words and common words stay, so the twin still asks the same kind of thing
            assert twin.split()[0] == ex.question.split()[0]


def test_english_questions_over_arabic_swap_their_names(examples: list[QAExample]):
    swapper = QuestionSwapper(examples)
    rng = random.Random(0)
    twins = {swapper.swap(examples[3], rng) for _ in range(20)} - {None}
    assert twins
    for twin in twins:
        assert twin is not None and "Nile" not in twin and twin.startswith("Which lake does the ")
        assert twin.split()[4][0].isupper()  # another article's name ("Amazon"), not a common word


def test_common_words_are_never_swapped():
    # every word of the question is in every paragraph: nothing names one paragraph
    rows = [_example(f"q{i}", f"A{i}", "ما هذا؟", text, "التاريخ") for i, text in enumerate(FILLER)]
    swapper = QuestionSwapper(rows)
    assert all(swapper.swap(ex, random.Random(1)) is None for ex in rows)


@pytest.fixture(scope="module")
def tok() -> ReaderTokenizer:
    return ReaderTokenizer(E5File().vocab)


def test_twins_add_no_answer_windows_over_the_answer(examples: list[QAExample], tok: ReaderTokenizer):
    plain = build_windows(tok, examples, negatives=0.5, seed=3)
    swapped = build_windows(tok, examples, negatives=0.5, swaps=1.0, seed=3)

    def key(w):
        return (tuple(w.ids.tolist()), w.start, w.end, w.example)

    # the other windows are the same: swaps draw from a random stream of their own
    assert not Counter(map(key, plain)) - Counter(map(key, swapped))
    left = Counter(map(key, plain))
    extra = []
    for w in swapped:
        if left[key(w)]:
            left[key(w)] -= 1
        else:
            extra.append(w)
    assert len(extra) >= 4  # the three Arabic questions and at least one English one
    for w in extra:
        ex = examples[w.example]
        assert w.start == w.end == 0  # labelled "no answer"
        a, b = ex.answers[0]
        assert w.offsets[0, 0] <= a and b <= w.offsets[-1, 1]  # although the original answer is in sight
        question = tok.encode(ex.question).ids.tolist()
        assert w.ids[1 : 1 + len(question)].tolist() != question  # read with the twin, not the question


CAIRO_MORE = "جامعة القاهرة من أكبر الجامعات العربية، ويدرس فيها آلاف الطلاب من مصر ومن خارجها."


class _TableEmbedder:
    """Fixed vectors by text: which paragraph is "nearest" is set by the test."""

    model_id, dim = "table", 2

    def __init__(self, vectors: dict[str, tuple[float, float]]):
        self.vectors = vectors

    def _embed(self, texts):
        return np.asarray([self.vectors.get(t, (0.0, 1.0)) for t in texts], dtype=np.float32)

    embed_queries = embed_passages = _embed

    def token_count(self, text: str) -> int:
        return len(text.split())


def test_a_hard_paragraph_is_the_nearest_that_holds_no_answer_text(examples: list[QAExample]):
    holds_answer = "افتتحت جامعة القاهرة أبوابها للطلاب عام 1908."
    cairo = examples[0]
    pool = [*examples, _example("c2", "Cairo University", "ما جامعة القاهرة؟", holds_answer, "جامعة القاهرة")]
    pool.append(_example("c3", "Cairo University", "ما جامعة القاهرة؟", CAIRO_MORE, "جامعة القاهرة"))
    # nearest to the question: its own paragraph, then one holding its answer "1908", then CAIRO_MORE
    table = {cairo.question: (1.0, 0.0), CAIRO: (1.0, 0.0), holds_answer: (0.99, 0.1), CAIRO_MORE: (0.9, 0.4)}
    hard = hard_paragraphs(pool, _TableEmbedder(table))
    assert len(hard) == len(pool) and hard[0] == CAIRO_MORE
    assert all(h != ex.context for h, ex in zip(hard, pool, strict=True))
    assert hard_paragraphs(pool, _TableEmbedder(table), top=2)[0] is None  # none of the 2 nearest qualifies
    assert hard_paragraphs(pool[:1], _TableEmbedder(table)) == [None]  # nothing else to read


def test_hard_paragraphs_with_the_e5_embedder_stay_on_topic(examples: list[QAExample]):
    from rag.embedding import E5Embedder

    pool = [*examples[:5], _example("c3", "Cairo University", "ما جامعة القاهرة؟", CAIRO_MORE, "جامعة القاهرة"), *examples[5:12]]
    hard = hard_paragraphs(pool, E5Embedder())
    assert hard[0] == CAIRO_MORE  # "when was Cairo University founded?": the other Cairo University paragraph
    assert hard[2] != NILE and hard[3] != NILE  # never the question's own paragraph


def test_hard_negatives_add_no_answer_windows_of_the_hard_paragraph(examples: list[QAExample], tok: ReaderTokenizer):
    hard: list[str | None] = [None] * len(examples)
    hard[0], hard[1], hard[3] = CAIRO_MORE, NILE, AMAZON
    plain = build_windows(tok, examples, negatives=0.5, seed=3)
    with_hard = build_windows(tok, examples, negatives=0.5, hard=hard, hard_negatives=1.0, seed=3)

    def key(w):
        return (tuple(w.ids.tolist()), w.start, w.end, w.example)

    assert not Counter(map(key, plain)) - Counter(map(key, with_hard))  # the other windows are unchanged
    extra = Counter(map(key, with_hard)) - Counter(map(key, plain))
    assert sorted(k[3] for k in extra.elements()) == [0, 1, 3]  # one per example with a hard paragraph
    for ids, start, end, i in extra:
        assert start == end == 0
        context = tok.encode(hard[i] or "").ids.tolist()
        assert list(ids[-1 - len(context) : -1]) == context  # the hard paragraph, read with the example's question
    off = build_windows(tok, examples, negatives=0.5, hard=hard, hard_negatives=0.0, seed=3)
    assert list(map(key, off)) == list(map(key, plain))
    with pytest.raises(ValueError, match="hard paragraphs for 2 examples"):
        build_windows(tok, examples, hard=hard[:2], hard_negatives=1.0)


def test_e5_prefixes_come_before_the_question_and_the_passage_and_the_labels_follow_the_answer(examples: list[QAExample]):
    tok = ReaderTokenizer(E5File().vocab)
    plain = build_windows(tok, examples, negatives=0.5, seed=3)
    prefixed = build_windows(tok, examples, negatives=0.5, e5_prefixes=True, seed=3)
    query, passage = tok.encode("query:").ids.tolist(), tok.encode("passage:").ids.tolist()
    assert len(plain) == len(prefixed) and any(w.start > 0 for w in plain) and any(w.start == 0 for w in plain)
    for a, b in zip(plain, prefixed, strict=True):
        assert b.ids[1 : 1 + len(query)].tolist() == query  # "<s> query: question"
        assert b.ids[b.context_start - len(passage) : b.context_start].tolist() == passage  # "</s></s> passage:"
        assert b.context_start == a.context_start + len(query) + len(passage)
        # the question's and the passage's own tokens and their offsets are untouched
        assert b.ids[1 + len(query) : b.context_start - len(passage)].tolist() == a.ids[1 : a.context_start].tolist()
        assert b.ids[b.context_start :].tolist() == a.ids[a.context_start :].tolist()
        assert (b.offsets == a.offsets).all()
        # and the labels point at the same answer tokens (0 stays "no answer")
        assert (b.start == 0) == (a.start == 0)
        if a.start:
            assert (b.start - b.context_start, b.end - b.context_start) == (a.start - a.context_start, a.end - a.context_start)
