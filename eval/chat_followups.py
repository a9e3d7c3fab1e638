"""What the chat endpoint answers to a follow-up turn: the measurement behind "Update 10" in
eval/RESULTS.md.

Each row of eval/qa/chat_followups.jsonl is a conversation of two user turns over the default
corpus: a question of our QA set (the topic), then the next question of the set as a person
would type it as the next chat message ("وأين انعقد؟", "and what is its budget for 2025?"); its
gold answers are that question's. The conversation goes through ``api.conversation`` as the
endpoint's does, and each follow-up is answered twice: the reader reading the joined
"topic turn" (before) and the reader reading ``rag.text.follow_up_for_reader`` (what the service
does). Retrieval reads the joined text in both. Turns that do not resolve as follow-ups are
answered alike by both and are counted in the "all" rows.

    python eval/chat_followups.py                  # dev and test, over the index in RAG_INDEX (default index/)
    python eval/chat_followups.py --split test --rows build/followups.json
"""

from __future__ import annotations

import argparse
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
    "joined": lambda resolved: analyse(resolved.question),  # the reader reads "topic turn"
    "follow-up": lambda resolved: resolved.query(),  # what the service does
}


@dataclass(frozen=True)
class Scored:
    id: str
    split: str
    arm: str
    follow_up: bool  # resolved as a follow-up (else both arms ask the turn alone)
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
    """One row per split, scope ("all" | "follow-ups") and arm."""
    rows = []
    for split in sorted({s.split for s in scored}):
        for scope in ("all", "follow-ups"):
            for arm in ARMS:
                part = [s for s in scored if s.split == split and s.arm == arm and (scope == "all" or s.follow_up)]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default=None, help="default: both")
    ap.add_argument("--rows", type=Path, default=None, help="also write every row's answers here (JSON)")
    args = ap.parse_args()
    from rag.config import Settings
    from rag.pipeline import RAG

    settings = Settings(cache_size=0)
    rag = RAG(settings)
    scored = measure(load(split=args.split), lambda q: rag.ask(q).answer, rag.embedder.token_count, settings.chat_topic_tokens)
    print("| split | rows | reader reads | answerable | F1 | sentence hit | answered | unanswerable | abstained |")
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
