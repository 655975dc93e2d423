"""Issue 18: the go-live path an institution's admin walks, from the admin guide's own
snippets (docs/admin-guide.ru.md, the blocks marked ``<!-- go-live: FILE -->``).

A fresh directory gets the guide's config, FAQ and cases file for a new school; `check`
(offline) is clean; three seeded mistakes are all listed by one `check`; the bot runs on
Telegram (the Bot API emulator), is added to a group no institution names and answers
/id there, with a WARNING in the log naming the group; the ids are pasted as the guide
says and the next uncovered question arrives in that group; and the shell, run without any
token, answers without writing a row into the real database.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.cli import main
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.vk import VkEmulator
from tests.running import running_app
from tests.shell_process import run_shell

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "admin-guide.ru.md"
TOKEN = "7012345678:AAE3xQ-realistic_token_value_42"
GROUP = -1009876543210
TEACHER = 333333333


def guide_snippets() -> dict[str, str]:
    text = GUIDE.read_text(encoding="utf-8")
    found = dict(re.findall(r"<!-- go-live: (\S+) -->\n```yaml\n(.*?)```", text, re.S))
    assert set(found) == {"config.yaml", "faq/school-5.yaml", "faq/school-5.cases.yaml"}
    return found


@pytest.fixture
def school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """/etc/priemnaya of the guide, in a fresh directory; the guide's absolute database
    path is moved into the test's directory."""
    etc = tmp_path / "etc"
    (etc / "faq").mkdir(parents=True)
    for name, body in guide_snippets().items():
        body = body.replace("/var/lib/priemnaya/", f"{tmp_path / 'var'}/")
        (etc / name).write_text(body, encoding="utf-8")
    (tmp_path / "var").mkdir()
    monkeypatch.setenv("TG_SCHOOL5", TOKEN)
    monkeypatch.setenv("VK_SCHOOL5", "vk1.a.realistic-community-key")
    return etc / "config.yaml"


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "-c", str(config)])
    out = capsys.readouterr()
    return code, out.out + out.err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_guides_school_checks_clean_and_its_faq_measures(
    school: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = check(school, capsys)
    assert code == 0, output
    assert "OK" in output and "warning" not in output
    faq, cases = school.parent / "faq/school-5.yaml", school.parent / "faq/school-5.cases.yaml"
    assert main(["faq", "eval", str(faq), str(cases)]) == 0
    summary = capsys.readouterr().out
    correct = re.search(r"отвечено верно:\s+(\d+)", summary)
    wrong = re.search(r"отвечено неверно:\s+(\d+)", summary)
    assert correct and wrong, summary
    assert int(correct.group(1)) >= 3 and int(wrong.group(1)) == 0, summary


def test_one_check_lists_three_seeded_mistakes(
    school: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(school, "      first_response: 8 ч", "      first_response: восемь часов")
    monkeypatch.delenv("VK_SCHOOL5")
    faq = school.parent / "faq/school-5.yaml"
    text = faq.read_text(encoding="utf-8")
    start = text.index("    answer: |\n      Справку")
    end = text.index("\n\n", start)
    faq.write_text(text[:start] + '    answer: ""' + text[end:], encoding="utf-8")

    code, output = check(school, capsys)
    assert code == 1
    problems = [line for line in output.splitlines() if re.match(r".+:\d+: ", line)]
    assert len(problems) == 3, output
    assert "'восемь часов' is not a duration; write e.g. 30m, 8h, 2d or 30 мин" in output
    assert "environment variable VK_SCHOOL5 is not set" in output
    assert re.search(r"school-5\.yaml:\d+: entries #2\.answer: must not be empty", output)
    assert "3 problem(s) found" in output


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator() as emu:
        yield emu


async def test_id_in_an_unconfigured_group_then_the_pasted_ids_work_and_the_shell_stays_apart(
    school: Path, emulator: TelegramEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # the test's Telegram is the emulator; VK is left out of this run (no network here)
    edit(
        school,
        '{token: "${TG_SCHOOL5}"}',
        f'{{token: "${{TG_SCHOOL5}}", api_server: "{emulator.url}"}}',
    )
    edit(school, '    vk: {token: "${VK_SCHOOL5}", group_id: 123456}\n', "")

    with caplog.at_level(logging.WARNING):
        async with running_app(school) as app:
            emulator.add_to_group(TOKEN, GROUP, "Учителя школы № 5")
            emulator.user_says(TOKEN, GROUP, "/id", user_id=TEACHER, first_name="Ольга")
            await emulator.wait_until(lambda: bool(emulator.bot_messages(TOKEN, GROUP)))
            await app.settle()
    answer = emulator.bot_messages(TOKEN, GROUP)[-1].text
    assert str(GROUP) in answer and str(TEACHER) in answer and "Telegram" in answer
    assert f"chat: {{platform: telegram, id: {GROUP}}}" in answer
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"telegram group {GROUP}, which no institution names" in w
        and f"chat: {{platform: telegram, id: {GROUP}}}" in w
        for w in warnings
    ), warnings

    # the admin pastes what /id said, as the guide's section 7 shows
    edit(school, "id: -1001234567890", f"id: {GROUP}")
    edit(school, "id: 111111111, name: Иванова А. П.", f"id: {TEACHER}, name: Иванова А. П.")
    async with running_app(school) as app:
        emulator.user_says(TOKEN, 5005, "в столовой нагрубили ребенку, прошу разобраться")
        await emulator.wait_until(
            lambda: any("Обращение № 1" in m.text for m in emulator.bot_messages(TOKEN, GROUP))
        )
        await app.settle()
    database = school.parent.parent / "var" / "priemnaya.sqlite3"
    before = rows(database)
    assert before["tickets"] == 1

    # the shell, with no token in its environment: answers, and the real database is untouched
    done = await asyncio.to_thread(
        run_shell,
        school,
        "Когда начинается запись в 1 класс?\nучитель физкультуры накричал на сына\n",
        without=("TG_SCHOOL5", "VK_SCHOOL5"),
        args=("-i", "school-5"),
    )
    assert done.returncode == 0, done.stderr
    assert "Заявления в первый класс принимаются" in done.stdout
    assert "Обращение № 1" in done.stdout  # its own ticket, numbered in its own database
    assert rows(database) == before


def rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("message_log", "tickets", "outbox")
        }


async def test_id_in_a_vk_conversation_gives_its_peer_id(
    school: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guide section 6: a VK staff conversation is configured by its peer_id, found by /id."""
    vk = await VkEmulator().start()
    try:
        vk.add_community(123456, "vk1.a.realistic-community-key")
        edit(school, '    telegram: {token: "${TG_SCHOOL5}"}\n', "")
        edit(school, "group_id: 123456}", f'group_id: 123456, api_url: "{vk.api_url}", wait: 1}}')
        edit(
            school,
            "chat: {platform: telegram, id: -1001234567890}",
            "chat: {platform: vk, id: 2000000001}",
        )
        with caplog.at_level(logging.WARNING):
            async with running_app(school) as app:
                await vk.user_says(123456, 2000000007, "/id", from_id=4242)
                await vk.wait_until(lambda: bool(vk.messages(123456, 2000000007)), timeout=30)
                await app.settle()
    finally:
        await vk.close()
    answer = vk.messages(123456, 2000000007)[-1].text
    assert "ВКонтакте" in answer and "2000000007" in answer and "4242" in answer
    assert "chat: {platform: vk, id: 2000000007}" in answer
    assert any(
        "vk group 2000000007, which no institution names" in r.getMessage() for r in caplog.records
    )
