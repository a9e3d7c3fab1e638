"""The span reader's abstention trade-off: answered vs abstained (and F1) at each threshold.

The reader abstains when its answer probability is below ``threshold`` (reader.json; the
service's ``RAG_READER_THRESHOLD`` overrides it). This runs the full pipeline once per question
with the threshold at 0, keeps each best answer and its probability, and tabulates, for every
threshold, the share of answerable questions answered, of unanswerable questions abstained on,
and the answer F1 (0 when abstaining) on our QA set's dev and test splits:

    python eval/reader_threshold.py --index index [--pick]

``--pick`` prints the threshold chosen on dev: the highest whose dev answered rate stays >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.config import Settings  # noqa: E402
from rag.evaluation.harness import load_jsonl, select  # noqa: E402
from rag.evaluation.metrics import f1_score  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.reader.runtime import SpanReader  # noqa: E402

THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)


def collect(rag: RAG, reader: SpanReader, qaset: Path, split: str) -> list[dict]:
    """Per question: the reader's confidence (number guard applied or not) and its best span's F1."""
    index = rag.live().index
    rows = []
    for item in select(load_jsonl(qaset), split):  # type: ignore[arg-type]
        query = rag.analyse(item.question).embedded(rag.embedder)
        passages = rag.rank(query, reader.context_passages, index)[: reader.context_passages]
        reading = reader.read(query, passages, index)
        best = reading.candidates[0] if reading.candidates else None
        rows.append(
            {
                "id": item.id,
                "lang": item.lang,
                "answerable": item.answerable,
                "p": reading.confidence,
                "f1": f1_score(best.text, item.answers) if best and item.answerable else 0.0,
            }
        )
    return rows


def table(rows: list[dict]) -> list[dict]:
    out = []
    pos = [r for r in rows if r["answerable"]]
    neg = [r for r in rows if not r["answerable"]]
    for t in THRESHOLDS:
        out.append(
            {
                "threshold": t,
                "answered": sum(r["p"] >= t for r in pos) / max(1, len(pos)),
                "abstained": sum(r["p"] < t for r in neg) / max(1, len(neg)),
                "f1": sum(r["f1"] for r in pos if r["p"] >= t) / max(1, len(pos)),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("index"))
    ap.add_argument("--qaset", type=Path, default=Path(__file__).with_name("qa") / "corpus_qa.jsonl")
    ap.add_argument("--pick", action="store_true", help="print the threshold chosen on dev")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-number-guard", action="store_true", help="ignore the missing-number rule (to measure it)")
    args = ap.parse_args()
    settings = Settings(index=args.index, cache_size=0, reader="span")
    reader = SpanReader.from_settings(settings)
    reader.threshold = 0.0
    reader.require_numbers = not args.no_number_guard
    rag = RAG(settings, reader=reader)
    result = {split: table(collect(rag, reader, args.qaset, split)) for split in ("dev", "test")}
    if args.json:
        print(json.dumps(result))
    else:
        print("| threshold | dev answered | dev abstained | dev F1 | test answered | test abstained | test F1 |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for d, t in zip(result["dev"], result["test"], strict=True):
            print(
                f"| {d['threshold']:.2f} | {d['answered']:.2f} | {d['abstained']:.2f} | {d['f1']:.3f} | {t['answered']:.2f} | {t['abstained']:.2f} | {t['f1']:.3f} |"
            )
    if args.pick:
        ok = [d["threshold"] for d in result["dev"] if d["answered"] >= 0.90]
        print(f"chosen on dev: {max(ok) if ok else 0.0}")


if __name__ == "__main__":
    main()
