"""The ``rag`` command: a thin shell over ``rag.pipeline.RAG``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from rag.answering import NO_ANSWER
from rag.config import Settings, comma_list, get_settings
from rag.index import Index, IndexProblem
from rag.reader.command import train_reader

if TYPE_CHECKING:
    from rag.pipeline import RAG

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Arabic/English extractive QA over your documents.")
console = Console()
err = Console(stderr=True)

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index directory (default: $RAG_INDEX or ./index).", show_default=False)]
ReaderOpt = Annotated[
    str | None,
    typer.Option("--reader", help="Reader by name: span, sentence (= none), retrieval (default: $RAG_READER or span).", show_default=False),
]


def _settings(index: Path | None, reader: str | None = None) -> Settings:
    from pydantic import ValidationError

    from rag.config import settings_problem

    try:
        s = get_settings()
    except ValidationError as exc:  # a bad RAG_* value: name it, no traceback
        err.print(f"[red]error:[/red] {settings_problem(exc)}")
        raise typer.Exit(2) from exc
    update: dict[str, Any] = {"index": index} if index else {}
    if reader:
        from rag.stages import reader_names

        if reader not in reader_names():
            raise typer.BadParameter(f"unknown reader {reader!r}; known: {', '.join(reader_names())}", param_hint="--reader")
        update["reader"] = reader
    s = s.model_copy(update=update) if update else s
    if s.index.exists() and not s.index.is_dir():
        raise typer.BadParameter(f"{s.index} is a file, not an index folder", param_hint="--index")
    return s


def _rag(index: Path | None, reader: str | None = None) -> RAG:
    from rag.pipeline import RAG
    from rag.reader.runtime import ReaderModelError

    try:
        rag = RAG(_settings(index, reader))
        rag.snapshot  # noqa: B018 - raises a clear error when there is no index
        return rag
    # ValueError: an unknown RAG_READER, or stages that do not fit; ReaderModelError: a missing or damaged model
    except (IndexProblem, ValueError, ReaderModelError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def _writing_index(after_failure: str) -> Iterator[None]:
    """An index problem, or a write the disk refuses (full, read-only), as one line and exit 2:
    the previous version stays live whatever failed."""
    try:
        yield
    except IndexProblem as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except OSError as exc:
        err.print(f"[red]error:[/red] the index could not be written ({exc}); {after_failure}")
        raise typer.Exit(2) from exc


def _progress() -> tuple[Progress, Callable[[str, int, int], None]]:
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, transient=True
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, update


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: ./corpus).", show_default=False)] = None,
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option(help="Remove indexed documents not found under PATHS.")] = False,
    rebuild: Annotated[bool, typer.Option(help="Ignore the existing index and build from scratch.")] = False,
    engine: Annotated[str, typer.Option(help="local (this process) or ray (read, chunk and embed on a Ray cluster).")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (auto, ray://head:10001); default: a local Ray.", show_default=False)
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Ray embedding actors (default: one per cluster CPU).", show_default=False)
    ] = None,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Build (or re-shard into) N shards; later ingests keep the count.", show_default=False)
    ] = None,
) -> None:
    """Build or update the index (unchanged documents are not re-embedded)."""
    from rag.loading import load_paths
    from rag.pipeline import RAG

    settings = _settings(index)
    paths = paths or [settings.corpus]
    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be local or ray")
    if engine != "ray" and (address or workers):
        raise typer.BadParameter("--address and --workers go with --engine ray")
    ray_engine = None
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            err.print("[red]error:[/red] --engine ray needs the ray extra: pip install 'rag-arabic[ray]'")
            raise typer.Exit(2) from exc
        from rag.distributed import RayEngine

        ray_engine = RayEngine(settings, address=address, workers=workers)
        loaded = ray_engine.load(paths)
    else:
        loaded = load_paths(paths, max_file_bytes=settings.max_file_bytes)
    for s in loaded.skipped:
        err.print(f"[yellow]skipped[/yellow] {s.path}: {s.reason}")
    unread = [s for s in loaded.skipped if s.unread]
    if prune and unread:
        # a mistyped path or one undecodable file would otherwise delete what the index holds of it
        err.print(
            f"[red]error:[/red] --prune refused: {len(unread)} input(s) could not be read (skipped above), and pruning "
            "would delete their indexed documents; fix or remove them, or run without --prune. Nothing was written."
        )
        raise typer.Exit(2)
    if not loaded.documents and not prune:
        err.print("[red]error:[/red] no documents to index")
        raise typer.Exit(1)
    with _writing_index("the previous version is unchanged"):
        rag = RAG(settings)
        bar, update = _progress()
        with bar:
            if ray_engine is None and shards is None:
                report = rag.ingest_documents(loaded.documents, prune=prune, rebuild=rebuild, progress=update)
            else:
                from rag.sharding import make_indexer

                if ray_engine is not None:
                    ray_engine.expect, ray_engine.progress = (rag.embedder.model_id, rag.embedder.dim), update
                writer = make_indexer(settings.index, rag.embedder, settings, update, shards=shards)
                report = writer.ingest(loaded.documents, prune=prune, rebuild=rebuild, prepare=ray_engine)
    console.print(
        f"index [bold]{settings.index}[/bold] version {report.version}: {len(report.added)} added, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged, {len(report.removed)} removed, "
        f"{len(loaded.skipped)} skipped; {report.embedded_texts} texts embedded in {report.timings_s.get('total', 0):.1f}s"
    )


def _highlight(text: str, start: int, end: int) -> Text:
    t = Text(text)
    t.stylize("bold yellow", start, end)
    return t


@app.command()
def ask(
    question: str,
    k: Annotated[
        int | None, typer.Option("--k", min=1, max=50, help="Passages to cite (default $RAG_TOP_K or 5).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    index: IndexOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Answer a question with a cited span of a document, or say the documents do not hold it."""
    from rag.text import MIN_QUESTION_WORD_CHARS, word_characters

    if word_characters(question) < MIN_QUESTION_WORD_CHARS:  # the API's rule (422 there)
        raise typer.BadParameter(f"the question must contain at least {MIN_QUESTION_WORD_CHARS} letters or digits", param_hint="QUESTION")
    rag = _rag(index, reader)
    result = rag.ask(question, k)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    a = result.answer
    if a is None:
        console.print(f"[bold red]{NO_ANSWER.get(result.language, NO_ANSWER['en'])}[/bold red]")
    elif a.sentence is not None and a.sentence.text != a.text:
        # a short answer (span reader): the answer, then its sentence with the answer marked
        console.print(Text(a.text, style="bold green"))
        console.print(_highlight(a.sentence.text, a.start - a.sentence.start, a.end - a.sentence.start))
    else:
        if a.focus:
            console.print(Text(a.focus.text, style="bold green"))
        f = a.focus
        console.print(_highlight(a.text, f.start - a.start, f.end - a.start) if f else Text(a.text, style="bold"))
    if a is not None:
        console.print(f"[dim]source:[/dim] {a.title} [dim]({a.doc_id}, chars {a.start}-{a.end}, score {a.score:.2f})[/dim]")
    for i, c in enumerate(result.citations, 1):
        console.print(f"[dim][{i}] {c.doc_id} {c.start}-{c.end} ({c.score:.3f})[/dim]")


