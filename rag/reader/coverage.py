"""Question coverage: the share of a question's content words that a candidate span's sentence says.

The span model reads the question against the passage and answers what looks most like an
answer; a near-miss question ("How many speakers took part in the Future of Health forum?")
then gets a number from a sentence about another forum. Whether the sentence names what the
question is about is a signal the model's margin does not carry, so the pipeline fit
(``rag.reader.ensemble``) may weigh it beside the passage rank and the sentence answering.

Words are compared as BM25 tokens (``rag.text.tokenize``: normalised and stemmed, for matching
only). An English question over Arabic text names little in Arabic script, so each of its
content words also counts as said when one of its Arabic neighbours in the index's lexicon
(``rag.lexicon``, the words BM25 searches with) is in the sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.lexicon import Lexicon
from rag.stages import Query
from rag.text import tokenize


def question_units(query: Query, lexicon: Lexicon | None) -> list[frozenset[str]]:
    """Each content word of the question once, as the tokens that count as saying it."""
    terms = list(dict.fromkeys(query.terms))
    if query.language != "en" or not query.words:
        return [frozenset({t}) for t in terms]
    if lexicon is not None and query.word_vectors is not None:
        neighbours = lexicon.neighbours(query.word_vectors)
    else:
        neighbours = [[] for _ in query.words]
    units = [frozenset({*tokenize(w), *n}) for w, n in zip(query.words, neighbours, strict=True)]
    own = {t for w in query.words for t in tokenize(w)}
    # what is not an English word of the question (a number, a name in Arabic script) counts by itself
    return units + [frozenset({t}) for t in terms if t not in own]


def coverage(units: Sequence[frozenset[str]], text: str) -> float:
    """The share of ``units`` with a token in ``text`` (1.0 for a question without content words:
    there is nothing it could miss)."""
    if not units:
        return 1.0
    tokens = set(tokenize(text))
    return sum(1 for u in units if u & tokens) / len(units)
