"""Fitting the span reader's pipeline weights (rag.reader.ensemble) on small synthetic rows."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.reader.ensemble import COVERAGE_WEIGHTS, Weights, auc, best, choose, cross_fitted_abstention, out_of_fold, selection_quality
from rag.reader.package import fit_calibration


def _cand(margin: float, rank: int, in_sentence: bool, logit: float, good: bool, mass: float | None = None) -> dict:
    return {
        "margin": margin,
        "mass": margin if mass is None else mass,
        "rank": rank,
        "in_sentence": float(in_sentence),
        "sentence_logit": logit,
        "f1": float(good),
        "sentence_hit": float(good),
    }


def _covering_rows(rng: random.Random, n: int) -> tuple[list[dict], list[dict]]:
    """Answerable rows whose right span's sentence says the question (coverage 1) but often has
    the lower margin, and near misses whose best span's sentence says half of it."""
    answerable, near = [], []
    for i in range(n):
        right = {**_cand(rng.uniform(0, 3), 0, False, 0.0, True), "coverage": 1.0}
        wrong = {**_cand(right["margin"] + rng.uniform(-1, 1.5), 0, False, 0.0, False), "coverage": 0.5}
        answerable.append({"id": f"q{i}", "answerable": True, "cands": [right, wrong]})
        miss = {**_cand(rng.uniform(0, 4), 0, False, 0.0, False), "coverage": 0.5}
        near.append({"id": f"q{i}", "answerable": False, "cands": [miss]})
    return answerable, near


def test_a_coverage_weight_is_chosen_only_where_the_grid_offers_one():
    answerable, near = _covering_rows(random.Random(5), 80)
    plain, *_ = choose([answerable], extra=near)
    w, _, _, report = choose([answerable], extra=near, coverage=COVERAGE_WEIGHTS)
    assert plain.coverage == 0.0 and w.coverage > 0
    assert all(best(r, w)["f1"] == 1.0 for r in answerable)
    assert report["quality"] == 2.0 > selection_quality(answerable, plain)
    assert report["cross_fitted_quality"] == 2.0
    # rows collected before coverage existed read as coverage 0: the weight changes nothing there
    old = [{**r, "cands": [{k: v for k, v in c.items() if k != "coverage"} for c in r["cands"]]} for r in answerable]
    assert selection_quality(old, w) == selection_quality(old, Weights(w.rank, w.sentence, w.confidence, w.mass))


def test_abstention_is_scored_on_the_half_the_fit_did_not_see():
    answerable, near = _covering_rows(random.Random(6), 120)
    plain = cross_fitted_abstention([answerable], near)
    covered = cross_fitted_abstention([answerable], near, coverage=COVERAGE_WEIGHTS)
    assert len(plain) == len(covered) == 2
    for answered, abstained in [*plain, *covered]:
        assert 0.0 <= answered <= 1.0 and 0.0 <= abstained <= 1.0
    # the coverage weight lifts every right span above the near misses' spans
    assert sum(a for _, a in covered) > sum(a for _, a in plain)
    assert all(answered >= 0.85 for answered, _ in covered)


def test_calibration_converges_on_large_scores():
    # Scores of a few tens made the plain Newton fit (started at a = 1) overflow and diverge.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 15, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-(0.1 * z - 0.5)))
    a, b = fit_calibration(z.tolist(), y.tolist())
    assert math.isfinite(a) and math.isfinite(b)
    assert a == pytest.approx(0.1, abs=0.02) and b == pytest.approx(-0.5, abs=0.15)


def test_weights_prefer_the_span_inside_the_sentence_pick_when_that_is_right():
    rng = random.Random(1)
    rows = []
    for _ in range(60):
        # the right span sits in the sentence answering's pick but often has the lower margin
        right = _cand(rng.uniform(0, 3), rng.randrange(4), True, 1.0, True)
        wrong = _cand(right["margin"] + rng.uniform(-1, 1.5), rng.randrange(4), False, 1.0, False)
        rows.append({"answerable": True, "cands": [right, wrong]})
    plain = selection_quality(rows, Weights(0.0, 0.0))
    w, _, _, report = choose([rows])
    assert w.sentence > 0
    assert selection_quality(rows, w) == report["quality"] > plain
    assert all(best(r, w)["f1"] == 1.0 for r in rows)


