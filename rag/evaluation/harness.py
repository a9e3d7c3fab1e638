"""Offline evaluation: QA datasets in, per-question outcomes and the ``rag eval`` summary out.

Every question goes through the same ``RAG.ask`` the API serves (answer cache off), once for
each system: the full system and the baselines, each a ``RAG`` built from stage objects
(``build_systems``: BM25 only and dense only, the same chunks and the same reader, no
reranker). The question is analysed and embedded once and the ``Query`` handed to every
system. Retrieval is scored on the ranked *documents* of ``RAG.search`` (passages deduplicated
to doc ids, rank order kept). Scoring uses the pure functions of ``rag.evaluation.metrics``;
this module only runs the pipeline and aggregates.

Datasets: our JSONL format (``eval/qa/corpus_qa.jsonl``, evaluated against an existing index)
and SQuAD-format JSON, whose contexts become documents of a temporary (or cached) index so
every question is asked open-corpus against all paragraphs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.config import Settings
from rag.embedding import Embedder, make_embedder
from rag.evaluation.metrics import (
    abstained_rate,
    answer_in_passages,
    answered_rate,
    contains_answer,
    exact_match,
    f1_score,
    hit_at_k,
    mean,
    percentile,
    reciprocal_rank,
    span_tokens,
)
from rag.index import FORMAT_VERSION
from rag.pipeline import RAG
from rag.reranking import NoReranker
from rag.retrieval import BM25Retriever, DenseRetriever
from rag.schema import AskResult, Document
from rag.stages import Query, Reader, TrainedReader, make_reader
from rag.text import detect_language

Split = Literal["dev", "test", "all"]
Progress = Callable[[str, int, int], None]  # (stage, done, total), as in rag.ingest

# "system" is the full pipeline, the others are the baselines (see ``build_systems``).
SYSTEMS = ("system", "bm25", "dense")
LANGUAGES = ("ar", "en")
RANKED_DOCS = 10  # ranked doc ids kept per question: enough for mrr@10 and the hit@k curve
# Passages fetched to build that doc ranking; several chunks of one document collapse into
# one doc id, so 10 passages could yield fewer than 10 distinct documents.
SEARCH_DEPTH = 30
SQUAD_DEV_TENTHS = 4  # 4 in 10 SQuAD articles are "dev" (by hash of the article title)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QAItem:
    """One evaluation question. No answers and no doc_id = the corpus cannot answer it."""

    id: str
    lang: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None
    split: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True, slots=True)
class GoldMismatch:
    """A SQuAD gold answer whose text is not found at its ``answer_start`` in the context."""

    question_id: str
    answer: str
    answer_start: int
    found: str  # what the context holds at that offset


@dataclass
class SquadSet:
    """A SQuAD-format file read as documents (one per context) and questions."""

    documents: list[Document]
    items: list[QAItem]
    gold_answers: int = 0
    mismatches: list[GoldMismatch] = field(default_factory=list)
    questions_unmatched: int = 0  # questions with no counterpart in the --questions file


@dataclass
class JsonlSet:
    """A JSONL QA file: the items to run, and the ids of those skipped because they wait for review."""

    items: list[QAItem]
    needs_review: list[str] = field(default_factory=list)


def read_jsonl(path: Path | str) -> JsonlSet:
    """Our QA format: one ``{id, lang, question, answers, doc_id, split?}`` object per line.

    An item with ``"needs_review": true`` (``rag feedback export`` writes them: a question users
    found an answer unhelpful for, whose right answer nobody has written yet) has no gold to
    score against: it is skipped and its id listed, never read as unanswerable."""
    out = JsonlSet([])
    seen: dict[str, int] = {}
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not isinstance(r, dict):
                raise ValueError(f"a line must be a JSON object, not {type(r).__name__}")
            if r.get("needs_review") is True:
                out.needs_review.append(str(r["id"]))
                continue
            item = _qa_item(r)
            if item.id in seen:
                raise ValueError(f"duplicate id {item.id!r} (line {seen[item.id]})")
            seen[item.id] = lineno
            out.items.append(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a QA record ({exc})") from exc
    return out


def _read_text(path: Path | str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from exc


def _text(value: Any, what: str) -> str:
    """``value`` as a string that UTF-8 can hold, or ValueError naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds a lone surrogate (not valid Unicode)") from None
    return value


