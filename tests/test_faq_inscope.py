"""The in-scope gate of the fitted FAQ decision: words the FAQ never names, and a second
model (covered or out of scope) that holds back an answer the ranking alone would give."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from handlers.faq import decision
from handlers.faq.decision import INSCOPE_FEATURES, DecisionModel, Logistic, too_close
from handlers.faq.matcher import Decision, FaqMatcher, Pending
from handlers.faq.matching.scoring import unknown_words
from handlers.faq.model import load_faq

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def school() -> FaqMatcher:
    return FaqMatcher.build(load_faq(FIXTURES / "faq-dev" / "school.yaml").faq)


def _unknown(m: FaqMatcher, text: str):
    return unknown_words(m._index, m._index.terms(text), m._weights)


def test_words_the_faq_never_names_are_measured(school: FaqMatcher) -> None:
    known = _unknown(school, "как родителю войти в электронный дневник")
    assert known.topic_share == 0.0
    assert known.words >= 3
    strange = _unknown(school, "где купить виниловые пластинки и патефон")
    assert strange.topic_share > 0.3 and strange.share > known.share
    assert strange.share >= strange.topic_share >= strange.topic_max > 0.0
    pending = school.begin("где купить виниловые пластинки и патефон")
    assert isinstance(pending, Pending)
    assert pending.signals.unknown == strange


def test_the_in_scope_gate_holds_an_answer_back(school: FaqMatcher) -> None:
    text = "как родителю войти в эл дневник"
    pending = school.begin(text)
    assert isinstance(pending, Pending) and school.needs_vector(pending)
    assert school.semantic is not None
    vector = school.semantic.embed_query(text)
    assert school.finish(pending, vector).decision is Decision.ANSWER
    n = len(INSCOPE_FEATURES)
    nothing_covered = Logistic(np.zeros(n), -5.0, np.zeros(n), np.ones(n))
    gated = FaqMatcher(
        school.faq,
        school.settings,
        school.semantic,
        dataclasses.replace(school.model, inscope=nothing_covered, inscope_point=0.5),
    )
    pending = gated.begin(text)
    assert isinstance(pending, Pending)
    result = gated.finish(pending, vector)
    assert result.decision is Decision.CLARIFY
    assert result.reason == "the FAQ may not cover the question"
    assert result.candidates[0].entry_id == "electronic-diary"


def test_the_in_scope_model_round_trips_and_old_files_still_load(school: FaqMatcher) -> None:
    # any fitted logistic stands for the in-scope one here (the shipped one comes with its refit)
    model = dataclasses.replace(school.model, inscope=school.model.offer, inscope_point=0.7)
    assert model.inscope is not None
    again = DecisionModel.from_json(model.to_json())
    assert again.inscope_point == model.inscope_point
    assert again.inscope is not None
    assert list(again.inscope.weights) == pytest.approx(list(model.inscope.weights), abs=1e-6)
    old = dataclasses.replace(model, inscope=None, inscope_point=0.0).to_json()
    assert '"inscope": {' not in old
    loaded = DecisionModel.from_json(old)
    assert loaded.inscope is None and loaded.inscope_point == 0.0


@pytest.mark.parametrize(
    ("kind", "text", "entry", "reason"),
    [
        (
            "faq-extra/kcson",
            "сколько сейчас прожиточный минимум у нас для расчета платы за соцработника?",
            "home-care-fee",
            "the FAQ may not cover the question",
        ),
        (
            "faq-extra/kcson",
            "банк комиссию берет когда квитанцию за соцработника оплачиваешь?",
            "home-care-payment",
            "the FAQ may not cover the question",
        ),
        (
            "faq-kinds/sfr",
            "какой прожиточный минимум на ребенка в нашем регионе в рублях",
            "unified-allowance-eligibility",
            "not confident enough",
        ),
    ],
)
def test_a_near_miss_the_ranking_would_answer_is_offered(
    kind: str, text: str, entry: str, reason: str
) -> None:
    """Out-of-scope questions of the fixtures whose best entry is on their topic (the fee,
    the payment, the allowance): offered, not answered. The in-scope model holds back the
    first two, which the hybrid model alone would answer. Since the map of two matrices
    (stop 39) the hybrid model itself is unsure of the third, and the shipped decision
    answers housing's "какая сейчас ключевая ставка цб от которой пени считают" with the
    entry on late-payment penalties (it was held back by the in-scope model before; 27 of
    the 1,109 uncovered questions of the fitting kinds are answered in sample, 2.4%, against
    2.3% before; 2.3% again through the map of three matrices, stop 40)."""
    matcher = FaqMatcher.build(load_faq(FIXTURES / f"{kind}.yaml").faq)
    result = matcher.match(text)
    assert result.decision is Decision.CLARIFY
    assert result.reason == reason
    assert result.candidates[0].entry_id == entry


@pytest.fixture(scope="module")
def clinic() -> FaqMatcher:
    return FaqMatcher.build(load_faq(FIXTURES / "faq-dev" / "polyclinic.yaml").faq)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        # "сильно заболела спина, талонов нет. можно прийти без записи?" was broken too until
        # the decision was fitted on 32 kinds: it is now offered as not sure enough, tie or not
        ("общий анализ крови без направления бесплатно сделаете?", "blood-tests"),
    ],
)
def test_a_near_tie_by_words_in_a_message_that_says_enough_is_answered(
    clinic: FaqMatcher, text: str, entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two entries score nearly alike by words; the fitted decision weighs the meaning too
    and answers. Were the message too short for its meaning to count (as "питание" alone
    is), the citizen would pick between the two."""
    pending = clinic.begin(text)
    assert isinstance(pending, Pending) and too_close(pending.signals.lexical)
    assert clinic.semantic is not None
    vector = clinic.semantic.embed_query(text)
    result = clinic.finish(pending, vector)
    assert (result.decision, result.candidates[0].entry_id) == (Decision.ANSWER, entry)
    monkeypatch.setattr(decision, "TIEBREAK_MIN_TERMS", 99)
    held = clinic.finish(clinic.begin(text), vector)  # type: ignore[arg-type]
    assert (held.decision, held.reason) == (Decision.CLARIFY, "runner-up too close")
    assert held.candidates[0].entry_id == entry
