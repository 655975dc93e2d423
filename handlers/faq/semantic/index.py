"""An FAQ's vectors, built once per FAQ content in the background (or at once on request).

Until the vectors are ready the matcher answers lexically, so a start with an empty cache
(1,000 entries take minutes to embed on one core) is as quick as a lexical start. The vectors
of an FAQ are shared by every matcher built for the same content in this process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from handlers.faq.model import Faq
from handlers.faq.semantic.cache import VectorCache
from handlers.faq.semantic.encoder import Encoder, EncoderBusy, shared_encoder
from handlers.faq.semantic.vector_map import VectorMap, shipped_map
from handlers.faq.semantic.vectors import EntryVectors, embed_cached, message_text

log = logging.getLogger(__name__)

#: tests set this False: vectors are built before the matcher is returned, so what a test
#: sees never depends on how fast a background thread was
BUILD_IN_BACKGROUND = True
#: the vector cache used when nothing else is configured (the app puts it under its data dir)
DEFAULT_CACHE = Path.home() / ".cache" / "priemnaya" / "vectors"
#: a folder named here is used instead of any other (tests share one across temporary apps)
CACHE_ENV = "PRIEMNAYA_VECTORS_DIR"


class SemanticIndex:
    """The vectors of one FAQ, and the encoder for messages. With a ``vector_map`` the
    messages, question variants and answer sentences are compared through it (the cache
    keeps the encoder's own vectors)."""

    def __init__(
        self,
        faq: Faq,
        encoder: Encoder,
        cache: VectorCache | None,
        vector_map: VectorMap | None = None,
    ):
        self.encoder = encoder
        self.vector_map = vector_map
        self._faq = faq
        self._cache = cache
        self._vectors: EntryVectors | None = None
        self._done = threading.Event()
        self._stopped = False

    @property
    def space(self) -> str:
        """What the similarities are of: the encoder, and the map if there is one. A
        decision is fitted on one space's similarities (``DecisionModel.space``)."""
        return space_name(self.encoder.name, self.vector_map)

    @property
    def vectors(self) -> EntryVectors | None:
        """None until built."""
        return self._vectors

    def build(self) -> None:
        started = time.perf_counter()
        try:
            vectors = EntryVectors.build(
                self._faq, self.encoder, self._cache, stop=lambda: self._stopped
            )
            if vectors is not None and self.vector_map is not None:
                vectors = vectors.mapped(
                    self.vector_map.apply_entries, self.vector_map.apply_answers
                )
            self._vectors = vectors
        except Exception:  # the bot goes on lexically; the reason is in the log
            log.exception("faq vectors could not be built; matching stays lexical")
        finally:
            self._done.set()
        if self._vectors is not None:
            log.info(
                "faq vectors ready: %d entries in %.1f s",
                len(self._faq.entries),
                time.perf_counter() - started,
            )

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._stopped = True

    def embed_query(self, text: str) -> np.ndarray:
        return self._mapped(self.encoder.embed([message_text(text)], query=True)[0])

    def embed_query_by(self, text: str, deadline: float) -> np.ndarray | None:
        """The message's vector, or None if the encoder was busy with other messages until
        ``deadline`` (``time.monotonic()``), counting the time this call waited for a
        thread to run on."""
        try:
            row = self.encoder.embed([message_text(text)], query=True, deadline=deadline)[0]
        except EncoderBusy:
            return None
        return self._mapped(row)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors of many messages, through the cache (evaluation runs the same cases
        again and again)."""
        clipped = [message_text(t) for t in texts]
        rows = embed_cached(self.encoder, self._cache, clipped, query=True)
        assert rows is not None
        return self._mapped(rows)

    def _mapped(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.vector_map is None else self.vector_map.apply(rows)


def space_name(encoder_name: str, vector_map: VectorMap | None) -> str:
    return encoder_name if vector_map is None else f"{encoder_name} map {vector_map.digest}"


_lock = threading.Lock()
_indexes: dict[tuple[str, str, str, bool], SemanticIndex] = {}


def faq_key(faq: Faq) -> str:
    return hashlib.sha256(faq.model_dump_json().encode()).hexdigest()


def semantic_index(
    faq: Faq,
    cache_dir: Path | None = None,
    *,
    background: bool | None = None,
    encoder: str | None = None,
    mapped: bool = True,
) -> SemanticIndex | None:
    """The shared index of this FAQ's content with ``encoder`` (default: the process's
    choice), started on first request; None without the encoder's package (matching stays
    lexical). ``mapped``: through the encoder's shipped vector map, if it has one (the
    fitting bench compares unmapped vectors and applies maps of its own)."""
    model = shared_encoder(encoder)
    if model is None:
        return None
    override = os.environ.get(CACHE_ENV)
    folder = Path(override) if override else cache_dir or DEFAULT_CACHE
    key = (faq_key(faq), str(folder), model.name, mapped)
    with _lock:
        index = _indexes.get(key)
        created = index is None
        if index is None:
            vector_map = shipped_map(model.name, model.dim) if mapped else None
            index = _indexes[key] = SemanticIndex(faq, model, VectorCache(folder), vector_map)
    if created:
        if BUILD_IN_BACKGROUND if background is None else background:
            threading.Thread(target=index.build, name="faq-vectors", daemon=True).start()
        else:
            index.build()
    else:
        if not (BUILD_IN_BACKGROUND if background is None else background):
            index.wait()
    return index
