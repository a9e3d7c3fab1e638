"""Export a trained reader to ONNX for the torch-free run time (training extra only).

Two files come out of one checkpoint: ``reader.fp32.onnx`` (reference, not shipped: 85 MB)
and the shipped model. Which one ships is measured in the model card: dynamic int8 (matmul
weights quantised per channel, 4x smaller) against fp16-stored weights that onnxruntime
folds back to fp32 when the session starts (same numbers as fp32, half the size).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from rag.reader.model import SpanReaderModel
from rag.reader.weights import E5File


def export_fp32(state: dict, path: Path, weights: E5File) -> Path:
    model = SpanReaderModel.from_e5(weights)
    model.load_state_dict(state)
    model.eval()
    x = torch.randn(2, 40, weights.config.hidden)
    mask = torch.ones(2, 40, dtype=torch.long)
    torch.onnx.export(
        model,
        (x, mask),
        str(path),
        input_names=["inputs_embeds", "attention_mask"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={
            "inputs_embeds": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "start_logits": {0: "batch", 1: "tokens"},
            "end_logits": {0: "batch", 1: "tokens"},
        },
        opset_version=17,
        dynamo=False,
    )
    return path


def quantize_int8(src: Path, dst: Path, keep_last: int = 0, ffn_out_fp32: bool = False, keep_first: int = 0) -> Path:
    """Dynamic int8 (per-channel weights, activations quantised on the fly); the span head stays
    fp32, and so do the first ``keep_first`` and the last ``keep_last`` layers whole. With
    ``ffn_out_fp32`` every layer's FFN output projection (1536 -> 384) stays fp32 too: its input,
    the GELU output, is the activation that per-tensor int8 quantises worst. Measured out of fold
    (fold 2, 481 questions, gold + near miss; F1): plain int8 0.361, FFN outputs fp32 0.381, and
    the first layer whole as well 0.391 (fold 1: 0.299 -> 0.324), against fp32 0.399 (0.315); the
    last two layers instead 0.384 (see eval/RESULTS.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    # node names as torch.onnx.export writes them: "/layers.11/fo/MatMul", "/qa/MatMul"
    n_layers = sum(1 for n in model.graph.node if n.op_type == "MatMul" and "/fo/" in n.name) or 12
    layers = [*range(min(keep_first, n_layers)), *range(max(n_layers - keep_last, 0), n_layers)]
    keep = [f"/layers.{i}/" for i in sorted(set(layers))] + ["/qa/"] + (["/fo/"] if ffn_out_fp32 else [])
    exclude = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and any(k in n.name for k in keep)]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=exclude)
    return dst


_LAYER = re.compile(r"/layers\.(\d+)/")


def _layer_of(node: str) -> int | None:
    m = _LAYER.search(node)
    return int(m.group(1)) if m else None


def _ranges(layers: list[int]) -> str:
    """[0, 1, 2, 7] -> "0-2, 7"."""
    runs: list[list[int]] = []
    for i in layers:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def describe_precision(path: Path) -> str:
    """What the file's weight matmuls run in, read from the file itself (for the model card)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    quantised = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    kept = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(x in weights for x in n.input)]
    if not quantised:
        return f"fp32 ({len(kept)} weight matmuls)"
    int8_layers = {_layer_of(q) for q in quantised}
    whole = sorted(i for i in {_layer_of(k) for k in kept} - int8_layers if i is not None)
    rest = [k for k in kept if _layer_of(k) not in whole]
    ffn_out, head = sum("/fo/" in k for k in rest), sum("/qa/" in k for k in rest)
    other = len(rest) - ffn_out - head
    parts = [f"layer{'s' if len(whole) > 1 else ''} {_ranges(whole)} whole"] if whole else []
    parts += [f"{ffn_out} FFN output projections"] if ffn_out else []
    parts += ["the span head"] if head else []
    parts += [f"{other} other weight matmuls"] if other else []
    return f"dynamic int8, per-channel weights ({len(quantised)} matmuls); kept fp32: {', '.join(parts) or 'none'}"


def to_fp16_storage(src: Path, dst: Path) -> Path:
    """Store large float initializers as fp16 behind a Cast node (folded at session start)."""
    model = onnx.load(str(src))
    graph = model.graph
    new_inits = []
    casts = []
    for init in list(graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 4096:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            new_inits.append(half)
            casts.append(onnx.helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "_cast"))
            graph.initializer.remove(init)
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.save(model, str(dst))
    return dst
