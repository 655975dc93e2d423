"""An FAQ answer or template that fails on every use or runs without end (issue 19, item 3):
``check`` and hot reload refuse it with the FAQ's file:line, and one that reaches a running
bot anyway (it went live at start, or fails only for some names) hands the question to staff
within the render budget instead of freezing every institution the process serves."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.config import load_config
from runtime.app import App
from runtime.features import TEMPLATES
from runtime.reload import reload
from runtime.validation import check_all
from tests.emulators.telegram import TelegramEmulator
from tests.faults.rig import ANSWER, QUESTION, SCHOOL, STAFF_CHAT, write_config
from tests.processes import priemnaya_run, tail

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
#: answers that fail on every use, each with what check must say about it
BROKEN = {
    "nested-loops": (NESTED, "steps"),
    "python-internals": ("{{ ''.__class__ }}", "unsafe"),
    "recursive-macro": ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "calls itself"),
    "include-outside": ("{% include '../../../etc/passwd' %}", "no template"),
    "huge-repeat": ("{{ 'x' * 10**9 }}", "repeats a text"),
    "doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "at most 50000",
    ),
    "wide-field": ("{{ 'x'|center(1000000000) }}", "too big"),
    "wide-method": ("{{ 'x'.ljust(1000000000) }}", "too big"),
    "wide-format": ("{{ '%.1000000f'|format(1) }}", "too wide a field"),
}
#: numbers an answer may well show: not sizes, so not limited
BIG_NUMBERS = "Бюджет {{ '{:,}'.format(1500000) }} руб., ИНН 4632012345: {{ '%d' % 10**7 }}"
#: first-grade-enrollment's answer in examples/faq/school.yaml: its `answer: |` is on line 9
FIRST_ANSWER = "      Приём заявлений в 1 класс для детей"
ANSWER_LINE = 9
ESCALATED = "Я передал ваш вопрос сотрудникам"
POLYCLINIC_QUESTION = "как вызвать врача на дом"


def break_first_answer(config: Path, template: str) -> Path:
    faq = config.parent / "examples/faq/school.yaml"
    lines = faq.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(FIRST_ANSWER))
    assert lines[index - 1].strip() == "answer: |" and index == ANSWER_LINE
    lines[index] = lines[index] + " " + template  # the answer keeps its text, as when an
    # author adds a loop to it (an answer of nothing but the loop ranks below its neighbour)
    faq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return faq


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_check_refuses_an_answer_that_fails_on_every_use_with_its_line(
    kind: str, example_config: Path
) -> None:
    template, says = BROKEN[kind]
    faq = break_first_answer(example_config, template)
    started = time.monotonic()
    problems, _ = check_all(str(example_config), TEMPLATES)
    took = time.monotonic() - started
    print(f"{kind}: check took {took:.2f} s: {[str(p) for p in problems]}")
    assert [(p.file, p.line) for p in problems] == [(str(faq), ANSWER_LINE)]
    assert "first-grade-enrollment" in problems[0].message and says in problems[0].message


def test_big_numbers_in_an_answer_are_not_refused(example_config: Path) -> None:
    break_first_answer(example_config, BIG_NUMBERS)
    problems, _ = check_all(str(example_config), TEMPLATES)
    assert problems == []


def test_check_refuses_a_template_override_over_budget(example_config: Path) -> None:
    folder = example_config.parent / "examples/templates/school-17"
    folder.mkdir(parents=True)
    (folder / "help.j2").write_text(f"Справка\n{NESTED}\n", encoding="utf-8")
    (folder / "start.j2").write_text("Здравствуйте, {{ user }}!\n", encoding="utf-8")
    commented = "# templates: examples/templates/school-17/"
    config = example_config.read_text(encoding="utf-8")
    example_config.write_text(config.replace(commented, commented[2:]), encoding="utf-8")
    problems, _ = check_all(str(example_config), TEMPLATES)
    assert [p.file for p in problems] == [str(folder / "help.j2")], problems
    assert "steps" in problems[0].message


def test_the_shipped_templates_and_example_faqs_render_within_budget(
    example_config: Path,
) -> None:
    problems, _ = check_all(str(example_config), TEMPLATES)
    assert problems == []


async def test_hot_reload_refuses_the_nested_loop_answer_and_keeps_the_old(
    local_app: App, example_config: Path
) -> None:
    faq = break_first_answer(example_config, NESTED)
    result = await reload(local_app)
    assert not result.ok
    assert [(p.file, p.line) for p in result.problems] == [(str(faq), ANSWER_LINE)]
    local = local_app.local_platform("school-17")
    await local.user_says("100", QUESTION)
    await local_app.settle()
    assert ANSWER in local.last("100").text


async def test_an_answer_over_budget_at_run_time_goes_to_staff_and_others_are_answered(
    example_config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the app starts with the broken FAQ (start does not render answers; reload and check do)
    break_first_answer(example_config, NESTED)
    app = App(load_config(example_config), local=True)
    await app.start()
    try:
        school = app.local_platform("school-17")
        clinic = app.local_platform("polyclinic-3")
        await school.user_says("100", QUESTION)
        await clinic.user_says("200", POLYCLINIC_QUESTION)
        await school.user_says("101", QUESTION)
        await app.settle()
        for chat in ("100", "101"):
            said = "\n".join(m.text for m in school.messages(chat))
            assert ESCALATED in said and ANSWER not in said
        cards = school.messages("-1001234567890")
        assert sum(QUESTION in m.text for m in cards) == 2
        assert "+7 (4712) 11-11-11" in clinic.last("200").text
        # the answer ran over its budget once; the second citizen's question did not run it
        refused = [r.getMessage() for r in caplog.records if "cannot be rendered" in r.getMessage()]
        assert len(refused) == 2 and "not rendered again" in refused[1], refused
    finally:
        await app.stop()


TWO_SCHOOLS = "711002:second-school-token"


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


@pytest.mark.slow
async def test_a_process_with_the_nested_loop_answer_answers_others_and_stops_on_sigterm(
    tmp_path: Path, emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator, monkeypatch)
    faq = tmp_path / "faq/school.yaml"
    (tmp_path / "faq/other.yaml").write_text(faq.read_text(encoding="utf-8"), encoding="utf-8")
    lines = faq.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(FIRST_ANSWER))
    lines[index] = lines[index] + " " + NESTED
    faq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("TG_OTHER", TWO_SCHOOLS)
    with config.open("a", encoding="utf-8") as out:
        out.write(
            "  school-18:\n"
            "    name: МБОУ «Средняя школа № 18»\n"
            "    faq: faq/other.yaml\n"
            f'    telegram: {{token: "${{TG_OTHER}}", api_server: "{emulator.url}"}}\n'
        )
    log = tmp_path / "bot.log"
    async with priemnaya_run(config, log) as process:
        emulator.user_says(SCHOOL, 601, QUESTION)
        emulator.user_says(TWO_SCHOOLS, 602, QUESTION)
        await emulator.wait_until(
            lambda: (
                any(ESCALATED in m.text for m in emulator.bot_messages(SCHOOL, 601))
                and any(ANSWER in m.text for m in emulator.bot_messages(TWO_SCHOOLS, 602))
            ),
            timeout=120,
        )
        await emulator.wait_until(
            lambda: any(QUESTION in m.text for m in emulator.bot_messages(SCHOOL, STAFF_CHAT)),
            timeout=60,
        )
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        print(f"exited {time.monotonic() - started:.2f} s after SIGTERM")
    assert code == 0, tail(log)
    assert "cannot be rendered" in log.read_text(encoding="utf-8")
