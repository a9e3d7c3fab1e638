"""Ingestion on Ray builds the same index as the single-process path: same documents, chunk
ids and offsets, sentence offsets; vectors equal within float noise; the same answers on
every question of our QA set. One local Ray (2 CPUs) for the whole module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.config import Settings
from rag.distributed import RayEngine, token_groups
from rag.index import Index
from rag.ingest import Indexer, content_hash
from rag.loading import load_paths
from rag.pipeline import RAG
from rag.schema import Document
from rag.sharding import open_index, read_layout
from rag.testing import MemoEmbedder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
QA = ROOT / "eval" / "qa" / "corpus_qa.jsonl"


def test_token_groups_follow_the_budget():
    docs = [(Document(f"d{i}", "", "x" * n), "") for i, n in enumerate([700, 700, 700, 7000, 350, 350])]
    groups = token_groups(docs, budget=500)  # 3.5 characters a token: 200, 200, 200, 2000, 100, 100
    assert groups == [[0, 1], [2], [3], [4, 5]]
    assert [i for g in groups for i in g] == list(range(len(docs)))  # every document once, in order
    assert token_groups([], 500) == []


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")  # the ray extra (in dev)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def engine(ray_session, e5) -> RayEngine:
    return RayEngine(Settings(), workers=2, expect=(e5.model_id, e5.dim))


@pytest.fixture(scope="module")
def ray_corpus(tmp_path_factory, engine, e5):
    """The corpus read and indexed on Ray: (loaded documents, index root, report)."""
    loaded = engine.load([CORPUS])
    root = tmp_path_factory.mktemp("ray") / "index"
    report = Indexer(root, e5, Settings(index=root)).ingest(loaded.documents, prepare=engine)
    return loaded, root, report


@pytest.mark.slow  # a local Ray cluster and the real model
def test_files_read_on_ray_are_the_loaded_documents(ray_corpus, corpus_documents):
    loaded, _, report = ray_corpus
    assert loaded.documents == corpus_documents and loaded.skipped == []
    assert sorted(report.added) == sorted(d.doc_id for d in corpus_documents)
    assert "prepare" in report.timings_s


@pytest.mark.slow  # a local Ray cluster and the real model
def test_unreadable_inputs_are_skipped_the_same_way(engine, tmp_path):
    (tmp_path / "good.txt").write_text("عنوان\n\nنص عربي قصير عن النخيل.", encoding="utf-8")
    (tmp_path / "bad.bin").write_bytes(b"\x00\x01")
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text('{"id": "j1", "text": "English record."}\n{not json}\n', encoding="utf-8")
    paths = [tmp_path, tmp_path / "missing.txt"]
    assert engine.load(paths) == load_paths(paths)


@pytest.mark.slow  # a local Ray cluster and the real model
def test_same_documents_chunks_and_sentences(ray_corpus, corpus_index):
    _, root, _ = ray_corpus
    a, b = Index.open(root), Index.open(corpus_index)
    assert a.doc_ids == b.doc_ids and a.titles == b.titles and a.texts == b.texts and a.hashes == b.hashes
    assert a.langs == b.langs and a.urls == b.urls

    def chunks(i: Index) -> list[tuple]:
        infos = [i.chunk_info(r) for r in range(i.n_chunks)]
        return [(c.doc_id, c.ordinal, c.start, c.end, c.first_sentence, c.last_sentence, i.chunk_tokens[c.row]) for c in infos]

    assert chunks(a) == chunks(b)  # chunk ids (doc, ordinal), offsets, sentence ranges, BM25 tokens
    for name in ("sentence_doc", "sentence_start", "sentence_end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.manifest["counts"] == b.manifest["counts"] and a.manifest["documents"] == b.manifest["documents"]
    assert a.model_id == b.model_id and a.verify() == []


def _cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


@pytest.mark.slow  # a local Ray cluster and the real model
def test_vectors_are_equal_within_float_noise(ray_corpus, corpus_index):
    _, root, _ = ray_corpus
    a, b = Index.open(root), Index.open(corpus_index)
    for name in ("chunk_vectors", "sentence_vectors"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape
        assert np.abs(x - y).max() < 1e-4
        assert _cosines(x, y).min() > 0.9999


@pytest.mark.slow  # a local Ray cluster and the real model
def test_same_answers_on_the_qa_set(ray_corpus, corpus_index, e5):
    _, root, _ = ray_corpus
    qa = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    questions = [q["question"] for q in qa]
    queries = MemoEmbedder(e5, questions)  # each question embedded once, for both pipelines

    on_ray = RAG(Settings(index=root, cache_size=0), embedder=queries)
    local = RAG(Settings(index=corpus_index, cache_size=0), embedder=queries)

    def key(r):
        a = r.answer
        return r.answerable, a and (a.doc_id, a.start, a.end), [(c.doc_id, c.start, c.end) for c in r.citations]

    for q in questions:
        assert key(on_ray.ask(q)) == key(local.ask(q)), q


@pytest.mark.slow  # a local Ray cluster and the real model
def test_an_update_on_ray_embeds_only_what_changed(tmp_path, engine, e5, small_docs):
    root = tmp_path / "index"
    indexer = Indexer(root, e5, Settings(index=root))
    first = indexer.ingest(small_docs, prepare=engine)
    assert sorted(first.added) == sorted(d.doc_id for d in small_docs)
    changed = Document("en_coffee", "Arabic coffee", small_docs[3].text + " Guests shake the cup to decline more.")
    report = indexer.ingest([*small_docs[:3], changed], prepare=engine)
    assert report.updated == ["en_coffee"] and len(report.unchanged) == 3
    idx = Index.open(root)
    r = idx.doc_row["en_coffee"]
    assert report.embedded_texts == int((idx.chunk_doc == r).sum() + (idx.sentence_doc == r).sum())
    assert idx.hashes["en_coffee"] == content_hash(changed) and idx.verify() == []


@pytest.mark.slow  # a local Ray cluster and the real model
def test_workers_with_another_model_are_refused(ray_session, e5, small_docs):
    wrong = RayEngine(Settings(), workers=1, expect=("some/other-model", e5.dim))
    with pytest.raises(RuntimeError, match="other-model"):
        wrong.prepare([(small_docs[0], content_hash(small_docs[0]))], {})


@pytest.mark.slow  # a local Ray cluster and the real model
def test_cli_engine_ray_builds_plain_and_sharded_indexes(ray_session, tmp_path, small_docs, e5):
    from rag.cli import app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for d in small_docs:
        (corpus / f"{d.doc_id}.txt").write_text(f"{d.title}\n\n{d.text}\n", encoding="utf-8")
    runner = CliRunner()
    env = {"COLUMNS": "400", "NO_COLOR": "1"}
    plain, sharded = tmp_path / "plain", tmp_path / "sharded"
    r = runner.invoke(app, ["ingest", str(corpus), "--index", str(plain), "--engine", "ray", "--workers", "2"], env=env)
    assert r.exit_code == 0, r.output
    assert "4 added" in r.output
    r = runner.invoke(app, ["ingest", str(corpus), "--index", str(sharded), "--engine", "ray", "--shards", "2"], env=env)
    assert r.exit_code == 0, r.output
    assert read_layout(sharded)["n_shards"] == 2
    a, b = Index.open(plain), open_index(sharded)
    assert sorted(a.doc_ids) == sorted(b.doc_ids) and a.n_chunks == b.n_chunks and b.verify() == []
    r = runner.invoke(app, ["ingest", str(corpus), "--index", str(plain), "--address", "auto"], env=env)
    assert r.exit_code != 0  # --address without --engine ray
