"""rag.reader.package: writing a model's manifest."""

from __future__ import annotations

import json

import pytest

from rag.reader import package
from rag.reader.package import save_manifest


def test_a_manifest_write_cut_short_leaves_the_old_one_whole(tmp_path, monkeypatch):
    path = tmp_path / "reader.json"
    save_manifest(path, {"model": "reader.int8.onnx", "threshold": 0.1})
    assert json.loads(path.read_text(encoding="utf-8")) == {"model": "reader.int8.onnx", "threshold": 0.1}

    def crash(src, dst):  # the process dies between writing the new manifest and putting it in place
        raise OSError("disk gone")

    monkeypatch.setattr(package.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_manifest(path, {"model": "reader.int8.onnx", "threshold": 0.9})
    assert json.loads(path.read_text(encoding="utf-8")) == {"model": "reader.int8.onnx", "threshold": 0.1}
    assert [p.name for p in tmp_path.iterdir()] == ["reader.json"]  # no temporary file left behind