def test_weights_use_the_sentence_mass_when_it_tells_the_right_span():
    rng = random.Random(3)
    rows = []
    for _ in range(60):
        # the right sentence holds many likely spans (mass well above its best span) but its
        # best span has the lower margin
        right = _cand(rng.uniform(0, 3), 0, False, 0.0, True)
        right["mass"] = right["margin"] + 3.0
        wrong = _cand(right["margin"] + rng.uniform(0.1, 1.5), 0, False, 0.0, False)
        wrong["mass"] = wrong["margin"] + 0.2
        rows.append({"answerable": True, "cands": [right, wrong]})
    assert selection_quality(rows, Weights(0.0, 0.0)) == 0.0
    w, _, _, report = choose([rows])
    assert w.mass > 0 and w.rank == w.sentence == 0  # the smallest weights that pick right
    assert report["quality"] == 2.0 and all(best(r, w)["f1"] == 1.0 for r in rows)


def _pick_rows(rng: random.Random, n: int, pick_is_right: bool) -> list[dict]:
    """Rows whose right span has the lower margin; it lies in the sentence answering's pick, or
    (``pick_is_right`` False) the wrong one does."""
    rows = []
    for _ in range(n):
        right = _cand(rng.uniform(0, 3), 0, pick_is_right, 1.0, True)
        wrong = _cand(right["margin"] + rng.uniform(0.1, 1.5), 0, not pick_is_right, 1.0, False)
        rows.append({"answerable": True, "cands": [right, wrong]})
    return rows


def test_out_of_fold_weights_come_from_the_other_folds_only():
    rng = random.Random(5)
    # folds 1 and 2 reward the sentence pick; fold 3 punishes it
    folds = [{"qa": _pick_rows(rng, 30, True)}, {"qa": _pick_rows(rng, 30, True)}, {"qa": _pick_rows(rng, 30, False)}]
    report = out_of_fold(folds, ["qa"], Weights(0.0, 0.0))
    by = {(r["fold"], r["fit"]): r for r in report}
    assert {r["fit"] for r in report} == {"fit", "other folds", "margin alone"}
    for k in (1, 2):  # chosen on folds that share the pattern: right every time out of fold
        assert by[k, "other folds"]["weights"].sentence > 0
        assert by[k, "other folds"]["qa"] == 2.0 > by[k, "margin alone"]["qa"]
    # fold 3's own rows never choose its weights, so the other folds' pattern fails on it
    assert by[3, "other folds"]["weights"].sentence > 0
    assert by[3, "other folds"]["qa"] == 0.0
    assert by[3, "fit"]["qa"] == by[3, "margin alone"]["qa"]


def test_threshold_keeps_most_answerable_questions_answered():
    rng = random.Random(2)
    pos = [{"answerable": True, "cands": [_cand(rng.gauss(3, 2), 0, True, rng.gauss(1, 1), True)]} for _ in range(200)]
    neg = [{"answerable": False, "cands": [_cand(rng.gauss(0, 2), 0, False, rng.gauss(-1, 1), False)]} for _ in range(200)]
    neg.append({"answerable": False, "cands": []})  # nothing read: counts as abstained
    w, (a, b), threshold, report = choose([pos], extra=neg)
    assert w.confidence > 0  # the sentence answering's confidence separates the two here
    p = [1 / (1 + math.exp(-(a * w.z(r["cands"][0]) + b))) for r in pos]
    assert sum(x >= threshold for x in p) / len(p) >= 0.90
    row = next(t for t in report["trade_off"] if t["threshold"] == threshold)
    assert row["abstained"] > 0.5


def test_auc():
    assert auc([2, 3], [0, 1]) == 1.0
    assert auc([0], [1]) == 0.0
    assert auc([1], [1]) == 0.5


