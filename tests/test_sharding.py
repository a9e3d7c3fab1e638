"""Sharded indexes: partition, the global-row facade, exact merging across shards (same
passages and answers as one index on our QA set), incremental updates that touch only the
owning shard, re-sharding without re-embedding, and several readers over one read-only
directory while a writer publishes a new version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.config import Settings
from rag.index import CURRENT, Index
from rag.ingest import Indexer
from rag.pipeline import RAG
from rag.schema import Document
from rag.sharding import (
    SHARDS,
    ShardedIndex,
    ShardedIndexer,
    _merge,
    _Rows,
    live_version,
    make_indexer,
    open_index,
    read_layout,
    shard_dir,
    shard_of,
)
from rag.testing import MemoEmbedder
from rag.text import tokenize

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "eval" / "qa" / "corpus_qa.jsonl"


# --- partition and merge (no model) --------------------------------------------------------
def test_partition_is_deterministic_and_even():
    ids = [f"doc-{i}" for i in range(8000)]
    first = [shard_of(i, 4) for i in ids]
    assert first == [shard_of(i, 4) for i in ids]
    counts = np.bincount(first, minlength=4)
    assert counts.min() > 1800 and counts.max() < 2200, counts
    assert all(shard_of(i, 1) == 0 for i in ids[:50])


def test_partition_does_not_depend_on_the_process():
    """Python's own hash() is salted per process; the partition must not be."""
    code = "from rag.sharding import shard_of; print([shard_of(f'doc-{i}', 7) for i in range(100)])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""}
    ).stdout
    assert json.loads(out) == [shard_of(f"doc-{i}", 7) for i in range(100)]


def test_rows_view_maps_global_rows_to_shards():
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((n, 4)).astype(np.float32) for n in (3, 0, 5, 2)]
    base = np.cumsum([0] + [len(p) for p in parts])
    rows = _Rows(parts, base, 4)
    full = np.concatenate(parts)
    assert rows.shape == (10, 4) and len(rows) == 10
    np.testing.assert_array_equal(rows[[9, 0, 4, 3]], full[[9, 0, 4, 3]])
    np.testing.assert_array_equal(rows[np.array([2, 3, 8])], full[[2, 3, 8]])
    np.testing.assert_array_equal(rows[4:7], full[4:7])  # inside shard 2
    assert np.shares_memory(rows[4:7], parts[2])  # a view, not a copy
    np.testing.assert_array_equal(rows[1:9], full[1:9])  # across shards
    np.testing.assert_array_equal(rows[5], full[5])
    assert rows[[]].shape == (0, 4)
    np.testing.assert_array_equal(np.asarray(rows), full)
    with pytest.raises(IndexError):
        rows[[10]]


def test_merge_takes_the_global_top_k():
    base = np.array([0, 3, 5])
    parts = [(np.array([0.9, 0.5], np.float32), np.array([2, 0])), (np.array([0.7, 0.5], np.float32), np.array([1, 0]))]
    scores, rows = _merge(parts, base, 3)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.5])
    assert rows.tolist() == [2, 4, 0]  # the 0.5 tie goes to the lower global row


