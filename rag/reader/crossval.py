"""Cross-validation of the reader's training recipe by article (``rag train-reader --folds K``).

The training articles (the train and dev splits: XQuAD's dev articles, ARCD's train and dev
articles) are dealt into K folds by a hash of the title. Each fold is read, gold paragraph
given, by a model trained with the same recipe on the other K-1 folds, so no question of a
held-out article is ever trained on; every epoch is read, so the curve shows how long to train.
The held-out test articles are not touched: they stay for ``rag eval``.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from rag.reader.data import QAExample
from rag.reader.recipe import TrainConfig
from rag.reader.train import fit_recipe
from rag.reader.weights import E5File


def fold_of(article: str, folds: int) -> int:
    """The fold of an article: a hash of its title, independent of the train/dev/test hash."""
    return int(hashlib.md5(f"cv:{article}".encode()).hexdigest(), 16) % folds


def cross_validate(
    examples: Sequence[QAExample],
    cfg: TrainConfig,
    folds: int,
    *,
    weights: E5File | None = None,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int], None] | None = None,
    keep: Path | None = None,
) -> dict:
    """Train and read each of ``folds`` article folds; per-fold histories and the summary.
    With ``keep``, each fold's model is saved as ``keep/fold-K/reader.pt`` beside ``fold.json``
    (the articles it never trained on), so out-of-fold questions can be read by a model that
    has not seen them (``eval/reader_ensemble.py --folds``)."""
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    parts = [[e for e in examples if fold_of(e.article, folds) == k] for k in range(folds)]
    empty = [k + 1 for k, part in enumerate(parts) if not part]
    if empty:
        raise ValueError(f"fold(s) {empty} of {folds} hold no article: use fewer folds or more data")
    weights = weights or E5File()
    runs = []
    for k, held in enumerate(parts):
        train = [e for j, part in enumerate(parts) if j != k for e in part]

        def step(s: int, total: int, k: int = k) -> None:
            if on_step is not None:  # one bar over all folds (the folds differ a little in size)
                on_step(k * total + s, folds * total)

        def fold_log(m: str, k: int = k) -> None:
            log(f"fold {k + 1}/{folds}: {m}")

        fitted = fit_recipe(train, held, cfg, weights=weights, log=fold_log, on_step=step)
        if keep is not None:
            folder = keep / f"fold-{k + 1}"
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(fitted.state, folder / "reader.pt")
            info = {"fold": k + 1, "folds": folds, "held_out_articles": sorted({e.article for e in held}), "config": asdict(cfg)}
            (folder / "fold.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        runs.append(
            {
                "fold": k + 1,
                "articles": len({e.article for e in held}),
                "held_out_questions": len(held),
                "train_questions": len(train),
                "history": fitted.history,
            }
        )
    return {"config": asdict(cfg), "folds": folds, "runs": runs, "summary": summarise(runs)}


def _sources(row: dict) -> dict[str, dict]:
    return {"all": {"f1": row["dev_f1"], "em": row["dev_em"]}, **row.get("dev_by_source", {})}


def summarise(runs: Sequence[dict]) -> list[dict]:
    """Per epoch reached by every fold and per source: mean and standard deviation over folds."""
    epochs = min(len(r["history"]) for r in runs)
    out = []
    for i in range(epochs):
        per_fold = [_sources(r["history"][i]) for r in runs]
        row: dict = {"epoch": runs[0]["history"][i].get("epoch", i + 1)}  # "cloze N" rows first with --cloze-epochs
        for source in per_fold[0]:
            vals = [f[source] for f in per_fold if source in f]
            row[source] = {
                m: {"mean": statistics.fmean(v[m] for v in vals), "sd": statistics.pstdev(v[m] for v in vals)} for m in ("f1", "em")
            }
        out.append(row)
    return out


def pooled(result: dict, epoch: int | str | None = None) -> dict[str, dict[str, float]]:
    """Out-of-fold F1/EM per source over all held-out questions together (each fold weighed by
    its questions, not one vote a fold as ``summarise``), at ``epoch`` (default: the last one
    every fold reached): {source: {"questions": n, "f1": ..., "em": ...}}, "all" included."""
    runs = result["runs"]
    if epoch is None:
        epoch = runs[0]["history"][min(len(r["history"]) for r in runs) - 1]["epoch"]
    sums: dict[str, list[float]] = {}
    for r in runs:
        row = next((h for h in r["history"] if h["epoch"] == epoch), None)
        if row is None:
            raise ValueError(f"fold {r['fold']} did not reach epoch {epoch}")
        for source, m in _sources(row).items():
            n = r["held_out_questions"] if source == "all" else m["n"]
            acc = sums.setdefault(source, [0, 0.0, 0.0])
            acc[0] += n
            acc[1] += m["f1"] * n
            acc[2] += m["em"] * n
    return {s: {"questions": n, "f1": f / n, "em": e / n} for s, (n, f, e) in sums.items() if n}


def report(result: dict) -> str:
    """The summary as a Markdown table (mean ± sd over the folds, gold paragraph given)."""
    summary = result["summary"]
    sources = [s for s in summary[0] if s != "epoch"] if summary else []
    head = "| epoch | " + " | ".join(f"{s} F1 | {s} EM" for s in sources) + " |"
    rule = "|---|" + "---:|---:|" * len(sources)
    lines = [head, rule]
    for row in summary:
        cells = [f"{row[s][m]['mean']:.3f} ± {row[s][m]['sd']:.3f}" for s in sources for m in ("f1", "em")]
        lines.append(f"| {row['epoch']} | " + " | ".join(cells) + " |")
    folds = "; ".join(
        f"fold {r['fold']}: {r['articles']} articles, {r['held_out_questions']} held-out / {r['train_questions']} training questions"
        for r in result["runs"]
    )
    return f"{result['folds']}-fold cross-validation by article ({folds}).\n\n" + "\n".join(lines) + "\n"
