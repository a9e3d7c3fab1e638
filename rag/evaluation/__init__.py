"""Evaluation and benchmarking tooling (``rag eval``, ``rag bench``, ``rag info``'s memory
estimate); the service never imports it.

``harness``: datasets, running systems built from stages, the ``rag eval`` summary;
``metrics``: pure scoring functions; ``report``: tables, JSON and the report directory (plots
need the ``plot`` extra); ``bench``: ``rag bench``; ``footprint``: memory estimates.
"""
