"""The shipped span reader as the pipeline's Reader stage, over the real corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.reader.runtime import ReaderModelError, SpanReader, SpanScorer, default_model_dir
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


def test_window_input_is_bounded(scorer):
    long_question = "ما " * 500
    long_context = "كلمة " * 3000
    windows = scorer.windows(long_question, [long_context])
    assert all(len(ids) <= scorer.manifest.max_len for _, ids, _, _ in windows)
    assert len(windows) > 1  # the long passage is read in several windows, not cut


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
    assert len(ans.text) < len(ans.sentence.text)  # a span inside its sentence, not the sentence
    assert 0.0 <= ans.score <= 1.0


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
    assert b.context_passages == 2
