"""The span reader's floor for ``rag bench``: the bare onnxruntime session, in a process of its
own with the library's defaults, running the model on exactly the inputs the reader stage
built (saved by the bench as ``.npz``). It imports nothing of ``rag``.

    python reader_floor.py MODEL.onnx INPUTS.npz REPEATS  -> one JSON line: {"s": [seconds per batch]}
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import numpy as np
    import onnxruntime as ort

    model, inputs, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    data = np.load(inputs)
    n = len([k for k in data.files if k.startswith("embeds_")])
    batches = [(data[f"embeds_{i}"], data[f"mask_{i}"]) for i in range(n)]
    if batches:
        session.run(None, {"inputs_embeds": batches[0][0], "attention_mask": batches[0][1]})  # warm-up
    best = []
    for embeds, mask in batches:
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
            runs.append(time.perf_counter() - t0)
        best.append(sorted(runs)[len(runs) // 2])
    print(json.dumps({"s": best}), flush=True)


if __name__ == "__main__":
    main()
