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
    """The vectors of one FAQ, and the encoder for messages."""

    def __init__(self, faq: Faq, encoder: Encoder, cache: VectorCache | None):
        self.encoder = encoder
        self._faq = faq
        self._cache = cache
        self._vectors: EntryVectors | None = None
        self._done = threading.Event()
        self._stopped = False

    @property
    def vectors(self) -> EntryVectors | None:
        """None until built."""
        return self._vectors

    def build(self) -> None:
        started = time.perf_counter()
        try:
            self._vectors = EntryVectors.build(
                self._faq, self.encoder, self._cache, stop=lambda: self._stopped
            )
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
        return self.encoder.embed([message_text(text)], query=True)[0]

    def embed_query_by(self, text: str, deadline: float) -> np.ndarray | None:
        """The message's vector, or None if the encoder was busy with other messages until
        ``deadline`` (``time.monotonic()``), counting the time this call waited for a
        thread to run on."""
        try:
            return self.encoder.embed([message_text(text)], query=True, deadline=deadline)[0]
        except EncoderBusy:
            return None

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors of many messages, through the cache (evaluation runs the same cases
        again and again)."""
        clipped = [message_text(t) for t in texts]
        rows = embed_cached(self.encoder, self._cache, clipped, query=True)
        assert rows is not None
        return rows


_lock = threading.Lock()
_indexes: dict[tuple[str, str, str], SemanticIndex] = {}


def faq_key(faq: Faq) -> str:
    return hashlib.sha256(faq.model_dump_json().encode()).hexdigest()


def semantic_index(
    faq: Faq,
    cache_dir: Path | None = None,
    *,
    background: bool | None = None,
    encoder: str | None = None,
) -> SemanticIndex | None:
    """The shared index of this FAQ's content with ``encoder`` (default: the process's
    choice), started on first request; None without the encoder's package (matching stays
    lexical)."""
    model = shared_encoder(encoder)
    if model is None:
        return None
    override = os.environ.get(CACHE_ENV)
    folder = Path(override) if override else cache_dir or DEFAULT_CACHE
    key = (faq_key(faq), str(folder), model.name)
    with _lock:
        index = _indexes.get(key)
        created = index is None
        if index is None:
            index = _indexes[key] = SemanticIndex(faq, model, VectorCache(folder))
    if created:
        if BUILD_IN_BACKGROUND if background is None else background:
            threading.Thread(target=index.build, name="faq-vectors", daemon=True).start()
        else:
            index.build()
    else:
        if not (BUILD_IN_BACKGROUND if background is None else background):
            index.wait()
    return index
