"""An admin's commonest slips in an FAQ file get a message that says what to do: the
parser's own words name its grammar ("expected <block end>"), not the mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.core.yamlfile import ProblemsError
from handlers.faq.model import load_faq

FAQ = """\
entries:
  - id: attach
    questions:
      - Как прикрепиться к поликлинике?
      - Какие документы нужны?
    answer: Паспорт, полис ОМС и СНИЛС.
"""


def problem(tmp_path: Path, text: str) -> str:
    path = tmp_path / "faq.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_faq(path)
    return str(caught.value)


def test_the_unchanged_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(FAQ, encoding="utf-8")
    assert [e.id for e in load_faq(path).faq.entries] == ["attach"]


def test_a_list_item_out_of_line_is_told_to_check_the_indentation(tmp_path: Path) -> None:
    text = FAQ.replace("      - Какие", "    - Какие")
    said = problem(tmp_path, text)
    assert "faq.yaml:5: YAML syntax error" in said
    assert "check the indentation" in said


def test_a_question_with_a_colon_is_told_to_be_quoted(tmp_path: Path) -> None:
    text = FAQ.replace("      - Какие документы нужны?", "      - Вопрос: какие документы?")
    said = problem(tmp_path, text)
    assert "questions #2: must be text" in said
    assert "must be put in quotes" in said


def test_an_unclosed_quote_is_named(tmp_path: Path) -> None:
    text = FAQ.replace("      - Какие документы нужны?", '      - "Какие документы нужны?')
    said = problem(tmp_path, text)
    assert "YAML syntax error" in said and "quote" in said