# --- the real corpus, sharded by re-sharding its index ---------------------------------------
@pytest.fixture(scope="module")
def qa() -> list[dict]:
    return [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def queries(e5, qa) -> MemoEmbedder:
    return MemoEmbedder(e5, [q["question"] for q in qa])


@pytest.fixture(scope="module")
def sharded_corpus(tmp_path_factory, corpus_index, e5):
    """The corpus index turned into 3 shards (vectors reused), and what the re-shard did."""
    root = tmp_path_factory.mktemp("sharded") / "index"
    shutil.copytree(corpus_index, root)
    report = ShardedIndexer(root, e5, Settings(index=root), shards=3).ingest([])
    return root, report


def _chunk_ids(index: Index, rows) -> list[str]:
    return [f"{index.chunk_info(int(r)).doc_id}#{index.chunk_info(int(r)).ordinal}" for r in rows]


def test_resharding_a_plain_index_embeds_nothing(sharded_corpus, corpus_index):
    root, report = sharded_corpus
    plain = Index.open(corpus_index)
    assert report.embedded_texts == 0 and sorted(report.unchanged) == sorted(plain.doc_ids)
    assert not report.added and not report.updated and not report.removed
    layout = read_layout(root)
    assert layout["n_shards"] == 3 and [e["dir"] for e in layout["shards"]] == [shard_dir(i, 3) for i in range(3)]
    assert layout["version"] > plain.version and live_version(root) == layout["version"]
    assert not (root / CURRENT).exists() and not list(root.glob("v0*"))  # the plain versions are gone
    for i, entry in enumerate(layout["shards"]):  # each shard is an ordinary index
        shard = Index.open(root / entry["dir"])
        assert shard.version == entry["version"] and all(shard_of(d, 3) == i for d in shard.doc_ids)
        shard.close()
    plain.close()


def test_sharded_index_holds_the_same_rows(sharded_corpus, corpus_index):
    root, _ = sharded_corpus
    plain, sharded = Index.open(corpus_index), open_index(root)
    assert isinstance(sharded, ShardedIndex) and sharded.verify() == []
    assert sorted(sharded.doc_ids) == sorted(plain.doc_ids)
    assert (sharded.n_chunks, sharded.n_sentences) == (plain.n_chunks, plain.n_sentences)
    where = {cid: r for r, cid in enumerate(_chunk_ids(sharded, range(sharded.n_chunks)))}
    for r, cid in enumerate(_chunk_ids(plain, range(plain.n_chunks))):
        g = where[cid]
        assert sharded.chunk_text(g) == plain.chunk_text(r)
        a, b = plain.chunk_info(r), sharded.chunk_info(g)
        assert (a.start, a.end) == (b.start, b.end)
        np.testing.assert_array_equal(sharded.chunk_vectors[[g]], plain.chunk_vectors[[r]])
        s_plain = range(a.first_sentence, a.last_sentence)
        s_shard = range(b.first_sentence, b.last_sentence)
        assert [plain.sentence_text(i) for i in s_plain] == [sharded.sentence_text(i) for i in s_shard]
        np.testing.assert_array_equal(
            sharded.sentence_vectors[b.first_sentence : b.last_sentence], plain.sentence_vectors[a.first_sentence : a.last_sentence]
        )
    assert sharded.idf() == plain.idf()  # the answer stage's IDF is global
    plain.close()
    sharded.close()


def _same_up_to_ties(ids_a, scores_a, ids_b, scores_b) -> bool:
    """Equal ranked lists, except that chunks with equal scores may come in either order
    (and a tie at the cut may keep either)."""
    if len(ids_a) != len(ids_b) or not np.allclose(scores_a, scores_b, rtol=1e-5, atol=1e-6):
        return False
    groups: dict[float, tuple[set, set]] = {}
    for ia, ib, s in zip(ids_a, ids_b, np.round(scores_a, 4).tolist(), strict=False):
        groups.setdefault(s, (set(), set()))
        groups[s][0].add(ia)
        groups[s][1].add(ib)
    last = min(groups, default=None)
    return all(a == b for s, (a, b) in groups.items() if s != last)


def test_dense_and_bm25_lists_are_the_unsharded_ones(sharded_corpus, corpus_index, qa, queries):
    """Dense merging is exact; BM25 with global statistics gives the unsharded list."""
    from rag import dense

    root, _ = sharded_corpus
    plain, sharded = Index.open(corpus_index), open_index(root)
    for q in qa:
        v = queries.embed_queries([q["question"]])[0]
        ds, dr = dense.search(plain.dense, v, 50)
        ss, sr = dense.search(sharded.dense, v, 50)
        assert _same_up_to_ties(_chunk_ids(plain, dr), ds, _chunk_ids(sharded, sr), ss)
        tokens = tokenize(q["question"])
        bs, br = plain.bm25.search_tokens(tokens, 20)
        ts, tr = sharded.bm25.search_tokens(tokens, 20)
        assert _same_up_to_ties(_chunk_ids(plain, br), bs, _chunk_ids(sharded, tr), ts), q["question"]
    plain.close()
    sharded.close()


def test_shard_local_bm25_scores_would_not_do(sharded_corpus, corpus_index, qa):
    """Why the global statistics: merging the shards' own BM25 scores changes the lists."""
    root, _ = sharded_corpus
    plain = Index.open(corpus_index)
    local = open_index(root)

    def local_scores(tokens, k):  # merge the shards' own scores, no re-scoring
        parts = local.map_shards(lambda s: s.bm25.search_tokens(tokens, k))
        return _merge(parts, local.chunk_base, k)

    differ = 0
    for q in qa:
        tokens = tokenize(q["question"])
        _, br = plain.bm25.search_tokens(tokens, 10)
        _, lr = local_scores(tokens, 10)
        differ += _chunk_ids(plain, br) != _chunk_ids(local, lr)
    assert differ >= 0.2 * len(qa), differ  # 76 of the 139 top-10 lists with these 3 shards
    plain.close()
    local.close()


def test_answers_match_the_unsharded_index_on_the_qa_set(sharded_corpus, corpus_index, qa, queries):
    root, _ = sharded_corpus
    plain = RAG(Settings(index=corpus_index, cache_size=0), embedder=queries)
    sharded = RAG(Settings(index=root, cache_size=0), embedder=queries)
    assert isinstance(sharded.snapshot.index, ShardedIndex)
    same_top = same_answer = hit_plain = hit_sharded = 0
    for q in qa:
        a, b = plain.ask(q["question"]), sharded.ask(q["question"])
        ca = [(p.doc_id, p.start, p.end) for p in a.citations]
        cb = [(p.doc_id, p.start, p.end) for p in b.citations]
        same_top += ca[:1] == cb[:1]

        def key(r):
            return (r.answerable, r.answer and (r.answer.doc_id, r.answer.start, r.answer.end))

        same_answer += key(a) == key(b)
        if q.get("doc_id"):
            hit_plain += ca[0][0] == q["doc_id"]
            hit_sharded += cb[0][0] == q["doc_id"]
    n = len(qa)
    assert hit_sharded == hit_plain
    assert same_top >= 0.95 * n and same_answer >= 0.95 * n, (same_top, same_answer, n)


# --- writes ---------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture()
def small_sharded(tmp_path, e5, small_docs) -> Path:
    root = tmp_path / "index"
    report = ShardedIndexer(root, e5, Settings(index=root), shards=2).ingest(small_docs)
    assert sorted(report.added) == sorted(d.doc_id for d in small_docs) and report.version == 1
    return root


def test_an_update_rewrites_only_the_owning_shard(small_sharded, e5, small_docs):
    root = small_sharded
    before = read_layout(root)
    changed = Document(small_docs[0].doc_id, small_docs[0].title, small_docs[0].text + " وتستمر القمة ثلاثة أيام.")
    owner = shard_of(changed.doc_id, 2)
    report = make_indexer(root, e5, Settings(index=root)).ingest([changed, *small_docs[1:]])
    after = read_layout(root)
    assert report.updated == [changed.doc_id] and sorted(report.unchanged) == sorted(d.doc_id for d in small_docs[1:])
    assert after["version"] == before["version"] + 1 == report.version
    for i in range(2):
        bumped = after["shards"][i]["version"] != before["shards"][i]["version"]
        assert bumped == (i == owner)
    idx = open_index(root)
    r = idx.doc_row[changed.doc_id]
    assert report.embedded_texts == int((idx.chunk_doc == r).sum() + (idx.sentence_doc == r).sum())
    assert idx.texts[r] == changed.text
    idx.close()
    # nothing changed: nothing written
    again = make_indexer(root, e5, Settings(index=root)).ingest([changed])
    assert again.version == after["version"] and read_layout(root) == after and again.embedded_texts == 0


def test_remove_and_prune(small_sharded, e5, small_docs):
    root = small_sharded
    writer = make_indexer(root, e5, Settings(index=root))
    with pytest.raises(KeyError, match="nope"):
        writer.remove(["nope", small_docs[0].doc_id])
    assert read_layout(root)["version"] == 1  # nothing written
    report = writer.remove([small_docs[0].doc_id])
    assert report.removed == [small_docs[0].doc_id] and report.version == 2
    assert small_docs[0].doc_id not in open_index(root).doc_row
    report = writer.ingest(small_docs[1:2], prune=True)
    assert sorted(report.removed) == sorted(d.doc_id for d in small_docs[2:])
    assert open_index(root).doc_ids == [small_docs[1].doc_id]


def test_resharding_keeps_every_document_and_drops_the_old_shards(small_sharded, e5, small_docs):
    root = small_sharded
    report = ShardedIndexer(root, e5, Settings(index=root), shards=3).ingest([])
    assert report.embedded_texts == 0 and sorted(report.unchanged) == sorted(d.doc_id for d in small_docs)
    assert sorted(p.name for p in root.glob("shard-*")) == [shard_dir(i, 3) for i in range(3)]
    idx = open_index(root)
    assert sorted(idx.doc_ids) == sorted(d.doc_id for d in small_docs) and idx.verify() == []


def test_a_pipeline_serves_and_writes_a_sharded_index(small_sharded, e5):
    rag = RAG(Settings(index=small_sharded), embedder=e5)
    result = rag.ask("When did UNESCO inscribe Arabic coffee?")
    assert result.answer is not None and result.answer.doc_id == "en_coffee"
    assert result.index_version == 1
    tea = Document(
        "en_tea", "Mint tea", "Mint tea is served in small glasses across North Africa. It is brewed with green tea and fresh mint leaves."
    )
    report = rag.ingest_documents([tea])
    assert report.added == ["en_tea"] and rag.snapshot.index.version == 2
    assert rag.ask("What is mint tea brewed with?").answer.doc_id == "en_tea"
    rag.remove(["en_tea"])
    assert "en_tea" not in rag.snapshot.index.doc_row


READER = r"""
import json, sys
from rag.config import Settings
from rag.pipeline import RAG

rag = RAG(Settings(index=sys.argv[1], reload_interval_s=0, cache_size=0))

def show():
    r = rag.ask(sys.argv[2])
    print(json.dumps({"version": rag.snapshot.index.version, "doc_id": r.answer and r.answer.doc_id}), flush=True)

show()
for line in sys.stdin:
    rag.reload()
    show()
"""


@pytest.mark.slow  # a second process reads the index
@pytest.mark.parametrize("layout", ["plain", "sharded"])
def test_readers_share_a_read_only_directory_while_a_writer_publishes(layout, tmp_path, e5, small_docs):
    """Two readers (this process and another one) open the index without writing a byte,
    keep answering from their version while a third party writes the next one, and move to
    it on ``reload()``."""
    root = tmp_path / "index"
    make_indexer(root, e5, Settings(index=root), shards=2 if layout == "sharded" else None).ingest(small_docs)
    question = "When did UNESCO inscribe Arabic coffee?"
    pristine = _tree(root)

    local = RAG(Settings(index=root, reload_interval_s=0, cache_size=0), embedder=e5)
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, str(root), question],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(proc.stdout.readline() or proc.stderr.read())
        assert first == {"version": 1, "doc_id": "en_coffee"}
        assert local.ask(question).answer.doc_id == "en_coffee"
        assert _tree(root) == pristine  # opening and querying wrote nothing

        tea = Document(
            "en_tea",
            "Mint tea",
            "Mint tea is served in small glasses across North Africa. It is brewed with green tea and fresh mint leaves.",
        )
        report = make_indexer(root, e5, Settings(index=root)).ingest([tea])  # the writer
        assert report.version == 2
        still = local.ask(question)  # before reload: the old version, intact
        assert still.index_version == 1 and still.answer.doc_id == "en_coffee"

        proc.stdin.write("reload\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"version": 2, "doc_id": "en_coffee"}
        local.reload()
        assert local.snapshot.index.version == 2 and "en_tea" in local.snapshot.index.doc_row
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


# --- the command line -----------------------------------------------------------------------
def test_cli_builds_a_sharded_index_and_describes_it(tmp_path, small_docs, e5):
    from rag.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "400", "NO_COLOR": "1"}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for d in small_docs:
        (corpus / f"{d.doc_id}.txt").write_text(f"{d.title}\n\n{d.text}\n", encoding="utf-8")
    index = tmp_path / "index"
    r = runner.invoke(app, ["ingest", str(corpus), "--index", str(index), "--shards", "2"], env=env)
    assert r.exit_code == 0, r.output
    assert "4 added" in r.output and (index / SHARDS).is_file()
    r = runner.invoke(app, ["ingest", str(corpus), "--index", str(index)], env=env)  # keeps its shards
    assert r.exit_code == 0 and "4 unchanged" in r.output and read_layout(index)["n_shards"] == 2
    r = runner.invoke(app, ["info", "--index", str(index)], env=env)
    assert r.exit_code == 0, r.output
    assert "shards" in r.output and "memory per service process" in r.output and "ivfpq" in r.output
    r = runner.invoke(app, ["ask", "When did UNESCO inscribe Arabic coffee?", "--json", "--index", str(index)], env=env)
    assert r.exit_code == 0 and json.loads(r.output)["answer"]["doc_id"] == "en_coffee"
    r = runner.invoke(app, ["verify", "--index", str(index)], env=env)
    assert r.exit_code == 0, r.output


