"""Fit the span reader's pipeline weights on dev questions run through the whole pipeline, and
write them into ``models/reader/reader.json`` (the ``pipeline`` block ``SpanReader`` reads).

The model's own calibration is fitted on the gold paragraph plus one near miss; in the service
it reads the top retrieved passages, beside a sentence answering that knows the retrieval
signals. This runs the dev questions the way the service does and fits (``rag.reader.ensemble``):
which span wins (margin, passage rank, inside the sentence answering's pick) and when to
abstain (that score plus the sentence answering's P(answerable), Platt-calibrated, threshold =
the highest keeping 90% of answerable dev questions answered).

Dev questions (never the test splits): our QA set's dev split over the default corpus index,
and ARCD's dev articles (``rag.reader.data.arcd_split``, not used in training) over an index of
all ARCD paragraphs, asked once as is and once with the gold paragraph left out of the ranking
(the near miss: the same article's other paragraphs remain), which gives unanswerable rows.
A model trained with ``--xquad-dev`` has not read a tenth of XQuAD's training articles either
(``rag.reader.data.xquad_dev_article``): their questions, in Arabic and in English over the same
Arabic paragraphs, join the fit the same way (over an index of XQuAD's paragraphs), so the fit
sees English questions over Arabic Wikipedia paragraphs. A model trained on them is never fitted on them.

    rag ingest                                    # the default corpus index, if not built yet
    python eval/reader_ensemble.py [--write]      # ~3 minutes; ARCD's index is cached in --cache

A model trained on the dev split too (``rag train-reader --all-data``) is refused ``--write``: it
carries the fit of the same recipe trained without dev. To refit it (after a change to how the
pipeline weighs spans), fit the model trained without dev and carry the fit over:

    python eval/reader_ensemble.py --model <the recipe trained without dev> --carry-to models/reader

The printed report's ``quality`` is the selection quality of the chosen weights on the rows they
were chosen on; ``cross_fitted_quality`` chooses them on half the questions and scores the other
half (both ways). Compare recipes or seeds by the second: the first reads 0.06-0.08 higher.
``cross_fitted_by_set`` gives it per dev set, and ``cross_fitted_abstention`` the (answered,
abstained) shares of each half under the whole fit (weights, calibration, threshold) chosen on the
other half. ``--rows FILE`` keeps the collected rows; ``--from-rows FILE`` fits on them again in
seconds, e.g. with ``--coverage`` (weights on how much of the question a span's sentence says,
``rag.reader.coverage``; off by default, eval/RESULTS.md). ``--paired-with OLD.json`` compares
these rows with another model's rows of the same questions (a recipe's baseline, say): each
question's cross-fitted F1 + sentence hit in both, the difference per set and as the mean over
sets with 95% bootstrap intervals paired question by question (``paired_with`` in the report). A
difference of 0.03 in the cross-fitted quality moves between seeds of one recipe: read it with its
interval.

``--folds DIR`` checks a fit out of fold instead (it writes nothing): DIR holds the fold models of
``rag train-reader --folds K --keep-models``, each of which reads the XQuAD (Arabic and English
questions) and ARCD questions of the articles it never trained on.
It prints the selection quality of ``--model``'s fit next to a fit chosen on the other folds.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answering import SentenceReader  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.harness import QAItem, SquadSet, load_jsonl, load_squad, select  # noqa: E402
from rag.evaluation.metrics import contains_answer, f1_score  # noqa: E402
from rag.evaluation.uncertainty import paired_difference, paired_mean_of_means  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.reader.data import arcd_split, xquad_dev_article  # noqa: E402
from rag.reader.ensemble import COVERAGE_WEIGHTS, Weights, choose, cross_fitted_by_question, out_of_fold, selection_quality  # noqa: E402
from rag.reader.package import carry_fit, package, save_manifest  # noqa: E402
from rag.reader.recipe import TrainConfig  # noqa: E402
from rag.reader.runtime import MANIFEST, SpanReader, default_model_dir, shared_scorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def collect(rag: RAG, reader: SpanReader, items: list[QAItem], near_miss: bool = False) -> list[dict]:
    """One row per question: each sentence's best span in the read passages, with its signals and its quality."""
    index = rag.live().index
    rows = []
    for item in items:
        query = rag.analyse(item.question).embedded(rag.embedder)
        passages = rag.rank(query, reader.context_passages + (6 if near_miss else 0), index)
        if near_miss:
            passages = [p for p in passages if p.doc_id != item.doc_id]
        passages = passages[: reader.context_passages]
        cands = []
        for e in reader.evidence(query, passages, index, coverage=True):
            golds = item.answers
            sentence = e.answer.sentence.text if e.answer.sentence else e.answer.text
            cands.append(
                {
                    "margin": e.margin,
                    "mass": e.mass,
                    "rank": e.rank,
                    "in_sentence": float(e.in_sentence),
                    "sentence_logit": e.sentence_logit,
                    "coverage": e.coverage,
                    "f1": f1_score(e.answer.text, golds) if golds and not near_miss else 0.0,
                    "sentence_hit": contains_answer(sentence, golds) if golds and not near_miss else 0.0,
                }
            )
        rows.append({"id": item.id, "answerable": bool(item.answers) and not near_miss, "cands": cands})
    return rows


