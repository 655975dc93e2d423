"""Entry vectors on disk, keyed by a hash of (model, kind, text).

A restart, or a thousand institutions sharing one FAQ, re-embeds nothing; editing one entry
re-embeds only its texts. One small file per text (raw float32), written atomically, two
levels of folders so that no folder grows huge."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np


def text_key(model: str, kind: str, text: str) -> str:
    return hashlib.sha256(f"{model}\0{kind}\0{text}".encode()).hexdigest()


class VectorCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key[2:]}.f32"

    def get(self, key: str) -> np.ndarray | None:
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        if not data or len(data) % 4:
            return None
        return np.frombuffer(data, dtype=np.float32)

    def put(self, key: str, vector: np.ndarray) -> None:
        """Store one vector; a cache that cannot be written is only slower, never an error."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(np.ascontiguousarray(vector, dtype=np.float32).tobytes())
            os.replace(tmp, path)
        except OSError:
            return