@app.command()
def search(
    query: str,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Passages to return (default $RAG_TOP_K or 5).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    index: IndexOpt = None,
) -> None:
    """Show the ranked passages for a query (hybrid dense + BM25)."""
    rag = _rag(index)
    passages = rag.search(query, k)
    if as_json:
        print(json.dumps({"query": query, "passages": [p.to_dict() for p in passages]}, ensure_ascii=False))
        return
    for i, p in enumerate(passages, 1):
        console.print(f"[bold][{i}][/bold] {p.title} [dim]({p.doc_id} {p.start}-{p.end}, {p.score:.4f})[/dim]")
        console.print(Text(p.text[:300] + ("…" if len(p.text) > 300 else "")))


@app.command()
def remove(doc_ids: list[str], index: IndexOpt = None) -> None:
    """Delete documents from the index."""
    rag = _rag(index)
    try:
        with _writing_index("nothing changed"):
            report = rag.remove(doc_ids)
    except KeyError as exc:
        err.print(f"[red]error:[/red] not in the index: {exc.args[0]}")
        raise typer.Exit(1) from exc
    console.print(f"removed {', '.join(report.removed)}; index version {report.version}")


@app.command()
def info(index: IndexOpt = None, verify: Annotated[bool, typer.Option(help="Also run the full verification.")] = False) -> None:
    """Describe the index: version, model, counts, size."""
    from rag.sharding import open_index

    settings = _settings(index)
    try:
        idx = open_index(settings.index)
    except IndexProblem as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    m = idx.manifest
    table = Table(show_header=False)
    for k, v in [
        ("path", str(idx.path)),
        ("version", idx.version),
        ("created", m["created"]),
        ("model", m["model_id"]),
        ("dimensions", m["dim"]),
        ("faiss index", m["faiss_index"]),
        *([("shards", m["n_shards"])] if "n_shards" in m else []),
        ("documents", idx.n_documents),
        ("chunks", idx.n_chunks),
        ("sentences", idx.n_sentences),
        ("size", f"{idx.size_bytes() / 1e6:.2f} MB"),
        ("bytes per chunk", f"{idx.size_bytes() / max(idx.n_chunks, 1):.0f}"),
    ]:
        table.add_row(k, str(v))
    console.print(table)
    _print_memory(idx)
    if verify:
        _report_verification(idx)