def collect_dev(args: argparse.Namespace, model: dict) -> dict[str, list[dict]]:
    """The dev rows of ``args.model``: our QA dev, ARCD dev and its near misses, and (for a model
    trained with ``--xquad-dev``) XQuAD dev in Arabic and English with theirs."""
    settings = Settings(index=args.index, cache_size=0, reader="sentence", reader_model=args.model)
    scorer = shared_scorer(args.model)
    reader = SpanReader(scorer, sentence=SentenceReader(), threshold=0.0, require_numbers=False)
    qa = RAG(settings)
    sets = {"qa_dev": collect(qa, reader, select(load_jsonl(args.qaset), "dev"))}

    squad = load_squad(args.arcd)
    arcd = _cached_index(qa, settings, squad, args.cache)
    titles = {d.doc_id: d.title for d in squad.documents}
    dev = [it for it in squad.items if it.doc_id and arcd_split(titles[it.doc_id]) == "dev"]
    sets["arcd_dev"] = collect(arcd, reader, dev)
    sets["arcd_dev_near_miss"] = collect(arcd, reader, dev, near_miss=True)
    if training_config(model).get("xquad_dev"):
        data = args.arcd.parents[1] / "xquad"
        xquad_ar = load_squad(data / "xquad.ar.json")
        xquad_en = load_squad(data / "xquad.ar.json", data / "xquad.en.json")  # English questions, Arabic paragraphs
        xquad = _cached_index(qa, settings, xquad_ar, args.cache.with_name("xquad-index"))
        titles = {d.doc_id: d.title for d in xquad_ar.documents}
        for name, squad_set in (("xquad_dev_ar", xquad_ar), ("xquad_dev_en", xquad_en)):
            items = [it for it in squad_set.items if it.doc_id and xquad_dev_article(titles[it.doc_id])]
            sets[name] = collect(xquad, reader, items)
            sets[f"{name}_near_miss"] = collect(xquad, reader, items, near_miss=True)
    return sets


# What may differ between the model a fit is chosen with and the model it is carried to: which
# splits they train on, and how and where they were run.
NOT_RECIPE = {"all_data", "xquad_dev", "threads", "device", "bf16", "max_minutes"}


def training_config(manifest: dict) -> dict:
    """The ``TrainConfig`` a manifest's model was trained with (empty for a model that does not say)."""
    return (manifest.get("history") or {}).get("config") or {}


