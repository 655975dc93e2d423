"""`priemnaya check` names file and line for every kind of mistake an admin makes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.cli import main


def run_check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "-c", str(config)])
    out = capsys.readouterr()
    return code, out.out + out.err


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_the_example_config_is_clean(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_check(example_config, capsys)
    assert code == 0, output
    assert not re.search(r":\d+: (?!warning)", output)


def test_a_yaml_syntax_error_names_file_and_line(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_config.read_text(encoding="utf-8")
    text = text.replace("hours: пн–пт 8:00–17:00", "hours: [пн–пт 8:00–17:00", 1)
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    assert re.search(rf"{re.escape(str(example_config))}:\d+: YAML syntax error", output), output


def test_an_unknown_key_gets_a_did_you_mean(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = example_config.read_text(encoding="utf-8").replace(
        "    phone: +7 (4712) 00", "    phnoe: +7 (4712) 00", 1
    )
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    line = line_of(example_config, "phnoe:")
    assert f"{example_config}:{line}: unknown key 'phnoe'; did you mean 'phone'?" in output


def test_matcher_settings_are_checked(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt threshold would otherwise be ignored or crash the bot at start."""
    text = example_config.read_text(encoding="utf-8")
    text = text.replace(
        "    faq: examples/faq/school.yaml\n",
        "    faq: examples/faq/school.yaml\n    matching: {answer_treshold: 0.5}\n",
        1,
    ).replace(
        "    faq: examples/faq/polyclinic.yaml\n",
        "    faq: examples/faq/polyclinic.yaml\n    matching: {answer_threshold: 7}\n",
        1,
    )
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    typo = line_of(example_config, "answer_treshold")
    assert f"{example_config}:{typo}: unknown key 'answer_treshold'; did you mean" in output
    high = line_of(example_config, "answer_threshold: 7")
    assert f"{example_config}:{high}: " in output and "must be at most 1" in output


def test_semantic_off_as_the_readme_writes_it_is_accepted(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML reads an unquoted ``off`` as false; the check once rejected the README's
    ``matching: {semantic: off}`` with "must be one of: on or off"."""
    from handlers.config import load_config

    text = example_config.read_text(encoding="utf-8").replace(
        "    faq: examples/faq/school.yaml\n",
        "    faq: examples/faq/school.yaml\n    matching: {semantic: off}\n",
        1,
    )
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 0, output
    settings = load_config(example_config).config.institutions["school-17"].matching
    assert settings.semantic == "off"


def test_a_missing_faq_file(example_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (example_config.parent / "examples" / "faq" / "polyclinic.yaml").unlink()
    code, output = run_check(example_config, capsys)
    assert code == 1
    line = line_of(example_config, "faq: examples/faq/polyclinic.yaml")
    assert f"{example_config}:{line}: FAQ file not found" in output


def test_an_faq_entry_without_questions(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = example_config.parent / "examples" / "faq" / "school.yaml"
    text = faq.read_text(encoding="utf-8")
    text = text.replace(
        "    questions:\n      - Какие дома закреплены за школой?\n      - Относится ли мой адрес к вашей школе?\n",
        "    questions: []\n",
    )
    faq.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    line = line_of(faq, "questions: []")
    assert re.search(rf"{re.escape(str(faq))}:{line}: .*questions", output), output


def test_a_template_with_an_undefined_variable(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = example_config.parent / "examples" / "faq" / "school.yaml"
    text = faq.read_text(encoding="utf-8").replace(
        "({{ institution.address }})", "({{ institution.address }}, {{ director }})", 1
    )
    faq.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    line = line_of(faq, "{{ director }}")
    assert (
        f"{faq}:{line}: entry 'first-grade-enrollment': template uses undefined variable 'director'"
        in output
    )


def test_an_override_template_with_an_undefined_variable(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = example_config.parent / "tpl"
    folder.mkdir()
    (folder / "help.j2").write_text(
        "Помощь\n{{ institution.phone }}\n{{ schedule }}\n", encoding="utf-8"
    )
    text = example_config.read_text(encoding="utf-8").replace(
        "    # templates: examples/templates/school-17/", "    templates: tpl/", 1
    )
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    assert f"{folder / 'help.j2'}:3: template uses undefined variable 'schedule'" in output


def test_a_missing_environment_variable(
    example_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_SCHOOL17", raising=False)
    text = example_config.read_text(encoding="utf-8").replace(
        '    # telegram: {token: "${TG_SCHOOL17}"}', '    telegram: {token: "${TG_SCHOOL17}"}', 1
    )
    example_config.write_text(text, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    line = line_of(example_config, "telegram: {token:")
    assert f"{example_config}:{line}: environment variable TG_SCHOOL17 is not set" in output


def test_announcement_templates_are_known_and_must_exist(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = example_config.parent / "tpl"
    folder.mkdir()
    (folder / "menu.j2").write_text("Меню: {{ data.dish }}\n", encoding="utf-8")
    edit = example_config.read_text(encoding="utf-8").replace(
        "    # templates: examples/templates/school-17/",
        "    templates: tpl/\n    announcements:\n"
        "      - {id: menu, cron: '0 9 * * mon', template: menu.j2, data: {dish: суп}}\n"
        "      - {id: typo, cron: '0 9 * * tue', template: manu.j2}",
        1,
    )
    example_config.write_text(edit, encoding="utf-8")
    code, output = run_check(example_config, capsys)
    assert code == 1
    assert "menu.j2" not in output.replace("'manu.j2'", "")  # its own template is accepted
    line = line_of(example_config, "template: manu.j2")
    assert f"{example_config}:{line}: announcement 'typo': template 'manu.j2': not found" in output
