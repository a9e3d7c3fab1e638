"""eval/reader_heldout.py: the held-out sets for one model, and two runs compared question by question."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.reader.runtime import default_model_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def heldout(load_script):
    return load_script("eval/reader_heldout.py")


def _metrics(out: Path, name: str, *, total: int, f1: float, hit: float, answered: float, misses: dict[str, str]) -> None:
    (out / name).mkdir(parents=True)
    failures = [{"id": q, "reason": reason} for q, reason in misses.items()]
    summary = {
        "questions": {"total": total},
        "answer": {"f1": f1, "em": f1 / 2, "hit@1": hit},
        "abstention": {"answered_rate": answered},
        "failures": failures,
    }
    (out / name / "metrics.json").write_text(json.dumps(summary), encoding="utf-8")


def test_compare_counts_fixed_and_broken_questions_and_weighs_sets_by_size(heldout, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _metrics(a, "xquad-ar", total=300, f1=0.5, hit=0.7, answered=0.9, misses={"1": "answer", "2": "abstained", "3": "retrieval"})
    _metrics(a, "qa", total=100, f1=0.6, hit=0.8, answered=0.95, misses={"q1": "false_answer"})
    _metrics(
        b,
        "xquad-ar",
        total=300,
        f1=0.4,
        hit=0.6,
        answered=0.8,
        misses={"2": "abstained", "3": "retrieval", "4": "abstained", "5": "answer"},
    )
    _metrics(b, "qa", total=100, f1=0.7, hit=0.9, answered=0.95, misses={})
    _metrics(b, "arcd", total=50, f1=0.1, hit=0.1, answered=0.5, misses={})  # not in a: left out of the comparison
    before, after = heldout.read_run(a), heldout.read_run(b)
    assert set(after) == {"qa", "xquad-ar", "arcd"}
    assert heldout.weighted_quality(before) == pytest.approx((300 * 1.2 + 100 * 1.4) / 400)
    lines = heldout.compare(before, after)
    row = next(line for line in lines if line.startswith("| xquad-ar (300)"))
    assert row.endswith("| 1 / 1 / 1 → 1 / 2 / 1 | 1 | 2 |")  # fixed: 1; broke: 4, 5
    qa = next(line for line in lines if line.startswith("| qa (100)"))
    assert qa.endswith("| 1 | 0 |")
    assert not any(line.startswith("| arcd") for line in lines)
    weighted = next(line for line in lines if "question-weighted mean" in line)
    assert weighted.endswith("1.2500 → 1.1500 (-0.1000)")  # over the two common sets: (300 * 1.0 + 100 * 1.6) / 400
    assert "no 95% intervals" in lines[-1]  # these runs have no scores.jsonl


def _scores(out: Path, name: str, rows: list[tuple[str, bool, bool, float, float]]) -> None:
    """scores.jsonl beside metrics.json: (id, answerable, answered, hit, f1) of the system, and a baseline line to ignore."""
    lines = []
    for q, answerable, answered, hit, f1 in rows:
        x = {"id": q, "lang": "ar", "answerable": answerable, "answered": answered, "hit": hit, "em": 0.0, "f1": f1}
        lines += [json.dumps({"system": "system", **x}), json.dumps({"system": "sentence", **x, "hit": 1.0, "f1": 1.0})]
    (out / name / "scores.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_compare_gives_paired_intervals_of_the_differences_where_both_runs_kept_scores(heldout, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ids = [str(i) for i in range(40)]
    for out in (a, b):
        _metrics(out, "xquad-ar", total=40, f1=0.5, hit=0.5, answered=1.0, misses={})
        _metrics(out, "qa", total=4, f1=0.5, hit=0.5, answered=1.0, misses={})
    # the second run fixes 10 of the 20 questions the first missed, and breaks none
    _scores(a, "xquad-ar", [(q, True, True, float(int(q) < 20), float(int(q) < 20)) for q in ids])
    _scores(b, "xquad-ar", [(q, True, True, float(int(q) < 30), float(int(q) < 30)) for q in ids])
    # our QA set: two answerable, two unanswerable; the second run abstains on one more of those
    _scores(
        a, "qa", [("q1", True, True, 1.0, 1.0), ("q2", True, False, 0.0, 0.0), ("u1", False, True, 0.0, 0.0), ("u2", False, True, 0.0, 0.0)]
    )
    _scores(
        b,
        "qa",
        [("q1", True, True, 1.0, 1.0), ("q2", True, False, 0.0, 0.0), ("u1", False, False, 0.0, 0.0), ("u2", False, True, 0.0, 0.0)],
    )
    lines = heldout.compare(heldout.read_run(a), heldout.read_run(b))
    xquad = next(line for line in lines if line.startswith("| xquad-ar |"))
    cells = [c.strip() for c in xquad.strip("|").split("|")]
    assert cells[1].startswith("+0.250 [") and cells[1].endswith("*")  # F1: 10 of 40 fixed, none broken
    assert cells[3] == "+0.000 [+0.000, +0.000]"  # answered: the same
    assert cells[4] == "–"  # no unanswerable questions in XQuAD
    qa = next(line for line in lines if line.startswith("| qa |"))
    assert qa.split("|")[5].strip().startswith("+0.500 [")  # abstained on 1 of 2 unanswerable more
    pooled = lines[-1]
    assert "pooled over the 42 answerable questions of qa, xquad-ar" in pooled
    assert pooled.split(": ", 1)[1].startswith("+0.476 [")  # (10 * 2) / 42 of F1 + hit


def _small_data(root: Path) -> Path:
    """../shared/data cut down to one held-out and one other article of each set (real questions)."""
    from rag.evaluation.harness import squad_split
    from rag.reader.data import arcd_split

    def cut(source: Path, target: Path, keep: list[str]) -> None:
        data = json.loads(source.read_text(encoding="utf-8"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps({**data, "data": [a for a in data["data"] if a["title"] in keep]}, ensure_ascii=False), encoding="utf-8"
        )

    xquad = json.loads((DATA / "xquad" / "xquad.ar.json").read_text(encoding="utf-8"))["data"]
    keep = [next(a["title"] for a in xquad if squad_split(a["title"]) == s) for s in ("test", "dev")]
    for lang in ("ar", "en"):  # parallel files: the same titles and question ids
        cut(DATA / "xquad" / f"xquad.{lang}.json", root / "xquad" / f"xquad.{lang}.json", keep)
    arcd = json.loads((DATA / "arcd" / "arcd.train.json").read_text(encoding="utf-8"))["data"]
    keep = [next(a["title"] for a in arcd if arcd_split(a["title"]) == s) for s in ("test", "train")]
    cut(DATA / "arcd" / "arcd.train.json", root / "arcd" / "arcd.train.json", keep)
    return root


@pytest.mark.slow  # starts rag eval processes
@pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="../shared/data is not beside the checkout")
def test_run_evaluates_every_held_out_set_with_the_given_model(corpus_index, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "eval/reader_heldout.py", "run", "--model", str(default_model_dir()), "--out", str(out)]
    cmd += ["--data", str(_small_data(tmp_path / "data")), "--index", str(corpus_index), "--limit", "2"]
    cmd += ["--index-cache", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("qa", "xquad-ar", "xquad-en", "arcd"):
        metrics = json.loads((out / name / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["questions"]["total"] == 2, name
        if name != "qa":
            assert metrics["dataset"]["reader_seen"] == 0, name  # the test articles only: held out
    assert json.loads((out / "xquad-en" / "metrics.json").read_text(encoding="utf-8"))["questions"]["en"] == 2
    assert "chosen on dev:" in (out / "thresholds.md").read_text(encoding="utf-8")
    assert "question-weighted mean of F1 + sentence hit" in proc.stdout