def _print_memory(idx: Index) -> None:
    """Memory estimate per service process, and the dense index with each FAISS type."""
    from rag.evaluation.footprint import KINDS, dense_by_kind, footprint, human

    f = footprint(idx)
    table = Table(title="memory per service process (estimate)", show_header=False, title_justify="left")
    table.add_row(f"dense index ({f.dense_kind})", human(f.dense))
    table.add_row("BM25", human(f.bm25))
    table.add_row("texts, tokens, offsets", human(f.texts))
    table.add_row("private total", human(f.private))
    table.add_row("memory-mapped, shared (vectors" + (", inverted lists)" if f.mapped > f.vectors else ")"), human(f.mapped))
    table.add_row("store.sqlite (read at open)", human(f.store))
    console.print(table)
    counts = [idx.n_chunks, 1_000_000, 100_000_000]
    kinds = Table(title="dense index by FAISS type", title_justify="left")
    kinds.add_column("type")
    kinds.add_column("bytes/vector", justify="right")
    for n in counts:
        kinds.add_column(f"{n:,} chunks", justify="right")
    for k in KINDS:
        per = dense_by_kind(1_000_000, idx.dim)[k] / 1_000_000
        kinds.add_row(k, f"{per:.0f}", *(human(dense_by_kind(n, idx.dim)[k]) for n in counts))
    console.print(kinds)


def _report_verification(idx: Index) -> None:
    problems = idx.verify()
    if problems:
        for p in problems:
            err.print(f"[red]✗[/red] {p}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] index version {idx.version} verified: checksums, counts and offsets are consistent")


