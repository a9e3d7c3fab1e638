"""The ``rag`` command over a small synthetic corpus: ingest, ask, search, remove, info,
verify, and clear errors without an index."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.config import get_settings
from rag.index import Index

ENV = {"COLUMNS": "400", "NO_COLOR": "1"}  # no wrapping or colour codes in human output
runner = CliRunner()


def rag(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def cli_corpus(tmp_path_factory, small_docs):
    """The small documents as .txt files (first line = title)."""
    root = tmp_path_factory.mktemp("cli_corpus")
    for d in small_docs:
        (root / f"{d.doc_id}.txt").write_text(f"{d.title}\n\n{d.text}\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, cli_corpus, e5):
    """An index built by `rag ingest` (shared by the read-only command tests)."""
    index = tmp_path_factory.mktemp("cli") / "index"
    result = rag("ingest", str(cli_corpus), "--index", str(index))
    assert result.exit_code == 0, result.output
    return index


def test_ingest_reports_what_it_did(cli_index, cli_corpus, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(cli_index, index)
    again = rag("ingest", str(cli_corpus), "--index", str(index))
    assert again.exit_code == 0, again.output
    out = flat(again.stdout)
    assert "version 1: 0 added, 0 updated, 4 unchanged, 0 removed, 0 skipped; 0 texts embedded" in out

    (cli_corpus / "ar_palms.txt").rename(tmp_path / "moved.txt")
    try:
        pruned = rag("ingest", str(cli_corpus), "--index", str(index), "--prune")
    finally:
        (tmp_path / "moved.txt").rename(cli_corpus / "ar_palms.txt")
    assert pruned.exit_code == 0, pruned.output
    assert "version 2: 0 added, 0 updated, 3 unchanged, 1 removed" in flat(pruned.stdout)


def test_prune_refuses_when_an_input_could_not_be_read(cli_index, cli_corpus, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(cli_index, index)
    before = (index / "CURRENT").read_text()
    # a mistyped path: every indexed document would have been "not found" and removed
    typo = rag("ingest", str(tmp_path / "corpsu"), "--index", str(index), "--prune")
    assert typo.exit_code == 2 and "--prune refused" in flat(typo.stderr) and "not found" in typo.stderr
    # one file that no longer decodes: its indexed document would have been removed
    broken = tmp_path / "broken"
    shutil.copytree(cli_corpus, broken)
    (broken / "ar_palms.txt").write_bytes("نخيل".encode() + b" caf\xe9 \xc3(")  # not UTF-8
    bad = rag("ingest", str(broken), "--index", str(index), "--prune")
    assert bad.exit_code == 2 and "ar_palms.txt" in bad.stderr and "Nothing was written" in flat(bad.stderr)
    assert (index / "CURRENT").read_text() == before
    assert "ar_palms" in Index.open(index).doc_ids
    # nothing to read is not a failure: an unsupported file beside the corpus does not block pruning
    (broken / "ar_palms.txt").unlink()
    (broken / "notes.docx").write_bytes(b"PK")
    ok = rag("ingest", str(broken), "--index", str(index), "--prune")
    assert ok.exit_code == 0, ok.output
    assert "1 removed" in flat(ok.stdout)


def test_an_index_path_that_is_a_file_is_a_usage_error(cli_corpus, tmp_path):
    (tmp_path / "notadir").write_text("x")
    for args in (("ingest", str(cli_corpus)), ("ask", "What is this?")):
        result = rag(*args, "--index", str(tmp_path / "notadir"))
        assert result.exit_code == 2 and "is a file, not an index folder" in flat(result.stderr)
        assert "Traceback" not in result.output


def test_eval_refuses_an_empty_selection_and_an_unwritable_report_before_running(cli_index, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "question": "Where?", "answers": ["x"], "doc_id": "ar_palms", "split": "dev"}) + "\n")
    empty = rag("eval", str(qa), "--split", "test", "--index", str(cli_index), "--no-baselines", "--reader", "sentence")
    assert empty.exit_code == 2 and "no questions to evaluate" in flat(empty.stderr)
    (tmp_path / "taken").write_text("a file")
    for target in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        blocked = rag("eval", str(qa), "--report", str(target), "--index", str(cli_index), "--reader", "sentence")
        assert blocked.exit_code == 2 and "cannot write a report" in flat(blocked.stderr)
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"RAG_PORT": "abc"}, ("verify",), "RAG_PORT: Input should be a valid integer"),
        ({"RAG_CHUNK_TOKENS": "40", "RAG_CHUNK_OVERLAP": "40"}, ("ask", "Where is it?"), "must be smaller than RAG_CHUNK_TOKENS"),
        ({"RAG_READER_MODEL": "/nonexistent/reader"}, ("ask", "Where is it?"), "no reader model in /nonexistent/reader"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(cli_index, monkeypatch, env, args, says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = rag(*args, "--index", str(cli_index))
    finally:
        for name in env:
            monkeypatch.delenv(name)
        get_settings.cache_clear()
    assert result.exit_code == 2 and says in flat(result.stderr)
    assert "Traceback" not in result.output


def test_ask_refuses_what_the_api_refuses(cli_index):
    for args in (("",), ("   ",), ("???",), ("Where?", "--k", "0"), ("Where?", "--k", "-2")):
        result = rag("ask", *args, "--index", str(cli_index))
        assert result.exit_code == 2, (args, result.output)


def test_feedback_export_never_overwrites_the_feedback_it_reads(tmp_path):
    log = tmp_path / "feedback.jsonl"
    line = {"id": "f1", "question": "Where?", "helpful": False, "answer": None, "index_version": 1, "language": "en"}
    log.write_text(json.dumps(line) + "\n")
    before = log.read_bytes()
    same = rag("feedback", "export", "--path", str(log), "--out", str(log))
    assert same.exit_code == 2 and "is the feedback file being read" in flat(same.stderr)
    folder = rag("feedback", "export", "--path", str(log), "--out", str(tmp_path))
    assert folder.exit_code == 2 and "is a folder" in flat(folder.stderr)
    assert log.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["feedback.jsonl"]


@pytest.mark.parametrize(
    "args",
    [
        ("bench", "--quick", "--sizes", "abc"),
        ("bench", "--quick", "--sections", "bogus"),
        ("bench", "--quick", "--corpus", "/nonexistent/corpus"),
        ("train-reader", "--data", "/nonexistent/data", "--out", "/tmp/never-written"),
        ("train-reader", "--lr", "-1", "--out", "/tmp/never-written"),
        ("train-reader", "--negatives", "5", "--out", "/tmp/never-written"),
    ],
)
def test_bench_and_training_refuse_bad_arguments_before_starting(args):
    result = rag(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_write_the_disk_refuses_is_one_line_and_exit_2(cli_index, cli_corpus, tmp_path, monkeypatch):
    import errno

    from rag.ingest import Indexer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Indexer, "ingest", full)
    monkeypatch.setattr(Indexer, "remove", full)
    index = tmp_path / "index"
    shutil.copytree(cli_index, index)
    for args, after in (
        (("ingest", str(cli_corpus), "--rebuild"), "previous version is unchanged"),
        (("remove", "ar_palms"), "nothing changed"),
    ):
        result = rag(*args, "--index", str(index))
        assert result.exit_code == 2, result.output
        assert "could not be written" in flat(result.stderr) and "No space left" in result.stderr and after in flat(result.stderr)
        assert "Traceback" not in result.output


def test_first_ingest_builds_every_document(cli_index):
    idx = Index.open(cli_index)
    assert sorted(idx.doc_ids) == ["ar_palms", "ar_space", "ar_summit", "en_coffee"]
    assert idx.titles[idx.doc_row["ar_space"]] == "مسبار الأمل"
    assert idx.verify() == []
    idx.close()


def test_ingest_with_nothing_to_index_fails(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = rag("ingest", str(empty), "--index", str(tmp_path / "index"))
    assert result.exit_code == 1
    assert "no documents" in result.stderr


def test_ask_human_output_shows_the_span_and_its_source(cli_index):
    result = rag("ask", "متى وصل مسبار الأمل إلى مدار المريخ؟", "--index", str(cli_index))
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "ووصل المسبار إلى مدار المريخ في فبراير من عام 2021" in out
    assert "source: مسبار الأمل (ar_space, chars" in out


def test_ask_json_has_exactly_the_documented_shape(cli_index):
    result = rag("ask", "When did UNESCO inscribe Arabic coffee?", "--json", "--k", "2", "--index", str(cli_index))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert set(data) == {"question", "language", "answerable", "answer", "citations", "timings_ms", "index_version"}
    assert data["question"] == "When did UNESCO inscribe Arabic coffee?"
    assert data["language"] == "en" and data["answerable"] is True and data["index_version"] == 1
    answer = data["answer"]
    assert set(answer) - {"focus", "sentence"} == {"text", "doc_id", "title", "start", "end", "score"}
    assert answer["doc_id"] == "en_coffee"
    sentence = answer["sentence"]  # the span reader (the default) gives the sentence around its span
    assert sentence["start"] <= answer["start"] < answer["end"] <= sentence["end"]
    assert len(data["citations"]) == 2
    assert all(set(c) == {"doc_id", "title", "text", "start", "end", "score"} for c in data["citations"])
    idx = Index.open(cli_index)
    text = idx.texts[idx.doc_row["en_coffee"]]
    assert text[answer["start"] : answer["end"]] == answer["text"]
    assert text[sentence["start"] : sentence["end"]] == sentence["text"]
    for c in data["citations"]:
        assert idx.texts[idx.doc_row[c["doc_id"]]][c["start"] : c["end"]] == c["text"]
    idx.close()
    assert set(data["timings_ms"]) >= {"total"}


def test_search_json(cli_index):
    result = rag("search", "مسبار المريخ", "--json", "--k", "3", "--index", str(cli_index))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] == "مسبار المريخ" and len(data["passages"]) == 3
    assert data["passages"][0]["doc_id"] == "ar_space"
    assert set(data["passages"][0]) == {"chunk_id", "doc_id", "title", "text", "start", "end", "score", "dense_rank", "bm25_rank"}


def test_search_human_output(cli_index):
    result = rag("search", "Arabic coffee", "--k", "1", "--index", str(cli_index))
    assert result.exit_code == 0, result.output
    assert "Arabic coffee (en_coffee" in flat(result.stdout)


def test_remove(cli_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(cli_index, index)
    result = rag("remove", "ar_palms", "--index", str(index))
    assert result.exit_code == 0, result.output
    assert "removed ar_palms; index version 2" in flat(result.stdout)
    unknown = rag("remove", "nope", "--index", str(index))
    assert unknown.exit_code == 1
    assert "not in the index: nope" in flat(unknown.stderr)
    idx = Index.open(index)
    assert idx.version == 2 and "ar_palms" not in idx.doc_row
    idx.close()


def test_info(cli_index):
    result = rag("info", "--index", str(cli_index), "--verify")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout.replace("│", " "))
    for expected in ("version 1", "model intfloat/multilingual-e5-small", "dimensions 384", "documents 4", "verified"):
        assert expected in out


def test_verify_healthy(cli_index):
    result = rag("verify", "--index", str(cli_index))
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout


def test_index_from_the_environment(cli_index, monkeypatch):
    monkeypatch.setenv("RAG_INDEX", str(cli_index))
    get_settings.cache_clear()
    try:
        result = rag("info")
    finally:
        monkeypatch.delenv("RAG_INDEX")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert str(cli_index) in flat(result.stdout)


@pytest.mark.parametrize("command", [["ask", "سؤال"], ["ask", "question", "--json"], ["search", "سؤال"], ["remove", "x"], ["info"]])
def test_no_index_is_a_clear_error_with_exit_2(tmp_path, command):
    result = rag(*command, "--index", str(tmp_path / "missing"))
    assert result.exit_code == 2, result.output
    assert "no index in" in result.stderr and "rag ingest" in result.stderr
    assert result.stdout == ""


def test_corrupt_index_is_a_clear_error_with_exit_2(cli_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(cli_index, index)
    store = index / "v000001" / "store.sqlite"
    store.write_bytes(store.read_bytes()[:1000])
    result = rag("ask", "سؤال", "--index", str(index))
    assert result.exit_code == 2
    assert "store.sqlite" in result.stderr


# --- the acceptance commands, on the real corpus ----------------------------------------


def test_ask_over_the_corpus_cites_the_forum_document(corpus_index):
    result = rag("ask", "Who is the CEO of TMRW among the forum speakers?", "--json", "--index", str(corpus_index))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerable"] is True and data["answer"]["doc_id"] == "002_37161d73928ee183"


def test_ask_over_the_corpus_abstains_in_human_output(corpus_index):
    result = rag("ask", "Who will host the World Government Summit in 2040?", "--index", str(corpus_index))
    assert result.exit_code == 0, result.output
    assert "The documents do not answer this question." in flat(result.stdout)
    assert "source:" not in result.stdout


@pytest.fixture()
def fresh_settings():
    """Settings re-read from the environment for one test (get_settings is cached per process)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_search_defaults_to_rag_top_k(cli_index, fresh_settings):
    """Regression (issue 13, bug 3): `rag search` used a hard-coded 5 instead of RAG_TOP_K."""
    result = runner.invoke(app, ["search", "دبي", "--json", "--index", str(cli_index)], env={**ENV, "RAG_TOP_K": "2"})
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["passages"]) == 2
    three = rag("search", "دبي", "--json", "--k", "3", "--index", str(cli_index))
    assert len(json.loads(three.stdout)["passages"]) == 3