def test_the_fit_script_refuses_to_refit_a_model_trained_on_dev(tmp_path):
    # eval/reader_ensemble.py fits on the ARCD dev articles; a model trained on them (--all-data)
    # keeps the fit carried from the model trained without them
    script = Path(__file__).resolve().parents[1] / "eval" / "reader_ensemble.py"
    (tmp_path / "reader.json").write_text(json.dumps({"model": "reader.int8.onnx", "fit_from": {"sha256": "abc123"}}), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), "--model", str(tmp_path), "--write"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "trained on the dev split too" in done.stderr and "abc123" in done.stderr
    assert json.loads((tmp_path / "reader.json").read_text(encoding="utf-8")).get("pipeline") is None


def test_the_fit_script_carries_a_fit_only_to_the_model_that_carries_it(tmp_path):
    # --carry-to writes the fit of a model trained without dev into the all-data model of the same
    # recipe; any other model (its fit_from names another) is refused before anything is fitted
    script = Path(__file__).resolve().parents[1] / "eval" / "reader_ensemble.py"
    source, target = tmp_path / "source", tmp_path / "target"
    for folder, manifest in ((source, {"sha256": "aaa111"}), (target, {"fit_from": {"sha256": "bbb222"}})):
        folder.mkdir()
        (folder / "reader.json").write_text(json.dumps({"model": "reader.int8.onnx", **manifest}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "--model", str(source), "--carry-to", str(target)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "aaa111" in done.stderr and "refusing" in done.stderr
    assert "pipeline" not in json.loads((target / "reader.json").read_text(encoding="utf-8"))
    # --repoint lifts the refusal (a fit on a larger dev split): the run then goes on to read the
    # source model, which here is no model, so it fails there and the target is still not written
    done = subprocess.run(
        [sys.executable, str(script), "--model", str(source), "--carry-to", str(target), "--repoint", "--index", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "refusing" not in done.stderr
    assert "pipeline" not in json.loads((target / "reader.json").read_text(encoding="utf-8"))
    # but not to a model of another recipe: the splits, threads and device may differ, the rest not
    for folder, config in (
        (source, {"lr": 2e-4, "soup": 2, "xquad_dev": True, "threads": 2}),
        (target, {"lr": 1e-4, "soup": 2, "all_data": True}),
    ):
        manifest = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        (folder / "reader.json").write_text(json.dumps({**manifest, "history": {"config": config}}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "--model", str(source), "--carry-to", str(target), "--repoint"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "refusing" in done.stderr and "(lr differ)" in done.stderr
    assert "pipeline" not in json.loads((target / "reader.json").read_text(encoding="utf-8"))


def test_carry_fit_repoints_an_all_data_model_at_the_model_its_new_fit_comes_from(tmp_path):
    from rag.reader.package import carry_fit

    # the all-data model carried the fit of "old"; a fit made later on "new" (the same recipe with a
    # larger dev split) replaces the pipeline block, the calibration, the threshold and fit_from,
    # and leaves everything about the model itself as it was
    new, target = tmp_path / "new", tmp_path / "target"
    new.mkdir(), target.mkdir()
    (new / "reader.json").write_text(
        json.dumps(
            {
                "model": "reader.int8.onnx",
                "sha256": "new111",
                "command": "rag train-reader --xquad-dev",
                "calibration": [0.5, -1.0],
                "threshold": 0.2,
                "dev": {"int8": {"f1": 0.4}},
            }
        ),
        encoding="utf-8",
    )
    before = {
        "model": "reader.int8.onnx",
        "sha256": "all999",
        "calibration": [1.0, 0.0],
        "threshold": 0.1,
        "fit_from": {"sha256": "old000"},
        "pipeline": {"rank_weight": 0.5},
    }
    (target / "reader.json").write_text(json.dumps(before), encoding="utf-8")
    fit = {"rank_weight": 1.0, "sentence_weight": 2.0, "threshold": 0.35}
    path = carry_fit(target, new / "reader.json", fit)
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["pipeline"] == fit and after["calibration"] == [0.5, -1.0] and after["threshold"] == 0.2
    assert after["fit_from"] == {"sha256": "new111", "command": "rag train-reader --xquad-dev", "dev": {"int8": {"f1": 0.4}}}
    assert {k: after[k] for k in ("model", "sha256")} == {"model": "reader.int8.onnx", "sha256": "all999"}


def test_the_out_of_fold_check_writes_nothing(tmp_path):
    # --folds reports how a fit does on fold models' held-out questions; asked to write as well,
    # it refuses before reading anything, and the model's manifest is left as it was
    script = Path(__file__).resolve().parents[1] / "eval" / "reader_ensemble.py"
    manifest = json.dumps({"model": "reader.int8.onnx", "sha256": "aaa111"})
    (tmp_path / "reader.json").write_text(manifest, encoding="utf-8")
    for flags in (["--write"], ["--carry-to", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, str(script), "--model", str(tmp_path), "--folds", str(tmp_path / "cv"), *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0 and "writes nothing" in done.stderr
        assert (tmp_path / "reader.json").read_text(encoding="utf-8") == manifest


def test_the_fit_script_refits_saved_rows_with_and_without_coverage_and_writes_nothing(tmp_path):
    script = Path(__file__).resolve().parents[1] / "eval" / "reader_ensemble.py"
    manifest = json.dumps({"model": "reader.int8.onnx", "sha256": "aaa111"})
    (tmp_path / "reader.json").write_text(manifest, encoding="utf-8")
    answerable, near = _covering_rows(random.Random(7), 60)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"qa_dev": answerable, "qa_dev_near_miss": near}), encoding="utf-8")
    fits = {}
    for flags in ([], ["--coverage"]):
        done = subprocess.run(
            [sys.executable, str(script), "--model", str(tmp_path), "--from-rows", str(rows), *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        fits[bool(flags)] = out["fit"]
        assert list(out["report"]["cross_fitted_by_set"]) == ["qa_dev"]  # the near misses judge abstention only
        assert len(out["report"]["cross_fitted_abstention"]) == 2
    assert fits[False]["coverage_weight"] == 0.0 < fits[True]["coverage_weight"]
    for flags in (["--write"], ["--carry-to", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, str(script), "--model", str(tmp_path), "--from-rows", str(rows), *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0 and "writes nothing" in done.stderr
    assert (tmp_path / "reader.json").read_text(encoding="utf-8") == manifest


def test_the_cross_fitted_quality_scores_each_half_with_weights_chosen_on_the_other():
    from rag.reader.ensemble import _half, choose_selection, cross_fitted_quality

    rng = random.Random(7)
    # a pattern that holds for every question: the fit finds it on either half, nothing is lost
    rows = [{**r, "id": f"q{i}"} for i, r in enumerate(_pick_rows(rng, 60, True))]
    w, quality = choose_selection([rows])
    assert quality[w] == 2.0 and cross_fitted_quality([rows]) == 2.0
    # noise: the in-sample fit finds weights that happen to suit the rows it scores; out of
    # sample the same search does worse
    noisy = []
    for i in range(80):
        cands = [
            _cand(rng.uniform(0, 3), rng.randrange(4), rng.random() < 0.5, 0.0, rng.random() < 0.5, rng.uniform(0, 3)) for _ in range(3)
        ]
        noisy.append({"id": f"n{i}", "answerable": True, "cands": cands})
    w, quality = choose_selection([noisy])
    assert cross_fitted_quality([noisy]) < quality[w]
    # by hand: choose on one half, score the other, both ways
    halves = [[r for r in noisy if _half(r["id"]) == h] for h in (0, 1)]
    by_hand = [selection_quality(halves[h], choose_selection([halves[1 - h]])[0]) for h in (0, 1)]
    assert cross_fitted_quality([noisy]) == pytest.approx(sum(by_hand) / 2)
    assert choose([noisy])[3]["cross_fitted_quality"] == pytest.approx(sum(by_hand) / 2)


def test_a_setting_an_older_manifest_does_not_name_counts_as_its_default(load_script):
    pytest.importorskip("torch")
    script = load_script("eval/reader_ensemble.py")
    # written before --sentence-loss existed, against one written after: the same recipe
    old = {"history": {"config": {"lr": 2e-4, "soup": 2, "teachers": []}}}
    new = {"history": {"config": {"lr": 2e-4, "soup": 2, "teachers": [], "sentence_loss": 0.0, "all_data": True}}}
    assert script.recipe_differences(old, new) == []
    # ... but not when the newer one turned it on, or when a named setting differs
    new["history"]["config"] |= {"sentence_loss": 0.5, "soup": 3}
    assert script.recipe_differences(old, new) == ["sentence_loss", "soup"]


def test_each_question_is_scored_under_the_weights_chosen_on_the_other_half():
    from rag.reader.ensemble import _half, choose_selection, cross_fitted_by_question, cross_fitted_by_set

    rng = random.Random(11)
    noisy = []
    for i in range(60):
        cands = [_cand(rng.uniform(0, 3), rng.randrange(4), rng.random() < 0.5, 0.0, rng.random() < 0.5) for _ in range(3)]
        noisy.append({"id": f"n{i}", "answerable": True, "cands": cands})
    noisy.append({"id": "empty", "answerable": True, "cands": []})  # nothing read: scores 0
    noisy.append({"id": "near", "answerable": False, "cands": [_cand(1.0, 0, False, 0.0, False)]})  # not a selection question
    (per_question,) = cross_fitted_by_question([noisy])
    assert set(per_question) == {r["id"] for r in noisy if r["answerable"]} and per_question["empty"] == 0.0
    for r in noisy[:-2]:
        other = [x for x in noisy if _half(x["id"]) != _half(r["id"])]
        w, _ = choose_selection([other])
        c = best(r, w)
        assert c is not None and per_question[r["id"]] == c["f1"] + c["sentence_hit"]
    halves = [[v for q, v in per_question.items() if _half(q) == h] for h in (0, 1)]
    assert cross_fitted_by_set([noisy]) == [pytest.approx(sum(sum(v) / len(v) for v in halves) / 2)]


def test_the_fit_script_gives_the_paired_difference_from_another_model_s_rows(tmp_path):
    script = Path(__file__).resolve().parents[1] / "eval" / "reader_ensemble.py"
    (tmp_path / "reader.json").write_text(json.dumps({"model": "reader.int8.onnx", "sha256": "aaa111"}), encoding="utf-8")
    rng = random.Random(3)
    # the same questions; the new model's right span wins more often
    old_rows, new_rows = {}, {}
    for name, n in (("qa_dev", 40), ("arcd_dev", 120)):
        old_rows[name], new_rows[name] = [], []
        for i in range(n):
            right = rng.uniform(0, 2)
            for rows, lead in ((old_rows, -0.5), (new_rows, 0.5)):
                cands = [_cand(right + lead + rng.uniform(-1, 1), 0, False, 0.0, True), _cand(right, 0, False, 0.0, False)]
                rows[name].append({"id": f"{name}{i}", "answerable": True, "cands": cands})
    old_rows["qa_dev"] = old_rows["qa_dev"][:30]  # ten questions only the new rows hold
    paths = {}
    for label, rows in (("old", old_rows), ("new", new_rows)):
        paths[label] = tmp_path / f"{label}.json"
        paths[label].write_text(json.dumps(rows), encoding="utf-8")
    cmd = [sys.executable, str(script), "--model", str(tmp_path), "--from-rows", str(paths["new"]), "--paired-with", str(paths["old"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    paired = json.loads(done.stdout)["report"]["paired_with"]
    assert paired["left_out"] == {"qa_dev": 10, "arcd_dev": 0}
    assert paired["by_set"]["qa_dev"]["questions"] == 30 and paired["by_set"]["arcd_dev"]["questions"] == 120
    for block in (*paired["by_set"].values(), paired["mean"]):
        assert 0 < block["low"] < block["difference"] < block["high"]  # the new rows win, and the interval says so
    assert paired["mean"]["excludes_zero"] is True
    by_set = paired["by_set"]
    assert paired["mean"]["difference"] == pytest.approx((by_set["qa_dev"]["difference"] + by_set["arcd_dev"]["difference"]) / 2)
    # the same rows on both sides: no difference at all
    same = subprocess.run([*cmd[:-1], str(paths["new"])], capture_output=True, text=True, timeout=120)
    assert json.loads(same.stdout)["report"]["paired_with"]["mean"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "excludes_zero": False}
