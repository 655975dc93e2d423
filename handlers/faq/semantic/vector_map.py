"""A fitted linear map of an encoder's vectors, shipped with the decision fitted through it.

The encoder was trained on other texts than citizens' questions to institutions: a
question and its entry's variants are not always nearer each other than a neighbouring
entry, and a question the FAQ does not cover may sit as near an entry as a covered one.
Three 384 x 384 matrices, started at the identity and fitted on the labelled FAQs of the
fitting kinds (``bench/faq_map.py``, run by ``bench/faq_loko.py fit``), move a question
nearer its entry's variants and an uncovered one away from every entry: one is applied to
a citizen's message, one to every question variant, one to every answer sentence, before
the cosine.

Measured with leave-one-institution-kind-out validation (the map of each fold fitted
without the kind left out), it answers more questions right at once at the same bars and
rules (57.9% against 47.8% unmapped over 32 kinds; one matrix for all: 55.0%; two, one
for messages and one for entries: 56.7%), with 5.3% of the uncovered ones answered (5.4%
unmapped): bench/faq_map.py has the table. The decision shipped for an encoder is fitted
on similarities through such maps, so the two ship together (``maps/<encoder name>.npy``,
and the map's digest in the decision's ``space``). An encoder without a map file (``use``)
is compared unmapped.

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
    """``x -> normalise(W x)`` for a message's vector, ``x -> normalise(E x)`` for a
    question variant's and ``x -> normalise(A x)`` for an answer sentence's. Apart because a
    citizen's message, an FAQ author's question and an answer's sentence differ in kind:
    fitted apart (each pulled towards the identity and towards the others), they answered
    more right at once than one matrix for all (bench/faq_map.py). A map of one matrix
    applies it to all three; of two (``answers`` None), the second to variants and answers."""

    def __init__(
        self,
        matrix: np.ndarray,
        entries: np.ndarray | None = None,
        answers: np.ndarray | None = None,
    ):
        for m in (matrix, entries, answers):
            if m is not None and (
                m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape != matrix.shape
            ):
                raise ValueError(f"a vector map is one to three square matrices, not {m.shape}")
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.entries = (
            self.matrix if entries is None else np.ascontiguousarray(entries, dtype=np.float32)
        )
        self.answers = (
            self.entries if answers is None else np.ascontiguousarray(answers, dtype=np.float32)
        )

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    @functools.cached_property
    def digest(self) -> str:
        """Names this map in a decision fitted through it (``DecisionModel.space``)."""
        digest = hashlib.sha256(self.matrix.tobytes())
        if self.entries is not self.matrix or self.answers is not self.entries:
            digest.update(self.entries.tobytes())
        if self.answers is not self.entries:
            digest.update(self.answers.tobytes())
        return digest.hexdigest()[:12]

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of messages' vectors (one row or a matrix of rows)."""
        return _normalised(rows @ self.matrix.T)

    def apply_entries(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of question variants' vectors."""
        return _normalised(rows @ self.entries.T)

    def apply_answers(self, rows: np.ndarray) -> np.ndarray:
        """Mapped L2-normalised rows of answer sentences' vectors."""
        return _normalised(rows @ self.answers.T)

    @classmethod
    def load(cls, path: Path) -> VectorMap:
        stored = np.load(path, allow_pickle=False)
        if stored.ndim == 3 and len(stored) in (2, 3):
            return cls(*stored)
        return cls(stored)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [self.matrix]
        if self.entries is not self.matrix or self.answers is not self.entries:
            parts.append(self.entries)
        if self.answers is not self.entries:
            parts.append(self.answers)
        stored = parts[0] if len(parts) == 1 else np.stack(parts)
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
    process and shared by every FAQ's index (1.8 MB, not per institution)."""
    path = map_path(encoder_name)
    if not path.exists():
        return None
    vector_map = VectorMap.load(path)
    if vector_map.dim != dim:
        raise ValueError(f"{path}: a map of {vector_map.dim} dimensions for {dim}")
    return vector_map
