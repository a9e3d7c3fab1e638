"""BM25: the statistics a sharded index needs (document frequencies, IDF, per-token weights)
and the re-scoring with given statistics, which must equal bm25s's own scores."""

from __future__ import annotations

import numpy as np

from rag.lexical import BM25Index
from rag.text import tokenize

CHUNKS = [
    "تضم دولة الإمارات أكثر من 40 مليون نخلة وتنتج المزارع مئات الأصناف من التمور",
    "أطلقت دولة الإمارات مسبار الأمل لاستكشاف كوكب المريخ",
    "Arabic coffee is brewed from lightly roasted beans and flavoured with cardamom",
    "Arabic coffee is served with dates, and dates are served with coffee",
    "",
]
TOKENS = [tokenize(c) for c in CHUNKS]


def test_document_frequencies_count_rows():
    index = BM25Index.build(TOKENS)
    df = index.document_frequencies()
    for token in {t for toks in TOKENS for t in toks}:
        assert df[token] == sum(token in toks for toks in TOKENS)
    assert BM25Index.build([]).document_frequencies() == {}


def test_score_with_the_index_statistics_is_bm25s_score():
    index = BM25Index.build(TOKENS)
    df = index.document_frequencies()
    avg_len = np.mean([max(len(t), 1) for t in TOKENS])
    for query in ["Arabic coffee dates", "دولة الإمارات", "coffee coffee cardamom", "nothing here"]:
        q = tokenize(query)
        scores, rows = index.search_tokens(q, len(CHUNKS))
        mine = BM25Index.score(q, [" ".join(TOKENS[r]) for r in range(len(CHUNKS))], df, len(CHUNKS), avg_len)
        np.testing.assert_allclose(mine[rows], scores, rtol=1e-5)
        assert np.all(mine[np.setdiff1d(np.arange(len(CHUNKS)), rows)] == 0)


def test_token_weights_scale_each_token_contribution():
    index = BM25Index.build(TOKENS)
    q = tokenize("Arabic dates")
    per_token = {t: dict(zip(*reversed(index.search_tokens([t], 10)), strict=False)) for t in q}
    scores, rows = index.search_tokens(q, 10, token_weights={q[0]: 2.0, q[1]: 0.5})
    for r, s in zip(rows.tolist(), scores.tolist(), strict=False):
        expected = 2.0 * per_token[q[0]].get(r, 0.0) + 0.5 * per_token[q[1]].get(r, 0.0)
        assert abs(s - expected) < 1e-5


def test_idf_is_the_lucene_variant():
    assert BM25Index.idf(1, 10) > BM25Index.idf(5, 10) > 0
    assert abs(BM25Index.idf(10, 10) - np.log(1 + 0.5 / 10.5)) < 1e-12


def test_search_returns_bm25s_scores_best_first_with_ties_in_row_order():
    # many equal chunks make ties; "cardamom" (one posting) takes the sparse path, the others
    # (postings over 1/32 of the rows) the dense one: both must give bm25s's exact values
    chunks = [["تمر", "نخلة"]] * 6 + [["coffee", "dates"]] * 5 + [["coffee"], ["نخلة", "coffee", "cardamom"]] + [["x"]] * 30
    index = BM25Index.build(chunks)
    for query in (["cardamom"], ["نخلة"], ["coffee"], ["coffee", "نخلة", "coffee"], ["cardamom", "dates"], ["x"], ["x", "coffee"]):
        dense = index._model.get_scores(query)
        for k in (1, 3, 7, 50):
            scores, rows = index.search_tokens(query, k)
            assert np.array_equal(scores, dense[rows])  # bit-identical values
            positive = np.flatnonzero(dense > 0)
            assert len(rows) == min(k, len(positive))
            expected = sorted(positive.tolist(), key=lambda r: (-dense[r], r))[:k]
            assert rows.tolist() == expected
