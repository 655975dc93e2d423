"""A fitted linear map of an encoder's vectors, shipped with the decision fitted through it.

The encoder was trained on other texts than citizens' questions to institutions: a
question and its entry's variants are not always nearer each other than a neighbouring
entry, and a question the FAQ does not cover may sit as near an entry as a covered one.
Two 384 x 384 matrices, started at the identity and fitted on the labelled FAQs of the
fitting kinds (``bench/faq_map.py``, run by ``bench/faq_loko.py fit``), move a question
nearer its entry's variants and an uncovered one away from every entry: one is applied to
a citizen's message, the other to every question variant and every answer sentence, before
the cosine (fitted on the questions; answer sentences compared through it too answered more
right at once than with their own vectors, leave-one-kind-out).

Measured with leave-one-institution-kind-out validation (the map of each fold fitted
without the kind left out), it answers more questions right at once at the same bars
(56.7% against 47.8% unmapped over 32 kinds; one matrix for both sides: 55.0%), with
5.1% of the uncovered ones answered (5.4% unmapped): the figures are in README.md. The
decision shipped for an encoder is fitted on similarities through such maps, so the two
ship together (``maps/<encoder name>.npy``, and the map's digest in the decision's
``space``). An encoder without a map file (``use``) is compared unmapped.

The vector cache keeps the encoder's own vectors: a new map needs no new embedding.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

#: where the maps ship, one file per encoder, named by :attr:`Encoder.name`
MAPS_DIR = Path(__file__).with_name("maps")


class VectorMap:
    """``x -> normalise(W x)`` for a message's vector, and ``x -> normalise(E x)`` for an
    entry's (its question variants and answer sentences). Two matrices because a citizen's
    message and an FAQ author's wording differ in kind: fitted apart (each pulled towards
    the identity), they answered more right at once than one matrix for both (bench/faq_map.py).
    A map of one matrix (``entries`` None) applies it to both."""

    def __init__(self, matrix: np.ndarray, entries: np.ndarray | None = None):
        for m in (matrix, matrix if entries is None else entries):
            if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape != matrix.shape:
                raise ValueError(f"a vector map is one or two square matrices, not {m.shape}")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.entries = (
            self.matrix if entries is None else np.ascontiguousarray(entries, dtype=np.float32)
        )

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @functools.cached_property
    def digest(self) -> str:
        """Names this map in a decision fitted through it (``DecisionModel.space``)."""
        digest = hashlib.sha256(self.matrix.tobytes())
        if self.entries is not self.matrix:
            digest.update(self.entries.tobytes())
        return digest.hexdigest()[:12]

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of messages' vectors (one row or a matrix of rows)."""
        return _normalised(rows @ self.matrix.T)

    def apply_entries(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of question variants' and answer sentences' vectors."""
        return _normalised(rows @ self.entries.T)

    @classmethod
    def load(cls, path: Path) -> VectorMap:
        stored = np.load(path, allow_pickle=False)
        if stored.ndim == 3 and len(stored) == 2:
            return cls(stored[0], stored[1])
        return cls(stored)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = (
            self.matrix if self.entries is self.matrix else np.stack([self.matrix, self.entries])
        )
        with path.open("wb") as f:
            np.save(f, stored, allow_pickle=False)


def _normalised(mapped: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mapped, axis=-1, keepdims=True)
    return (mapped / np.maximum(norms, 1e-9)).astype(np.float32, copy=False)


def map_path(encoder_name: str) -> Path:
    return MAPS_DIR / f"{encoder_name}.npy"


@functools.cache
def shipped_map(encoder_name: str, dim: int) -> VectorMap | None:
    """The map shipped for the encoder, or None (compared unmapped); loaded once per
    process and shared by every FAQ's index (1.2 MB, not per institution)."""
    path = map_path(encoder_name)
    if not path.exists():
        return None
    vector_map = VectorMap.load(path)
    if vector_map.dim != dim:
        raise ValueError(f"{path}: a map of {vector_map.dim} dimensions for {dim}")
    return vector_map
