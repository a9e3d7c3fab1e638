"""The span reader's held-out sets in one command, and two models compared on them question by question.

Issue 14's goals are measured on four held-out sets: XQuAD's test articles (Arabic questions, and
English questions over the same Arabic paragraphs), ARCD's test articles (``eval/reader_split.py``)
and our QA set's test split, each with ``rag eval --no-baselines`` (the span reader and the sentence
answering from the same retrieval), plus the abstention trade-off of ``eval/reader_threshold.py``.
``run`` does all five for one model folder and keeps each report; ``compare`` reads two such runs:

    rag ingest                                                         # the default corpus index, if not built
    python eval/reader_heldout.py run --model models/reader --out build/ho/shipped        # ~10 minutes alone
    python eval/reader_heldout.py run --model build/new --out build/ho/new
    python eval/reader_heldout.py compare build/ho/shipped build/ho/new

``compare`` prints, per set, F1 / EM / sentence hit / answered and how the misses split (wrong
answer, abstained, retrieval), the questions the second run fixed and broke, and the
question-weighted mean of F1 + sentence hit over the four sets (the figure a shipping rule can
name). Where both runs wrote ``scores.jsonl`` (``rag eval --report`` does), it adds each
difference's 95% interval, paired question by question (``rag.evaluation.uncertainty``), and
that of F1 + sentence hit pooled over every answerable question of the sets. These are held-out
sets: decide on dev (``eval/reader_ensemble.py``), then run these once and report them, win or
lose.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from rag.evaluation.uncertainty import Interval, paired_difference  # noqa: E402

# name -> the `rag eval` arguments after the binary (reports go to OUT/name; {data} is --data, and
# the ARCD file is written by eval/reader_split.py into OUT first)
SETS: dict[str, list[str]] = {
    "qa": ["eval/qa/corpus_qa.jsonl", "--split", "test"],
    "xquad-ar": ["--squad", "{data}/xquad/xquad.ar.json", "--split", "test"],
    "xquad-en": ["--squad", "{data}/xquad/xquad.ar.json", "--questions", "{data}/xquad/xquad.en.json", "--split", "test"],
    "arcd": ["--squad", "{out}/arcd.test.json"],
}


@dataclass(frozen=True)
class SetResult:
    """One set's ``rag eval`` metrics.json, the system (span reader) column."""

    name: str
    questions: int
    f1: float
    em: float
    hit: float
    answered: float
    misses: dict[str, str]  # question id -> reason (answer, abstained, false_answer, retrieval)
    scores: dict[str, dict] | None = None  # question id -> the system's line of scores.jsonl (None: a run without it)

    @classmethod
    def read(cls, path: Path) -> SetResult:
        d = json.loads(path.read_text(encoding="utf-8"))
        a = d["answer"]
        scores_file = path.with_name("scores.jsonl")
        scores = None
        if scores_file.is_file():
            lines = (json.loads(line) for line in scores_file.read_text(encoding="utf-8").splitlines() if line.strip())
            scores = {str(x["id"]): x for x in lines if x["system"] == "system"}
        return cls(
            name=path.parent.name,
            questions=int(d["questions"]["total"]),
            f1=float(a["f1"]),
            em=float(a["em"]),
            hit=float(a["hit@1"]),
            answered=float(d["abstention"]["answered_rate"]),
            misses={str(f["id"]): str(f["reason"]) for f in d["failures"]},
            scores=scores,
        )

    def miss_kinds(self) -> str:
        """Its misses as wrong (an answer that misses, or one to an unanswerable question) / abstained / retrieval."""
        c = Counter(self.misses.values())
        return f"{c['answer'] + c['false_answer']} / {c['abstained']} / {c['retrieval']}"


def read_run(out: Path) -> dict[str, SetResult]:
    """The sets of one ``run`` folder (those it holds)."""
    return {name: SetResult.read(out / name / "metrics.json") for name in SETS if (out / name / "metrics.json").is_file()}


def weighted_quality(run: dict[str, SetResult]) -> float:
    """Mean of F1 + sentence hit over all questions of the sets (each set weighs its size)."""
    n = sum(r.questions for r in run.values())
    return sum(r.questions * (r.f1 + r.hit) for r in run.values()) / n if n else 0.0


