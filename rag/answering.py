"""Reading stage, sentence level: ``SentenceReader`` picks the sentence of the top passages
that answers the question and returns it as a verbatim, cited span, or abstains when nothing is
confident enough. The first implementation of ``rag.stages.Reader``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.config import Settings
from rag.focus import extract_focus, sentence_has_type
from rag.index import Index
from rag.retrieval import language_offsets
from rag.schema import Answer, Passage, SentenceSpan
from rag.stages import Query, Reading
from rag.text import normalize, tokenize


@dataclass(frozen=True)
class AnswerWeights:
    """Linear sentence score and the abstention model, both fitted on the dev split of
    eval/qa/corpus_qa.jsonl and XQuAD dev questions (see eval/RESULTS.md for the search).

    score = sim * cos(question, sentence) + passage * (the reranker's passage score)
            + lexical * (IDF-weighted share of question terms found in the sentence)
            + type * (sentence holds the asked-for type: a number for "how many"...)

    The cosine is language-calibrated for models with a measured gap
    (``retrieval.SAME_LANGUAGE_GAP``), so a sentence in the question's language does not win
    on language alone. Passage rank and neighbouring-sentence similarity were tried and did
    not help on dev.
    """

    sim: float = 1.0
    passage: float = 0.5
    lexical: float = 0.2
    type: float = 0.02
    context_passages: int = 5


@dataclass(frozen=True)
class AbstentionModel:
    """P(the corpus answers the question) = sigmoid(bias + sim*cos(best sentence)
    + lexical*(its IDF-weighted term overlap) + coverage*(IDF-weighted share of question
    terms found anywhere in the top 3 passages) + passage*(best passage cosine));
    abstain below ``threshold``.

    The Arabic model is a logistic regression fitted on the dev split of
    eval/qa/corpus_qa.jsonl. Cross-lingual (English) questions share no words with Arabic
    text, and sentence similarity did not separate answerable from unanswerable ones on dev
    (AUC 0.44), so their model only catches questions off the corpus' topics: best passage
    cosine below 0.755, under the 5th percentile of answerable English dev questions and
    above off-topic ones ("capital of Japan" 0.73, "chocolate cake recipe" 0.745).
    Independent of the model, a number in the question that no top passage contains
    ("... in 2040?") means the passages cannot answer it.
    """

    bias: float
    sim: float
    lexical: float
    coverage: float
    passage: float = 0.0
    threshold: float = 0.5

    def probability(self, sim: float, lexical: float, coverage: float, passage: float) -> float:
        z = self.bias + self.sim * sim + self.lexical * lexical + self.coverage * coverage + self.passage * passage
        return 1.0 / (1.0 + math.exp(-z))


ABSTENTION = {
    # threshold 0.2, not 0.5: the highest that still answers >= 95% of answerable Arabic dev
    # questions (XQuAD dev articles: 0.963 answered at 0.2, 0.945 at 0.25, 0.89 at 0.4); it
    # gives up abstentions (our dev: 17% abstained at 0.2, 67% at 0.4) for answered questions
    "ar": AbstentionModel(bias=-3.792, sim=1.383, lexical=6.39, coverage=1.695, threshold=0.2),
    "en": AbstentionModel(bias=-0.755 * 60.0, sim=0.0, lexical=0.0, coverage=0.0, passage=60.0),
}


# What a user reads when the stage abstains; the CLI and the chat endpoint both say this.
NO_ANSWER = {
    "ar": "لم أجد الإجابة في الوثائق.",
    "en": "The documents do not answer this question.",
}


@dataclass
class ScoredSentence:
    row: int
    doc_row: int
    score: float
    sim: float
    lexical: float


def idf_share(terms: set[str], found: set[str], idf: Mapping[str, float], default_idf: float) -> float:
    """IDF-weighted share of ``terms`` that are among ``found``."""
    if not terms:
        return 0.0
    total = sum(idf.get(t, default_idf) for t in terms)
    return sum(idf.get(t, default_idf) for t in terms & found) / total


def score_sentences(index: Index, query: Query, passages: Sequence[Passage], w: AnswerWeights) -> list[ScoredSentence]:
    """Every sentence of the top passages, scored, best first."""
    qvec = query.vector
    if qvec is None:
        raise ValueError("the sentence reader needs the query's embedding")
    q_terms = set(query.terms)
    idf, default_idf = index.idf()
    seen: set[int] = set()
    out: list[ScoredSentence] = []
    for p in passages[: w.context_passages]:
        info = index.chunk_info(p.row)
        rows = [r for r in range(info.first_sentence, info.last_sentence) if r not in seen]
        if not rows:
            continue
        seen.update(rows)
        sims = np.asarray(index.sentence_vectors[rows]) @ qvec
        offsets = language_offsets(index, info.first_sentence, info.last_sentence, query.language)
        for r, sim in zip(rows, sims.tolist(), strict=True):
            text = index.sentence_text(r)
            if not _WORD.search(text):
                continue  # "2015 |" table cells: short fragments embed close to any query
            lex = idf_share(q_terms, set(tokenize(text)), idf, default_idf)
            # ranked on the language-calibrated cosine; the abstention model keeps the raw one
            calibrated = sim - float(offsets[r - info.first_sentence])
            score = w.sim * calibrated + w.passage * p.score + w.lexical * lex + w.type * sentence_has_type(text, query.kind)
            out.append(ScoredSentence(r, info.doc_row, score, sim, lex))
    out.sort(key=lambda s: -s.score)
    return out


_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]{2,}")


def missing_numbers(query: Query, passages: Sequence[Passage]) -> bool:
    """True when the question names a number that none of the passages contains."""
    if not query.numbers:
        return False
    present = set(_NUMBER.findall(normalize(" ".join(p.text for p in passages))))
    return not query.numbers <= present


def coverage(index: Index, query: Query, passages: Sequence[Passage]) -> float:
    """IDF-weighted share of the question's terms found in the top 3 passages."""
    idf, default_idf = index.idf()
    found = set(tokenize(" ".join(p.text for p in passages[:3])))
    return idf_share(set(query.terms), found, idf, default_idf)


@dataclass(frozen=True)
class PassageEvidence:
    """What the abstention model reads from the passages (the same for every candidate)."""

    numbers_missing: bool  # the question names a number no top passage holds
    coverage: float
    best_passage: float  # best passage cosine


def passage_evidence(index: Index, query: Query, passages: Sequence[Passage]) -> PassageEvidence:
    qvec = query.vector
    if qvec is None:
        raise ValueError("the sentence reader needs the query's embedding")
    best = max(float(np.dot(index.chunk_vectors[p.row], qvec)) for p in passages) if passages else 0.0
    return PassageEvidence(missing_numbers(query, passages[:5]), coverage(index, query, passages), best)


def probability(model: AbstentionModel, s: ScoredSentence, e: PassageEvidence) -> float:
    """P(the corpus answers the question) if ``s`` is the answer sentence."""
    return 0.0 if e.numbers_missing else model.probability(s.sim, s.lexical, e.coverage, e.best_passage)


def confidence(
    index: Index,
    query: Query,
    best: ScoredSentence,
    passages: Sequence[Passage],
    abstention: Mapping[str, AbstentionModel] | None = None,
) -> float:
    """P(the corpus answers the question), from the evidence of the best sentence and of the
    passages the reader read."""
    models = ABSTENTION if abstention is None else abstention
    return probability(models.get(query.language, models["en"]), best, passage_evidence(index, query, passages))


class SentenceReader:
    """Answers with the best-scoring sentence of the top passages (``AnswerWeights``), with its
    factoid ``focus``; abstains when ``AbstentionModel`` puts P(answerable) below its threshold.

    Its sentence score weighs the linear max-sim reranker's passage score, and its weights and
    abstention models were fitted with that reranker: it declares the feature.
    """

    name = "sentence"
    features = frozenset({"rerank:linear-maxsim"})

    def __init__(
        self,
        weights: AnswerWeights | None = None,
        abstention: Mapping[str, AbstentionModel] | None = None,
        candidates: int = 3,
    ):
        self.weights = weights or AnswerWeights()
        self.abstention = abstention  # None: the module's ABSTENTION, read at call time
        self.candidates = candidates  # candidate answers reported (the best included)

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceReader:
        return cls()

    @property
    def context_passages(self) -> int:
        return self.weights.context_passages

    def read(self, query: Query, passages: Sequence[Passage], index: Index) -> Reading:
        passages = passages[: self.context_passages]  # never more, whatever the caller's top_k
        scored = score_sentences(index, query, passages, self.weights)
        if not scored:
            return Reading(None, 0.0, [])
        models = ABSTENTION if self.abstention is None else self.abstention
        model = models.get(query.language, models["en"])
        evidence = passage_evidence(index, query, passages)
        candidates = [self._answer(index, query, s, probability(model, s, evidence)) for s in scored[: max(self.candidates, 1)]]
        conf = candidates[0].score
        return Reading(candidates[0] if conf >= model.threshold else None, conf, candidates)

    @staticmethod
    def _answer(index: Index, query: Query, s: ScoredSentence, conf: float) -> Answer:
        start, end = int(index.sentence_start[s.row]), int(index.sentence_end[s.row])
        text = index.texts[s.doc_row][start:end]
        return Answer(
            text=text,
            doc_id=index.doc_ids[s.doc_row],
            title=index.titles[s.doc_row],
            start=start,
            end=end,
            score=conf,
            focus=extract_focus(query, text, start),
            sentence=SentenceSpan(text, start, end),
        )


class NoReader:
    """Never answers: retrieval only (``RAG_READER=retrieval``); the passages are still cited."""

    name = "retrieval"
    features: frozenset[str] = frozenset()
    context_passages = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> NoReader:
        return cls()

    def read(self, query: Query, passages: Sequence[Passage], index: Index) -> Reading:
        return Reading(None, 0.0, [])
