"""The span reader at run time: ONNX Runtime over the trained model, no torch.

It reads the question against each of the top passages (a passage is a chunk of at most
``chunk_tokens`` model tokens, so it is one window, or a few when it is longer), scores every
span of every window on one scale, and returns the best as an ``Answer`` whose offsets point
into the stored document text, with the sentence that holds it.

One scale across windows: a window's best span score minus its own no-answer score (the
``<s>`` position), the margin; the best margin wins, and ``sigmoid(a * margin + b)``
(calibrated on dev, see the model card) is the probability that the answer is right. Below
the model's threshold the reader abstains.

In the pipeline the margin alone is not the best judge: where ``reader.json`` carries a
``pipeline`` fit (``eval/reader_ensemble.py``, tuned on dev questions run through the whole
pipeline), every sentence of the read passages offers its best span, and each span's score also
weighs its sentence's span mass (how much of the model's belief lies in that sentence), its
passage's rank, whether it lies in the sentence the sentence answering picks, and that
answering's own P(answerable) (and, where the fit gives it a weight, how much of the question the
span's sentence says: ``rag.reader.coverage``); the fit's calibration and threshold then replace the model's. On
dev this moved the sentence hit from 0.47 to 0.67 (our QA set) and 0.68 to 0.78 (ARCD), see
eval/RESULTS.md.
"""

from __future__ import annotations

import json
import math
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.answering import missing_numbers
from rag.checksum import sha256_file
from rag.reader.coverage import coverage as share_said
from rag.reader.coverage import question_units
from rag.reader.provenance import Seen
from rag.reader.spans import MAX_ANSWER_TOKENS, best_spans_by_group, token_sentences
from rag.reader.tokenizer import Encoded, ReaderTokenizer
from rag.reader.weights import E5File
from rag.schema import Answer, Passage, SentenceSpan
from rag.stages import Query, Reading

if TYPE_CHECKING:
    from rag.answering import SentenceReader
    from rag.config import Settings
    from rag.index import Index

MANIFEST = "reader.json"


class ReaderModelError(RuntimeError):
    """The reader model is missing, damaged or does not match its manifest."""