def compare(a: dict[str, SetResult], b: dict[str, SetResult]) -> list[str]:
    """Lines of the comparison of run ``b`` against run ``a`` over the sets both hold."""
    common = [name for name in SETS if name in a and name in b]
    lines = [
        "| set | F1 | EM | sentence hit | answered | misses (wrong / abstained / retrieval) | fixed | broke |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for name in common:
        x, y = a[name], b[name]
        fixed = set(x.misses) - set(y.misses)
        broke = set(y.misses) - set(x.misses)

        lines.append(
            f"| {name} ({x.questions}) | {x.f1:.3f} → {y.f1:.3f} | {x.em:.3f} → {y.em:.3f} | {x.hit:.3f} → {y.hit:.3f} "
            f"| {x.answered:.3f} → {y.answered:.3f} | {x.miss_kinds()} → {y.miss_kinds()} | {len(fixed)} | {len(broke)} |"
        )
    qa, qb = weighted_quality({n: a[n] for n in common}), weighted_quality({n: b[n] for n in common})
    lines.append(f"\nquestion-weighted mean of F1 + sentence hit: {qa:.4f} → {qb:.4f} ({qb - qa:+.4f})")
    return lines + differences(a, b, common)


# (column, which questions, a question's score from its scores.jsonl line)
_COLUMNS: tuple[tuple[str, bool, Callable[[dict], float]], ...] = (
    ("F1", True, lambda x: float(x["f1"])),
    ("sentence hit", True, lambda x: float(x["hit"])),
    ("answered (answerable)", True, lambda x: float(x["answered"])),
    ("abstained (unanswerable)", False, lambda x: float(not x["answered"])),
)


def _paired(a: dict[str, dict], b: dict[str, dict], answerable: bool, score: Callable[[dict], float]) -> tuple[list[float], list[float]]:
    """One score of the questions both runs scored (those answerable or not), before and after."""
    ids = [q for q, x in a.items() if q in b and x["answerable"] == answerable]
    return [score(a[q]) for q in ids], [score(b[q]) for q in ids]


def differences(a: dict[str, SetResult], b: dict[str, SetResult], common: list[str]) -> list[str]:
    """The 95% intervals of the differences, per set and pooled (the sets both runs scored question by question)."""
    paired = [(n, sa, sb) for n in common if (sa := a[n].scores) is not None and (sb := b[n].scores) is not None]
    if not paired:
        return ["\n(no 95% intervals: a run without scores.jsonl, from before `rag eval --report` wrote it)"]

    def cell(iv: Interval | None) -> str:
        return "–" if iv is None else iv.signed() + (" *" if iv.excludes_zero else "")

    lines = [
        "\n95% intervals of the differences (after − before), paired question by question; * = the interval excludes 0:",
        "",
        "| set | " + " | ".join(c for c, _, _ in _COLUMNS) + " |",
        "|---|" + "---|" * len(_COLUMNS),
    ]
    for n, sa, sb in paired:
        lines.append(f"| {n} | " + " | ".join(cell(paired_difference(*_paired(sa, sb, ans, f))) for _, ans, f in _COLUMNS) + " |")
    before: list[float] = []
    after: list[float] = []
    for _, sa, sb in paired:
        x, y = _paired(sa, sb, True, lambda q: float(q["f1"]) + float(q["hit"]))
        before += x
        after += y
    names = ", ".join(n for n, _, _ in paired)
    lines.append(
        f"\nF1 + sentence hit, pooled over the {len(before)} answerable questions of {names}: {cell(paired_difference(before, after))}"
    )
    return lines


def summary(run: dict[str, SetResult]) -> list[str]:
    """One line per set of one run, and the weighted mean."""
    lines = [
        f"{r.name} ({r.questions}): F1 {r.f1:.3f}, EM {r.em:.3f}, sentence hit {r.hit:.3f}, answered {r.answered:.3f}" for r in run.values()
    ]
    return [*lines, f"question-weighted mean of F1 + sentence hit: {weighted_quality(run):.4f}"]


def run(
    model: Path,
    out: Path,
    *,
    data: Path = DATA,
    index: Path = ROOT / "index",
    limit: int | None = None,
    index_cache: Path = ROOT / "build" / "heldout-index",
) -> None:
    """All held-out sets for ``model``, reports under ``out``, then the threshold table
    (``thresholds.md``; our QA set's dev and test splits, whole whatever ``limit``). ``index`` is
    the default corpus's, for our QA set."""
    if not (model / "reader.json").is_file():
        sys.exit(f"error: {model} holds no reader.json (a model folder, e.g. models/reader)")
    # the commands run from the checkout root: paths given relative to here must survive that
    model, out, data, index, index_cache = (p.resolve() for p in (model, out, data, index, index_cache))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAG_READER_MODEL": str(model)}
    py = sys.executable
    split = [py, "eval/reader_split.py", str(data / "arcd" / "arcd.train.json"), "test", str(out / "arcd.test.json")]
    subprocess.run(split, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    for name, args in SETS.items():
        cmd = [py, "-m", "rag.cli", "eval", *(x.format(out=out, data=data) for x in args), "--no-baselines", "--report", str(out / name)]
        cmd += ["--index-cache", str(index_cache)] if "--squad" in args else ["--index", str(index)]
        cmd += ["--limit", str(limit)] if limit else []
        print(f"{name}: rag {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    threshold = [py, "eval/reader_threshold.py", "--index", str(index), "--pick"]
    table = subprocess.run(threshold, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    (out / "thresholds.md").write_text(table.stdout, encoding="utf-8")
    print("\n".join(summary(read_run(out))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the held-out sets for one model")
    r.add_argument("--model", type=Path, required=True, help="the model folder (reader.json and its ONNX file)")
    r.add_argument("--out", type=Path, required=True, help="where the reports go")
    r.add_argument("--data", type=Path, default=DATA, help="the folder holding xquad/ and arcd/ (../shared/data)")
    r.add_argument("--index", type=Path, default=ROOT / "index", help="the default corpus's index (rag ingest), for our QA set")
    r.add_argument("--limit", type=int, help="only the first N questions of each set (a smoke run)")
    r.add_argument("--index-cache", type=Path, default=ROOT / "build" / "heldout-index", help="the SQuAD sets' indexes")
    c = sub.add_parser("compare", help="compare two runs question by question")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.command == "run":
        run(args.model, args.out, data=args.data, index=args.index, limit=args.limit, index_cache=args.index_cache)
    else:
        a, b = read_run(args.before), read_run(args.after)
        if not a or not b:
            sys.exit(f"error: no metrics.json under {args.before if not a else args.after} (run `run` first)")
        print("\n".join(compare(a, b)))


if __name__ == "__main__":
    main()
