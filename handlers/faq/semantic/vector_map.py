"""A fitted linear map of an encoder's vectors, shipped with the decision fitted through it.

The encoder was trained on other texts than citizens' questions to institutions: a
question and its entry's variants are not always nearer each other than a neighbouring
entry, and a question the FAQ does not cover may sit as near an entry as a covered one.
A 384 x 384 matrix, started at the identity and fitted on the labelled FAQs of the
fitting kinds (``bench/faq_map.py``, run by ``bench/faq_loko.py fit``), moves a question
nearer its entry's variants and an uncovered one away from every entry. It is applied to
a citizen's message, to every question variant and to every answer sentence before the
cosine (fitted on the questions; answer sentences compared through it too answered more
right at once than with their own vectors, leave-one-kind-out).

Measured with leave-one-institution-kind-out validation (the map of each fold fitted
without the kind left out), it answers more questions right at once at the same bars
(55.0% against 47.8% over 32 kinds), with as many uncovered ones answered (5.4%): the
figures are in README.md. The decision shipped for an
encoder is fitted on similarities through such maps, so the two ship together
(``maps/<encoder name>.npy``, and the map's digest in the decision's ``space``). An encoder
without a map file (``use``) is compared unmapped.

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
    """``x -> normalise(W x)`` for rows ``x``."""

    def __init__(self, matrix: np.ndarray):
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"a vector map is a square matrix, not {matrix.shape}")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @functools.cached_property
    def digest(self) -> str:
        """Names this map in a decision fitted through it (``DecisionModel.space``)."""
        return hashlib.sha256(self.matrix.tobytes()).hexdigest()[:12]

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of ``rows`` (one row or a matrix of rows)."""
        mapped = rows @ self.matrix.T
        norms = np.linalg.norm(mapped, axis=-1, keepdims=True)
        return (mapped / np.maximum(norms, 1e-9)).astype(np.float32, copy=False)

    @classmethod
    def load(cls, path: Path) -> VectorMap:
        return cls(np.load(path, allow_pickle=False))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.save(f, self.matrix, allow_pickle=False)


def map_path(encoder_name: str) -> Path:
    return MAPS_DIR / f"{encoder_name}.npy"


@functools.cache
def shipped_map(encoder_name: str, dim: int) -> VectorMap | None:
    """The map shipped for the encoder, or None (compared unmapped); loaded once per
    process and shared by every FAQ's index (590 KB, not per institution)."""
    path = map_path(encoder_name)
    if not path.exists():
        return None
    vector_map = VectorMap.load(path)
    if vector_map.dim != dim:
        raise ValueError(f"{path}: a map of {vector_map.dim} dimensions for {dim}")
    return vector_map
