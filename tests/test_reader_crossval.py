"""Cross-validation by article: whole articles held out, every example read once, a real
(tiny) training run per fold, and a summary that follows the per-fold numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rag.reader.crossval import fold_of, summarise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="../shared/data is not beside the checkout")


def test_fold_of_is_stable_and_spreads_articles():
    titles = [f"article {i}" for i in range(300)]
    counts = [sum(fold_of(t, 3) == k for t in titles) for k in range(3)]
    assert all(70 <= c <= 130 for c in counts)
    assert [fold_of(t, 3) for t in titles] == [fold_of(t, 3) for t in titles]


def test_summary_is_mean_and_spread_over_folds():
    def run(f1: float, em: float) -> dict:
        return {"history": [{"dev_f1": f1, "dev_em": em, "dev_by_source": {"arcd": {"f1": f1, "em": em, "n": 3}}}]}

    (row,) = summarise([run(0.2, 0.1), run(0.4, 0.3)])
    assert row["epoch"] == 1
    assert math.isclose(row["all"]["f1"]["mean"], 0.3) and math.isclose(row["all"]["f1"]["sd"], 0.1)
    assert math.isclose(row["arcd"]["em"]["mean"], 0.2)
    # only the epochs every fold reached are summarised
    short, long_ = run(0.2, 0.1), run(0.4, 0.3)
    long_["history"].append(long_["history"][0])
    assert len(summarise([short, long_])) == 1


@needs_data
def test_each_fold_is_read_by_a_model_that_never_saw_its_articles(tmp_path: Path):
    torch = pytest.importorskip("torch")
    import json

    from rag.reader.crossval import cross_validate, report
    from rag.reader.data import reader_corpus
    from rag.reader.train import TrainConfig
    from rag.reader.weights import E5File

    corpus = reader_corpus(DATA)
    by_article: dict[str, list] = {}
    for e in corpus["train"]:
        if e.source == "arcd":
            by_article.setdefault(e.article, []).append(e)
    # two questions from each of six articles, enough for every one of 2 folds to hold one
    pool = [e for arts in list(by_article.values())[:6] for e in arts[:2]]
    assert len({fold_of(e.article, 2) for e in pool}) == 2
    cfg = TrainConfig(epochs=1, batch_size=4, max_len=96, negatives=0.5, threads=1, freeze_layers=6)
    steps: list[tuple[int, int]] = []
    result = cross_validate(pool, cfg, 2, weights=E5File(), log=lambda m: None, on_step=lambda s, t: steps.append((s, t)), keep=tmp_path)

    runs = result["runs"]
    assert sum(r["held_out_questions"] for r in runs) == len(pool)
    assert all(r["held_out_questions"] + r["train_questions"] == len(pool) for r in runs)
    for r in runs:
        held = {e.article for e in pool if fold_of(e.article, 2) == r["fold"] - 1}
        assert r["articles"] == len(held)
        (epoch,) = r["history"]
        assert 0.0 <= epoch["dev_f1"] <= 1.0 and math.isfinite(epoch["loss"])
        assert epoch["dev_by_source"]["arcd"]["n"] == r["held_out_questions"]
        # --keep-models: the fold's model and the articles it never trained on
        kept = tmp_path / f"fold-{r['fold']}"
        info = json.loads((kept / "fold.json").read_text(encoding="utf-8"))
        assert set(info["held_out_articles"]) == held and info["folds"] == 2
        state = torch.load(kept / "reader.pt")
        assert state and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert steps and steps[-1][0] > steps[0][0]
    table = report(result)
    assert table.count("\n| 1 |") == 1 and "arcd F1" in table


def test_cross_validation_refuses_folds_it_cannot_fill():
    pytest.importorskip("torch")
    from rag.reader.crossval import cross_validate
    from rag.reader.data import QAExample
    from rag.reader.train import TrainConfig

    one = [QAExample("q1", "arcd", "only article", 0, "سؤال؟", "نص الجواب.", ((0, 2),))]
    with pytest.raises(ValueError, match="at least 2"):
        cross_validate(one, TrainConfig(), 1)
    with pytest.raises(ValueError, match="hold no article"):
        cross_validate(one, TrainConfig(), 3)


def test_a_soup_recipe_is_cross_validated_as_a_soup(monkeypatch):
    pytest.importorskip("torch")
    import rag.reader.crossval as cv
    import rag.reader.train as train
    from rag.reader.data import QAExample
    from rag.reader.train import Fitted, TrainConfig

    calls: list[tuple[str, int]] = []

    def fake(name: str):
        def fit(train, held, cfg, **kwargs):
            calls.append((name, len(held)))
            return Fitted({}, [{"epoch": 1, "loss": 1.0, "dev_f1": 0.5, "dev_em": 0.25, "dev_by_source": {}}], 0.5)

        return fit

    monkeypatch.setattr(train, "fit", fake("fit"))
    monkeypatch.setattr(train, "fit_soup", fake("soup"))
    articles = [f"article {i}" for i in range(40)]
    titles = [t for t in articles if fold_of(t, 2) == 0][:2] + [t for t in articles if fold_of(t, 2) == 1][:2]
    pool = [QAExample(qid=t, source="arcd", article=t, paragraph=0, question="q?", context="c", answers=()) for t in titles]
    cv.cross_validate(pool, TrainConfig(soup=3), 2, weights=object(), log=lambda m: None)  # type: ignore[arg-type]
    assert [name for name, _ in calls] == ["soup", "soup"] and sum(n for _, n in calls) == len(pool)
    cv.cross_validate(pool, TrainConfig(), 2, weights=object(), log=lambda m: None)  # type: ignore[arg-type]
    assert [name for name, _ in calls[2:]] == ["fit", "fit"]