@app.command()
def verify(index: IndexOpt = None) -> None:
    """Check checksums and internal consistency of the live index; exit 1 on any problem."""
    from rag.sharding import open_index

    settings = _settings(index)
    try:
        idx = open_index(settings.index)
    except IndexProblem as exc:
        err.print(f"[red]✗[/red] {exc}")
        raise typer.Exit(1) from exc
    _report_verification(idx)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default $RAG_HOST or 127.0.0.1).", show_default=False)] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default $RAG_PORT or 8000; 0 = any free port).", show_default=False)
    ] = None,
    index: IndexOpt = None,
) -> None:
    """Run the HTTP service (builds the index from the default corpus first if there is none)."""
    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_options
    from rag.reader.runtime import ReaderModelError
    from rag.sharding import live_version

    settings = _settings(index)
    settings = settings.model_copy(update={"host": host or settings.host, "port": settings.port if port is None else port})
    try:  # a bad reader or model is a clear error here, not a traceback in the server's startup
        from rag.stages import make_reader

        make_reader(settings)
    except (ValueError, ReaderModelError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if live_version(settings.index) is None:  # sharded or not
        err.print(f"no index in {settings.index}: building it from {settings.corpus} first")
        ingest(paths=[settings.corpus], index=settings.index, prune=False, rebuild=False)
    uvicorn.run(create_app(settings), **uvicorn_options(settings))


@app.command("eval")
def eval_(
    qaset: Annotated[
        Path | None, typer.Argument(help="Our JSONL QA set (e.g. eval/qa/corpus_qa.jsonl), run against --index.", show_default=False)
    ] = None,
    squad: Annotated[
        Path | None, typer.Option("--squad", help="SQuAD-format JSON: its contexts are indexed into a temporary index.", show_default=False)
    ] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="Parallel SQuAD file to take the question texts from (matched by id).", show_default=False),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="dev, test or all (SQuAD sets get a fixed split by article-title hash).")] = "all",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions.", show_default=False)] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=10, help="Passages per question; the cutoff of hit@k and answer_in_passages@k.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.md, metrics.json and hitk.png here.", show_default=False)
    ] = None,
    index_cache: Annotated[
        Path | None,
        typer.Option(
            "--index-cache", help="Keep SQuAD indexes here (keyed by contexts, model, chunking) to skip re-embedding.", show_default=False
        ),
    ] = None,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Also run the BM25-only and dense-only ablations.")] = True,
    index: IndexOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Measure retrieval, answers and abstention by language, next to BM25-only and dense-only baselines
    (and, for a reader other than sentence, the sentence answering)."""
    from rag.evaluation.harness import Split, run_jsonl, run_squad
    from rag.evaluation.report import print_summary, to_json, write_report
    from rag.evaluation.uncertainty import intervals

    if (qaset is None) == (squad is None):
        raise typer.BadParameter("give either a QA set (JSONL) or --squad FILE")
    if questions is not None and squad is None:
        raise typer.BadParameter("--questions goes with --squad")
    if split not in ("dev", "test", "all"):
        raise typer.BadParameter("--split must be dev, test or all")
    chosen = cast("Split", split)
    for p in (qaset, squad, questions):
        if p is not None and not p.is_file():
            err.print(f"[red]error:[/red] no such file: {p}")
            raise typer.Exit(2)
    if report is not None:  # checked before the run, not after it
        try:
            report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise typer.BadParameter(f"cannot write a report into {report}: {exc.strerror or exc}", param_hint="--report") from exc
    settings = _settings(index, reader)
    bar, update = _progress()
    try:
        with bar:
            if squad is not None:
                run = run_squad(
                    squad,
                    settings,
                    questions_from=questions,
                    split=chosen,
                    limit=limit,
                    k=k,
                    index_cache=index_cache,
                    progress=update,
                    baselines=baselines,
                )
            else:
                assert qaset is not None
                run = run_jsonl(qaset, settings, split=chosen, limit=limit, k=k, progress=update, baselines=baselines)
    except IndexProblem as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ValueError as exc:  # malformed dataset
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    d = run.summary["dataset"]
    if d.get("gold_docs_missing"):
        err.print(f"[yellow]warning:[/yellow] gold documents not in the index: {', '.join(d['gold_docs_missing'])}")
    if d.get("needs_review_skipped"):
        err.print(
            f"[yellow]warning:[/yellow] skipped {d['needs_review_skipped']} questions marked needs_review "
            "(no gold answer yet: write their answers and clear the flag to include them)"
        )
    if d.get("gold_mismatches"):
        err.print(f"[yellow]warning:[/yellow] {d['gold_mismatches']} gold answers are not at their answer_start")
    if d.get("reader_seen"):
        err.print(
            f"[yellow]warning:[/yellow] {d['reader_seen']} of {run.summary['questions']['total']} questions ask about articles the "
            "span reader trained or was tuned on: their numbers are not held out (XQuAD: --split test is; ARCD: eval/reader_split.py's test file is)"
        )
    rows = intervals(run.results)
    if report is not None:
        try:
            paths = write_report(report, run, rows)
        except OSError as exc:
            err.print(f"[red]error:[/red] the report could not be written into {report}: {exc}")
            raise typer.Exit(2) from exc
        err.print("report: " + ", ".join(str(p) for p in paths.values()))
    if as_json:
        print(to_json(run.summary))
    else:
        print_summary(run.summary, console, rows)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes (CI smoke run, well under a minute).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write bench.json and growth.png here.", show_default=False)] = None,
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="Corpus to ingest (default ./corpus).", show_default=False)] = None,
    xquad: Annotated[
        Path | None, typer.Option("--xquad", help="Also ingest the contexts of this SQuAD-format file.", show_default=False)
    ] = None,
    sizes: Annotated[
        str | None, typer.Option("--sizes", help="Growth corpus sizes in chunks, e.g. 1000,10000,100000.", show_default=False)
    ] = None,
    sections: Annotated[
        str | None, typer.Option("--sections", help="Any of ingest,query,memory,growth (default all).", show_default=False)
    ] = None,
) -> None:
    """Measure query, ingest, growth and memory against the embedding model's own floor."""
    from rag.evaluation.bench import BenchConfig, run_bench, summary_lines, write_outputs

    overrides: dict = {}
    if corpus:
        overrides["corpus"] = corpus
    if xquad is not None:
        overrides["xquad_contexts"] = xquad
    for path in corpus or []:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="--corpus")
    if sizes:
        try:
            overrides["growth_sizes"] = tuple(int(x) for x in comma_list(sizes))
        except ValueError as exc:
            raise typer.BadParameter(f"{sizes!r}: give whole numbers of chunks, comma-separated", param_hint="--sizes") from exc
        if not overrides["growth_sizes"] or min(overrides["growth_sizes"]) < 1:
            raise typer.BadParameter("sizes must be at least 1 chunk", param_hint="--sizes")
    if sections:
        overrides["sections"] = tuple(comma_list(sections))
        known = BenchConfig().sections
        unknown = [x for x in overrides["sections"] if x not in known]
        if unknown or not overrides["sections"]:
            raise typer.BadParameter(
                f"unknown section(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}", param_hint="--sections"
            )
    cfg = BenchConfig.quick(**overrides) if quick else BenchConfig(**overrides)
    results = run_bench(cfg, get_settings(), progress=lambda msg: err.print(f"[dim]{msg}[/dim]"))
    if out is not None:
        paths = write_outputs(results, out)
        err.print("wrote " + ", ".join(str(p) for p in paths.values()))
    if as_json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        console.print("\n".join(summary_lines(results)), markup=False, highlight=False, soft_wrap=True)