def test_ask_reader_option_goes_through_the_registry(cli_index):
    question = "متى وصل مسبار الأمل إلى مدار المريخ؟"
    answered = json.loads(rag("ask", question, "--json", "--reader", "sentence", "--index", str(cli_index)).stdout)
    assert answered["answerable"] and answered["answer"]["doc_id"] == "ar_space"
    retrieval_only = rag("ask", question, "--json", "--reader", "retrieval", "--index", str(cli_index))
    data = json.loads(retrieval_only.stdout)
    assert data["answerable"] is False and data["citations"][0]["doc_id"] == "ar_space"
    unknown = rag("ask", question, "--reader", "no-such-reader", "--index", str(cli_index))
    assert unknown.exit_code == 2 and "no-such-reader" in unknown.output


def test_an_unknown_reader_in_the_environment_is_a_clear_error(cli_index, fresh_settings):
    result = runner.invoke(app, ["ask", "سؤال", "--index", str(cli_index)], env={**ENV, "RAG_READER": "nope"})
    assert result.exit_code == 2 and "unknown reader 'nope'" in flat(result.output)


def test_train_reader_refuses_a_single_fold(tmp_path):
    result = rag("train-reader", "--folds", "1", "--out", str(tmp_path / "cv"))
    assert result.exit_code == 2
    assert "at least 2 folds" in result.output
    assert not (tmp_path / "cv").exists()


