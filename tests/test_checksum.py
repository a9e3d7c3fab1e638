from __future__ import annotations

import hashlib
from pathlib import Path

from rag.checksum import sha256_file


def test_sha256_file_reads_past_its_block_size(tmp_path: Path):
    data = bytes(range(256)) * 5000  # 1.2 MiB: more than one 1 MiB block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1])
    assert sha256_file(path) != hashlib.sha256(data).hexdigest()
