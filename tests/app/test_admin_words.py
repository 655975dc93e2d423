"""Issue 18: what an admin reads is plain language, and offline commands work offline.

Each test is one of the stumbles of the issue, played through the `priemnaya` command as
an admin would run it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bots.core.model import User
from handlers.config import parse_duration
from handlers.texts import Texts
from runtime.app import App
from runtime.cli import main
from tests.shell_process import run_shell

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# -- (5) config errors in words, positions from 1 ---------------------------------------


def test_a_bad_institution_id_is_explained_with_an_example(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(example_config, "  school-17:", "  Школа-17:")
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert code == 1
    assert "may hold only lowercase Latin letters" in out and "e.g. school-17" in out
    assert "String should match pattern" not in out and "^[a-z0-9]" not in out


def test_faq_positions_count_from_one_and_say_what_is_wrong(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = example_config.parent / "examples/faq/school.yaml"
    lines = faq.read_text(encoding="utf-8").splitlines()
    # the second entry's answer becomes empty
    starts = [i for i, line in enumerate(lines) if line.startswith("  - id:")]
    answer = next(i for i in range(starts[1], starts[2]) if lines[i].strip().startswith("answer"))
    end = next(i for i in range(answer + 1, len(lines)) if not lines[i].startswith("      "))
    faq.write_text("\n".join([*lines[:answer], '    answer: ""', *lines[end:]]) + "\n")
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert code == 1
    assert re.search(r"school\.yaml:\d+: entries #2\.answer: must not be empty", out), out
    assert "entries.1.answer" not in out and "at least 1 character" not in out


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("30 дней", timedelta(days=30)),
        ("30дней", timedelta(days=30)),
        ("2 ч", timedelta(hours=2)),
        ("15 мин", timedelta(minutes=15)),
        ("1 неделя", timedelta(days=7)),
        ("1,5 часа", timedelta(hours=1, minutes=30)),
        ("8h", timedelta(hours=8)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations_accept_russian_units(written: str, expected: timedelta) -> None:
    assert parse_duration(written) == expected


def test_russian_durations_in_the_config_and_on_the_command_line(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        example_config,
        "      first_response: 8h",
        "      first_response: 8 ч\n      auto_close: 3 дня",
    )
    assert run(["check", "-c", str(example_config)], capsys)[0] == 0
    code, _, err = run(["report", "stats", "-c", str(example_config), "--since", "30дней"], capsys)
    assert code == 0, err
    with pytest.raises(SystemExit):
        main(["report", "stats", "-c", str(example_config), "--since", "месяц"])
    err = capsys.readouterr().err
    assert "'месяц' is not a duration; write e.g." in err and "parse_duration" not in err


# -- (2) a missing variable is one problem among the others ---------------------------------


def test_check_lists_a_missing_variable_with_every_other_problem_in_one_run(
    example_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_SCHOOL17", raising=False)
    edit(
        example_config,
        '    # telegram: {token: "${TG_SCHOOL17}"}',
        '    telegram: {token: "${TG_SCHOOL17}"}',
    )
    edit(example_config, "    phone: +7 (4712) 00", "    phnoe: +7 (4712) 00")
    edit(example_config, "      first_response: 8h", "      first_response: 8 лет")
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert code == 1
    assert "environment variable TG_SCHOOL17 is not set" in out
    assert "unknown key 'phnoe'; did you mean 'phone'?" in out
    assert "'8 лет' is not a duration" in out
    # no complaint about the token's shape: the unset variable is the one problem there
    assert "a Telegram token looks like" not in out


def test_offline_commands_need_no_tokens(
    example_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_SCHOOL17", raising=False)
    edit(
        example_config,
        '    # telegram: {token: "${TG_SCHOOL17}"}',
        '    telegram: {token: "${TG_SCHOOL17}"}',
    )
    code, out, err = run(
        ["faq", "ask", "-c", str(example_config), "-i", "school-17", "запись в первый класс"],
        capsys,
    )
    assert code == 0, err
    assert "first-grade-enrollment" in out
    assert run(["tickets", "list", "-c", str(example_config)], capsys)[0] == 0
    # `run` is the one command that talks to Telegram: it does need the token
    code, out, err = run(["run", "-c", str(example_config)], capsys)
    assert code == 1 and "environment variable TG_SCHOOL17 is not set" in err


def test_the_shell_runs_without_tokens_and_leaves_the_real_database_alone(
    example_config: Path,
) -> None:
    text = example_config.read_text(encoding="utf-8").replace(
        '    # telegram: {token: "${TG_SCHOOL17}"}', '    telegram: {token: "${TG_SCHOOL17}"}'
    )
    example_config.write_text(text, encoding="utf-8")
    done = run_shell(
        example_config,
        "Как записать ребенка в первый класс?\n/operator\nнужна справка\n",
        without=[k for k in os.environ if k.startswith("TG_")],
    )
    assert done.returncode == 0, done.stderr
    assert "Приём заявлений в 1 класс" in done.stdout
    assert not (example_config.parent / "data").exists()  # the sandbox: no real database


# -- (5) no traceback for a closed pipe ------------------------------------------------------


def test_a_closed_pipe_is_no_error(tmp_path: Path) -> None:
    faq = ROOT / "tests/fixtures/faq-dev/school.yaml"
    cases = ROOT / "tests/fixtures/faq-dev/school.cases.yaml"
    command = f"{sys.executable} -m runtime.cli faq eval {faq} {cases} | head -1"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.stdout.startswith("== ")
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


# -- (6) the check reads word forms as the matcher does ------------------------------------


def test_a_synonym_used_in_another_word_form_points_somewhere(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = example_config.parent / "examples/faq/school.yaml"
    text = faq.read_text(encoding="utf-8")
    synonyms = "synonyms:\n  воспитатель: [воспиталка]\n  космонавт: [космос]\n"
    text = text.replace("entries:\n", synonyms + "entries:\n", 1)
    text = text.replace("Приём заявлений в 1 класс", "Приём заявлений у воспитателя в 1 класс", 1)
    faq.write_text(text, encoding="utf-8")
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert code == 1
    assert "'космонавт' points nowhere" in out
    assert "'воспитатель' points nowhere" not in out


def test_a_synonym_used_only_in_the_middle_of_a_long_faq_points_somewhere(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """«учебник» is used only by an entry in the middle of the school FAQ (22 KB): the
    check read the FAQ as one text, whose middle the tokenizer skips, and an admin trying
    the guide got «points nowhere» for four correct synonyms."""
    faq = example_config.parent / "examples/faq/school.yaml"
    text = faq.read_text(encoding="utf-8")
    text = text.replace("entries:\n", "synonyms:\n  учебник: [пособие]\nentries:\n", 1)
    faq.write_text(text, encoding="utf-8")
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert "points nowhere" not in out, out
    assert code == 0, out


# -- (7) the small ones ------------------------------------------------------------------


def test_a_name_in_quotes_is_not_quoted_twice() -> None:
    texts = Texts(None, institution={"name": "МБОУ «Средняя школа № 17»", "hours": ""})
    assert "бот МБОУ «Средняя школа № 17»." in texts.render("start", user="Анна")
    plain = Texts(None, institution={"name": "Детский сад № 5", "hours": ""})
    assert "бот «Детский сад № 5»." in plain.render("start", user="Анна")


def test_the_staff_name_ends_the_sentence_once() -> None:
    texts = Texts(None, institution={"name": "Школа"})
    assert texts.render("staff_took", number=7, staff="Иванова А. П.").strip() == (
        "Обращение № 7 ведёт Иванова А. П."
    )


def test_the_staff_chat_notice_of_a_failed_reload_is_russian_only() -> None:
    texts = Texts(None, institution={"name": "Школа"})
    notice = texts.render(
        "reload_failed",
        problems=["/etc/priemnaya/faq/school.yaml:12: entries #9.answer: must not be empty"],
        more=0,
    )
    assert "не применены" in notice and "<code>school.yaml:12</code>" in notice
    assert "must not be empty" not in notice and "entries" not in notice


async def test_tickets_list_sets_the_urgent_mark_apart(
    local_app: App, example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = local_app.local_platform("school-17")
    await local.user_says("800", "пожар в спортзале, дети без сознания", user=User("800", "Ира"))
    await local_app.settle()
    code = await asyncio.to_thread(
        main, ["tickets", "list", "-c", str(example_config), "--status", "all"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"school-17\s+1 ! open\s", out), out
    assert "1!" not in out and "! = urgent" in out


def test_the_shell_uses_the_real_database_only_when_asked(example_config: Path) -> None:
    database = example_config.parent / "data" / "priemnaya.sqlite3"
    done = run_shell(example_config, "Как записать ребенка в первый класс?\n", args=["--real"])
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM message_log").fetchone()[0] >= 1


def test_ctrl_c_ends_the_interactive_shell_at_once(example_config: Path) -> None:
    """At a terminal, Ctrl+C leaves the shell without waiting for another Enter."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the shell on the pseudo-terminal
        os.chdir(ROOT)
        os.execv(
            sys.executable,
            [sys.executable, "-m", "runtime.cli", "shell", "-c", str(example_config)],
        )
    try:
        assert "вы> " in read_until(fd, "вы> ")
        os.write(fd, "когда запись в 1 класс\n".encode())
        assert "Приём заявлений" in read_until(fd, "вы> ")
        os.write(fd, b"\x03")  # Ctrl+C, typed at the prompt
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 130
                return
            read_until(fd, "\x00", timeout=0.2)  # keep the terminal drained
        raise AssertionError("the shell still runs 60 s after Ctrl+C")
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


def read_until(fd: int, needle: str, timeout: float = 60.0) -> str:
    """What the terminal shows until ``needle`` appears (or the time is up)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode("utf-8", errors="replace")


def test_an_impossible_date_and_a_wrong_audience_are_one_plain_problem_each(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        example_config,
        'working_hours: {mon-fri: "08:00-17:00"}\n',
        'working_hours: {mon-fri: "08:00-17:00"}\n    holidays: [2026-13-04]\n'
        "    announcements:\n      - {id: menu, cron: '0 9 * * mon', text: Меню, to: everyone}\n",
    )
    code, out, _ = run(["check", "-c", str(example_config)], capsys)
    assert code == 1
    assert "holidays #1: must be a date written as YYYY-MM-DD, e.g. 2026-11-04" in out
    audience = [line for line in out.splitlines() if "announcements #1.to" in line]
    assert len(audience) == 1 and "must be one of: subscribers; or must be a list" in audience[0]