def selection_weights(manifest: dict) -> Weights:
    """The span-selection weights of a manifest's pipeline fit (all 0, the margin alone, without one)."""
    pipeline = manifest.get("pipeline") or {}
    return Weights(
        pipeline.get("rank_weight", 0.0),
        pipeline.get("sentence_weight", 0.0),
        0.0,
        pipeline.get("mass_weight", 0.0),
        pipeline.get("coverage_weight", 0.0),
    )


def training_defaults() -> dict:
    """``TrainConfig``'s defaults as a manifest records them (JSON). A manifest written before an
    option existed does not name it: it trained at the default."""
    return json.loads(json.dumps(asdict(TrainConfig())))


def recipe_differences(source: dict, target: dict) -> list[str]:
    """The training settings (``history.config`` of two manifests) that differ, beyond ``NOT_RECIPE``;
    a setting one of them does not name counts as its default."""
    a, b = training_config(source), training_config(target)
    default = training_defaults()
    return sorted(k for k in a.keys() | b.keys() if k not in NOT_RECIPE and a.get(k, default.get(k)) != b.get(k, default.get(k)))


def _cached_index(rag: RAG, settings: Settings, squad: SquadSet, folder: Path) -> RAG:
    """A RAG over ``squad``'s paragraphs, built into ``folder`` on first use."""
    other = RAG(settings.model_copy(update={"index": folder}), embedder=rag.embedder)
    if not (folder / "CURRENT").exists():
        other.ingest_documents(squad.documents, prune=True)
    return other