def test_train_reader_all_data_needs_a_dev_fit_to_carry_and_no_folds(tmp_path):
    missing = rag("train-reader", "--all-data", "--fit-from", str(tmp_path / "none.json"), "--out", str(tmp_path / "m"))
    assert missing.exit_code == 2 and "none.json" in flat(missing.output) and "without dev" in flat(missing.output)
    both = rag("train-reader", "--all-data", "--folds", "3", "--out", str(tmp_path / "m"))
    assert both.exit_code == 2 and "pick one" in flat(both.output)
    assert not (tmp_path / "m").exists()


class TrainRuns(list):
    """The TrainConfig of each run, and in ``kwargs`` what else it passed to packaging."""

    def __init__(self) -> None:
        super().__init__()
        self.kwargs: list[dict] = []


@pytest.fixture()
def trained_configs(monkeypatch) -> TrainRuns:
    """The TrainConfig of each ``rag train-reader`` run, with the training itself replaced."""
    train = pytest.importorskip("rag.reader.train", exc_type=ImportError)  # the train extra (torch)
    seen = TrainRuns()

    def fake(data, out, cfg, **kwargs):
        seen.append(cfg)
        seen.kwargs.append(kwargs)
        return {"chosen": "int8", "metrics": {}}

    monkeypatch.setattr(train, "train_and_package", fake)
    return seen


