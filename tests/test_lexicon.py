"""rag.lexicon: the index's Arabic words, embedded, as BM25 terms for English questions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import lexicon
from rag.config import Settings
from rag.lexicon import Lexicon, arabic_words, build, question_words
from rag.testing import WordHashEmbedder
from rag.text import tokenize

TEXTS = [
    "بلغ عدد السكان في المدينة مليون نسمة، وتقع المدينة على ضفة النهر.",
    "أعلنت الحكومة نتائج الانتخابات في الجامعة.",
    "يسكن في المدينة الجديدة نصف السكان.",
]


class CountingEmbedder:
    """The real e5, counting the texts it embeds."""

    def __init__(self, e5) -> None:
        self._e5, self.model_id, self.dim, self.embedded = e5, e5.model_id, e5.dim, 0

    def embed_queries(self, texts):
        self.embedded += len(texts)
        return self._e5.embed_queries(texts)


def test_question_words_are_the_english_content_words_once() -> None:
    assert question_words("How many speakers take part in the Forum? The forum's speakers!") == ("speakers", "take", "part", "forum")
    assert question_words("كم عدد المتحدثين في منتدى TMRW؟") == ("tmrw",)
    assert len(question_words(" ".join(f"word{chr(97 + i % 26)}x{chr(97 + i // 26)}" for i in range(40)))) == lexicon.MAX_QUESTION_WORDS


def test_arabic_words_keep_those_in_most_documents_and_drop_stop_words() -> None:
    words = arabic_words(TEXTS, 1000)
    assert words == sorted(words) and "المدينة" in words and "السكان" in words
    assert "في" not in words and "على" not in words  # no BM25 token
    assert all(tokenize(w) for w in words)
    assert arabic_words(["الحُكومة الحكومـــة"], 10) == ["الحكومة"]  # diacritics and tatweel do not split or double a word
    top = arabic_words(TEXTS, 2)
    assert set(top) == {"المدينة", "السكان"}  # the two words in two documents


def test_translate_takes_the_nearest_words_above_the_threshold_once() -> None:
    vectors = np.eye(4, dtype=np.float16)
    lex = Lexicon(("السكان", "المدينة", "النهر", "الجامعة"), vectors, min_cosine=0.5)
    tok = lex.tokens
    assert tok == tuple(tokenize(w)[0] for w in lex.words) and len(set(tok)) == 4
    query = np.array([[0.6, 0.8, 0.0, 0.0], [0.0, 0.0, 0.2, 0.1], [0.0, 0.9, 0.0, 0.0]], np.float32)  # the second: too far from all
    assert lex.translate(query, k=2) == [tok[1], tok[0]]  # nearest first, each once
    assert lex.translate(query, k=1) == [tok[1]]
    assert Lexicon(lex.words, vectors, min_cosine=0.7).translate(query, k=2) == [tok[1]]
    assert lex.translate(np.zeros((0, 4), np.float32)) == []
    assert lex.neighbours(query, k=2) == [[tok[1], tok[0]], [], [tok[1]]]  # one list per word, in order
    with pytest.raises(ValueError, match="vectors"):
        Lexicon(("a",), np.zeros((2, 4), np.float16), 0.5)


def test_english_words_find_their_arabic_translations_with_e5(e5) -> None:
    lex = build(TEXTS, e5, None, 1000)
    assert lex is not None and lex.vectors.dtype == np.float32 and lex.vectors.shape == (len(lex), e5.dim)
    words = ["population", "city", "elections", "university"]
    got = [lex.translate(e5.embed_queries([w])) for w in words]
    for english, arabic, terms in zip(words, ["السكان", "المدينة", "الانتخابات", "الجامعة"], got, strict=True):
        assert tokenize(arabic)[0] in terms, (english, terms)


def test_a_new_version_embeds_only_its_new_words(e5, tmp_path: Path) -> None:
    counting = CountingEmbedder(e5)
    first = build(TEXTS[:2], counting, None, 1000)
    assert first is not None and counting.embedded == len(first)
    counting.embedded = 0
    second = build(TEXTS, counting, first, 1000)
    assert second is not None and counting.embedded == len(set(second.words) - set(first.words)) > 0
    row = second.words.index("السكان")
    assert np.array_equal(second.vectors[row], first.vectors[first.words.index("السكان")])
    second.save(tmp_path)
    assert np.load(tmp_path / "lexicon.npy").dtype == np.float16  # half the bytes on disk
    loaded = Lexicon.load(tmp_path, e5.model_id)
    assert loaded is not None and loaded.words == second.words and np.array_equal(loaded.vectors, second.vectors)
    assert Lexicon.load(tmp_path, "some/other-model") is None  # not measured for it
    assert Lexicon.load(tmp_path / "missing", e5.model_id) is None  # an index built before lexicons


def test_an_embedder_not_measured_gets_no_lexicon() -> None:
    assert build(TEXTS, WordHashEmbedder(), None, 1000) is None


def test_merge_keeps_each_word_once() -> None:
    a = Lexicon(("السكان", "المدينة"), np.eye(3, dtype=np.float16)[:2], 0.5)
    b = Lexicon(("المدينة", "النهر"), np.eye(3, dtype=np.float16)[1:], 0.5)
    merged = Lexicon.merge([a, b])
    assert merged is not None and merged.words == ("السكان", "المدينة", "النهر") and merged.vectors.shape == (3, 3)
    assert Lexicon.merge([]) is None


def test_ingest_stores_a_lexicon_that_the_index_opens(small_index: Path, e5) -> None:
    from rag.index import Index

    index = Index.open(small_index)
    assert index.lexicon is not None and len(index.lexicon) > 10
    assert {"lexicon.npy", "lexicon.json"} <= set(index.manifest["files"])  # checksummed like every file
    assert Settings().lexicon_words == 50_000


def test_adding_a_document_extends_the_lexicon_and_keeps_the_old_vectors(small_index_copy: Path, e5) -> None:
    from rag.index import Index
    from rag.ingest import Indexer
    from rag.schema import Document

    before = Index.open(small_index_copy).lexicon
    assert before is not None and "مهرجان" in before.words
    doc = Document("ar_oryx", "المها العربي", "يعيش المها العربي في الصحراء ويتحمل العطش طويلا.")
    Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([doc])
    after = Index.open(small_index_copy).lexicon
    assert after is not None and {"الصحراء", "العطش"} <= set(after.words) and set(before.words) <= set(after.words)
    old = before.words.index("مهرجان")
    assert np.array_equal(after.vectors[after.words.index("مهرجان")], before.vectors[old])
    none = Settings(index=small_index_copy, lexicon_words=0)
    Indexer(small_index_copy, e5, none).ingest([Document("ar_x", "س", "نص قصير آخر عن الصحراء.")])
    assert Index.open(small_index_copy).lexicon is None  # RAG_LEXICON_WORDS=0: no lexicon, English BM25 as before


def test_a_word_is_embedded_once_with_its_first_question(e5) -> None:
    counting = CountingEmbedder(e5)
    counting.model_id = e5.model_id + "#counting"  # a cache of its own
    vector, words = lexicon.embed_with_words(counting, "Where is the festival held?", ("festival", "held"))
    assert counting.embedded == 3 and words is not None and words.shape == (2, e5.dim)
    assert np.allclose(vector, e5.embed_queries(["Where is the festival held?"])[0])
    assert np.allclose(words[0], e5.embed_queries(["festival"])[0])
    again, words2 = lexicon.embed_with_words(counting, "When is the festival?", ("festival",))
    assert counting.embedded == 4 and words2 is not None and np.array_equal(words2[0], words[0])  # only the question
    assert lexicon.embed_with_words(counting, "Where?", ())[1] is None


def test_resharding_reuses_the_word_vectors_and_the_shards_merge_their_lexicons(small_index_copy: Path, e5) -> None:
    from rag.index import Index
    from rag.sharding import ShardedIndexer, open_index

    class Spy(CountingEmbedder):
        def embed_passages(self, texts):
            return self._e5.embed_passages(texts)

        def token_count(self, text: str) -> int:
            return self._e5.token_count(text)

    plain = Index.open(small_index_copy).lexicon
    assert plain is not None
    spy = Spy(e5)
    ShardedIndexer(small_index_copy, spy, Settings(index=small_index_copy), shards=2).ingest([])
    assert spy.embedded == 0  # neither chunks nor words embedded again
    sharded = open_index(small_index_copy)
    assert sharded.lexicon is not None and set(sharded.lexicon.words) == set(plain.words)
    row = sharded.lexicon.words.index("مهرجان")
    assert np.array_equal(sharded.lexicon.vectors[row], plain.vectors[plain.words.index("مهرجان")])
    sharded.close()


def test_ingest_reports_the_words_it_embeds(tmp_path: Path, e5, small_docs) -> None:
    from rag.ingest import Indexer

    seen: list[tuple[str, int, int]] = []
    Indexer(tmp_path / "index", e5, Settings(index=tmp_path / "index"), progress=lambda *a: seen.append(a)).ingest(small_docs)
    words = [(done, total) for stage, done, total in seen if stage == "words"]
    assert words and words[-1][0] == words[-1][1] > 10
