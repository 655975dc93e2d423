"""A config or FAQ written to exhaust the loader (issue 19, item 8): a 1 KB file of aliases
to aliases ("billion laughs") expands to 9^9 values and used to hang ``check`` and ``run``;
now both stop at once with the file and line. A loop of aliases and a file of megabytes get
a clear error too."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from bots.core.yamlfile import MAX_BYTES
from runtime.cli import main

LEVELS = "abcdefghi"


def alias_bomb() -> str:
    """Nine lines, each a list of nine aliases of the line above: 9^9 values expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for above, name in pairwise(LEVELS):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{above}"] * 9) + "]")
    return "\n".join(lines) + "\n"


#: line 6 of the bomb (f: 9^6 values) is the first past the limit of 200 000
BOMB_LINE = 6


def run_cli(verb: str, config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([verb, "-c", str(config)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("verb", ["check", "run"])
def test_an_alias_bomb_in_the_config_is_refused_with_its_line(
    verb: str, example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_config.read_text(encoding="utf-8")
    bomb = alias_bomb()
    assert len(bomb.encode()) < 1024
    example_config.write_text(bomb + text, encoding="utf-8")
    code, said = run_cli(verb, example_config, capsys)
    assert code != 0
    assert f"{example_config}:{BOMB_LINE}: " in said and "aliases" in said, said


def refused_faq(
    config: Path, capsys: pytest.CaptureFixture[str], verb: str, before: str, after: str = ""
) -> tuple[Path, str]:
    """The school FAQ with ``before`` and ``after`` added; ``verb`` must refuse it."""
    faq = config.parent / "examples/faq/school.yaml"
    faq.write_text(before + faq.read_text(encoding="utf-8") + after, encoding="utf-8")
    code, said = run_cli(verb, config, capsys)
    assert code != 0
    return faq, said


@pytest.mark.parametrize("verb", ["check", "run"])
def test_an_alias_bomb_in_an_faq_is_refused_with_its_line(
    verb: str, example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq, said = refused_faq(example_config, capsys, verb, alias_bomb())
    assert f"{faq}:{BOMB_LINE}: " in said and "aliases" in said, said


def test_an_alias_inside_its_own_value_is_an_error_not_a_crash(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq, said = refused_faq(example_config, capsys, "check", "loop: &x\n  again: *x\n")
    assert f"{faq}:2: an alias (*name) refers to the value that contains it" in said, said


def test_an_faq_of_megabytes_is_refused_before_it_is_read(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq, said = refused_faq(example_config, capsys, "check", "", "#" + "x" * MAX_BYTES + "\n")
    assert f"{faq}:1: the file is" in said and "bytes long" in said, said


def test_aliases_that_stay_small_still_work(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = example_config.parent / "examples/faq/school.yaml"
    text = faq.read_text(encoding="utf-8")
    first = "      - Как записать ребёнка в первый класс?"
    assert first in text
    text = text.replace(first, "      - &first Как записать ребёнка в первый класс?", 1)
    text = text.replace(
        "      - Когда начинается приём", "      - *first\n      - Когда начинается приём", 1
    )
    faq.write_text(text, encoding="utf-8")
    code, said = run_cli("check", example_config, capsys)
    assert code == 0, said