def test_train_reader_without_options_trains_the_recipe_s_defaults(tmp_path, trained_configs):
    from rag.reader.recipe import TrainConfig

    ok = rag("train-reader", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert trained_configs == [TrainConfig()]  # one place for every default: the command adds none of its own


def test_train_reader_passes_swaps_and_hard_negatives_to_the_recipe_and_bounds_them(tmp_path, trained_configs):
    seen = trained_configs
    ok = rag("train-reader", "--swaps", "0.5", "--hard-negatives", "0.25", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [(c.swaps, c.hard_negatives) for c in seen] == [(0.5, 0.25)]
    too_many = rag("train-reader", "--swaps", "1.5", "--out", str(tmp_path / "m"))
    assert too_many.exit_code == 2 and len(seen) == 1
    assert rag("train-reader", "--hard-negatives", "-0.1", "--out", str(tmp_path / "m")).exit_code == 2 and len(seen) == 1


def test_train_reader_passes_the_cloze_share_and_bounds_it(tmp_path, trained_configs):
    assert rag("train-reader", "--out", str(tmp_path / "m")).exit_code == 0
    ok = rag("train-reader", "--cloze", "4", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [c.cloze for c in trained_configs] == [0, 4]
    assert rag("train-reader", "--cloze", "-1", "--out", str(tmp_path / "m")).exit_code == 2 and len(trained_configs) == 2


def test_train_reader_passes_the_cloze_weight_and_bounds_it(tmp_path, trained_configs):
    ok = rag("train-reader", "--cloze", "4", "--cloze-weight", "0.1", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [(c.cloze, c.cloze_weight) for c in trained_configs] == [(4, 0.1)]
    assert rag("train-reader", "--out", str(tmp_path / "m")).exit_code == 0 and trained_configs[-1].cloze_weight == 1.0
    for bad in ("0", "1.5"):
        assert (
            rag("train-reader", "--cloze", "4", "--cloze-weight", bad, "--out", str(tmp_path / "m")).exit_code == 2
            and len(trained_configs) == 2
        )


def test_train_reader_passes_the_cloze_epochs_and_bounds_them(tmp_path, trained_configs):
    ok = rag("train-reader", "--cloze", "4", "--cloze-epochs", "2", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [(c.cloze, c.cloze_epochs) for c in trained_configs] == [(4, 2)]
    assert rag("train-reader", "--out", str(tmp_path / "m")).exit_code == 0 and trained_configs[-1].cloze_epochs == 0
    for bad in ("-1", "11"):
        assert rag("train-reader", "--cloze-epochs", bad, "--out", str(tmp_path / "m")).exit_code == 2 and len(trained_configs) == 2
    # without cloze questions there is nothing for them to shape: refused, nothing trained
    for option, value in (("--cloze-epochs", "2"), ("--cloze-weight", "0.1")):
        refused = rag("train-reader", option, value, "--out", str(tmp_path / "m"))
        assert refused.exit_code == 2 and "add --cloze N" in refused.output and len(trained_configs) == 2


def test_train_reader_passes_the_weight_average_decay_and_bounds_it(tmp_path, trained_configs):
    ok = rag("train-reader", "--ema", "0.99", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [c.ema for c in trained_configs] == [0.99]
    for bad in ("1", "-0.5"):
        assert rag("train-reader", "--ema", bad, "--out", str(tmp_path / "m")).exit_code == 2 and len(trained_configs) == 1


def test_train_reader_passes_the_teachers_and_refuses_half_a_distillation(tmp_path, trained_configs):
    teachers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "reader.pt").write_bytes(b"weights")
        teachers += ["--teacher", str(tmp_path / name)]
    ok = rag("train-reader", *teachers, "--distill", "0.5", "--temperature", "3", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [(c.teachers, c.distill, c.temperature) for c in trained_configs] == [((str(tmp_path / "a"), str(tmp_path / "b")), 0.5, 3.0)]
    assert rag("train-reader", "--out", str(tmp_path / "m")).exit_code == 0 and trained_configs[-1].teachers == ()
    refusals = {
        "needs both": [*teachers],  # teachers without a weight
        "needs both ": ["--distill", "0.5"],  # a weight without teachers
        "would leak": [*teachers, "--distill", "0.5", "--folds", "3"],
        "no reader.pt": ["--teacher", str(tmp_path / "none"), "--distill", "0.5"],
    }
    for message, args in refusals.items():
        refused = rag("train-reader", *args, "--out", str(tmp_path / "m"))
        assert refused.exit_code == 2 and message.strip() in flat(refused.output), (args, refused.output)
    assert rag("train-reader", *teachers, "--distill", "1.5", "--out", str(tmp_path / "m")).exit_code == 2
    assert len(trained_configs) == 2


def test_train_reader_passes_the_soup_size_and_refuses_zero(tmp_path, trained_configs):
    seen = trained_configs
    ok = rag("train-reader", "--soup", "4", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [c.soup for c in seen] == [4]
    assert rag("train-reader", "--soup", "0", "--out", str(tmp_path / "m")).exit_code == 2 and len(seen) == 1


def test_train_reader_passes_the_export_choices_to_packaging(tmp_path, trained_configs):
    assert rag("train-reader", "--out", str(tmp_path / "m")).exit_code == 0
    assert rag("train-reader", "--ffn-out-fp32", "--out", str(tmp_path / "m")).exit_code == 0
    assert rag("train-reader", "--ffn-out-fp32", "--fp32-layers", "2", "--out", str(tmp_path / "m")).exit_code == 0
    assert [(k["ffn_out_fp32"], k["fp32_layers"]) for k in trained_configs.kwargs] == [(False, 0), (True, 0), (True, 2)]
    for shaped in (["--ffn-out-fp32"], ["--fp32-layers", "2"]):
        both = rag("train-reader", *shaped, "--folds", "3", "--out", str(tmp_path / "cv"))
        assert both.exit_code == 2 and "--folds exports none" in flat(both.output) and len(trained_configs) == 3
    assert rag("train-reader", "--fp32-layers", "13", "--out", str(tmp_path / "m")).exit_code == 2


def test_train_reader_checks_the_device_before_training(tmp_path, monkeypatch, trained_configs):
    import torch

    seen = trained_configs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_gpu = rag("train-reader", "--device", "cuda", "--out", str(tmp_path / "m"))
    assert no_gpu.exit_code == 2 and "sees no CUDA GPU" in flat(no_gpu.output)
    bogus = rag("train-reader", "--device", "tpu", "--out", str(tmp_path / "m"))
    assert bogus.exit_code == 2 and "unknown training device 'tpu'" in flat(bogus.output)
    assert not seen and not (tmp_path / "m").exists()
    ok = rag("train-reader", "--device", "cpu", "--bf16", "--out", str(tmp_path / "m"))
    assert ok.exit_code == 0, ok.output
    assert [(c.device, c.bf16) for c in seen] == [("cpu", True)]
