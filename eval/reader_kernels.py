"""Does the CPU change the span reader's answers? onnxruntime's int8 kernels on x86-64 without
VNNI (AVX2, AVX-512 before Cascade Lake, AMD before Zen 4) multiply uint8 activations by int8
weights with an instruction that saturates at int16; with VNNI (or uint8 weights) the integer
math is exact. This reads each question against its gold paragraph with the shipped model and
with the same weights re-expressed as uint8 (zero point 128: the same numbers, exact on every
CPU), and prints EM/F1 of both and how many spans differ:

    python eval/reader_kernels.py [--data ../shared/data] [--model models/reader]

Needs the ``onnx`` package (the train extra) to rewrite the weights; reads the ARCD dev
articles (the choice) and the held-out test articles of ARCD and XQuAD (the report).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.evaluation.bench import int8_vnni  # noqa: E402
from rag.evaluation.metrics import exact_match, f1_score  # noqa: E402
from rag.reader.data import QAExample, reader_corpus  # noqa: E402
from rag.reader.runtime import SpanScorer, default_model_dir  # noqa: E402

SETS = (("dev", "arcd"), ("test", "arcd"), ("test", "xquad-ar"), ("test", "xquad-en-ar"))


def unsigned_copy(src: Path, dst: Path) -> Path:
    """``src`` with every int8 MatMulInteger weight stored as uint8 (+128, zero point +128)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    shutil.copytree(src, dst, dirs_exist_ok=True)
    manifest = json.loads((src / "reader.json").read_text(encoding="utf-8"))
    model = onnx.load(str(src / manifest["model"]))
    inits = {i.name: i for i in model.graph.initializer}
    for name, init in inits.items():
        if name.endswith("_quantized") and init.data_type == onnx.TensorProto.INT8:
            zero = inits[name.removesuffix("_quantized") + "_zero_point"]
            w = numpy_helper.to_array(init).astype(np.int16) + 128
            z = numpy_helper.to_array(zero).astype(np.int16) + 128
            init.CopyFrom(numpy_helper.from_array(w.astype(np.uint8), init.name))
            zero.CopyFrom(numpy_helper.from_array(z.astype(np.uint8), zero.name))
    onnx.save(model, str(dst / manifest["model"]))
    manifest["sha256"] = hashlib.sha256((dst / manifest["model"]).read_bytes()).hexdigest()
    (dst / "reader.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return dst


def spans(scorer: SpanScorer, examples: list[QAExample]) -> list[str]:
    out = []
    for e in examples:
        best = scorer.score(e.question, [e.context])
        out.append(e.context[best[0].start : best[0].end] if best else "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=default_model_dir())
    args = ap.parse_args()
    print(f"CPU VNNI: {int8_vnni()} (without it the shipped int8 kernels saturate)")
    corpus = reader_corpus(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        shipped, exact = SpanScorer(args.model), SpanScorer(unsigned_copy(args.model, Path(tmp) / "u8"))
        print("| split | source | questions | shipped EM / F1 | exact EM / F1 | spans that differ |")
        print("|---|---|---:|---:|---:|---:|")
        for split, source in SETS:
            ex = [e for e in corpus[split] if e.source == source and e.answers]
            a, b = spans(shipped, ex), spans(exact, ex)

            def score(p: list[str], ex: list[QAExample] = ex) -> str:
                em = sum(exact_match(x, e.answer_texts()) for x, e in zip(p, ex, strict=True)) / len(ex)
                f1 = sum(f1_score(x, e.answer_texts()) for x, e in zip(p, ex, strict=True)) / len(ex)
                return f"{em:.3f} / {f1:.3f}"

            differ = sum(x != y for x, y in zip(a, b, strict=True))
            print(f"| {split} | {source} | {len(ex)} | {score(a)} | {score(b)} | {differ} ({differ / len(ex):.0%}) |")


if __name__ == "__main__":
    main()