def default_model_dir() -> Path:
    """``models/reader`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "models" / "reader"


@dataclass(frozen=True)
class PipelineFit:
    """How the span score is weighed with the pipeline's own signals (fitted on dev by
    ``eval/reader_ensemble.py``): z = margin + mass_weight * (mass - margin)
    - rank_weight * log(1 + passage rank) + sentence_weight * [span inside the sentence
    answering's pick] + confidence_weight * logit(the sentence answering's P(answerable))
    + coverage_weight * (the share of the question's content words its sentence says);
    p = sigmoid(a * z + b). Every sentence of a read passage offers its best span."""

    rank_weight: float
    sentence_weight: float
    confidence_weight: float
    calibration: tuple[float, float]
    threshold: float
    mass_weight: float = 0.0  # fits written before sentence masses existed have none
    coverage_weight: float = 0.0  # fits written before question coverage existed have none

    @classmethod
    def from_dict(cls, raw: dict) -> PipelineFit:
        return cls(
            rank_weight=float(raw["rank_weight"]),
            sentence_weight=float(raw["sentence_weight"]),
            confidence_weight=float(raw["confidence_weight"]),
            calibration=(float(raw["calibration"][0]), float(raw["calibration"][1])),
            threshold=float(raw["threshold"]),
            mass_weight=float(raw.get("mass_weight", 0.0)),
            coverage_weight=float(raw.get("coverage_weight", 0.0)),
        )

    def score(self, e: SpanEvidence) -> float:
        return (
            e.margin
            + self.mass_weight * (e.mass - e.margin)
            - self.rank_weight * math.log1p(e.rank)
            + self.sentence_weight * e.in_sentence
            + self.confidence_weight * e.sentence_logit
            + self.coverage_weight * (e.coverage or 0.0)
        )

    def probability(self, z: float) -> float:
        return _sigmoid(self.calibration[0] * z + self.calibration[1])


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


@dataclass(frozen=True)
class Manifest:
    """``reader.json`` beside the model: what the run time needs to use it as trained."""

    model: str  # ONNX file name
    sha256: str
    max_len: int = 256
    max_question: int = 64
    stride: int = 128
    e5_prefixes: bool = False  # trained reading e5's "query: " / "passage: " (ReaderTokenizer.window_head)
    calibration: tuple[float, float] = (1.0, 0.0)  # p = sigmoid(a * margin + b)
    threshold: float = 0.5
    pipeline: PipelineFit | None = None  # the pipeline-level fit, when eval/reader_ensemble.py wrote one
    seen: Seen | None = None  # what it trained or was tuned on (rag.reader.provenance); None: not recorded
    extra: dict = field(default_factory=dict)

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        path = model_dir / MANIFEST
        if not path.is_file():
            raise ReaderModelError(
                f"no reader model in {model_dir} ({MANIFEST} missing); train one with `rag train-reader` or set RAG_READER=sentence"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReaderModelError(f"{path} cannot be read ({exc}); restore it from git (`git checkout -- models/`) or retrain") from exc
        if not isinstance(raw, dict):
            raise ReaderModelError(f"{path} is not a JSON object; restore it from git (`git checkout -- models/`) or retrain")
        known = {k: raw.pop(k) for k in list(raw) if k in cls.__dataclass_fields__ and k != "extra"}
        if known.get("pipeline") is not None:
            try:
                known["pipeline"] = PipelineFit.from_dict(known["pipeline"])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ReaderModelError(f"{path}: malformed 'pipeline' block ({exc!r}); rerun eval/reader_ensemble.py --write") from exc
        try:
            if "calibration" in known:
                a, b = known["calibration"]
                known["calibration"] = (float(a), float(b))
            if not isinstance(known.get("model"), str) or not isinstance(known.get("sha256"), str):
                raise ValueError("'model' and 'sha256' must be strings")
            if not isinstance(known.get("e5_prefixes", False), bool):
                raise ValueError("'e5_prefixes' must be true or false")
            if known.get("seen") is not None:
                known["seen"] = Seen.from_dict(known["seen"])
            return cls(**known, extra=raw)
        except (TypeError, ValueError) as exc:
            raise ReaderModelError(f"{path} is malformed ({exc}); restore it from git (`git checkout -- models/`) or retrain") from exc


@dataclass(frozen=True)
class SpanCandidate:
    """The best span of one window: character offsets into that window's context text."""

    context: int  # which context (passage) it came from
    start: int
    end: int
    margin: float  # span score minus the window's no-answer score
    probability: float
    mass: float = 0.0  # log-sum-exp of the scores of every span of its sentence, minus no-answer
    sentence: int = -1  # which of the context's sentences holds it (-1: sentences not given)


_EDGE = set(" \t\n\r\u00a0.,،;؛:!?؟\"'«»“”‘’()[]{}-–—/\\|*•·")
_PAIRS = {")": "(", "]": "[", "}": "{", "»": "«", "”": "“"}


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past whitespace and punctuation at its edges (a token can carry a
    bracket or a full stop with it), keeping a closing bracket whose opening one is inside."""
    while start < end and (text[start] in _EDGE or unicodedata.category(text[start]).startswith("Z")):
        if text[start] in _PAIRS.values() and _PAIRS.get(text[end - 1]) == text[start]:
            break
        start += 1
    while end > start and (text[end - 1] in _EDGE or unicodedata.category(text[end - 1]).startswith("Z")):
        closing = text[end - 1]
        if closing in _PAIRS and _PAIRS[closing] in text[start : end - 1]:
            break
        end -= 1
    return start, end


def _word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM"  # letters, digits, marks (Arabic diacritics)


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to whole words: a token boundary can fall inside a word ("سيفات" read
    as "سي" + "فات"), and a span cut there is never what a person would quote. On ARCD dev
    articles (gold paragraph given) it changed 10 of 121 spans: EM 0.140 -> 0.149, F1 0.430 ->
    0.436; on the held-out sets F1 +0.004 (XQuAD ar test) and +0.010 (ARCD test)."""
    while start > 0 and _word_char(text[start - 1]) and _word_char(text[start]):
        start -= 1
    while end < len(text) and _word_char(text[end]) and _word_char(text[end - 1]):
        end += 1
    return start, end


# Windows read of one context at most (its beginning). A passage is one chunk, 1-2 windows; the
# longest XQuAD or ARCD paragraph needs 6. The cap bounds what an index built before chunks were
# bounded (rag.chunking) can make the reader hold: 2 MB in one chunk needed 5 GiB.
MAX_WINDOWS_PER_CONTEXT = 8


class SpanScorer:
    """Question + contexts -> the best span of each context (the model, without the index)."""

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        threads: int = 0,
        concurrency: int = 1,
        weights: E5File | None = None,
        verify: bool = True,
    ):
        import onnxruntime as ort

        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.manifest = Manifest.read(self.model_dir)
        path = self.model_dir / self.manifest.model
        if not path.is_file():
            raise ReaderModelError(f"reader model file {path} is missing")
        if verify:
            digest = sha256_file(path)
            if digest != self.manifest.sha256:
                raise ReaderModelError(
                    f"reader model {path} is damaged: sha256 {digest[:16]}… does not match {MANIFEST} ({self.manifest.sha256[:16]}…); "
                    "restore it from git (`git checkout -- models/`) or retrain"
                )
        self.weights = weights or E5File()
        # Pieces of the scripts the service reads only (see ReaderTokenizer): a process with the
        # reader held 628 MB after 30 questions with the whole vocabulary, 473 MB with these.
        self.tokenizer = ReaderTokenizer(self.weights.vocab, scripts="arabic-latin")
        # At most ``concurrency`` session runs at once: a run already uses every core, so more
        # only add activations (16 clients, 4 request threads: peak RSS 746 MB ungated).
        self._gate = threading.BoundedSemaphore(concurrency)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ReaderModelError(f"reader model {path} cannot be loaded: {exc}") from exc

    def probability(self, margin: float) -> float:
        a, b = self.manifest.calibration
        return _sigmoid(a * margin + b)

    def windows(self, question: str, contexts: Sequence[str]) -> list[tuple[int, np.ndarray, np.ndarray, int]]:
        """(context index, token ids, context token offsets, first context position) per window."""
        m = self.manifest
        tok = self.tokenizer
        head = tok.window_head(question, m.max_question, m.e5_prefixes)
        out: list[tuple[int, np.ndarray, np.ndarray, int]] = []
        for ci, text in enumerate(contexts):
            enc: Encoded = tok.encode(text)
            if not len(enc):
                continue
            for ids, offs in islice(tok.slide(head, enc, m.max_len, m.stride), MAX_WINDOWS_PER_CONTEXT):
                out.append((ci, ids, offs, len(head)))
        return out

    def logits(self, ids: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        if not ids:
            return []
        t = max(len(x) for x in ids)
        batch = np.full((len(ids), t), self.tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(ids), t), dtype=np.int64)
        for i, x in enumerate(ids):
            batch[i, : len(x)] = x
            mask[i, : len(x)] = 1
        embeds = self.weights.word_embeddings(batch)
        # One run for all of a question's windows. The int8 file quantises activations with one
        # scale per tensor, so a window's logits move a little with its batch-mates (up to 1.3 in
        # a start logit). One run per window removes that at equal dev quality but was 11% slower
        # (81 against 73 ms for 4 passages; eval/RESULTS.md), so the batch stays.
        with self._gate:
            start, end = self.session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
        return [(start[i, : len(x)], end[i, : len(x)]) for i, x in enumerate(ids)]

    def score(
        self, question: str, contexts: Sequence[str], sentences: Sequence[Sequence[tuple[int, int]]] | None = None
    ) -> list[SpanCandidate]:
        """The best span of each context that has one, best first; with ``sentences`` (the
        (start, end) character spans of each context's sentences) the best span of each sentence,
        never crossing one, with the sentence's span mass."""
        wins = self.windows(question, contexts)
        best: dict[tuple[int, int], SpanCandidate] = {}
        for (ci, ids, offs, first), (s, e) in zip(wins, self.logits([w[1] for w in wins]), strict=True):
            groups = np.zeros(len(offs), dtype=np.int64) if sentences is None else token_sentences(offs, sentences[ci])
            no_answer = float(s[0] + e[0])
            for g in best_spans_by_group(s, e, first, len(ids) - 1, groups, MAX_ANSWER_TOKENS):
                margin = g.score - no_answer
                start, end = trim_span(contexts[ci], *snap_to_words(contexts[ci], int(offs[g.a, 0]), int(offs[g.b, 1])))
                if start >= end:
                    continue
                key = (ci, g.group if sentences is not None else -1)
                if key not in best or margin > best[key].margin:
                    best[key] = SpanCandidate(ci, start, end, margin, self.probability(margin), g.mass - no_answer, key[1])
        return sorted(best.values(), key=lambda c: -c.margin)