def _qa_item(r: dict[str, Any]) -> QAItem:
    """One record of our format, every field checked: a wrong type fails here, with its name,
    not after the questions have run (``"answers": "قمة"`` became three one-letter golds)."""
    if isinstance(r.get("id"), bool) or not isinstance(r.get("id"), str | int):
        raise ValueError("'id' must be a string or an integer")
    question = _text(r["question"], "'question'")
    if not question.strip():
        raise ValueError("'question' is empty")
    answers = r["answers"]
    if not isinstance(answers, list):
        raise ValueError(f"'answers' must be a list of strings, not {type(answers).__name__}")
    lang, doc_id, split = r.get("lang"), r.get("doc_id"), r.get("split")
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"'lang' must be one of {', '.join(LANGUAGES)} (or left out), not {lang!r}")
    if split is not None and split not in ("dev", "test"):
        raise ValueError(f"'split' must be dev or test (or left out), not {split!r}")
    return QAItem(
        _text(str(r["id"]), "'id'"),
        lang or detect_language(question),
        question,
        tuple(_text(a, "each answer") for a in answers),
        None if doc_id is None else _text(doc_id, "'doc_id'"),
        split,
    )


def load_jsonl(path: Path | str) -> list[QAItem]:
    """The items of ``read_jsonl`` (those waiting for review left out)."""
    return read_jsonl(path).items


def squad_split(article_title: str) -> str:
    """A fixed dev/test split for SQuAD sets, which ship none: by a hash of the *article*
    title (md5 mod 10 < 4 -> dev, the split the tuning in eval/RESULTS.md used), so no
    article has questions on both sides and XQuAD's parallel languages fall on the same side."""
    h = int(hashlib.md5(article_title.encode("utf-8")).hexdigest(), 16)
    return "dev" if h % 10 < SQUAD_DEV_TENTHS else "test"


def _squad_json(path: Path | str) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f'{path}: not a SQuAD-format file (no "data" list at the top)')
    return data


