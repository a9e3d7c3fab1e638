"""Crash safety: a real ``rag ingest`` SIGKILLed at 20+ points of a build and of an update never
loses or damages the live index (``benchmarks/crash_harness.py``, CI subset), and a damaged index
file of any kind stops the service from starting, with ``rag verify`` naming the file.

(``tests/test_index.py`` covers ``Index.open``/``verify`` on single damaged files and
``tests/test_ingest.py`` failures inside one process; here it is whole processes.)"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from rag.cli import app as cli
from rag.config import Settings
from rag.index import Index, IndexCorrupt, IndexProblem, current_version, version_name
from rag.ingest import Indexer
from rag.pipeline import RAG
from rag.schema import Document

pytestmark = pytest.mark.slow  # real processes, real model, real indexes


# --- SIGKILL at many points ---------------------------------------------------------------------


def test_sigkill_anywhere_in_a_build_or_update_loses_nothing(tmp_path, e5, load_script) -> None:
    harness = load_script("benchmarks/crash_harness.py")
    lines: list[str] = []
    h = harness.Harness(tmp_path, embedder=e5, log=lines.append)
    result = h.run(time_points=4, exact_points=harness.QUICK_EXACT)
    summary = result.summary()
    print("\n".join(lines), "\n", {k: v for k, v in summary.items() if k != "failures"})

    assert summary["failures"] == []
    assert result.survived == len(result.kills) >= 20
    # Kills landed in every part of a run that touches the index, on both scenarios,
    # before the switch (old version live) and after it (new version live).
    groups = result.by_group()
    assert {"loading", "embedding", "writing", "switching", "after switch"} <= set(groups), groups
    assert summary["by_scenario"].keys() == {"build", "update"}
    assert summary["live_after"].get("old", 0) > 0 and summary["live_after"].get("new", 0) > 0
    # Exact points are exact: each kill landed on the step it aimed at.
    for k in result.kills:
        if k.kind == "exact":
            assert k.stage == k.target.split("#")[0], k


# --- damaged files ------------------------------------------------------------------------------


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {"flip": _flip_middle_byte, "truncate": _truncate}


def _index_files(small_index: Path) -> list[str]:
    """Every file of a version (bm25/ has several), plus the manifest and CURRENT."""
    v = small_index / version_name(current_version(small_index))
    files = sorted(str(p.relative_to(v)) for p in v.rglob("*") if p.is_file())
    return [*files, "CURRENT"]


@pytest.fixture(scope="module")
def index_files(small_index) -> list[str]:
    files = _index_files(small_index)
    assert {"store.sqlite", "chunks.npy", "sentences.npy", "dense.faiss", "manifest.json", "CURRENT"} <= set(files)
    assert any(f.startswith("bm25/") for f in files)
    return files


def _damaged_copy(small_index: Path, tmp_path: Path, name: str, damage: str) -> Path:
    root = tmp_path / "index"
    shutil.copytree(small_index, root)
    target = root / name if name == "CURRENT" else root / version_name(current_version(small_index)) / name
    DAMAGE[damage](target)
    return root


def _settings(root: Path) -> Settings:
    return Settings(index=root, admin_token=None, api_keys="", rate_limit_per_minute=0, workers=1)


def test_every_index_file_is_checked(index_files) -> None:
    # The parametrised test below names files explicitly (ids must exist at collection time);
    # this keeps that list in step with what an index really holds.
    assert sorted(index_files) == sorted(FILES)


FILES = [
    "CURRENT",
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
    "bm25/n_docs",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
    "chunks.npy",
    "dense.faiss",
    "lexicon.json",
    "lexicon.npy",
    "manifest.json",
    "sentences.npy",
    "store.sqlite",
]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", FILES)
def test_damaged_file_stops_the_service_and_verify_names_it(small_index, tmp_path, caplog, name, damage) -> None:
    root = _damaged_copy(small_index, tmp_path, name, damage)
    shown = Path(name).name  # what the messages must mention

    # `rag verify` fails and names the file (never a traceback).
    result = CliRunner().invoke(cli, ["verify", "--index", str(root)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert shown in result.output.replace("\n", ""), result.output  # (rich wraps long paths)

    # The service refuses to start, saying why in its log; it never gets to answer a question.
    logger = logging.getLogger("api.app")
    logger.addHandler(caplog.handler)
    try:
        with pytest.raises(IndexProblem) as info, TestClient(create_app(_settings(root))) as client:
            client.post("/ask", json={"question": "كم عدد النخيل في الإمارات؟"})
    finally:
        logger.removeHandler(caplog.handler)
    assert shown in str(info.value), info.value
    assert any(r.levelno == logging.ERROR and "cannot start" in r.getMessage() for r in caplog.records)


def test_rag_serve_exits_with_a_clear_message_on_a_damaged_index(small_index, tmp_path) -> None:
    root = _damaged_copy(small_index, tmp_path, "chunks.npy", "flip")  # opens fine: only checksums tell
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    rag = Path(sys.executable).with_name("rag")
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(rag), "serve", "--index", str(root), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "cannot start" in proc.stderr and "checksum mismatch for chunks.npy" in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - t0 < 180


# --- damage in a version that is already live or arrives later ------------------------------------

EXTRA = Document("en_falcon", "Falconry", "Falconry is a traditional sport in the Emirates. Falcons are trained for hunting.")
QUESTION = "When did UNESCO inscribe Arabic coffee?"


def test_an_update_refuses_to_copy_vectors_from_a_damaged_version(small_index_copy, e5, small_docs) -> None:
    _flip_middle_byte(small_index_copy / "v000001" / "chunks.npy")  # opens fine: only checksums tell
    with pytest.raises(IndexCorrupt, match=r"chunks\.npy.*--rebuild"):
        Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([EXTRA])
    assert current_version(small_index_copy) == 1 and not (small_index_copy / "v000002").exists()
    # The way out it names works, and the rebuilt version is sound.
    Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([*small_docs, EXTRA], rebuild=True)
    idx = Index.open(small_index_copy)
    assert idx.version == 2 and idx.verify() == [] and idx.n_documents == 5
    idx.close()


def test_the_service_keeps_the_last_good_version_when_a_damaged_one_appears(small_index_copy, e5, small_docs, caplog) -> None:
    rag = RAG(Settings(index=small_index_copy, reload_interval_s=0.001), embedder=e5)
    app = create_app(_settings(small_index_copy), rag=rag)
    with TestClient(app) as client:
        before = client.post("/ask", json={"question": QUESTION}).json()
        assert before["index_version"] == 1 and before["answerable"]

        # Another process (`rag ingest`) writes version 2; then a byte of it rots on disk.
        Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([*small_docs, EXTRA])
        _flip_middle_byte(small_index_copy / "v000002" / "chunks.npy")
        time.sleep(0.01)
        with caplog.at_level(logging.ERROR, logger="rag.pipeline"):
            r = client.post("/ask", json={"question": QUESTION})
        assert r.status_code == 200 and r.headers["x-index-version"] == "1"
        after = r.json()
        before.pop("timings_ms"), after.pop("timings_ms")
        assert after == before
        assert any("still serving the previous one" in rec.getMessage() for rec in caplog.records)

        # A sound version 3 is picked up as usual.
        Indexer(small_index_copy, e5, Settings(index=small_index_copy)).ingest([*small_docs, EXTRA], rebuild=True)
        time.sleep(0.01)
        assert client.post("/ask", json={"question": QUESTION}).headers["x-index-version"] == "3"
