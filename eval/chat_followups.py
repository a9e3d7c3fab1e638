"""What the chat endpoint answers to the next turn of a conversation: the measurement behind
"Update 10" and "Update 12" in eval/RESULTS.md.

Each row of eval/qa/chat_followups.jsonl is a conversation of two user turns over the default
corpus: a question of our QA set (the topic), then the next question of the set as a person
would type it as the next chat message ("وأين انعقد؟", "and what is its budget for 2025?"); its
gold answers are that question's. Rows with ``"form": "refers"`` refer back without a
continuation word ("Who will host it in 2040?", "من أدار الجلسة في هذا المنتدى؟"). The
conversation goes through ``api.conversation`` as the endpoint's does, and each turn is answered
three ways (arms): the turn asked alone, ignoring the conversation ("alone"); the joined
"topic turn" read by the reader ("joined"); what the service does ("service": a follow-up is
retrieved joined and read with ``rag.text.follow_up_for_reader``, any other turn is asked
alone). The "follow-ups" rows of the table are the turns the service resolves as follow-ups.

    python eval/chat_followups.py                  # dev and test, over the index in RAG_INDEX (default index/)
    python eval/chat_followups.py --split test --rows build/followups.json

With distractors (a harder retrieval, closer to a real corpus than five documents):

    python eval/chat_followups.py --distractors build/distractors   # writes the articles once
    rag ingest ../shared/corpus build/distractors --index build/distractor-index
    RAG_INDEX=build/distractor-index python eval/chat_followups.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.conversation import resolve_question  # noqa: E402
from api.schemas import ChatMessage  # noqa: E402
from rag.evaluation.metrics import contains_answer, f1_score  # noqa: E402
from rag.schema import Answer  # noqa: E402
from rag.stages import Query, analyse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "eval" / "qa" / "chat_followups.jsonl"
# (name, the query the reader gets for a resolved conversation)
ARMS: dict[str, Callable] = {
    "alone": lambda resolved: analyse(resolved.turn),  # the conversation ignored
    "joined": lambda resolved: analyse(resolved.question),  # the reader reads "topic turn"
    "service": lambda resolved: resolved.query(),  # what the service does
}
SCOPES = ("all", "follow-ups", "refers")


@dataclass(frozen=True)
class Scored:
    id: str
    split: str
    form: str  # "" or "refers"
    arm: str
    follow_up: bool  # resolved as a follow-up (else every arm asks the turn alone)
    answerable: bool
    answered: bool
    f1: float  # 0 for an abstention; 0 for every unanswerable row
    sentence_hit: float
    answer: str | None
    reading: str


def load(path: Path = SET, split: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split in (None, r["split"])]


def measure(
    rows: list[dict], ask: Callable[[Query], Answer | None], count_tokens: Callable[[str], int] | None = None, topic_tokens: int = 48
) -> list[Scored]:
    """Each row answered by each arm; ``ask(query)`` is the pipeline's answer or None."""
    out = []
    for r in rows:
        messages = [ChatMessage(role="user", content=r["topic"]), ChatMessage(role="user", content=r["turn"])]
        resolved = resolve_question(messages, count_tokens, topic_tokens)
        assert resolved is not None
        for arm, query_of in ARMS.items():
            query = query_of(resolved)
            answer = ask(query)
            golds = r["answers"]
            sentence = (answer.sentence.text if answer.sentence else answer.text) if answer else ""
            out.append(
                Scored(
                    id=r["id"],
                    split=r["split"],
                    form=r.get("form", ""),
                    arm=arm,
                    follow_up=resolved.topic is not None,
                    answerable=bool(golds),
                    answered=answer is not None,
                    f1=f1_score(answer.text, golds) if answer and golds else 0.0,
                    sentence_hit=contains_answer(sentence, golds) if answer and golds else 0.0,
                    answer=answer.text if answer else None,
                    reading=query.reading,
                )
            )
    return out


def table(scored: list[Scored]) -> list[dict]:
    """One row per split, scope ("all" | "follow-ups" | "refers") and arm."""
    rows = []
    for split in sorted({s.split for s in scored}):
        for scope in SCOPES:
            for arm in ARMS:
                part = [s for s in scored if s.split == split and s.arm == arm and _in_scope(s, scope)]
                yes = [s for s in part if s.answerable]
                no = [s for s in part if not s.answerable]
                rows.append(
                    {
                        "split": split,
                        "scope": scope,
                        "arm": arm,
                        "answerable": len(yes),
                        "f1": sum(s.f1 for s in yes) / max(1, len(yes)),
                        "sentence_hit": sum(s.sentence_hit for s in yes) / max(1, len(yes)),
                        "answered": sum(s.answered for s in yes) / max(1, len(yes)),
                        "unanswerable": len(no),
                        "abstained": sum(not s.answered for s in no),
                    }
                )
    return rows


def _in_scope(s: Scored, scope: str) -> bool:
    return scope == "all" or (scope == "follow-ups" and s.follow_up) or (scope == "refers" and s.form == "refers")


def write_distractors(out: Path, data: Path = ROOT.parent / "shared" / "data") -> int:
    """One text file per Wikipedia article of XQuAD (Arabic) and ARCD train under ``out``, title
    first (an article listed twice under one title is one file): unrelated documents for the
    conversations' retrieval to pass over. Returns the number of files."""
    articles: dict[tuple[str, str], list[str]] = {}
    for name, path in (("xquad", data / "xquad" / "xquad.ar.json"), ("arcd", data / "arcd" / "arcd.train.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            articles.setdefault((name, article["title"]), []).extend(p["context"] for p in article["paragraphs"])
    out.mkdir(parents=True, exist_ok=True)
    for (name, title), paragraphs in articles.items():
        key = hashlib.md5(title.encode("utf-8")).hexdigest()[:10]  # noqa: S324 (a file name, not security)
        (out / f"{name}_{key}.txt").write_text("\n\n".join([title, *paragraphs]), encoding="utf-8")
    return len(articles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default=None, help="default: both")
    ap.add_argument("--rows", type=Path, default=None, help="also write every row's answers here (JSON)")
    ap.add_argument("--distractors", type=Path, default=None, help="write the distractor articles here and stop")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="where xquad/ and arcd/ are (for --distractors)")
    args = ap.parse_args()
    if args.distractors:
        print(f"{write_distractors(args.distractors, args.data)} articles written to {args.distractors}")
        return
    from rag.config import Settings
    from rag.pipeline import RAG

    settings = Settings(cache_size=0)
    rag = RAG(settings)
    scored = measure(load(split=args.split), lambda q: rag.ask(q).answer, rag.embedder.token_count, settings.chat_topic_tokens)
    print("| split | rows | arm | answerable | F1 | sentence hit | answered | unanswerable | abstained |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for t in table(scored):
        print(
            f"| {t['split']} | {t['scope']} | {t['arm']} | {t['answerable']} | {t['f1']:.3f} | {t['sentence_hit']:.3f} "
            f"| {t['answered']:.3f} | {t['unanswerable']} | {t['abstained']} |"
        )
    if args.rows:
        args.rows.write_text(json.dumps([s.__dict__ for s in scored], ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