def report_out_of_fold(args: argparse.Namespace, fit: Weights) -> None:
    """Each fold model reads its held-out articles; ``fit`` against a fit chosen on the other folds."""
    settings = Settings(index=args.index, cache_size=0, reader="sentence")
    qa = RAG(settings)
    data = args.arcd.parents[1]
    xquad, arcd = load_squad(data / "xquad" / "xquad.ar.json"), load_squad(args.arcd)
    xquad_rag = _cached_index(qa, settings, xquad, args.cache.with_name("xquad-index"))
    sources = {  # English questions read over the same Arabic paragraphs
        "xquad_ar": (xquad, xquad_rag),
        "xquad_en": (load_squad(data / "xquad" / "xquad.ar.json", data / "xquad" / "xquad.en.json"), xquad_rag),
        "arcd": (arcd, _cached_index(qa, settings, arcd, args.cache)),
    }
    by_fold = []
    for folder in sorted(args.folds.glob("fold-*")):
        if not (folder / MANIFEST).is_file():  # export the fold's checkpoint; its manifest carries --model's fit
            package(folder / "reader.pt", folder, data, command=f"fold model {folder.name}", fit_from=args.model / MANIFEST)
        held = set(json.loads((folder / "fold.json").read_text(encoding="utf-8"))["held_out_articles"])
        reader = SpanReader(shared_scorer(folder), sentence=SentenceReader(), threshold=0.0, require_numbers=False)
        sets: dict[str, list[dict]] = {}
        for name, (squad, rag) in sources.items():
            titles = {d.doc_id: d.title for d in squad.documents}
            items = [it for it in squad.items if it.doc_id and titles[it.doc_id] in held]
            sets[name] = collect(rag, reader, items)  # which span wins: the answerable questions are enough
        by_fold.append(sets)
        print(f"{folder.name}: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()), file=sys.stderr)
    names = list(sources)
    print("| fold | fit (rank, sentence, mass weights) | " + " | ".join(f"{n}: F1 + sentence hit" for n in names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for row in out_of_fold(by_fold, names, fit):
        w = row["weights"]
        label = f"{args.model.name}'s" if row["fit"] == "fit" else row["fit"]
        cells = " | ".join(f"{row[n]:.3f}" for n in names)
        print(f"| {row['fold']} | {label} ({w.rank:g}, {w.sentence:g}, {w.mass:g}) | {cells} |")


def paired_with(old: dict[str, list[dict]], new: dict[str, list[dict]], names: list[str], coverage: tuple[float, ...]) -> dict:
    """The cross-fitted F1 + sentence hit of the questions two models' rows share, new minus old,
    per set and as the mean over sets (each set the same, as ``cross_fitted_quality``), each with
    its 95% interval paired question by question. Sets or questions only one of them holds are
    left out (and counted)."""
    common = [n for n in names if n in old]
    before = dict(zip(common, cross_fitted_by_question([old[n] for n in common], coverage), strict=True))
    after = dict(zip(common, cross_fitted_by_question([new[n] for n in common], coverage), strict=True))
    pairs = {n: [q for q in after[n] if q in before[n]] for n in common}
    out: dict = {
        "by_set": {},
        "left_out": {n: len(after[n]) - len(pairs[n]) for n in common},
        "sets_missing": [n for n in names if n not in old],
    }
    for n in common:
        iv = paired_difference([before[n][q] for q in pairs[n]], [after[n][q] for q in pairs[n]])
        if iv is not None:
            out["by_set"][n] = {"questions": len(pairs[n]), "difference": iv.value, "low": iv.low, "high": iv.high}
    mean = paired_mean_of_means([[before[n][q] for q in pairs[n]] for n in common], [[after[n][q] for q in pairs[n]] for n in common])
    if mean is not None:
        out["mean"] = {"difference": mean.value, "low": mean.low, "high": mean.high, "excludes_zero": mean.excludes_zero}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=ROOT / "index")
    ap.add_argument("--qaset", type=Path, default=ROOT / "eval" / "qa" / "corpus_qa.jsonl")
    ap.add_argument("--arcd", type=Path, default=ROOT.parent / "shared" / "data" / "arcd" / "arcd.train.json")
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "arcd-index", help="ARCD's index (built on first run)")
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--write", action="store_true", help=f"write the fit into the model's {MANIFEST}")
    ap.add_argument(
        "--carry-to",
        type=Path,
        help=f"also write the fit into this model's {MANIFEST}: the same recipe trained on dev too, whose fit_from is --model",
    )
    ap.add_argument("--folds", type=Path, help="check --model's fit out of fold on the fold models in this folder (writes nothing)")
    ap.add_argument(
        "--against",
        type=Path,
        help="a reader.json whose pipeline weights are scored on the same dev rows beside the new fit (the fit in use, say)",
    )
    ap.add_argument(
        "--coverage",
        action="store_true",
        help="also try weights on the question coverage of a span's sentence (rag.reader.coverage) in the selection grid; "
        "off: it did not hold on a second seed's dev rows (eval/RESULTS.md)",
    )
    ap.add_argument(
        "--from-rows", type=Path, help="fit on rows an earlier --rows wrote instead of collecting them (a report only: writes nothing)"
    )
    ap.add_argument("--rows", type=Path, help="also write the collected dev rows (each question's candidates and signals) here, as JSON")
    ap.add_argument(
        "--paired-with",
        type=Path,
        help="another model's rows (--rows) of the same dev questions: report the cross-fitted quality's difference with 95%% intervals",
    )
    ap.add_argument(
        "--repoint",
        action="store_true",
        help="with --carry-to: carry the fit to a model whose fit_from is another model of its recipe trained without dev, "
        "and make --model its fit_from (a fit on a larger dev split)",
    )
    args = ap.parse_args()

    model = json.loads((args.model / MANIFEST).read_text(encoding="utf-8"))
    if args.folds is not None:
        if args.write or args.carry_to is not None:
            sys.exit("--folds only reports how --model's fit does out of fold: it writes nothing (drop --write and --carry-to)")
        report_out_of_fold(args, selection_weights(model))
        return
    if args.from_rows is not None and (args.write or args.carry_to is not None):
        # rows are not tied to a model file: a fit written from them could belong to another model
        sys.exit("--from-rows only reports a fit on rows collected before: it writes nothing (drop --write and --carry-to)")
    if args.carry_to is not None:
        source = model.get("sha256")
        target = json.loads((args.carry_to / MANIFEST).read_text(encoding="utf-8"))
        if (target.get("fit_from") or {}).get("sha256") != source and not args.repoint:
            sys.exit(f"{args.carry_to} does not carry {args.model}'s fit (its fit_from is not {source}): refusing to carry this fit to it")
        if args.repoint and (differ := recipe_differences(model, target)):
            sys.exit(
                f"{args.carry_to} is not {args.model}'s recipe trained on all data ({', '.join(differ)} differ): refusing to carry this fit to it"
            )

    trained_on_dev = args.write and model.get("fit_from")
    if trained_on_dev:
        # a model trained with --all-data has read the ARCD dev articles: a fit on them would be a
        # fit on training data, so it keeps the fit of the model trained without dev
        sys.exit(
            f"{args.model} was trained on the dev split too (rag train-reader --all-data): its pipeline fit is carried from {trained_on_dev.get('sha256')}, not refitted"
        )
    sets = json.loads(args.from_rows.read_text(encoding="utf-8")) if args.from_rows is not None else collect_dev(args, model)
    near_misses = [n for n in sets if n.endswith("_near_miss")]
    answerable = [n for n in sets if n not in near_misses]
    if args.rows is not None:  # for looking into where the chosen span goes wrong
        args.rows.write_text(json.dumps(sets, ensure_ascii=False), encoding="utf-8")
    # Selection is judged on the answerable sets (each counts the same); abstention on all rows.
    w, calibration, threshold, report = choose(
        [sets[n] for n in answerable],
        extra=[r for n in near_misses for r in sets[n]],
        coverage=COVERAGE_WEIGHTS if args.coverage else (0.0,),
    )
    report["cross_fitted_by_set"] = dict(zip(answerable, report["cross_fitted_by_set"], strict=True))
    if args.paired_with is not None:
        old_rows = json.loads(args.paired_with.read_text(encoding="utf-8"))
        report["paired_with"] = {
            "rows": str(args.paired_with),
            **paired_with(old_rows, sets, answerable, COVERAGE_WEIGHTS if args.coverage else (0.0,)),
        }
    if args.against is not None:
        old = selection_weights(json.loads(args.against.read_text(encoding="utf-8")))
        by_set = {n: selection_quality(sets[n], old) for n in answerable}
        report["against"] = {
            "manifest": str(args.against),
            "weights": [old.rank, old.sentence, old.mass, old.coverage],
            "quality": sum(by_set.values()) / len(by_set),
            "by_set": by_set,
        }
        report["by_set"] = {n: selection_quality(sets[n], w) for n in answerable}
    fit = {
        "rank_weight": w.rank,
        "sentence_weight": w.sentence,
        "confidence_weight": w.confidence,
        "mass_weight": w.mass,
        "coverage_weight": w.coverage,
        "calibration": [round(calibration[0], 6), round(calibration[1], 6)],
        "threshold": threshold,
        "dev": {name: len(rows) for name, rows in sets.items()},
        "command": " ".join(["python eval/reader_ensemble.py", *sys.argv[1:]]),
    }
    print(json.dumps({"fit": fit, "report": report}, indent=1, ensure_ascii=False))
    if args.carry_to is not None and args.repoint:  # the target now carries --model's fit whole
        print(
            f"wrote the pipeline fit, calibration and fit_from of {args.model} into {carry_fit(args.carry_to, args.model / MANIFEST, fit)}"
        )
    targets = ([args.model] if args.write else []) + ([args.carry_to] if args.carry_to is not None and not args.repoint else [])
    for folder in targets:
        path = folder / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["pipeline"] = fit
        save_manifest(path, manifest)
        print(f"wrote the pipeline fit into {path}")


if __name__ == "__main__":
    main()