_SHARED: dict[tuple[Path, int, int], SpanScorer] = {}
_SHARED_LOCK = threading.Lock()


def shared_scorer(model_dir: Path | str | None = None, threads: int = 0, concurrency: int = 1) -> SpanScorer:
    """One scorer per model folder, thread and concurrency setting in a process: every ``RAG`` built from
    settings shares its onnxruntime session (thread-safe for ``run``), tokenizer and word table
    (about 150 MB together) instead of loading its own. The checksum is verified on first load."""
    key = ((Path(model_dir) if model_dir else default_model_dir()).resolve(), threads, concurrency)
    with _SHARED_LOCK:
        scorer = _SHARED.get(key)
        if scorer is None:
            scorer = _SHARED[key] = SpanScorer(key[0], threads=threads, concurrency=concurrency)
        return scorer


@dataclass
class SpanEvidence:
    """One passage's best span with the signals the pipeline fit weighs."""

    answer: Answer
    margin: float
    rank: int  # the passage's 0-based rank
    in_sentence: bool  # the span lies inside the sentence the sentence answering picked
    sentence_logit: float  # logit of the sentence answering's P(answerable), clipped to +-9.2
    mass: float = 0.0  # the span mass of its sentence, minus no-answer (SpanCandidate.mass)
    coverage: float | None = None  # the share of the question's content words its sentence says (rag.reader.coverage), where asked for