def _squad_questions(path: Path | str) -> dict[str, str]:
    data = _squad_json(path)
    try:
        return {
            str(qa["id"]): _text(qa["question"], "a question") for art in data["data"] for par in art["paragraphs"] for qa in par["qas"]
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: not a SQuAD-format file ({type(exc).__name__}: {exc})") from exc


def load_squad(path: Path | str, questions_from: Path | str | None = None) -> SquadSet:
    """Contexts -> documents ``<title>-<paragraph index>``; questions with their gold paragraph.

    Gold answers are checked against ``answer_start`` and mismatches counted (the texts are kept:
    scoring matches the text anywhere in the returned span). With ``questions_from``, question
    texts come from that parallel file by question id (XQuAD languages share ids) and their
    language is detected from the new text; answers stay those of ``path``'s contexts.
    SQuAD 2.0 ``is_impossible`` questions become unanswerable items.
    """
    data = _squad_json(path)
    other = _squad_questions(questions_from) if questions_from is not None else None
    try:
        return _squad_set(path, data, other)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: not a SQuAD-format file ({type(exc).__name__}: {exc})") from exc


def _squad_set(path: Path | str, data: dict[str, Any], other: dict[str, str] | None) -> SquadSet:
    out = SquadSet([], [])
    seen_titles: dict[str, int] = {}
    for article in data["data"]:
        title = str(article.get("title") or "untitled")
        for paragraph in article["paragraphs"]:
            i = seen_titles.get(title, 0)  # continue numbering if a title repeats
            seen_titles[title] = i + 1
            doc_id = f"{title}-{i}"
            context = _text(paragraph["context"], f"the context of {doc_id!r}")
            out.documents.append(Document(doc_id, title, context, source=str(path)))
            for qa in paragraph["qas"]:
                qid = str(qa["id"])
                answers: list[str] = []
                for a in [] if qa.get("is_impossible") else qa["answers"]:
                    out.gold_answers += 1
                    start, text = int(a["answer_start"]), _text(a["text"], f"an answer of question {qid!r}")
                    found = context[start : start + len(text)] if start >= 0 else ""
                    if found != text:
                        out.mismatches.append(GoldMismatch(qid, text, start, found))
                    if text not in answers:
                        answers.append(text)
                question = _text(qa["question"], f"question {qid!r}")
                if other is not None:
                    if qid not in other:
                        out.questions_unmatched += 1
                        continue
                    question = other[qid]
                out.items.append(
                    QAItem(qid, detect_language(question), question, tuple(answers), doc_id if answers else None, squad_split(title))
                )
    return out


def _chosen(items: Sequence[QAItem], split: Split, limit: int | None, path: Path | str) -> list[QAItem]:
    """``select``, refusing an empty result before anything is indexed or asked: a report of
    dashes with exit code 0 read as a run that passed."""
    chosen = select(items, split, limit)
    if not chosen:
        raise ValueError(f"{path}: no questions to evaluate (split {split!r}, {len(items)} questions in all)")
    return chosen


def select(items: Sequence[QAItem], split: Split = "all", limit: int | None = None) -> list[QAItem]:
    """The items of ``split`` (all when "all"), the first ``limit`` of them."""
    chosen = [it for it in items if split == "all" or it.split == split]
    return chosen[:limit] if limit is not None else chosen


# --------------------------------------------------------------------------------------------
# Running the pipeline
# --------------------------------------------------------------------------------------------


def build_systems(settings: Settings, embedder: Embedder, index_dir: Path | None = None, *, baselines: bool = True) -> dict[str, RAG]:
    """The systems ``rag eval`` compares, built from stages over one index and one embedder.

    "system" is the configured pipeline (default retriever and reranker, the reader
    ``settings.reader`` names). The baselines swap the retriever for one list alone and drop the
    reranker, keeping the same reader object: they knowingly reuse its calibration (fitted on
    the reranker's scores), which is what makes them ablations of the retriever.
    """
    reader = make_reader(settings)
    common: dict[str, Any] = {"index_dir": index_dir, "embedder": embedder, "reader": reader}
    baseline: dict[str, Any] = {**common, "reranker": NoReranker(), "allow_uncalibrated": True}
    systems = {"system": RAG(settings, **common)}
    if baselines:  # retrieval ablations (off: only the system and the sentence baseline, a faster run)
        systems["bm25"] = RAG(settings, retriever=BM25Retriever(candidates=settings.candidates), **baseline)
        systems["dense"] = RAG(settings, retriever=DenseRetriever(candidates=settings.candidates), **baseline)
    if reader.name not in ("sentence", "none"):
        # the sentence answering (the fast mode) is the baseline every other reader is measured against
        systems["sentence"] = RAG(settings, **{**common, "reader": make_reader(settings, "sentence")})
    return systems


def describe(rag: RAG) -> dict[str, str]:
    """The stages of a system, by class name (and the reader by its registry name)."""
    return {
        "retriever": type(rag.retriever).__name__,
        "reranker": type(rag.reranker).__name__,
        "reader": rag.reader.name,
    }


@dataclass
class Outcome:
    """What one system returned for one question."""

    ranked_docs: list[str]  # distinct doc ids, best first (up to RANKED_DOCS)
    passages: list[str]  # texts of the top-k passages the answer was drawn from / cited
    answered: bool
    answer_text: str | None = None
    answer_doc: str | None = None
    focus_text: str | None = None
    sentence_text: str | None = None  # the sentence holding the answer (the answer itself for sentence answers)


@dataclass
class QuestionResult:
    """One question's outcomes for the full system and the baselines."""

    item: QAItem
    outcomes: dict[str, Outcome]
    latency_ms: float  # wall time of the full-system ``ask``


def ranked_doc_ids(doc_ids: Sequence[str], n: int = RANKED_DOCS) -> list[str]:
    """Distinct doc ids in first-seen (rank) order, at most ``n``."""
    return list(dict.fromkeys(doc_ids))[:n]


def _outcome(rag: RAG, query: Query, k: int, result: AskResult) -> Outcome:
    ranked = ranked_doc_ids([p.doc_id for p in rag.search(query, SEARCH_DEPTH)])
    a = result.answer
    return Outcome(
        ranked_docs=ranked,
        passages=[p.text for p in result.citations[:k]],
        answered=a is not None,
        answer_text=a.text if a else None,
        answer_doc=a.doc_id if a else None,
        focus_text=a.focus.text if a and a.focus else None,
        sentence_text=(a.sentence.text if a.sentence else a.text) if a else None,
    )


def evaluate(systems: Mapping[str, RAG], items: Sequence[QAItem], k: int = 5, progress: Progress | None = None) -> list[QuestionResult]:
    """Ask every question of every system; ``systems["system"]`` is timed (analysing and
    embedding the question included) and its ``Query`` reused by the others."""
    main = systems["system"]
    if items:
        # Warm-up, not timed: the first call pays one-off costs (lazy model and index
        # initialisation) that would otherwise land in one question's latency.
        main.ask(items[0].question, k)
    results: list[QuestionResult] = []
    for i, item in enumerate(items):
        if progress:
            progress("questions", i, len(items))
        t0 = time.perf_counter()
        query = main.analyse(item.question)
        full = main.ask(query, k)
        latency = (time.perf_counter() - t0) * 1e3
        outcomes = {"system": _outcome(main, query, k, full)}
        for name, rag in systems.items():
            if name != "system":
                outcomes[name] = _outcome(rag, query, k, rag.ask(query, k))
        results.append(QuestionResult(item, outcomes, latency))
    if progress:
        progress("questions", len(items), len(items))
    return results


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _answer_hit(o: Outcome, item: QAItem) -> float:
    """The sentence returned holds a gold answer (for a short answer: the sentence around it)."""
    text = o.sentence_text or o.answer_text
    return contains_answer(text, item.answers) if o.answered and text else 0.0


def _scored_text(o: Outcome) -> str:
    """EM/F1 are computed on the focus span when there is one, else on the whole span."""
    return o.focus_text or o.answer_text or ""


def retrieval_block(results: Sequence[QuestionResult], system: str, k: int) -> dict[str, float | None]:
    """hit@1, hit@k, mrr@10 of the gold document and answer_in_passages@k (answerable only)."""
    rs = [(r.item, r.outcomes[system]) for r in results if r.item.answerable]
    gold = [(it.doc_id, o) for it, o in rs if it.doc_id is not None]
    return {
        "hit@1": _r(mean([hit_at_k(o.ranked_docs, doc, 1) for doc, o in gold])),
        f"hit@{k}": _r(mean([hit_at_k(o.ranked_docs, doc, k) for doc, o in gold])),
        "mrr@10": _r(mean([reciprocal_rank(o.ranked_docs, doc, 10) for doc, o in gold])),
        f"answer_in_passages@{k}": _r(mean([answer_in_passages(o.passages, it.answers, k) for it, o in rs])),
    }


@dataclass(frozen=True)
class Scores:
    """One question's answer scores for one system: what the answer and abstention blocks
    average, and what ``rag.evaluation.uncertainty`` resamples. ``hit``/``em``/``f1`` are 0 when
    it abstained, and 0 for an unanswerable question."""

    id: str
    lang: str
    answerable: bool
    answered: bool
    hit: float
    em: float
    f1: float

    @classmethod
    def of(cls, result: QuestionResult, system: str) -> Scores:
        it, o = result.item, result.outcomes[system]
        scored = it.answerable and o.answered
        return cls(
            id=it.id,
            lang=it.lang,
            answerable=it.answerable,
            answered=o.answered,
            hit=_answer_hit(o, it) if it.answerable else 0.0,
            em=exact_match(_scored_text(o), it.answers) if scored else 0.0,
            f1=f1_score(_scored_text(o), it.answers) if scored else 0.0,
        )


def question_scores(results: Sequence[QuestionResult], system: str) -> list[Scores]:
    """``Scores`` of every question for ``system``, in the results' order."""
    return [Scores.of(r, system) for r in results]


def answer_block(results: Sequence[QuestionResult], system: str) -> dict[str, float | None]:
    """hit@1 (the answer's sentence holds a gold answer) / em / f1 of the answer span over answerable
    questions (0 when abstained); mean span tokens when answered."""
    scores = [s for s in question_scores(results, system) if s.answerable]
    spans = [r.outcomes[system].answer_text or "" for r in results if r.item.answerable and r.outcomes[system].answered]
    return {
        "hit@1": _r(mean([s.hit for s in scores])),
        "em": _r(mean([s.em for s in scores])),
        "f1": _r(mean([s.f1 for s in scores])),
        "mean_span_tokens": _r(mean([span_tokens(text) for text in spans])),
    }


def abstention_block(results: Sequence[QuestionResult], system: str) -> dict[str, float | None]:
    """answered_rate on answerable (HasAns) and abstained_rate on unanswerable (NoAns) questions."""
    return {
        "answered_rate": _r(answered_rate([r.outcomes[system].answered for r in results if r.item.answerable])),
        "abstained_rate": _r(abstained_rate([r.outcomes[system].answered for r in results if not r.item.answerable])),
    }


def _counts(results: Sequence[QuestionResult]) -> dict[str, int]:
    return {
        "total": len(results),
        "answerable": sum(r.item.answerable for r in results),
        "unanswerable": sum(not r.item.answerable for r in results),
    }


def _blocks(results: Sequence[QuestionResult], system: str, k: int) -> dict[str, Any]:
    return {
        "retrieval": retrieval_block(results, system, k),
        "answer": answer_block(results, system),
        "abstention": abstention_block(results, system),
    }


def _by_language(results: Sequence[QuestionResult], system: str, k: int) -> dict[str, Any]:
    """Always both languages, so the shape does not depend on the dataset (empty -> None)."""
    langs = list(LANGUAGES) + sorted({r.item.lang for r in results} - set(LANGUAGES))
    out = {}
    for lang in langs:
        sub = [r for r in results if r.item.lang == lang]
        out[lang] = {"questions": _counts(sub), **_blocks(sub, system, k)}
    return out


def failure_reason(item: QAItem, o: Outcome, k: int) -> str | None:
    """Why the full system missed this question, or None when it did not.

    answerable: "retrieval" (gold document not in the top k), else "abstained", else "answer"
    (a span came back without a gold answer in it); unanswerable: "false_answer".
    """
    if not item.answerable:
        return "false_answer" if o.answered else None
    if _answer_hit(o, item):
        return None
    if item.doc_id is not None and item.doc_id not in o.ranked_docs[:k]:
        return "retrieval"
    return "abstained" if not o.answered else "answer"


def failures(results: Sequence[QuestionResult], k: int) -> list[dict[str, Any]]:
    out = []
    for r in results:
        o = r.outcomes["system"]
        reason = failure_reason(r.item, o, k)
        if reason is None:
            continue
        it = r.item
        out.append(
            {
                "id": it.id,
                "question": it.question,
                "lang": it.lang,
                "answerable": it.answerable,
                "gold_doc_id": it.doc_id,
                "expected": list(it.answers),
                "gold_rank": (o.ranked_docs.index(it.doc_id) + 1) if it.doc_id in o.ranked_docs else None,
                "returned_doc_id": o.answer_doc,
                "returned_text": o.answer_text,
                "returned_focus": o.focus_text,
                "reason": reason,
            }
        )
    return out


def hit_curves(results: Sequence[QuestionResult], max_k: int = RANKED_DOCS) -> dict[str, list[float | None]]:
    """Retrieval hit@k of the gold document for k = 1..max_k, per system (for the plot)."""
    gold = [(r.item.doc_id, r.outcomes) for r in results if r.item.answerable and r.item.doc_id is not None]
    return {
        name: [_r(mean([hit_at_k(outcomes[name].ranked_docs, doc, kk) for doc, outcomes in gold])) for kk in range(1, max_k + 1)]
        for name in (results[0].outcomes if results else SYSTEMS)
    }


def summarize(results: Sequence[QuestionResult], dataset: dict[str, Any], k: int) -> dict[str, Any]:
    """The ``rag eval --json`` object (exactly the top-level keys the issue fixes)."""
    latencies = [r.latency_ms for r in results]
    return {
        "dataset": dataset,
        "questions": {**_counts(results), **{lang: sum(r.item.lang == lang for r in results) for lang in LANGUAGES}},
        **_blocks(results, "system", k),
        "latency_ms": {"p50": _r(percentile(latencies, 50)), "p95": _r(percentile(latencies, 95))},
        "by_language": _by_language(results, "system", k),
        "baselines": {
            name: {**_blocks(results, name, k), "by_language": _by_language(results, name, k)}
            for name in (results[0].outcomes if results else SYSTEMS)
            if name != "system"
        },
        "failures": failures(results, k),
    }


# --------------------------------------------------------------------------------------------
# Whole runs
# --------------------------------------------------------------------------------------------


@dataclass
class EvalRun:
    """A finished evaluation: the summary (``--json``) and the per-question outcomes."""

    summary: dict[str, Any]
    results: list[QuestionResult]


def eval_settings(settings: Settings) -> Settings:
    """Settings for evaluation: the answer cache off, so repeated questions cost full price."""
    return settings.model_copy(update={"cache_size": 0})


def _run(systems: Mapping[str, RAG], items: list[QAItem], dataset: dict[str, Any], k: int, progress: Progress | None) -> EvalRun:
    t0 = time.perf_counter()
    main = systems["system"]
    index = main.snapshot.index
    dataset.update(
        {
            "k": k,
            "model": index.model_id,
            "index_version": index.version,
            "n_documents": index.n_documents,
            "n_chunks": index.n_chunks,
            "chunk_tokens": main.settings.chunk_tokens,
            "chunk_overlap": main.settings.chunk_overlap,
            "systems": {name: describe(rag) for name, rag in systems.items()},
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    results = evaluate(systems, items, k, progress)
    dataset["eval_s"] = round(time.perf_counter() - t0, 1)
    return EvalRun(summarize(results, dataset, k), results)


def run_jsonl(
    path: Path | str,
    settings: Settings,
    *,
    split: Split = "all",
    limit: int | None = None,
    k: int = 5,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    baselines: bool = True,
) -> EvalRun:
    """Evaluate our JSONL QA set against the index in ``settings.index``."""
    settings = eval_settings(settings)
    qaset = read_jsonl(path)
    items = _chosen(qaset.items, split, limit, path)
    systems = build_systems(settings, embedder or make_embedder(settings), baselines=baselines)
    missing = sorted({it.doc_id for it in items if it.doc_id} - set(systems["system"].snapshot.index.doc_row))
    dataset = {
        "name": Path(path).stem,
        "format": "jsonl",
        "path": str(path),
        "split": split,
        "limit": limit,
        "index": str(settings.index),
        "gold_docs_missing": missing,
        "needs_review_skipped": len(qaset.needs_review),
    }
    return _run(systems, items, dataset, k, progress)


def index_key(documents: Sequence[Document], model_id: str, settings: Settings) -> str:
    """Hash of everything an index build depends on: contexts, model, chunk and word-list settings
    (an index cached before the word list existed has none, so it is built again)."""
    h = hashlib.sha256()
    lexicon = f"lexicon=2/{settings.lexicon_words}"
    for part in (f"format={FORMAT_VERSION}", model_id, f"{settings.chunk_tokens}/{settings.chunk_overlap}", lexicon):
        h.update(part.encode("utf-8") + b"\0")
    for d in documents:
        for part in (d.doc_id, d.title, d.text):
            h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()


@contextmanager
def _index_dir(cache: Path | None, key: str) -> Iterator[Path]:
    if cache is not None:
        path = Path(cache).expanduser() / f"squad-{key[:16]}"
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        yield Path(tmp)


def run_squad(
    path: Path | str,
    settings: Settings,
    *,
    questions_from: Path | str | None = None,
    split: Split = "all",
    limit: int | None = None,
    k: int = 5,
    index_cache: Path | str | None = None,
    progress: Progress | None = None,
    embedder: Embedder | None = None,
    baselines: bool = True,
) -> EvalRun:
    """Evaluate a SQuAD-format file open-corpus: all its contexts indexed, every question asked.

    The index lives in a temporary directory, or under ``index_cache`` keyed by
    ``index_key`` so repeated runs over the same contexts and settings skip embedding.
    """
    settings = eval_settings(settings)
    squad = load_squad(path, questions_from)
    items = _chosen(squad.items, split, limit, path)
    embedder = embedder or make_embedder(settings)
    key = index_key(squad.documents, embedder.model_id, settings)
    with _index_dir(Path(index_cache) if index_cache else None, key) as root:
        t0 = time.perf_counter()
        settings = settings.model_copy(update={"index": root})
        writer = RAG(settings, embedder=embedder)
        report = writer.ingest_documents(squad.documents, prune=True, progress=progress)
        writer.snapshot.index.close()
        dataset = {
            "name": Path(path).stem + (f"+{Path(questions_from).stem}-questions" if questions_from else ""),
            "format": "squad",
            "path": str(path),
            "questions_path": str(questions_from) if questions_from else None,
            "split": split,
            "limit": limit,
            "index": str(root) if index_cache else "temporary",
            "index_key": key[:16],
            "index_build_s": round(time.perf_counter() - t0, 1),
            "embedded_texts": report.embedded_texts,
            "gold_answers": squad.gold_answers,
            "gold_mismatches": len(squad.mismatches),
            "gold_mismatch_examples": [_mismatch(m) for m in squad.mismatches[:5]],
            "questions_unmatched": squad.questions_unmatched,
        }
        systems = build_systems(settings, embedder, baselines=baselines)
        dataset["reader_seen"] = reader_seen(systems["system"].reader, squad, items)
        return _run(systems, items, dataset, k, progress)


def reader_seen(reader: Reader, squad: SquadSet, items: Sequence[QAItem]) -> int | None:
    """How many of ``items`` ask about an article (or paragraph) ``reader`` trained or was tuned
    on: their numbers are not held out. None for a reader that was not trained, or whose model
    does not record what it read."""
    seen = reader.seen if isinstance(reader, TrainedReader) else None
    if seen is None:
        return None
    docs = {d.doc_id: d for d in squad.documents}
    return sum(1 for it in items if it.doc_id in docs and seen.holds(docs[it.doc_id].title, docs[it.doc_id].text))


def _mismatch(m: GoldMismatch) -> dict[str, Any]:
    return {"id": m.question_id, "answer": m.answer, "answer_start": m.answer_start, "found": m.found}
