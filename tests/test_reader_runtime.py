"""The shipped span reader as the pipeline's Reader stage, over the real corpus."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.reader.runtime import ReaderModelError, SpanReader, SpanScorer, default_model_dir, passage_sentences
from rag.stages import Reader


@pytest.fixture(scope="module")
def scorer() -> SpanScorer:
    return SpanScorer()


@pytest.fixture(scope="module")
def span_rag(corpus_index, e5, scorer):
    from rag.pipeline import RAG

    return RAG(Settings(index=corpus_index, cache_size=0), embedder=e5, reader=SpanReader(scorer))


def test_shipped_model_and_manifest_agree():
    manifest = json.loads((default_model_dir() / "reader.json").read_text(encoding="utf-8"))
    model = default_model_dir() / manifest["model"]
    assert model.stat().st_size < 60e6
    assert (default_model_dir() / "MODEL_CARD.md").read_text(encoding="utf-8").count(manifest["sha256"]) == 1


def test_span_reader_satisfies_the_reader_contract(scorer):
    assert isinstance(SpanReader(scorer), Reader)


def test_reads_a_short_span_from_the_right_context(scorer):
    contexts = [
        "تضم دولة الإمارات أكثر من 40 مليون نخلة، وتنتج المزارع مئات الأصناف من التمور.",
        "أطلقت دولة الإمارات مسبار الأمل لاستكشاف كوكب المريخ، ووصل إلى مداره في فبراير 2021.",
    ]
    found = scorer.score("متى وصل مسبار الأمل إلى مدار المريخ؟", contexts)
    best = found[0]
    assert best.context == 1
    assert "2021" in contexts[1][best.start : best.end]
    assert len(contexts[1][best.start : best.end]) < 25  # a short answer, not the sentence
    english = scorer.score("How many palm trees are there in the UAE?", contexts)[0]
    assert english.context == 0 and "40" in contexts[0][english.start : english.end]


def test_with_sentences_each_sentence_offers_its_best_span(scorer):
    context = (
        "تضم دولة الإمارات أكثر من 40 مليون نخلة. ووصل مسبار الأمل إلى مدار المريخ في فبراير 2021. وتنتج المزارع مئات الأصناف من التمور."
    )
    sentences = [(0, context.index(".") + 1)]
    sentences.append((sentences[0][1] + 1, context.index("2021.") + 5))
    sentences.append((sentences[1][1] + 1, len(context)))
    question = "متى وصل مسبار الأمل إلى مدار المريخ؟"
    found = scorer.score(question, [context], [sentences])
    assert sorted(c.sentence for c in found) == [0, 1, 2]
    for c in found:
        a, b = sentences[c.sentence]
        assert a <= c.start < c.end <= b  # never across a sentence
        assert c.mass >= c.margin  # the sentence's mass holds its best span
    best = found[0]
    assert best.sentence == 1 and "2021" in context[best.start : best.end]
    # without sentences: the best span of the context, the same as the best sentence's here
    (whole,) = scorer.score(question, [context])
    assert (whole.start, whole.end, whole.sentence) == (best.start, best.end, -1)


def test_passage_sentences_are_the_index_sentences_inside_the_passage(corpus_index):
    from rag.index import ChunkInfo, Index
    from rag.schema import Passage

    index = Index.open(corpus_index)
    for row in range(10):
        info = index.chunk_info(row)
        doc = index.texts[info.doc_row]
        text = doc[info.start : info.end]
        passage = Passage(
            chunk_id="c", doc_id=info.doc_id, title="", text=text, start=info.start, end=info.end, retrieval_score=0.0, row=row
        )
        spans = passage_sentences(passage, index)
        sentences = [index.sentence_text(r) for r in range(info.first_sentence, info.last_sentence)]
        assert spans and all(0 <= a < b <= len(text) for a, b in spans)
        # each is one of the chunk's sentences, clipped to the passage, in order
        assert all(any(text[a:b] in s for s in sentences) for a, b in spans)
        assert spans == sorted(spans)

    class NoSentences:  # an index that holds no sentence inside the passage: read it whole
        def chunk_info(self, row: int) -> ChunkInfo:
            return ChunkInfo(row, info.doc_row, info.doc_id, 0, info.start, info.end, 5, 5)

    assert passage_sentences(passage, NoSentences()) == [(0, len(text))]  # type: ignore[arg-type]


def test_window_input_is_bounded(scorer):
    long_question = "ما " * 500
    long_context = "كلمة " * 3000
    windows = scorer.windows(long_question, [long_context])
    assert all(len(ids) <= scorer.manifest.max_len for _, ids, _, _ in windows)
    assert len(windows) > 1  # the long passage is read in several windows, not cut
    # ... up to a cap per passage: a passage of any length costs at most that many windows
    from rag.reader.runtime import MAX_WINDOWS_PER_CONTEXT

    huge = scorer.windows("ما هذا؟", ["كلمة " * 20_000, "قصير."])
    assert [ci for ci, _, _, _ in huge].count(0) == MAX_WINDOWS_PER_CONTEXT
    assert [ci for ci, _, _, _ in huge].count(1) == 1


def test_answers_cite_exact_offsets_with_their_sentence(span_rag):
    result = span_rag.ask("متى وقعت اتفاقية التعاون بين حكومتي الإمارات والأردن؟")
    ans = result.answer
    assert ans is not None
    doc = span_rag.snapshot.index.document(ans.doc_id) if hasattr(span_rag.snapshot.index, "document") else None
    text = doc.text if doc is not None else span_rag.snapshot.index.texts[span_rag.snapshot.index.doc_ids.index(ans.doc_id)]
    assert text[ans.start : ans.end] == ans.text
    assert ans.sentence is not None
    assert ans.sentence.start <= ans.start < ans.end <= ans.sentence.end
    assert text[ans.sentence.start : ans.sentence.end] == ans.sentence.text
    # A span inside its sentence (equal when the sentence is itself short, e.g. a dateline line
    # such as "29 أكتوبر 2024"; shortness itself is tested on plain contexts above).
    assert len(ans.text) <= len(ans.sentence.text)
    assert 0.0 <= ans.score <= 1.0


def test_the_reader_reads_dialect_question_words_in_msa(corpus_index, e5, scorer):
    from rag.pipeline import RAG

    class Recording:
        """The shipped scorer, noting the question text each call reads."""

        def __init__(self) -> None:
            self.read: list[str] = []

        def __getattr__(self, name):
            return getattr(scorer, name)

        def score(self, question, *args, **kwargs):
            self.read.append(question)
            return scorer.score(question, *args, **kwargs)

    recording = Recording()
    rag = RAG(Settings(index=corpus_index, cache_size=0), embedder=e5, reader=SpanReader(recording))  # type: ignore[arg-type]
    result = rag.ask("مين الرئيس التنفيذي لشركة TMRW؟")
    assert recording.read == ["من الرئيس التنفيذي لشركة TMRW؟"]
    assert result.question == "مين الرئيس التنفيذي لشركة TMRW؟"  # shown as asked


def test_abstains_off_the_corpus(span_rag):
    result = span_rag.ask("What is the recipe for a chocolate cake?")
    assert result.answer is None and not result.answerable


def test_damaged_or_missing_model_is_refused(tmp_path: Path):
    copy = tmp_path / "reader"
    shutil.copytree(default_model_dir(), copy)
    manifest = json.loads((copy / "reader.json").read_text(encoding="utf-8"))
    with open(copy / manifest["model"], "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ReaderModelError, match="damaged"):
        SpanScorer(copy)
    (copy / "reader.json").unlink()
    with pytest.raises(ReaderModelError, match="no reader model"):
        SpanScorer(copy)


def test_span_is_the_default_reader(scorer):
    from rag.stages import make_reader

    reader = make_reader(Settings())
    assert isinstance(reader, SpanReader) and reader.name == "span"


def test_readers_built_from_settings_share_one_model():
    from rag.reader.runtime import shared_scorer

    a = SpanReader.from_settings(Settings())
    b = SpanReader.from_settings(Settings(reader_passages=2))
    assert a.scorer is b.scorer is shared_scorer()
    assert b.span_passages == 2
    # with the shipped pipeline fit, the sentence answering's passages are handed over too
    assert b.sentence is not None and b.context_passages == b.sentence.context_passages


def test_pipeline_fit_ranks_spans_and_calibrates_with_the_pipeline_signals(corpus_index, e5):
    from rag.pipeline import RAG

    reader = SpanReader.from_settings(Settings())
    fit = reader.fit
    assert fit is not None and reader.sentence is not None  # the shipped reader.json carries one
    assert reader.threshold == fit.threshold
    assert reader.features == reader.sentence.features  # RAG checks the upstream stages provide them
    rag = RAG(Settings(index=corpus_index, cache_size=0), embedder=e5, reader=reader)
    index = rag.live().index
    query = rag.analyse("Who is the CEO of TMRW among the forum speakers?").embedded(e5)
    passages = rag.rank(query, reader.context_passages, index)
    evidence = reader.evidence(query, passages, index)
    reading = reader.read(query, passages, index)
    assert evidence and len(reading.candidates) == len(evidence)
    by_z = sorted(evidence, key=lambda e: -fit.score(e))
    assert [a.start for a in reading.candidates] == [e.answer.start for e in by_z]
    assert reading.candidates[0].score == pytest.approx(fit.probability(fit.score(by_z[0])))
    assert sum(e.in_sentence for e in evidence) <= 1 or len({e.answer.doc_id for e in evidence}) < len(evidence)
    # asked for, each span carries how much of the question its sentence says; a fit that weighs it
    # scores it. The shipped fit does not, so by default it is not computed.
    assert fit.coverage_weight == 0 and all(e.coverage is None for e in evidence)
    evidence = reader.evidence(query, passages, index, coverage=True)
    assert all(e.coverage is not None and 0.0 <= e.coverage <= 1.0 for e in evidence)
    said = max(evidence, key=lambda e: e.coverage or 0.0)
    assert said.coverage and "TMRW" in (said.answer.sentence.text if said.answer.sentence else said.answer.text)
    heavier = replace(fit, coverage_weight=fit.coverage_weight + 2.0)
    assert all(heavier.score(e) == pytest.approx(fit.score(e) + 2.0 * (e.coverage or 0.0)) for e in evidence)
    weighing = SpanReader(reader.scorer, sentence=reader.sentence)
    weighing.fit = heavier
    assert all(e.coverage is not None for e in weighing.evidence(query, passages, index))


def test_malformed_pipeline_block_is_refused(tmp_path: Path):
    copy = tmp_path / "reader"
    shutil.copytree(default_model_dir(), copy)
    manifest = json.loads((copy / "reader.json").read_text(encoding="utf-8"))
    manifest["pipeline"] = {"rank_weight": 1.0}
    (copy / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ReaderModelError, match="pipeline"):
        SpanScorer(copy, verify=False)
    del manifest["pipeline"]
    (copy / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    plain = SpanReader.from_settings(Settings(reader_model=copy))
    assert plain.fit is None and plain.sentence is None and plain.features == frozenset()


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "[1, 2]",
        lambda text: text.replace('"calibration"', '"calibration": 5, "_old_calibration"', 1),
        lambda text: text.replace('"model"', '"_model"', 1),
        lambda text: text.replace("{", '{"e5_prefixes": "yes", ', 1),
        lambda text: text.replace('"seen": {', '"seen": {"titles": [], ', 1),
    ],
    ids=["truncated", "a-list", "calibration-a-number", "no-model", "prefixes-not-a-bool", "seen-with-another-list"],
)
def test_a_damaged_manifest_is_a_reader_model_error(tmp_path: Path, damage) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(default_model_dir(), copy)
    manifest = copy / "reader.json"
    manifest.write_text(damage(manifest.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ReaderModelError, match="reader.json"):
        SpanScorer(copy, verify=False)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_model_runs_at_once_are_capped(concurrency):
    """16 clients on 2 cores: ungated, four request threads ran the model at once and the server
    peaked at 746 MB; each run already uses every core, so the others wait their turn."""
    import threading
    import time

    scorer = SpanScorer(concurrency=concurrency)
    session = scorer.session
    active, peak = 0, 0
    lock = threading.Lock()

    class Counting:
        def run(self, *args, **kwargs):
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.05)  # long enough that ungated threads overlap
            try:
                return session.run(*args, **kwargs)
            finally:
                with lock:
                    active -= 1

    scorer.session = Counting()  # type: ignore[assignment]
    ids = scorer.windows("ما عاصمة فرنسا؟", ["عاصمة فرنسا هي باريس."])[0][1]
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(scorer.logits([ids]))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(np.allclose(r[0][0], results[0][0][0]) for r in results)
    assert peak == concurrency


def test_concurrency_is_a_setting():
    reader = SpanReader.from_settings(Settings(reader_concurrency=2))
    assert reader.scorer._gate._value == 2  # type: ignore[attr-defined]


def test_the_run_time_reads_windows_as_training_made_them_with_and_without_e5_prefixes(scorer, tmp_path):
    from rag.reader.data import QAExample, build_windows
    from rag.reader.tokenizer import ReaderTokenizer

    question = "متى وصل مسبار الأمل إلى مدار المريخ؟"
    context = "أطلقت دولة الإمارات مسبار الأمل لاستكشاف كوكب المريخ، ووصل إلى مداره في فبراير 2021."
    start = context.index("فبراير 2021")
    example = QAExample("x", "arcd", "t", 0, question, context, ((start, start + len("فبراير 2021")),))
    copy = tmp_path / "reader"
    shutil.copytree(default_model_dir(), copy)
    manifest = json.loads((copy / "reader.json").read_text(encoding="utf-8"))
    assert not manifest.get("e5_prefixes")  # the shipped model reads plain windows
    manifest["e5_prefixes"] = True
    (copy / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    prefixed = SpanScorer(copy)
    training = ReaderTokenizer(prefixed.weights.vocab)  # the whole vocabulary, as training reads
    for reader, flag in ((scorer, False), (prefixed, True)):
        (window,) = build_windows(training, [example], e5_prefixes=flag)
        ((ci, ids, offsets, first),) = reader.windows(question, [context])
        assert ci == 0 and ids.tolist() == window.ids.tolist() and first == window.context_start
        assert (offsets == window.offsets).all()
    assert len(prefixed.windows(question, [context])[0][1]) > len(scorer.windows(question, [context])[0][1])