def passage_sentences(p: Passage, index: Index) -> list[tuple[int, int]]:
    """The index's sentences of a passage, as character spans of ``p.text`` (the whole passage
    when the index holds none inside it, so a passage is never left unread)."""
    info = index.chunk_info(p.row)
    rows = range(info.first_sentence, info.last_sentence)
    spans = ((int(index.sentence_start[r]) - p.start, int(index.sentence_end[r]) - p.start) for r in rows)
    found = [(max(a, 0), min(b, len(p.text))) for a, b in spans if b > 0 and a < len(p.text)]
    return found or [(0, len(p.text))]


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class SpanReader:
    """The trained span reader as the pipeline's ``Reader`` stage.

    With a ``sentence`` reader and the manifest's ``pipeline`` fit it ranks spans and decides
    abstention with the pipeline's signals too (see the module docstring); without either it
    ranks by the model's margin alone.
    """

    name = "span"

    def __init__(
        self,
        scorer: SpanScorer,
        *,
        context_passages: int = 4,
        threshold: float | None = None,
        require_numbers: bool = True,
        sentence: SentenceReader | None = None,
    ):
        self.scorer = scorer
        self.span_passages = context_passages
        self.sentence = sentence
        self.fit = scorer.manifest.pipeline if sentence is not None else None
        default = self.fit.threshold if self.fit is not None else scorer.manifest.threshold
        self.threshold = default if threshold is None else threshold
        # A number the question names ("... in 2040?") that none of the passages read holds
        # means they cannot answer it, whatever span looks likely (see eval/RESULTS.md).
        self.require_numbers = require_numbers

    @property
    def context_passages(self) -> int:
        """Passages the pipeline hands over: those the model reads, and the sentence answering's."""
        return max(self.span_passages, self.sentence.context_passages if self.sentence else 0)

    @property
    def features(self) -> frozenset[str]:
        # The sentence answering's scores are fitted on upstream features; the model is not.
        return self.sentence.features if self.sentence is not None else frozenset()

    @property
    def seen(self) -> Seen | None:
        """What the model trained or was tuned on (the manifest's ``seen``; rag.stages.TrainedReader)."""
        return self.scorer.manifest.seen

    @classmethod
    def from_settings(cls, settings: Settings) -> SpanReader:
        from rag.answering import SentenceReader

        scorer = shared_scorer(settings.reader_model, settings.reader_threads, settings.reader_concurrency)
        sentence = SentenceReader.from_settings(settings) if scorer.manifest.pipeline is not None else None
        return cls(scorer, context_passages=settings.reader_passages, threshold=settings.reader_threshold, sentence=sentence)

    def evidence(self, query: Query, passages: Sequence[Passage], index: Index, *, coverage: bool | None = None) -> list[SpanEvidence]:
        """The best span of each sentence of the top passages, with the pipeline signals (in
        rank order). Their question ``coverage`` is computed where asked (collecting dev rows) or,
        by default, where the fit weighs it: for an English question it searches the lexicon a
        second time (retrieval did once), work a fit without that weight would throw away."""
        top = list(passages[: self.span_passages])
        found = self.scorer.score(query.reading, [p.text for p in top], [passage_sentences(p, index) for p in top])
        pick, logit = None, 0.0
        if self.sentence is not None:
            reading = self.sentence.read(query, passages, index)
            pick = reading.candidates[0] if reading.candidates else None
            logit = _logit(reading.confidence)
        if coverage is None:
            coverage = self.fit is not None and self.fit.coverage_weight != 0
        units = question_units(query, index.lexicon) if coverage else None
        out = []
        for c in sorted(found, key=lambda c: (c.context, c.sentence)):
            a = self._answer(top[c.context], c, index)
            inside = pick is not None and pick.doc_id == a.doc_id and pick.start <= a.start and a.end <= pick.end
            said = share_said(units, a.sentence.text if a.sentence else a.text) if units is not None else None
            out.append(SpanEvidence(a, c.margin, c.context, inside, logit, c.mass, said))
        return out

    def read(self, query: Query, passages: Sequence[Passage], index: Index) -> Reading:
        found = self.evidence(query, passages, index)
        if not found:
            return Reading(None, 0.0, [])
        fit = self.fit
        if fit is not None:
            scored = sorted(((fit.score(e), e) for e in found), key=lambda t: -t[0])
            answers = [replace(e.answer, score=fit.probability(z)) for z, e in scored]
        else:
            answers = [e.answer for e in sorted(found, key=lambda e: -e.margin)]
        best = answers[0]
        top = passages[: self.span_passages]
        confidence = 0.0 if self.require_numbers and missing_numbers(query, top) else best.score
        return Reading(best if confidence >= self.threshold else None, confidence, answers)

    @staticmethod
    def _answer(p: Passage, c: SpanCandidate, index: Index) -> Answer:
        info = index.chunk_info(p.row)
        doc_text = index.texts[info.doc_row]
        start, end = p.start + c.start, p.start + c.end
        rows = range(info.first_sentence, info.last_sentence)
        s_start, s_end = start, end
        for r in rows:
            a, b = int(index.sentence_start[r]), int(index.sentence_end[r])
            if a <= start < b:
                s_start = min(s_start, a)
            if a < end <= b:
                s_end = max(s_end, b)
        return Answer(
            text=doc_text[start:end],
            doc_id=info.doc_id,
            title=index.titles[info.doc_row],
            start=start,
            end=end,
            score=c.probability,
            sentence=SentenceSpan(doc_text[s_start:s_end], s_start, s_end),
        )
