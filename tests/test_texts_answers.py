"""FAQ answers rendered once per institution when their text is the same for every citizen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest

from handlers.texts import Texts

INSTITUTION = {"name": "Школа № 1", "phone": "+7 4712 00-00-00", "hours": "9:00-18:00"}


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources of the answer templates rendered, in order."""
    seen: list[str] = []
    original = jinja2.Template.render

    def counted(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        seen.append(self.name or "answer")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", counted)
    return seen


def test_an_answer_printing_only_the_institutions_values_is_rendered_once(
    renders: list[str],
) -> None:
    texts = Texts(institution=INSTITUTION)
    source = "Звоните по телефону {{ institution.phone }}, часы: {{ institution.hours }}."
    first = texts.answer("phone", source, user="Иван", now=datetime.now(UTC))
    second = texts.answer("phone", source, user="Мария", now=datetime.now(UTC))
    assert first == second == "Звоните по телефону +7 4712 00-00-00, часы: 9:00-18:00."
    assert renders == ["answer"]


@pytest.mark.parametrize(
    "source",
    [
        "Здравствуйте, {{ user }}!",
        "Сейчас {{ now.year }} год.",
        "{{ ['a', 'b'] | random }}",
        "{% if institution.phone %}{{ institution.phone }}{% endif %}",
        "{{ lipsum(1) }}",
    ],
)
def test_an_answer_that_may_differ_between_citizens_is_rendered_every_time(
    renders: list[str], source: str
) -> None:
    texts = Texts(institution=INSTITUTION)
    now = datetime(2026, 12, 3, tzinfo=UTC)
    texts.answer("e", source, user="Иван", now=now)
    texts.answer("e", source, user="Мария", now=now)
    assert len(renders) == 2


def test_each_institution_gets_its_own_values() -> None:
    source = "Телефон: {{ institution.phone }}"
    one = Texts(institution={"phone": "111"})
    two = Texts(institution={"phone": "222"})
    assert [one.answer("e", source), two.answer("e", source), one.answer("e", source)] == [
        "Телефон: 111",
        "Телефон: 222",
        "Телефон: 111",
    ]
