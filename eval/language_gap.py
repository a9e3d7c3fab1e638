"""Measure an embedder's same-language gap: how much higher it scores a sentence written in
the question's language than the same sentence in the other language.

The answer stage takes this gap off same-language sentences (``rag.retrieval.SAME_LANGUAGE_GAP``)
so an English headline in an Arabic article does not win English questions on language
alone. The gap belongs to a model; measure it for yours on a parallel SQuAD-format pair
(XQuAD Arabic and English) and add it to that table under the model's id:

    python eval/language_gap.py ../shared/data/xquad/xquad.ar.json ../shared/data/xquad/xquad.en.json

For each question of the dev split (by article, as ``rag eval`` splits), the gold answer's
sentence is taken from both versions of the paragraph; the gap for English questions is
mean(cos(q_en, s_en) - cos(q_en, s_ar)), and the other way round for Arabic.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.config import Settings  # noqa: E402
from rag.embedding import Embedder, make_embedder  # noqa: E402
from rag.evaluation.harness import squad_split  # noqa: E402
from rag.text import sentence_spans  # noqa: E402


@dataclass(frozen=True)
class ParallelItem:
    question_ar: str
    question_en: str
    sentence_ar: str
    sentence_en: str


def _answer_sentence(context: str, start: int) -> str | None:
    for s, e in sentence_spans(context):
        if s <= start < e:
            return context[s:e]
    return None


def parallel_items(ar_path: Path | str, en_path: Path | str, split: str = "dev", limit: int | None = 300) -> list[ParallelItem]:
    """Questions present in both files with the gold answer's sentence in each language."""
    ar = json.loads(Path(ar_path).read_text(encoding="utf-8"))["data"]
    en = json.loads(Path(en_path).read_text(encoding="utf-8"))["data"]
    out: list[ParallelItem] = []
    for art_ar, art_en in zip(ar, en, strict=False):
        if split != "all" and squad_split(art_ar["title"]) != split:
            continue
        for p_ar, p_en in zip(art_ar["paragraphs"], art_en["paragraphs"], strict=False):
            by_id = {q["id"]: q for q in p_en["qas"]}
            for q_ar in p_ar["qas"]:
                q_en = by_id.get(q_ar["id"])
                if q_en is None or not q_ar["answers"] or not q_en["answers"]:
                    continue
                s_ar = _answer_sentence(p_ar["context"], q_ar["answers"][0]["answer_start"])
                s_en = _answer_sentence(p_en["context"], q_en["answers"][0]["answer_start"])
                if s_ar and s_en:
                    out.append(ParallelItem(q_ar["question"], q_en["question"], s_ar, s_en))
    return out[:limit] if limit else out


def measure(embedder: Embedder, items: list[ParallelItem]) -> dict[str, dict[str, float]]:
    """{"en": {"gap", "sd", "n"}, "ar": {...}} for questions in each language."""
    if not items:
        raise ValueError("no parallel questions with answer sentences in both files")
    q_ar = embedder.embed_queries([i.question_ar for i in items])
    q_en = embedder.embed_queries([i.question_en for i in items])
    s_ar = embedder.embed_passages([i.sentence_ar for i in items])
    s_en = embedder.embed_passages([i.sentence_en for i in items])

    def stats(diff: np.ndarray) -> dict[str, float]:
        return {"gap": round(float(diff.mean()), 4), "sd": round(float(diff.std()), 4), "n": len(diff)}

    return {
        "en": stats((q_en * s_en).sum(1) - (q_en * s_ar).sum(1)),
        "ar": stats((q_ar * s_ar).sum(1) - (q_ar * s_en).sum(1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arabic", help="SQuAD-format file, Arabic (XQuAD xquad.ar.json)")
    ap.add_argument("english", help="the parallel English file (xquad.en.json)")
    ap.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    ap.add_argument("--limit", type=int, default=300, help="questions to use (0: all)")
    args = ap.parse_args(argv)
    embedder = make_embedder(Settings())
    result = measure(embedder, parallel_items(args.arabic, args.english, args.split, args.limit or None))
    print(json.dumps({"model_id": embedder.model_id, **result}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
