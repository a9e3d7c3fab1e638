"""Answering stage: pick the sentence of the retrieved passages that answers the question,
return it as a verbatim, cited span, or abstain when nothing is confident enough."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rag.focus import extract_focus, question_type, sentence_has_type
from rag.index import Index
from rag.schema import Answer, Passage
from rag.text import tokenize


@dataclass(frozen=True)
class AnswerWeights:
    """Linear sentence score and the abstention model, both fitted on the dev split of
    eval/qa/corpus_qa.jsonl and XQuAD dev questions (see eval/RESULTS.md for the search).

    score = sim * cos(question, sentence) + passage * cos(question, passage)
            + lexical * share of question terms in the sentence
            + rank * 1/(1 + passage rank) + type * (sentence holds the asked-for type)
    """

    sim: float = 1.0
    passage: float = 0.3
    lexical: float = 0.3
    rank: float = 0.05
    type: float = 0.05
    context_passages: int = 5
    # Abstain when P(answerable) = sigmoid(bias + a*best cos + b*lexical) is below ``threshold``.
    abstain_bias: float = -20.0
    abstain_sim: float = 24.0
    abstain_lexical: float = 4.0
    threshold: float = 0.5


@dataclass
class ScoredSentence:
    row: int
    doc_row: int
    passage_rank: int
    score: float
    sim: float
    lexical: float


def _lexical(q_terms: set[str], sentence: str) -> float:
    if not q_terms:
        return 0.0
    return len(q_terms & set(tokenize(sentence))) / len(q_terms)


def score_sentences(index: Index, question: str, qvec: np.ndarray, passages: list[Passage], w: AnswerWeights) -> list[ScoredSentence]:
    """Every sentence of the top passages, scored, best first."""
    q_terms = set(tokenize(question))
    kind = question_type(question)
    seen: set[int] = set()
    out: list[ScoredSentence] = []
    for rank, p in enumerate(passages[: w.context_passages]):
        info = index.chunk_info(p.row)
        p_sim = float(np.dot(index.chunk_vectors[p.row], qvec))
        rows = [r for r in range(info.first_sentence, info.last_sentence) if r not in seen]
        if not rows:
            continue
        seen.update(rows)
        sims = np.asarray(index.sentence_vectors[rows]) @ qvec
        for r, sim in zip(rows, sims.tolist()):
            text = index.sentence_text(r)
            lex = _lexical(q_terms, text)
            score = (
                w.sim * sim + w.passage * p_sim + w.lexical * lex + w.rank / (1 + rank)
                + w.type * sentence_has_type(text, kind)
            )
            out.append(ScoredSentence(r, info.doc_row, rank, score, sim, lex))
    out.sort(key=lambda s: -s.score)
    return out


def confidence(best: ScoredSentence, w: AnswerWeights) -> float:
    """P(the corpus answers the question), from the best sentence's evidence."""
    z = w.abstain_bias + w.abstain_sim * best.sim + w.abstain_lexical * best.lexical
    return 1.0 / (1.0 + math.exp(-z))


def answer(index: Index, question: str, qvec: np.ndarray, passages: list[Passage], w: AnswerWeights) -> tuple[Answer | None, float, ScoredSentence | None]:
    """(answer or None when abstaining, confidence, best sentence)."""
    scored = score_sentences(index, question, qvec, passages, w)
    if not scored:
        return None, 0.0, None
    best = scored[0]
    conf = confidence(best, w)
    if conf < w.threshold:
        return None, conf, best
    start, end = int(index.sentence_start[best.row]), int(index.sentence_end[best.row])
    text = index.texts[best.doc_row][start:end]
    return (
        Answer(
            text=text, doc_id=index.doc_ids[best.doc_row], title=index.titles[best.doc_row],
            start=start, end=end, score=conf, focus=extract_focus(question, text, start),
        ),
        conf,
        best,
    )