app.command("train-reader")(train_reader)


feedback_app = typer.Typer(no_args_is_help=True, help="Answer feedback collected by POST /feedback: export it as a QA set, count it.")
app.add_typer(feedback_app, name="feedback")

FeedbackPathOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--path",
        help="The feedback file (default: $RAG_FEEDBACK_PATH or feedback/feedback.jsonl); repeat it to read the files of several hosts.",
        show_default=False,
    ),
]


def _read_feedback(paths: list[Path] | None) -> tuple[list[Path], Any]:
    from rag.feedback import FeedbackRead, read_feedback

    sources = paths or [get_settings().feedback_path]
    combined = FeedbackRead()
    for source in sources:
        if not source.is_file():
            err.print(f"[red]error:[/red] no feedback file at {source}")
            raise typer.Exit(2)
        read = read_feedback(source)
        combined.records.extend(read.records)
        combined.bad_lines.extend(read.bad_lines)
        combined.torn_tail |= read.torn_tail
        if read.bad_lines:
            torn = " (the last one a torn write)" if read.torn_tail else ""
            err.print(f"[yellow]warning:[/yellow] {source}: skipped {len(read.bad_lines)} unreadable lines{torn}: {read.bad_lines[:10]}")
    return sources, combined


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", help="The QA file to write (JSONL, the format of eval/qa/corpus_qa.jsonl).")],
    path: FeedbackPathOpt = None,
    all_: Annotated[
        bool,
        typer.Option("--all/--unhelpful-only", help="Every question with feedback, or only those with an unhelpful vote."),
    ] = True,
) -> None:
    """Write the feedback as a QA set for `rag eval`: one line per question, those with unhelpful
    votes first. Gold answers are the spans users found helpful; a question with none is written
    with "needs_review": true (`rag eval` skips it until a reviewer fills in its answers)."""
    from rag.feedback import export_qa, write_jsonl

    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give the QA file to write", param_hint="--out")
    sources, read = _read_feedback(path)
    if any(out.resolve() == source.resolve() for source in sources):
        # the raw ratings would be replaced by the QA set made from them
        raise typer.BadParameter(f"{out} is the feedback file being read; write the QA set elsewhere", param_hint="--out")
    items = export_qa(read.records, unhelpful_only=not all_)
    try:
        write_jsonl(out, items)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    bad = sum(bool(i["feedback"]["unhelpful"]) for i in items)
    review = sum(i["needs_review"] for i in items)
    console.print(
        f"wrote {len(items)} questions from {len(read.records)} records in {', '.join(map(str, sources))} to {out}: "
        f"{bad} with unhelpful votes (first), {review} need review (no gold answer yet)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@feedback_app.command("stats")
def feedback_stats(
    path: FeedbackPathOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Count the collected feedback: records, helpful and unhelpful votes, questions, languages."""
    from rag.feedback import feedback_stats as compute

    sources, read = _read_feedback(path)
    stats = compute(read)
    stats["paths"] = [str(p) for p in sources]
    stats["bytes"] = sum(p.stat().st_size for p in sources)
    if as_json:
        print(json.dumps(stats, ensure_ascii=False))
        return
    table = Table(title=f"feedback in {', '.join(map(str, sources))}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("records", stats["records"]),
        ("helpful", stats["helpful"]),
        ("unhelpful", stats["unhelpful"]),
        ("on abstentions", stats["on_abstentions"]),
        ("with a comment", stats["with_comment"]),
        ("document gone", stats["doc_not_found"]),
        ("questions", stats["questions"]),
        ("questions with unhelpful votes", stats["questions_with_unhelpful"]),
        ("questions needing review", stats["questions_needing_review"]),
        *((f"language {lang}", n) for lang, n in stats["languages"].items()),
        ("unreadable lines", stats["bad_lines"]),
        ("first", stats["first"] or "-"),
        ("last", stats["last"] or "-"),
        ("file size (bytes)", f"{stats['bytes']} (the service stops at {get_settings().feedback_max_bytes} per file)"),
    ]
    for what, n in rows:
        table.add_row(what, str(n))
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
