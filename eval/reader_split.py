"""Write the articles of one reader split of a SQuAD-format file (by default ARCD's) as a new
SQuAD file, so ``rag eval --squad`` can run the held-out articles alone:

    python eval/reader_split.py ../shared/data/arcd/arcd.train.json test /tmp/arcd.test.json

The split is ``rag.reader.data.arcd_split`` (md5 of the title: 0-1 test, 2 dev, 3-9 train), the
one the span reader was trained and calibrated with; ``--xquad`` uses ``xquad_split`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.reader.data import arcd_split, xquad_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("split", choices=["train", "dev", "test"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--xquad", action="store_true", help="split by xquad_split (train/test) instead of arcd_split")
    args = ap.parse_args()
    split_of = xquad_split if args.xquad else arcd_split
    data = json.loads(args.source.read_text(encoding="utf-8"))
    kept = [a for a in data["data"] if split_of(str(a.get("title") or "untitled")) == args.split]
    args.out.write_text(json.dumps({**data, "data": kept}, ensure_ascii=False), encoding="utf-8")
    n = sum(len(p["qas"]) for a in kept for p in a["paragraphs"])
    print(f"{len(kept)} articles, {n} questions -> {args.out}")


if __name__ == "__main__":
    main()