def test_a_plain_index_stays_plain_unless_asked_to_shard(tmp_path, e5, small_docs):
    root = tmp_path / "index"
    Indexer(root, e5, Settings(index=root)).ingest(small_docs[:1])
    assert not isinstance(make_indexer(root, e5, Settings(index=root)), ShardedIndexer)
    assert isinstance(make_indexer(root, e5, Settings(index=root), shards=2), ShardedIndexer)


def test_a_symlink_swap_rolls_out_a_release(tmp_path, e5, small_docs):
    """docs/deployment.md's roll-out: copy the live release, update the copy, swap the link."""
    releases = tmp_path / "releases"
    first = releases / "a"
    Indexer(first, e5, Settings(index=first)).ingest(small_docs)
    link = tmp_path / "index"
    link.symlink_to(first)
    serving = RAG(Settings(index=link, reload_interval_s=0.01, cache_size=0), embedder=e5)
    old_index = serving.snapshot.index
    assert old_index.version == 1

    second = releases / "b"
    shutil.copytree(first, second)
    tea = Document(
        "en_tea", "Mint tea", "Mint tea is served in small glasses across North Africa. It is brewed with green tea and fresh mint leaves."
    )
    Indexer(second, e5, Settings(index=second)).ingest([tea])
    nxt = tmp_path / "index.next"
    nxt.symlink_to(second)
    nxt.replace(link)  # rename(2): the atomic switch

    time.sleep(0.02)
    result = serving.ask("What is mint tea brewed with?")  # the query notices the new release
    assert result.index_version == 2 and result.answer.doc_id == "en_tea"
    # the index opened before the swap still reads its own release
    assert old_index.path.parent == first.resolve() and "en_tea" not in old_index.doc_row
    assert old_index.verify() == []
